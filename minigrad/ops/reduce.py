"""Reductions: sum, var, max/min, logsumexp, the composite mean, and argmax/argmin (which
have no gradient).

``dim`` is None (all dims), an int or a tuple of ints, negative counting from the end;
``keepdim`` keeps reduced dims with size 1. NumPy's spellings ``axis``/``keepdims`` work too
(``ops.dims``). The Function classes take the normalized ``axis`` tuple.

Backward of a reduction: every input element that fed an output element receives that output's
gradient (times the local derivative), so the gradient is reshaped to keep the reduced axes and
broadcast back over them.
"""

from typing import Any, NamedTuple

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops.dims import dim_spellings, normalize_dims


__all__ = [
    "argmax", "argmin", "logsumexp", "max", "mean", "min", "sum", "var",
]


class ValuesIndices(NamedTuple):
    """What PyTorch's max/min/sort/topk/median/mode with a dim return: ``(values, indices)``,
    so ``_, predicted = scores.max(1)`` works, and so does ``scores.max(1).indices``."""

    values: Any
    indices: Any


def keep_reduced_axes(grad, axes, keepdims):
    """Give ``grad`` back the reduced axes (size 1) so it broadcasts against the input."""
    if keepdims:
        return grad
    return array_module(grad).expand_dims(grad, axes) if axes else grad


class Sum(Function):
    """z = sum_i a_i over ``axis``;  dz/da_i = 1."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_dims(axis, a.shape), keepdims, a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = keep_reduced_axes(grad, ctx.axes, ctx.keepdims)
        return (array_module(grad).broadcast_to(grad, ctx.shape),)


class Var(Function):
    """Variance  v = sum_i (a_i - mean)^2 / (n - correction);  dv/da_i = 2 (a_i - mean) / (n - c).

    ``correction=1`` (Bessel's, unbiased) is PyTorch's default; ``correction=0`` is NumPy's
    default and the biased estimate batch norm uses. The terms from d mean / d a_i cancel
    because the deviations sum to zero.
    """

    @staticmethod
    def forward(ctx, a, axis=None, correction=1, keepdims=False):
        axes = normalize_dims(axis, a.shape)
        centered = a - a.mean(axis=axes, keepdims=True)
        count = int(np.prod([a.shape[i] for i in axes]))
        ctx.axes, ctx.keepdims, ctx.divisor = axes, keepdims, count - correction
        ctx.save_for_backward(centered)
        return (centered**2).sum(axis=axes, keepdims=keepdims) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = keep_reduced_axes(grad, ctx.axes, ctx.keepdims)
        return (grad * 2 * centered / ctx.divisor,)


class Extremum(Function):
    """z = max_i a_i (or min) over ``axis``;  dz/da_i = 1 at the extreme element, else 0.

    When several elements tie for the extreme, the gradient is shared equally among them
    (PyTorch's ``amax``/``amin`` rule), so it still sums to the incoming gradient.
    """

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, largest=True):
        xp = array_module(a)
        axes = normalize_dims(axis, a.shape)
        out = (xp.max if largest else xp.min)(a, axis=axes, keepdims=True)
        is_extreme = (a == out).astype(a.dtype)
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_for_backward(is_extreme / is_extreme.sum(axis=axes, keepdims=True))
        return out if keepdims else xp.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return (keep_reduced_axes(grad, ctx.axes, ctx.keepdims) * share,)


class LogSumExp(Function):
    """z = log sum_i exp(a_i), computed as m + log sum_i exp(a_i - m) with m = max a so that
    exp never overflows;  dz/da_i = exp(a_i - z) = softmax(a)_i.

    The softmax is kept from the forward pass, as e_i / sum_j e_j with e_i = exp(a_i - m):
    recomputing exp(a_i - z) from the rounded z would lose digits when |z| is large."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = array_module(a)
        axes = normalize_dims(axis, a.shape)
        m = a.max(axis=axes, keepdims=True)
        e = xp.exp(a - m)
        total = e.sum(axis=axes, keepdims=True)
        out = m + xp.log(total)
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_for_backward(e / total)
        return out if keepdims else xp.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved_tensors
        return (keep_reduced_axes(grad, ctx.axes, ctx.keepdims) * softmax,)


# --------------------------------------------------------------------------- public functions
@dim_spellings
def sum(a, dim=None, keepdim=False):
    """sum_i a_i over ``dim`` (None: every dim; an int or a tuple of ints)."""
    return Sum.apply(a, axis=normalize_dims(dim, a.shape, "sum"), keepdims=keepdim)


@dim_spellings
def mean(a, dim=None, keepdim=False):
    """sum / n, with n the number of elements reduced into each output (a composite: its
    gradient, 1/n for every element, comes from Sum and Mul). The mean of nothing is NaN, as
    in PyTorch."""
    dims = normalize_dims(dim, a.shape, "mean")
    count = int(np.prod([a.shape[i] for i in dims]))
    scale = 1.0 / count if count else float("nan")  # the mean of nothing is NaN, as in PyTorch
    return Sum.apply(a, axis=dims, keepdims=keepdim) * scale


@dim_spellings
def var(a, dim=None, correction=1, keepdim=False):
    """Variance over ``dim`` with ``correction`` subtracted from the count (1 = unbiased)."""
    return Var.apply(a, axis=normalize_dims(dim, a.shape, "var"), correction=correction,
                     keepdims=keepdim)


@dim_spellings
def max(a, dim=None, keepdim=False):
    """Largest value over ``dim`` (values only, like ``numpy.max`` and ``torch.amax``)."""
    return Extremum.apply(a, axis=normalize_dims(dim, a.shape, "max"), keepdims=keepdim,
                          largest=True)


@dim_spellings
def min(a, dim=None, keepdim=False):
    """Smallest value over ``dim`` (values only, like ``numpy.min`` and ``torch.amin``)."""
    return Extremum.apply(a, axis=normalize_dims(dim, a.shape, "min"), keepdims=keepdim,
                          largest=False)


@dim_spellings
def logsumexp(a, dim=None, keepdim=False):
    return LogSumExp.apply(a, axis=normalize_dims(dim, a.shape, "logsumexp"), keepdims=keepdim)


class ArgExtremum(Function):
    """The index of the largest (smallest) value, int64: a constant, so no node is recorded."""

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        xp = array_module(a)
        index = xp.argmax if largest else xp.argmin
        return index(a, axis=axis, keepdims=keepdims).astype(np.int64)


def _arg_extremum(name, a, dim, keepdim, largest):
    if dim is not None:  # one dim (a 0-d tensor has none to name: its index is 0)
        dim = normalize_dims(dim, a.shape, name)
        dim = dim[0] if dim else None
    return ArgExtremum.apply(a, axis=dim, keepdims=keepdim, largest=largest)


@dim_spellings
def argmax(a, dim=None, keepdim=False):
    """Index of the largest value (int64, no gradient); over the flattened tensor if dim=None."""
    return _arg_extremum("argmax", a, dim, keepdim, largest=True)


@dim_spellings
def argmin(a, dim=None, keepdim=False):
    """Index of the smallest value (int64, no gradient); over the flattened tensor if dim=None."""
    return _arg_extremum("argmin", a, dim, keepdim, largest=False)
