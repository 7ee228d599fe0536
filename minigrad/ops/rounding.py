"""Rounding: floor, ceil, round, trunc, frac."""

__all__ = []
