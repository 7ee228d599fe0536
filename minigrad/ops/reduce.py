"""Reductions: sum, var, max/min, logsumexp, the composite mean, and argmax/argmin (which
have no gradient).

``axis`` is None (all axes), an int or a tuple of ints, negative counting from the end;
``keepdims`` keeps reduced axes with size 1, as in NumPy (PyTorch's ``dim``/``keepdim``).

Backward of a reduction: every input element that fed an output element receives that output's
gradient (times the local derivative), so the gradient is reshaped to keep the reduced axes and
broadcast back over them.
"""

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module


def normalize_axes(axis, ndim, op="reduce"):
    """``axis`` as a sorted tuple of non-negative axes (all axes for None); ``op`` names the
    caller in the error for an axis outside [-ndim, ndim)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                             "dimensions")
    return tuple(sorted(a % ndim for a in axes))


def keep_reduced_axes(grad, axes, keepdims):
    """Give ``grad`` back the reduced axes (size 1) so it broadcasts against the input."""
    if keepdims:
        return grad
    return array_module(grad).expand_dims(grad, axes) if axes else grad


class Sum(Function):
    """z = sum_i a_i over ``axis``;  dz/da_i = 1."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, a.ndim), keepdims, a.shape
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
        axes = normalize_axes(axis, a.ndim)
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
        axes = normalize_axes(axis, a.ndim)
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
        axes = normalize_axes(axis, a.ndim)
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
def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    """sum / n, with n the number of elements reduced into each output (a composite: its
    gradient, 1/n for every element, comes from Sum and Mul)."""
    count = int(np.prod([a.shape[i] for i in normalize_axes(axis, a.ndim, "mean")]))
    return Sum.apply(a, axis=axis, keepdims=keepdims) * (1.0 / count)


def var(a, axis=None, correction=1, keepdims=False):
    """Variance over ``axis`` with ``correction`` subtracted from the count (1 = unbiased)."""
    return Var.apply(a, axis=axis, correction=correction, keepdims=keepdims)


def max(a, axis=None, keepdims=False):
    """Largest value over ``axis`` (values only, like ``numpy.max`` and ``torch.amax``)."""
    return Extremum.apply(a, axis=axis, keepdims=keepdims, largest=True)


def min(a, axis=None, keepdims=False):
    """Smallest value over ``axis`` (values only, like ``numpy.min`` and ``torch.amin``)."""
    return Extremum.apply(a, axis=axis, keepdims=keepdims, largest=False)


def logsumexp(a, axis=None, keepdims=False):
    return LogSumExp.apply(a, axis=axis, keepdims=keepdims)


class ArgExtremum(Function):
    """The index of the largest (smallest) value, int64: a constant, so no node is recorded."""

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        xp = array_module(a)
        index = xp.argmax if largest else xp.argmin
        return index(a, axis=axis, keepdims=keepdims).astype(np.int64)


def argmax(a, axis=None, keepdims=False):
    """Index of the largest value (int64, no gradient); over the flattened tensor if axis=None."""
    return ArgExtremum.apply(a, axis=axis, keepdims=keepdims, largest=True)


def argmin(a, axis=None, keepdims=False):
    """Index of the smallest value (int64, no gradient); over the flattened tensor if axis=None."""
    return ArgExtremum.apply(a, axis=axis, keepdims=keepdims, largest=False)
