"""Rounding: floor, ceil, round (half to even, to ``decimals`` places), trunc (fix), frac.

floor, ceil, round and trunc are step functions: their derivative is 0 wherever it exists, and
PyTorch's gradient is zeros (not None), so the ops share one backward (``Step``). On integer
tensors they return the same integers, in the same dtype, as PyTorch does; bool tensors are
refused, as in PyTorch. frac(a) = a - trunc(a) has derivative 1 (PyTorch's), and needs floats.
"""

import numpy as np

from minigrad.autograd import Function, TensorBase
from minigrad.backend import array_module

__all__ = ["ceil", "fix", "floor", "frac", "round", "trunc"]


class Step(Function):
    """Base of the rounding ops: z is piecewise constant, so dz/da = 0 (zeros, as in PyTorch,
    also at the jumps)."""

    @staticmethod
    def backward(ctx, grad):
        return (array_module(grad).zeros_like(grad),)


def rounded(a, rounding):
    """``rounding(a)`` for floats; integers are whole already and come back as a copy (NumPy's
    floor of an int64 array would be float64)."""
    return a.copy() if a.dtype.kind in "iu" else rounding(a)


class Floor(Step):
    """z = floor a, the largest integer <= a;  dz/da = 0."""

    @staticmethod
    def forward(ctx, a):
        return rounded(a, array_module(a).floor)


class Ceil(Step):
    """z = ceil a, the smallest integer >= a;  dz/da = 0."""

    @staticmethod
    def forward(ctx, a):
        return rounded(a, array_module(a).ceil)


class Trunc(Step):
    """z = trunc a, a rounded toward 0;  dz/da = 0."""

    @staticmethod
    def forward(ctx, a):
        return rounded(a, array_module(a).trunc)


class Round(Step):
    """z = a rounded to the nearest multiple of 10^-decimals, halves to the even neighbour
    (0.5 -> 0, 1.5 -> 2, as PyTorch and NumPy round);  dz/da = 0.

    With decimals d != 0 this is rint(a·10^d) / 10^d (rint(a / 10^-d)·10^-d for d < 0, so that
    the power of ten is exact), PyTorch's formula; float16 is scaled in float32, as PyTorch
    does, so that a·10^d does not round to float16 before it is rounded to an integer.
    """

    @staticmethod
    def forward(ctx, a, decimals=0):
        xp = array_module(a)
        if decimals == 0:
            return rounded(a, xp.rint)
        scaled = a.astype(np.promote_types(a.dtype, np.float32), copy=False)
        if decimals > 0:
            out = xp.rint(scaled * 10.0**decimals) / 10.0**decimals
        else:
            out = xp.rint(scaled / 10.0**-decimals) * 10.0**-decimals
        return out.astype(a.dtype, copy=False)


class Frac(Function):
    """z = a - trunc(a), the fractional part, with a's sign;  dz/da = 1 (PyTorch's: the jumps
    at the integers are ignored)."""

    @staticmethod
    def forward(ctx, a):
        return a - array_module(a).trunc(a)

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


# --------------------------------------------------------------------------- public functions
def _check_dtype(name, a, kinds, wanted):
    """TypeError naming the op and the dtype when a tensor's dtype kind is not in ``kinds``."""
    if isinstance(a, TensorBase) and a.data.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected {wanted}, got dtype {a.data.dtype}")


def floor(a):
    _check_dtype("floor", a, "fiu", "a floating-point or integer tensor")
    return Floor.apply(a)


def ceil(a):
    _check_dtype("ceil", a, "fiu", "a floating-point or integer tensor")
    return Ceil.apply(a)


def trunc(a):
    _check_dtype("trunc", a, "fiu", "a floating-point or integer tensor")
    return Trunc.apply(a)


fix = trunc  # NumPy's and PyTorch's other name of trunc


def round(a, decimals=0):
    """Round half to even, to ``decimals`` places (negative: to tens, hundreds, ...). Integer
    tensors take only decimals=0, as in PyTorch."""
    _check_dtype("round", a, "fiu", "a floating-point or integer tensor")
    if decimals != 0:
        _check_dtype("round", a, "f", "a floating-point tensor for decimals != 0")
    return Round.apply(a, decimals=decimals)


def frac(a):
    _check_dtype("frac", a, "f", "a floating-point tensor")
    return Frac.apply(a)
