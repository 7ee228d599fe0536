"""Reductions and scans, with PyTorch's semantics: sum, prod, mean, var, std, amax/amin, max/min
and median/mode (values, or values and indices with a dim), logsumexp, norm, nansum/nanmean,
cumsum/cumprod/cummax/cummin, and the ones without a gradient: argmax/argmin, any/all,
count_nonzero.

``dim`` is None (all dims), an int or a tuple of ints, negative counting from the end;
``keepdim`` keeps reduced dims with size 1. NumPy's spellings ``axis``/``keepdims`` work too
(``ops.dims``). The Function classes take the normalized ``axis``.

Backward of a reduction: every input element that fed an output element receives that output's
gradient (times the local derivative), so the gradient is reshaped to keep the reduced axes and
broadcast back over them. An op that *selects* an element (max with a dim, median, mode,
cummax) passes the gradient to the element whose index it returns; amax/amin and the median
without a dim share it between the elements that tie.

dtypes as PyTorch: sum, prod, nansum, cumsum and cumprod of bool or integer tensors give
int64; mean, var, std, norm and nanmean refuse them (the float math of an integer tensor is
ambiguous there: cast it first); max, min and the selections keep the input dtype; indices are int64.
"""

import math
from typing import Any, NamedTuple

import numpy as np

from minigrad.autograd import Function, TensorBase
from minigrad.backend import array_module
from minigrad.ops.binary import maximum, minimum
from minigrad.ops.dims import dim_spellings, normalize_dim, normalize_dims
from minigrad.ops.shape import positions_along, read_positions, reshape, squeeze
from minigrad.ops.unary import as_floating, cast


__all__ = [
    "all", "amax", "amin", "aminmax", "any", "argmax", "argmin", "count_nonzero", "cummax",
    "cummin", "cumprod", "cumsum", "logsumexp", "max", "mean", "median", "min", "mode",
    "nanmean", "nansum", "norm", "prod", "std", "std_mean", "sum", "var", "var_mean",
]


class ValuesIndices(NamedTuple):
    """What PyTorch's max/min/sort/topk/median/mode with a dim return: ``(values, indices)``,
    so ``_, predicted = scores.max(1)`` works, and so does ``scores.max(1).indices``."""

    values: Any
    indices: Any


class MinMax(NamedTuple):
    """What ``aminmax`` returns: ``(min, max)``, also by name."""

    min: Any
    max: Any


def reduced_dims(dim, shape, op):
    """The dims a reduction reduces (``normalize_dims``), with PyTorch's rule that ``dim=()``,
    like None, means every dim."""
    return normalize_dims(None if dim == () else dim, shape, op)


def keep_reduced_axes(grad, axes, keepdims):
    """Give ``grad`` back the reduced axes (size 1) so it broadcasts against the input."""
    if keepdims:
        return grad
    return array_module(grad).expand_dims(grad, axes) if axes else grad


def accumulator_dtype(a):
    """The dtype a sum or product of array ``a`` is computed in: int64 for bool and integer
    arrays (as PyTorch: a sum of bools counts, and small integers cannot overflow), else a's."""
    return np.int64 if a.dtype.kind in "biu" else a.dtype


def half_in_float32(a, compute):
    """``compute(a)``, except that for a float16 tensor it runs in float32 and the result is
    cast back, as PyTorch accumulates float16 statistics in float32 (the mean of 10,000 tens is
    10, not the inf that a float16 running sum reaches)."""
    if a.dtype != np.float16:
        return compute(a)
    return cast(compute(cast(a, np.float32)), np.float16)


def reduced_count(shape, axes):
    """How many elements of a tensor of ``shape`` fold into each output of a reduction over
    ``axes``."""
    return math.prod(shape[i] for i in axes)


def require_floating(op, a):
    """mean, var, std, norm and nanmean refuse bool and integer tensors, as PyTorch does."""
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {a.dtype}; "
                        f"convert it first, e.g. x.float()")


def require_nonempty(op, shape, axes, error=IndexError):
    """An op without an identity (max, min, median, mode, the inf-norm) has no value over
    nothing: refuse a reduction over a dim of size 0, naming it. ``error``: IndexError when the
    dim was named, RuntimeError when every dim is reduced (PyTorch's choices)."""
    for d in axes:
        if shape[d] == 0:
            raise error(f"{op}: cannot reduce over dim {d} of size 0 of a tensor of shape "
                        f"{tuple(shape)}: the {op} of nothing has no value")


