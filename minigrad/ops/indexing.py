"""Indexing ops: gather, scatter, index_select, masked ops, sort, topk."""

__all__ = []