def products_of_others(a, axis):
    """For each element of ``a``, the product of the other elements along ``axis``: the product
    of those before it times the product of those after it (two exclusive cumulative
    products), so no division, and exact when some elements are 0."""
    xp = array_module(a)
    moved = xp.moveaxis(a, axis, -1)
    ones = xp.ones(moved.shape[:-1] + (1,), dtype=a.dtype)
    before = xp.cumprod(xp.concatenate([ones, moved], axis=-1), axis=-1)[..., :-1]
    reversed_ = xp.flip(moved, axis=-1)
    after = xp.cumprod(xp.concatenate([ones, reversed_], axis=-1), axis=-1)[..., :-1]
    return xp.moveaxis(before * xp.flip(after, axis=-1), -1, axis)


# --------------------------------------------------------------------------- sums and products
class Sum(Function):
    """z = sum_i a_i over ``axis``;  dz/da_i = 1. Bool and integer inputs sum to int64."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_dims(axis, a.shape), keepdims, a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims, dtype=accumulator_dtype(a))

    @staticmethod
    def backward(ctx, grad):
        grad = keep_reduced_axes(grad, ctx.axes, ctx.keepdims)
        return (array_module(grad).broadcast_to(grad, ctx.shape),)


class NanSum(Function):
    """z = sum of the a_i that are not NaN over ``axis`` (``average``: divided by how many there
    are, nanmean);  dz/da_i = 1 (1/count) where a_i is not NaN, 0 at a NaN."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, average=False):
        xp = array_module(a)
        present = a == a  # False exactly at the NaNs
        total = xp.where(present, a, 0).sum(axis=axis, keepdims=True, dtype=accumulator_dtype(a))
        weight = present.astype(total.dtype)
        if average:
            with np.errstate(invalid="ignore"):  # nothing but NaN: 0/0 is NaN, as in PyTorch
                count = weight.sum(axis=axis, keepdims=True)
                total, weight = total / count, weight / count
        ctx.axes, ctx.keepdims = axis, keepdims
        ctx.save_for_backward(weight)
        return total if keepdims else xp.squeeze(total, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        return (keep_reduced_axes(grad, ctx.axes, ctx.keepdims) * weight,)


class Prod(Function):
    """z = prod_i a_i over ``axis`` (one dim, or None: every element);  dz/da_i = prod_{k != i}
    a_k, the product of the others (``products_of_others``, never z / a_i, which divides by
    zero: an element that is 0 gets the product of the rest, and with two zeros every
    derivative is 0). Bool and integer inputs multiply to int64."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.save_for_backward(a)
        return a.prod(axis=axis, keepdims=keepdims, dtype=accumulator_dtype(a))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        if ctx.axis is None:
            axes, others = tuple(range(a.ndim)), products_of_others(a.reshape(-1), 0)
        else:
            axes, others = (ctx.axis,), products_of_others(a, ctx.axis)
        return (keep_reduced_axes(grad, axes, ctx.keepdims) * others.reshape(a.shape),)


class CumSum(Function):
    """z_j = sum_{i<=j} a_i along ``axis``;  dz_j/da_i = 1 for i <= j, so dL/da_i =
    sum_{j>=i} g_j: a cumulative sum of the gradient from the end. Bool and integer inputs
    give int64."""

    @staticmethod
    def forward(ctx, a, axis=0):
        ctx.axis = axis
        return array_module(a).cumsum(a, axis=axis, dtype=accumulator_dtype(a))

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=ctx.axis), axis=ctx.axis), axis=ctx.axis),)


class CumProd(Function):
    """z_j = prod_{i<=j} a_i along ``axis``;  dz_j/da_i = prod_{k<=j, k!=i} a_k for i <= j.

    The derivative is computed as it reads, for every pair (i, j) of a slice (O(n^2) work and
    memory): the shortcut z_j / a_i divides by zero wherever an a_i is 0. Bool and integer
    inputs give int64."""

    @staticmethod
    def forward(ctx, a, axis=0):
        ctx.axis = axis
        ctx.save_for_backward(a)
        return array_module(a).cumprod(a, axis=axis, dtype=accumulator_dtype(a))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        xp = array_module(a)
        moved = xp.moveaxis(a, ctx.axis, -1)
        n = moved.shape[-1]
        # without_i[..., i, k] = a_k with a_i replaced by 1; its cumprod over k at [..., i, j]
        # is prod_{k<=j, k!=i} a_k, which counts where j >= i.
        without_i = xp.where(xp.eye(n, dtype=bool), 1, moved[..., None, :])
        partial = xp.where(xp.tri(n, dtype=bool).T, xp.cumprod(without_i, axis=-1), 0)
        upstream = xp.moveaxis(grad, ctx.axis, -1)[..., None, :]
        return (xp.moveaxis((partial * upstream).sum(axis=-1), -1, ctx.axis),)


# --------------------------------------------------------------------------- spread
class Var(Function):
    """Variance  v = sum_i (a_i - mean)^2 / (n - c);  dv/da_i = 2 (a_i - mean) / (n - c).

    ``correction`` c = 1 (Bessel's, unbiased) is PyTorch's default; c = 0 is NumPy's default
    and the biased estimate batch norm uses. The terms from d mean / d a_i cancel because the
    deviations sum to zero. With c >= n the divisor is 0, as in PyTorch (never negative): v is
    inf, or NaN where every deviation is 0 (one element, unbiased; or none).
    """

    @staticmethod
    def forward(ctx, a, axis=None, correction=1, keepdims=False):
        axes = normalize_dims(axis, a.shape)
        count = reduced_count(a.shape, axes)
        with np.errstate(invalid="ignore", divide="ignore"):  # the divisor-0 cases above
            centered = a - a.sum(axis=axes, keepdims=True) / count
            ctx.axes, ctx.keepdims = axes, keepdims
            ctx.divisor = count - correction if count > correction else 0
            ctx.save_for_backward(centered)
            return (centered**2).sum(axis=axes, keepdims=keepdims) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        centered = ctx.saved_tensors[0]
        grad = keep_reduced_axes(grad, ctx.axes, ctx.keepdims)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (grad * 2 * centered / ctx.divisor,)


class Std(Var):
    """Standard deviation  s = sqrt(v), v the variance (``Var``);  ds/da_i = (dv/da_i) / (2 s),
    taken as 0 where s = 0 (all the elements equal), as in PyTorch."""

    @staticmethod
    def forward(ctx, a, axis=None, correction=1, keepdims=False):
        out = array_module(a).sqrt(Var.forward(ctx, a, axis, correction, keepdims))
        ctx.save_for_backward(*ctx.saved_tensors, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved_tensors[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            grad_var = array_module(out).where(out == 0, 0, grad / (2 * out))
        return Var.backward(ctx, grad_var)


# --------------------------------------------------------------------------- extremes
class SharedAmongTies(Function):
    """The backward of a reduction whose value is one of its inputs (amax, amin, the median
    without a dim): dz/da_i = 1/m at each of the m elements equal to z, else 0, so the gradient
    still sums to the incoming one (PyTorch's rule for these)."""

    @staticmethod
    def save_shares(ctx, a, out, axes, keepdims, nan_ties=False):
        """``out`` has the reduced ``axes`` kept with size 1. Only float results get a
        gradient, so only they need the shares; with ``nan_ties`` a NaN result is shared
        between the NaN elements (the median's rule in PyTorch)."""
        ctx.axes, ctx.keepdims = axes, keepdims
        if a.dtype.kind == "f":
            xp = array_module(a)
            tied = (a == out) | (xp.isnan(a) & xp.isnan(out)) if nan_ties else (a == out)
            tied = tied.astype(a.dtype)
            ctx.save_for_backward(tied / tied.sum(axis=axes, keepdims=True))

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return (keep_reduced_axes(grad, ctx.axes, ctx.keepdims) * share,)


class Extremum(SharedAmongTies):
    """z = max_i a_i (or min) over ``axis``, as amax/amin;  dz/da_i = 1 at the extreme element,
    else 0, shared equally between elements that tie."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, largest=True):
        xp = array_module(a)
        axes = normalize_dims(axis, a.shape)
        out = (xp.max if largest else xp.min)(a, axis=axes, keepdims=True)
        SharedAmongTies.save_shares(ctx, a, out, axes, keepdims)
        return out if keepdims else xp.squeeze(out, axis=axes)


class Median(SharedAmongTies):
    """z = the lower median of all the elements: the ((n - 1) // 2)-th smallest (as PyTorch, no
    average of the two middle ones);  dz/da_i = 1 at the element equal to z, shared equally
    between ties. The median of nothing is NaN, and so is the median of elements holding a
    NaN (its gradient shared between the NaNs), as in PyTorch."""

    @staticmethod
    def forward(ctx, a):
        xp = array_module(a)
        if not a.size:
            return xp.full((), xp.nan, dtype=a.dtype)
        k = (a.size - 1) // 2
        out = xp.sort(a.reshape(-1))[k:k + 1].reshape(())  # NaNs sort last: check them apart
        if a.dtype.kind == "f" and xp.isnan(a).any():
            out = xp.full((), xp.nan, dtype=a.dtype)
        SharedAmongTies.save_shares(ctx, a, out.reshape((1,) * a.ndim), tuple(range(a.ndim)),
                                    keepdims=False, nan_ties=True)
        return out


class LogSumExp(Function):
    """z = log sum_i exp(a_i), computed as m + log sum_i exp(a_i - m) with m = max a so that
    exp never overflows;  dz/da_i = exp(a_i - z) = softmax(a)_i. As in PyTorch, m is 0 where
    the max is infinite (so a slice of -inf gives -inf, not NaN), and the logsumexp of nothing
    is -inf.

    The softmax is kept from the forward pass, as e_i / sum_j e_j with e_i = exp(a_i - m):
    recomputing exp(a_i - z) from the rounded z would lose digits when |z| is large."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = array_module(a)
        axes = normalize_dims(axis, a.shape)
        if reduced_count(a.shape, axes):
            m = a.max(axis=axes, keepdims=True)
            m = xp.where(xp.isinf(m), 0, m)
        else:
            m = xp.zeros([1 if i in axes else n for i, n in enumerate(a.shape)], dtype=a.dtype)
        e = xp.exp(a - m)
        total = e.sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):  # log 0 = -inf: a sum of nothing
            out = m + xp.log(total)
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_for_backward(e / total)
        return out if keepdims else xp.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved_tensors
        return (keep_reduced_axes(grad, ctx.axes, ctx.keepdims) * softmax,)


class Norm(Function):
    """The vector p-norm over ``axis``:  z = (sum_i |a_i|^p)^(1/p);
    dz/da_i = sign(a_i) |a_i|^(p-1) / z^(p-1)  (a_i / z for p = 2, sign(a_i) for p = 1), taken
    as 0 where a_i = 0 (so the 2-norm of zeros has gradient 0, as in PyTorch).
    p = inf: z = max |a_i|, and p = -inf: min |a_i|, the gradient sign(a_i) shared between the
    elements whose magnitude ties with z (as amax); p = 0: z = the number of nonzero a_i, with
    gradient 0."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, p=2.0):
        xp = array_module(a)
        magnitude = xp.abs(a)
        if p == 0:
            out = (a != 0).sum(axis=axis, keepdims=True).astype(a.dtype)
        elif math.isinf(p):
            out = (xp.max if p > 0 else xp.min)(magnitude, axis=axis, keepdims=True)
        else:
            out = (magnitude**p).sum(axis=axis, keepdims=True) ** (1 / p)
        ctx.axes, ctx.keepdims, ctx.p = axis, keepdims, p
        ctx.save_for_backward(a, out)
        return out if keepdims else xp.squeeze(out, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        xp = array_module(a)
        grad, p, magnitude = keep_reduced_axes(grad, ctx.axes, ctx.keepdims), ctx.p, xp.abs(a)
        if p == 0:
            return (xp.zeros_like(a),)
        if math.isinf(p):
            tied = (magnitude == out).astype(a.dtype)
            return (grad * xp.sign(a) * tied / tied.sum(axis=ctx.axes, keepdims=True),)
        with np.errstate(divide="ignore", invalid="ignore"):  # a_i = 0 is masked
            scale = xp.sign(a) * magnitude ** (p - 1) / out ** (p - 1)
        return (grad * xp.where(a == 0, 0, scale),)


# --------------------------------------------------------------------------- no gradient
class ArgExtremum(Function):
    """The index of the largest (smallest) value, int64 (the first of ties): a constant, so no
    node is recorded."""

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        xp = array_module(a)
        index = xp.argmax if largest else xp.argmin
        return index(a, axis=axis, keepdims=keepdims).astype(np.int64)


class MedianIndex(Function):
    """The index along ``axis`` of the lower median of each slice, with ``axis`` kept (size 1):
    the position (n - 1) // 2 of a stable argsort (int64); in a slice holding a NaN, its first
    NaN, as in PyTorch (the median is NaN)."""

    @staticmethod
    def forward(ctx, a, axis):
        xp = array_module(a)
        order = xp.argsort(a, axis=axis, kind="stable")
        middle = xp.asarray([(a.shape[axis] - 1) // 2])
        index = xp.take(order, middle, axis=axis)
        if a.dtype.kind == "f":
            nan = xp.isnan(a)
            index = xp.where(nan.any(axis=axis, keepdims=True),
                             xp.argmax(nan, axis=axis, keepdims=True), index)
        return index.astype(np.int64)


class ModeIndex(Function):
    """The index along ``axis`` of the mode of each slice, with ``axis`` kept (size 1): the most
    frequent value, the smallest of those when counts tie, at its last occurrence (PyTorch's
    choices). The counts compare every pair of a slice: O(n^2), and simple."""

    @staticmethod
    def forward(ctx, a, axis):
        xp = array_module(a)
        moved = xp.moveaxis(a, axis, -1)
        counts = (moved[..., :, None] == moved[..., None, :]).sum(axis=-1)
        most_frequent = counts == counts.max(axis=-1, keepdims=True)
        mode_value = xp.where(most_frequent, moved, moved.max(axis=-1, keepdims=True)).min(
            axis=-1, keepdims=True)
        from_end = xp.argmax(xp.flip(moved == mode_value, axis=-1), axis=-1, keepdims=True)
        return xp.moveaxis(moved.shape[-1] - 1 - from_end, -1, axis).astype(np.int64)


class CumulativeExtremumIndex(Function):
    """For each position j along ``axis``, the index of the running max (min) of a_0 .. a_j:
    the last position where that value was reached, as PyTorch's cummax/cummin (int64). A NaN
    counts as a new extreme, as there."""

    @staticmethod
    def forward(ctx, a, axis, largest):
        xp = array_module(a)
        running = (xp.maximum if largest else xp.minimum).accumulate(a, axis=axis)
        positions = xp.arange(a.shape[axis]).reshape((-1,) + (1,) * (a.ndim - 1 - axis))
        reached = (a == running) | (a != a)
        return xp.maximum.accumulate(xp.where(reached, positions, 0), axis=axis).astype(np.int64)


class LogicalReduction(Function):
    """Whether any (``every``: all) element over ``axis`` is nonzero: bool, no gradient. uint8
    inputs give uint8, as in PyTorch."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, every=False):
        xp = array_module(a)
        out = (xp.all if every else xp.any)(a, axis=axis, keepdims=keepdims)
        return out.astype(np.uint8) if a.dtype == np.uint8 else out


class CountNonzero(Function):
    """The number of nonzero elements over ``axis`` (int64, no gradient)."""

    @staticmethod
    def forward(ctx, a, axis=None):
        return (a != 0).sum(axis=axis, dtype=np.int64)


# --------------------------------------------------------------------------- public functions
@dim_spellings
def sum(a, dim=None, keepdim=False):
    """sum_i a_i over ``dim`` (None: every dim; an int or a tuple of ints). Bool and integer
    tensors sum to int64; the sum of nothing is 0."""
    return Sum.apply(a, axis=reduced_dims(dim, a.shape, "sum"), keepdims=keepdim)


@dim_spellings
def nansum(a, dim=None, keepdim=False):
    """sum over ``dim`` treating NaN as 0 (whose gradient is 0)."""
    return NanSum.apply(a, axis=reduced_dims(dim, a.shape, "nansum"), keepdims=keepdim)


@dim_spellings
def mean(a, dim=None, keepdim=False):
    """sum / n, with n the number of elements reduced into each output (a composite: its
    gradient, 1/n for every element, comes from Sum and Mul). The mean of nothing is NaN, as
    in PyTorch; bool and integer tensors are refused (cast first, e.g. x.float())."""
    require_floating("mean", a)
    dims = reduced_dims(dim, a.shape, "mean")
    count = reduced_count(a.shape, dims)
    scale = 1.0 / count if count else float("nan")  # the mean of nothing is NaN, as in PyTorch
    return half_in_float32(a, lambda a: Sum.apply(a, axis=dims, keepdims=keepdim) * scale)


@dim_spellings
def nanmean(a, dim=None, keepdim=False):
    """mean over ``dim`` of the elements that are not NaN (NaN where there are none)."""
    require_floating("nanmean", a)
    return NanSum.apply(a, axis=reduced_dims(dim, a.shape, "nanmean"), keepdims=keepdim,
                        average=True)


@dim_spellings
def prod(a, dim=None, keepdim=False):
    """Product over one ``dim`` (an int, as in PyTorch; None: every element). Bool and integer
    tensors multiply to int64; the product of nothing is 1."""
    axis = None if dim is None else normalize_dim(dim, a.shape, "prod")
    return Prod.apply(a, axis=axis if a.ndim else None, keepdims=keepdim)


def split_unbiased(dim, unbiased):
    """PyTorch's overload ``var(a, unbiased)``: a bool where the dim goes is ``unbiased``."""
    if isinstance(dim, bool) and unbiased is None:
        return None, dim
    return dim, unbiased


def resolve_correction(op, unbiased, correction):
    """The correction of var/std from PyTorch's two spellings: ``correction=`` (PyTorch 2; 1 by
    default), or ``unbiased``, the older one (True: 1, False: 0). ``unbiased`` is the third
    positional argument; 0 and 1 there mean correction 0 and 1 as well."""
    if unbiased is None:
        return 1 if correction is None else correction
    if correction is not None:
        raise TypeError(f"{op}: got both unbiased and correction; give one "
                        f"(unbiased=False is correction=0)")
    if unbiased not in (0, 1):  # True/False, or the 0/1 of an older positional correction
        raise TypeError(f"{op}: unbiased must be a bool, got {unbiased!r}; for another "
                        f"correction pass correction={unbiased!r}")
    return int(unbiased)


def _spread(op, name, a, dim, unbiased, keepdim, correction):
    """var or std over ``dim``, with PyTorch's argument forms resolved."""
    dim, unbiased = split_unbiased(dim, unbiased)
    require_floating(name, a)
    axes, correction = reduced_dims(dim, a.shape, name), resolve_correction(name, unbiased,
                                                                             correction)
    return half_in_float32(a, lambda a: op.apply(a, axis=axes, correction=correction,
                                                 keepdims=keepdim))


@dim_spellings
def var(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim``, dividing by n - ``correction`` (default 1: unbiased; 0: biased).
    As in PyTorch, ``unbiased=`` (a bool) is the older spelling, ``var(a, False)`` means
    unbiased=False, and a correction >= n gives inf (NaN when the deviations are all 0)."""
    return _spread(Var, "var", a, dim, unbiased, keepdim, correction)


@dim_spellings
def std(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation over ``dim``: the square root of ``var`` with the same arguments."""
    return _spread(Std, "std", a, dim, unbiased, keepdim, correction)


@dim_spellings
def var_mean(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` over the same dims, as ``torch.var_mean`` (a composite of the two)."""
    spread = _spread(Var, "var_mean", a, dim, unbiased, keepdim, correction)
    return spread, mean(a, split_unbiased(dim, unbiased)[0], keepdim)


@dim_spellings
def std_mean(a, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` over the same dims, as ``torch.std_mean`` (a composite of the two)."""
    spread = _spread(Std, "std_mean", a, dim, unbiased, keepdim, correction)
    return spread, mean(a, split_unbiased(dim, unbiased)[0], keepdim)


def _amax_or_amin(name, a, dim, keepdim, largest):
    every_dim = dim is None or dim == ()
    axes = reduced_dims(dim, a.shape, name)
    require_nonempty(name, a.shape, axes, RuntimeError if every_dim else IndexError)
    return Extremum.apply(a, axis=axes, keepdims=keepdim, largest=largest)


@dim_spellings
def amax(a, dim=(), keepdim=False):
    """Largest value over ``dim`` (an int or a tuple; () or None: every dim); elements that tie
    share the gradient."""
    return _amax_or_amin("amax", a, dim, keepdim, largest=True)


@dim_spellings
def amin(a, dim=(), keepdim=False):
    """Smallest value over ``dim`` (an int or a tuple; () or None: every dim); elements that
    tie share the gradient."""
    return _amax_or_amin("amin", a, dim, keepdim, largest=False)


@dim_spellings
def aminmax(a, *, dim=None, keepdim=False):
    """``MinMax(min, max)``: ``amin`` and ``amax`` over one ``dim`` (None: every dim)."""
    if dim is not None:
        normalize_dim(dim, a.shape, "aminmax")
    return MinMax(_amax_or_amin("aminmax", a, dim, keepdim, largest=False),
                  _amax_or_amin("aminmax", a, dim, keepdim, largest=True))


def _select_along_dim(name, a, dim, keepdim, index_op, **attrs):
    """``ValuesIndices`` of an op that picks one element of each slice along ``dim``:
    ``index_op`` finds its index (int64, ``dim`` kept with size 1) and ``read_positions`` takes
    the values there, with their gradient (to the element at each index). A 0-d tensor is one slice of one element."""
    axis = normalize_dim(dim, a.shape, name)
    if a.ndim == 0:
        return _select_along_dim(name, reshape(a, 1), 0, False, index_op, **attrs)
    require_nonempty(name, a.shape, (axis,))
    indices = index_op.apply(a, axis=axis, **attrs)
    values = read_positions(a, positions_along(indices.data, axis))
    if not keepdim:
        values, indices = squeeze(values, axis), squeeze(indices, axis)
    return ValuesIndices(values, indices)


def _max_or_min(name, a, dim, keepdim, largest):
    if isinstance(dim, TensorBase):  # max(a, other): PyTorch's overload for maximum
        return (maximum if largest else minimum)(a, dim)
    if dim is None:
        return _amax_or_amin(name, a, None, keepdim, largest)
    if not isinstance(dim, int):
        raise TypeError(f"{name}: dim must be one int (with a dim, {name} returns values and "
                        f"indices), got {dim!r}; for the {name} over several dims use "
                        f"a{name}(x, dim={dim!r})")
    return _select_along_dim(name, a, dim, keepdim, ArgExtremum, keepdims=True, largest=largest)


@dim_spellings
def max(a, dim=None, keepdim=False):
    """As PyTorch's three calls: ``max(a)``, the largest value (as amax: ties share the
    gradient); ``max(a, dim)``, ``ValuesIndices`` of the largest values along one dim, the
    gradient going to the element at the returned index (the first of ties); ``max(a, other)``
    with a tensor ``other``: ``maximum(a, other)``."""
    return _max_or_min("max", a, dim, keepdim, largest=True)


@dim_spellings
def min(a, dim=None, keepdim=False):
    """As PyTorch's three calls: ``min(a)``, the smallest value (as amin: ties share the
    gradient); ``min(a, dim)``, ``ValuesIndices`` of the smallest values along one dim, the
    gradient going to the element at the returned index (the first of ties); ``min(a, other)``
    with a tensor ``other``: ``minimum(a, other)``."""
    return _max_or_min("min", a, dim, keepdim, largest=False)


@dim_spellings
def median(a, dim=None, keepdim=False):
    """``median(a)``: the lower median of all the elements, values only (ties share the
    gradient; NaN for an empty tensor). ``median(a, dim)``: ``ValuesIndices`` of the lower
    medians along one dim, the gradient going to the element at the returned index."""
    if dim is not None:
        return _select_along_dim("median", a, dim, keepdim, MedianIndex)
    if a.dtype.kind != "f":  # an integer median of nothing has no NaN to be
        require_nonempty("median", a.shape, range(a.ndim), RuntimeError)
    return Median.apply(a)


@dim_spellings
def mode(a, dim=-1, keepdim=False):
    """``ValuesIndices`` of the most frequent value along ``dim`` (the smallest of those when
    counts tie) and the index of its last occurrence, as PyTorch."""
    return _select_along_dim("mode", a, dim, keepdim, ModeIndex)


@dim_spellings
def logsumexp(a, dim=None, keepdim=False):
    """log sum_i exp(a_i) over ``dim``, without overflow (bool and integer tensors give
    float32, as in PyTorch)."""
    return LogSumExp.apply(as_floating(a), axis=reduced_dims(dim, a.shape, "logsumexp"),
                           keepdims=keepdim)


@dim_spellings
def norm(a, p="fro", dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (None: every element), as ``torch.norm``: "fro" (over at
    most two dims) and 2 the Euclidean norm, 1 the sum of magnitudes, inf and -inf the largest
    and smallest magnitude, 0 the number of nonzero elements, and any other positive p
    (sum |a_i|^p)^(1/p). The nuclear norm and negative p are not provided."""
    require_floating("norm", a)
    if p == "fro":
        if not (dim is None or isinstance(dim, int) or len(dim) <= 2):
            raise ValueError(f"norm: the Frobenius norm is over at most two dims, got "
                             f"dim={dim!r}; for the 2-norm over more, pass p=2")
        p = 2
    if isinstance(p, str) or math.isnan(p) or (p < 0 and p != -math.inf):
        raise ValueError(f"norm: p={p!r} is not supported; give 'fro', inf, -inf, 0 or a "
                         f"positive number")
    axes = reduced_dims(dim, a.shape, "norm")
    if math.isinf(p):
        require_nonempty(f"norm(p={p})", a.shape, axes, RuntimeError)
    return half_in_float32(a, lambda a: Norm.apply(a, axis=axes, keepdims=keepdim, p=float(p)))


def _scan(name, op, a, dim):
    """``op`` (CumSum, CumProd) along ``dim``; a 0-d tensor is scanned as one element."""
    axis = normalize_dim(dim, a.shape, name)
    if a.ndim == 0:
        return reshape(op.apply(reshape(a, 1), axis=0), ())
    return op.apply(a, axis=axis)


@dim_spellings
def cumsum(a, dim):
    """z_j = a_0 + ... + a_j along ``dim`` (bool and integer tensors give int64)."""
    return _scan("cumsum", CumSum, a, dim)


@dim_spellings
def cumprod(a, dim):
    """z_j = a_0 * ... * a_j along ``dim`` (bool and integer tensors give int64); the gradient
    is exact where elements are 0."""
    return _scan("cumprod", CumProd, a, dim)


def _cumulative_extremum(name, a, dim, largest):
    axis = normalize_dim(dim, a.shape, name)
    if a.ndim == 0:
        values, indices = _cumulative_extremum(name, reshape(a, 1), 0, largest)
        return ValuesIndices(reshape(values, ()), reshape(indices, ()))
    indices = CumulativeExtremumIndex.apply(a, axis=axis, largest=largest)
    return ValuesIndices(read_positions(a, positions_along(indices.data, axis)), indices)


@dim_spellings
def cummax(a, dim):
    """``ValuesIndices`` of the running maximum along ``dim`` and where it was reached (the last
    position of ties, as PyTorch); each value's gradient goes to the element at its index."""
    return _cumulative_extremum("cummax", a, dim, largest=True)


@dim_spellings
def cummin(a, dim):
    """``ValuesIndices`` of the running minimum along ``dim`` and where it was reached (the last
    position of ties, as PyTorch); each value's gradient goes to the element at its index."""
    return _cumulative_extremum("cummin", a, dim, largest=False)


def _logical(name, a, dim, keepdim, every):
    return LogicalReduction.apply(a, axis=normalize_dims(dim, a.shape, name), keepdims=keepdim,
                                  every=every)


@dim_spellings
def any(a, dim=None, keepdim=False):
    """Whether any element over ``dim`` is nonzero (bool; any of nothing is False)."""
    return _logical("any", a, dim, keepdim, every=False)


@dim_spellings
def all(a, dim=None, keepdim=False):
    """Whether every element over ``dim`` is nonzero (bool; all of nothing is True)."""
    return _logical("all", a, dim, keepdim, every=True)


@dim_spellings
def count_nonzero(a, dim=None):
    """How many elements over ``dim`` are nonzero (int64, no gradient)."""
    return CountNonzero.apply(a, axis=reduced_dims(dim, a.shape, "count_nonzero"))


def _arg_extremum(name, a, dim, keepdim, largest):
    if dim is not None:  # one dim (a 0-d tensor has none to name: its index is 0)
        dim = normalize_dim(dim, a.shape, name) if a.ndim else None
    require_nonempty(name, a.shape, range(a.ndim) if dim is None else (dim,),
                     RuntimeError if dim is None else IndexError)
    return ArgExtremum.apply(a, axis=dim, keepdims=keepdim, largest=largest)


@dim_spellings
def argmax(a, dim=None, keepdim=False):
    """Index of the largest value (int64, no gradient); over the flattened tensor if dim=None."""
    return _arg_extremum("argmax", a, dim, keepdim, largest=True)


@dim_spellings
def argmin(a, dim=None, keepdim=False):
    """Index of the smallest value (int64, no gradient); over the flattened tensor if dim=None."""
    return _arg_extremum("argmin", a, dim, keepdim, largest=False)
