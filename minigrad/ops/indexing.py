"""Indexing ops: gather and scatter along a dim, index_select, index_add, take, the masked
ops, nonzero, sorting (sort, argsort, msort, topk, kthvalue), one_hot, searchsorted.

Gather and scatter along ``dim`` read and write through one full NumPy index,
``shape.positions_along``:
``index`` at ``dim`` and, at every other dim d, the positions 0, 1, ... of d, shaped to
broadcast. With it, for dim = 1,

    gather:   z[i][j][k] = a[i][index[i][j][k]][k]  is  a[coords],
    scatter:  z = a, then z[i][index[i][j][k]][k] = src[i][j][k]  is  z[coords] = src.

``shape.read_positions`` reads ``a[positions]`` for such a NumPy index (the ``GetItem`` op), and
its gradient adds dL/dz back at the positions read (``add.at``, as a position may be read
twice); index_select, take and masked_select read through it too. Scatter's gradient reverses the write: dL/da is dL/dz
with the overwritten positions zeroed, dL/dsrc is dL/dz read at coords.

The sorting ops find their indices on arrays (constants, int64) and then ``gather`` the
values, so the values' gradient is gather's: each value's gradient goes back to the place it
was taken from. Index tensors are int64 (int32 too where PyTorch accepts it).
"""

import numpy as np

from minigrad.autograd import Function, TensorBase, tensor_inputs
from minigrad.backend import array_module
from minigrad.ops.binary import where
from minigrad.ops.dims import dim_spellings, normalize_dim
from minigrad.ops.reduce import ValuesIndices
from minigrad.ops.shape import (broadcast_to, check_in_range, positions_along, read_positions,
                                reshape, squeeze)
from minigrad.ops.unary import cast

__all__ = [
    "argsort", "argwhere", "bucketize", "gather", "index_add", "index_select", "kthvalue",
    "masked_fill", "masked_select", "msort", "nonzero", "one_hot", "scatter", "scatter_add",
    "searchsorted", "sort", "take", "take_along_dim", "topk",
]


# --------------------------------------------------------------------------- checks
def index_array(op, index, int32_ok=True):
    """The array of an index tensor; a TypeError naming its dtype unless it is int64 (or
    int32, where ``int32_ok``)."""
    array = index.data if isinstance(index, TensorBase) else index
    array = array if hasattr(array, "dtype") else np.asarray(array)  # a list of ints
    allowed = ("int64", "int32") if int32_ok else ("int64",)
    if array.dtype.name not in allowed:
        raise TypeError(f"{op}: index must be an {' or '.join(allowed)} tensor, got dtype "
                        f"{array.dtype}")
    return array


def _check_index_shape(op, shape, index, dim, src_shape=None):
    """The index has the input's number of dims and is no larger than it apart from ``dim``
    (nor larger than ``src`` at any dim), as PyTorch's gather and scatter require."""
    if index.ndim != len(shape):
        raise ValueError(f"{op}: index of shape {index.shape} must have as many dims as the "
                         f"input of shape {tuple(shape)}")
    if any(d != dim and n > m for d, (n, m) in enumerate(zip(index.shape, shape))):
        raise ValueError(f"{op}: index of shape {index.shape} must be no larger than the input "
                         f"of shape {tuple(shape)} apart from dim {dim}")
    if src_shape is not None and (len(src_shape) != index.ndim or any(
            n > m for n, m in zip(index.shape, src_shape))):
        raise ValueError(f"{op}: index of shape {index.shape} must be no larger than src of "
                         f"shape {tuple(src_shape)}")


def _check_bool_mask(op, mask):
    if mask.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be a bool tensor, got dtype {mask.dtype}")


def _along(dim, index):
    """An index that applies ``index`` at ``dim`` and takes everything at the dims before it."""
    return (slice(None),) * dim + (index,)


# --------------------------------------------------------------------------- gather, scatter
@dim_spellings
def gather(a, dim, index):
    """z[i][j][k] = a[i][index[i][j][k]][k] for dim = 1 (likewise for the other dims); the
    result has index's shape."""
    dim = normalize_dim(dim, a.shape, "gather")
    index = index_array("gather", index)
    _check_index_shape("gather", a.shape, index, dim)
    check_in_range("gather", index, a.shape[dim] if a.ndim else 1, dim)
    return read_positions(a, positions_along(index, dim))


class Scatter(Function):
    """z = a with src written (``add=False``) or added (``add=True``) at the positions ``coords``
    (index's shape; only that corner of src is used).

    dL/da = dL/dz, with 0 at the positions overwritten (all of dL/dz for add);
    dL/dsrc = dL/dz at the positions each src element went to (0 outside the used corner).
    """

    @staticmethod
    def forward(ctx, a, src, coords=(), add=False):
        xp = array_module(a)
        corner = tuple(slice(0, n) for n in np.broadcast_shapes(*(c.shape for c in coords)))
        out = a.copy()
        if add:
            xp.add.at(out, coords, src[corner])
        else:
            out[coords] = src[corner]
        ctx.coords, ctx.corner, ctx.add, ctx.src_shape = coords, corner, add, src.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        grad_a = grad_src = None
        if ctx.needs_input_grad[0]:
            grad_a = grad if ctx.add else grad.copy()
            if not ctx.add:
                grad_a[ctx.coords] = 0
        if ctx.needs_input_grad[1]:
            grad_src = xp.zeros(ctx.src_shape, dtype=grad.dtype)
            grad_src[ctx.corner] = grad[ctx.coords]
        return grad_a, grad_src


def _scatter(op, a, dim, index, src, add):
    dim = normalize_dim(dim, a.shape, op)
    index = index_array(op, index)
    if not isinstance(src, TensorBase):  # a number: written everywhere the index points
        src = a._wrap(array_module(a.data).full(index.shape, src, dtype=a.dtype))
    if src.dtype != a.dtype:
        raise TypeError(f"{op}: src has dtype {src.dtype} but the input has dtype {a.dtype} "
                        "(they must match)")
    _check_index_shape(op, a.shape, index, dim, src.shape)
    check_in_range(op, index, a.shape[dim] if a.ndim else 1, dim)
    return Scatter.apply(a, src, coords=positions_along(index, dim), add=add)


@dim_spellings
def scatter(a, dim, index, src):
    """A copy of ``a`` with ``src`` written where ``index`` points along ``dim``:
    z[i][index[i][j][k]][k] = src[i][j][k] for dim = 1. ``src`` is a tensor of a's dtype or a
    number. Where an index repeats, which write wins is unspecified (as in PyTorch)."""
    return _scatter("scatter", a, dim, index, src, add=False)


@dim_spellings
def scatter_add(a, dim, index, src):
    """A copy of ``a`` with ``src`` added where ``index`` points along ``dim``:
    z[i][index[i][j][k]][k] += src[i][j][k] for dim = 1; repeated indices add up."""
    return _scatter("scatter_add", a, dim, index, src, add=True)


@dim_spellings
def take_along_dim(a, indices, dim=None):
    """``gather`` with ``a`` and ``indices`` broadcast against each other at every dim but
    ``dim``, and negative indices counting from the end; ``dim=None`` reads the flattened
    ``a`` at the flattened ``indices`` (none negative there, as in PyTorch). A composite of
    broadcast_to and read_positions."""
    indices = index_array("take_along_dim", indices, int32_ok=False)
    if dim is None:
        return _take_flat("take_along_dim", a, indices.reshape(-1), wrap=False)
    dim = normalize_dim(dim, a.shape, "take_along_dim")
    if a.ndim == 0:
        return _take_flat("take_along_dim", a, indices, wrap=True)
    if indices.ndim != a.ndim:
        raise ValueError(f"take_along_dim: indices of shape {indices.shape} must have as many "
                         f"dims as the input of shape {a.shape}")
    check_in_range("take_along_dim", indices, a.shape[dim] if a.ndim else 1, dim, wrap=True)
    try:
        shape = np.broadcast_shapes(a.shape[:dim] + (1,) + a.shape[dim + 1:],
                                    indices.shape[:dim] + (1,) + indices.shape[dim + 1:])
    except ValueError:
        raise ValueError(f"take_along_dim: input of shape {a.shape} and indices of shape "
                         f"{indices.shape} do not broadcast apart from dim {dim}") from None
    xp = array_module(indices)
    a = broadcast_to(a, shape[:dim] + a.shape[dim:dim + 1] + shape[dim + 1:])
    indices = xp.broadcast_to(indices, shape[:dim] + indices.shape[dim:dim + 1] + shape[dim + 1:])
    return read_positions(a, positions_along(indices % max(a.shape[dim], 1), dim))


def take(a, index):
    """The flattened ``a`` read at ``index`` (negative indices count from the end); the result
    has index's shape. A composite of reshape and read_positions."""
    return _take_flat("take", a, index_array("take", index, int32_ok=False), wrap=True)


def _take_flat(op, a, index, wrap):
    check_in_range(op, index, a.numel(), 0, wrap=wrap)
    return read_positions(reshape(a, -1), (index,))


@dim_spellings
def index_select(a, dim, index):
    """The slices of ``a`` at positions ``index`` (1-D or 0-d) along ``dim``."""
    dim = normalize_dim(dim, a.shape, "index_select")
    index = index_array("index_select", index)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {index.shape}")
    if a.ndim == 0:
        check_in_range("index_select", index, 1, dim)
        return reshape(a, index.shape)
    check_in_range("index_select", index, a.shape[dim], dim)
    return read_positions(a, _along(dim, index.reshape(-1)))


class IndexAdd(Function):
    """z = a, then z[..., index[i], ...] += alpha * source[..., i, ...] along ``dim``;
    dL/da = dL/dz,  dL/dsource[..., i, ...] = alpha * dL/dz[..., index[i], ...]."""

    @staticmethod
    def forward(ctx, a, source, index=None, dim=0, alpha=1):
        out = a.copy()
        array_module(a).add.at(out, _along(dim, index), alpha * source)
        ctx.index, ctx.dim, ctx.alpha = index, dim, alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad, ctx.alpha * grad[_along(ctx.dim, ctx.index)]


@dim_spellings
def index_add(a, dim, index, source, alpha=1):
    """A copy of ``a`` with ``alpha * source`` added at the positions ``index`` (1-D) along
    ``dim``; repeated indices add up."""
    dim = normalize_dim(dim, a.shape, "index_add")
    index = index_array("index_add", index)
    if index.ndim != 1:
        raise ValueError(f"index_add: index must be 1-D, got shape {index.shape}")
    a, source = tensor_inputs("index_add", (a, source))
    expected = a.shape[:dim] + (len(index),) + a.shape[dim + 1:]
    if source.shape != expected:
        raise ValueError(f"index_add: source of shape {source.shape} does not fit input of shape "
                         f"{a.shape} with {len(index)} indices along dim {dim} (expected "
                         f"{expected})")
    if source.dtype != a.dtype:
        raise TypeError(f"index_add: source has dtype {source.dtype} but the input has dtype "
                        f"{a.dtype} (they must match)")
    check_in_range("index_add", index, a.shape[dim], dim)
    return IndexAdd.apply(a, source, index=index, dim=dim, alpha=alpha)


# --------------------------------------------------------------------------- masked ops
def masked_fill(a, mask, value):
    """``a`` with ``value`` (a number or a 0-d tensor) where the bool ``mask`` is true; mask
    and a broadcast together, the result keeps a's dtype. A composite of where (and cast):
    the gradient reaches a where the mask is false and a 0-d tensor value where it is true."""
    mask_array = mask.data if isinstance(mask, TensorBase) else np.asarray(mask)
    _check_bool_mask("masked_fill", mask_array)
    if isinstance(value, TensorBase) and value.ndim != 0:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a tensor "
                         f"of shape {value.shape}")
    out = where(mask, value, a)
    return out if out.dtype == a.dtype else cast(out, a.dtype)


def masked_select(a, mask):
    """The elements of ``a`` where the bool ``mask`` is true, as a 1-D tensor (a and mask
    broadcast together). A composite of broadcast_to and read_positions."""
    mask_array = mask.data if isinstance(mask, TensorBase) else np.asarray(mask)
    _check_bool_mask("masked_select", mask_array)
    try:
        shape = np.broadcast_shapes(a.shape, mask_array.shape)
    except ValueError:
        raise ValueError(f"masked_select: input of shape {a.shape} and mask of shape "
                         f"{mask_array.shape} cannot be broadcast together") from None
    xp = array_module(mask_array)
    positions = xp.nonzero(xp.broadcast_to(mask_array, shape))
    return read_positions(broadcast_to(a, shape) if a.shape != shape else a, positions)


class NonZero(Function):
    """The positions of the nonzero elements, one row (int64) of ndim coordinates each, in
    row-major order: a constant, no gradient."""

    @staticmethod
    def forward(ctx, a):
        return array_module(a).argwhere(a).astype(np.int64)


def nonzero(a, as_tuple=False):
    """The (n, ndim) int64 positions of the n nonzero elements; ``as_tuple=True``: a tuple of
    ndim 1-D tensors, one a dim (one for a 0-d tensor, as in PyTorch)."""
    if not as_tuple:
        return NonZero.apply(a)
    rows = NonZero.apply(reshape(a, (1,)) if a.ndim == 0 else a)
    return tuple(read_positions(rows, (slice(None), d)) for d in range(rows.shape[1]))


def argwhere(a):
    """``nonzero(a)``: the (n, ndim) int64 positions of the nonzero elements."""
    return nonzero(a)


# --------------------------------------------------------------------------- sorting
class ArgSort(Function):
    """The int64 indices that sort ``a`` along ``axis``, equal values in their original order
    (a stable sort, NaN counted as the largest value): a constant, no gradient."""

    @staticmethod
    def forward(ctx, a, axis=-1, descending=False):
        xp = array_module(a)
        if a.ndim == 0:
            return xp.zeros((), dtype=np.int64)
        if not descending:
            return xp.argsort(a, axis=axis, kind="stable").astype(np.int64)
        # Sort the reversed array ascending, map back and reverse: descending order with equal
        # values still in their original order (negating a would not do for bool or unsigned).
        last = a.shape[axis] - 1
        order = last - xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
        return xp.flip(order, axis).astype(np.int64)


@dim_spellings
def argsort(a, dim=-1, descending=False, stable=False):
    """The int64 indices that sort ``a`` along ``dim`` (ascending, or descending). The sort is
    always stable, so ``stable=True`` holds either way: ties keep their order, as in PyTorch."""
    dim = normalize_dim(dim, a.shape, "argsort")
    return ArgSort.apply(a, axis=dim, descending=descending)


@dim_spellings
def sort(a, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``a`` sorted along ``dim``; the values carry the gradient back
    to where each came from (the composite gather(a, dim, argsort(a)))."""
    dim = normalize_dim(dim, a.shape, "sort")
    indices = argsort(a, dim, descending)
    return ValuesIndices(gather(a, dim, indices), indices)


def msort(a):
    """``a`` sorted along dim 0 (values only)."""
    return sort(a, 0).values


def _check_k(op, k, a, dim, low):
    size = a.shape[dim] if a.ndim else 1
    if not low <= k <= size:
        raise ValueError(f"{op}: k={k} is out of range for dim {dim} of size {size} (a tensor "
                         f"of shape {a.shape}); expected {low} <= k <= {size}")


@dim_spellings
def topk(a, k, dim=-1, largest=True, sorted=True):
    """``(values, indices)`` of the ``k`` largest (or smallest) elements along ``dim``, in
    order (so ``sorted`` holds either way); the values' gradient is gather's."""
    dim = normalize_dim(dim, a.shape, "topk")
    _check_k("topk", k, a, dim, low=0)
    indices = argsort(a, dim, descending=largest)
    if a.ndim:
        indices = read_positions(indices, _along(dim, slice(0, k)))
    return ValuesIndices(gather(a, dim, indices), indices)


@dim_spellings
def kthvalue(a, k, dim=-1, keepdim=False):
    """``(values, indices)`` of the k-th smallest element along ``dim`` (k counts from 1)."""
    dim = normalize_dim(dim, a.shape, "kthvalue")
    _check_k("kthvalue", k, a, dim, low=1)
    indices = argsort(a, dim)
    if a.ndim:
        indices = read_positions(indices, _along(dim, slice(k - 1, k)))
    values = gather(a, dim, indices)
    if keepdim or a.ndim == 0:
        return ValuesIndices(values, indices)
    return ValuesIndices(squeeze(values, dim), squeeze(indices, dim))


# --------------------------------------------------------------------------- classes, buckets
class OneHot(Function):
    """z[..., c] = 1 where c is the class at that position, else 0 (int64): a constant."""

    @staticmethod
    def forward(ctx, classes, num_classes=0):
        xp = array_module(classes)
        return (classes[..., None] == xp.arange(num_classes)).astype(np.int64)


def one_hot(tensor, num_classes=-1):
    """The int64 one-hot encoding of an int64 tensor of classes: shape tensor.shape +
    (num_classes,). ``num_classes=-1`` takes the largest class + 1."""
    classes = index_array("one_hot", tensor, int32_ok=False)
    if num_classes == -1:
        if classes.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; give "
                             "num_classes")
        num_classes = int(classes.max()) + 1
    if classes.size and classes.min() < 0:
        raise ValueError(f"one_hot: class {int(classes.min())} is negative; classes must be "
                         "non-negative")
    if classes.size and classes.max() >= num_classes:
        raise ValueError(f"one_hot: class {int(classes.max())} is too large for "
                         f"num_classes={num_classes}")
    return OneHot.apply(tensor, num_classes=num_classes)


class SearchSorted(Function):
    """For each value, the position where it would be inserted into the sorted last dim of
    ``boundaries`` to keep it sorted: int64 (or int32), a constant."""

    @staticmethod
    def forward(ctx, boundaries, values, side="left", dtype=np.int64):
        xp = array_module(values)
        if boundaries.ndim == 1:
            return xp.searchsorted(boundaries, values, side=side).astype(dtype)
        rows = zip(boundaries.reshape(-1, boundaries.shape[-1]),
                   values.reshape(-1, values.shape[-1]))
        positions = [xp.searchsorted(row, row_values, side=side) for row, row_values in rows]
        return xp.stack(positions).reshape(values.shape).astype(dtype)


def searchsorted(sorted_sequence, input, out_int32=False, right=False, side=None):
    """Insertion positions of ``input`` into ``sorted_sequence`` (sorted along its last dim):
    with ``right=False`` (side="left") the first position p with input <= sequence[p], with
    ``right=True`` (side="right") the first with input < sequence[p]. A 1-D sequence serves
    every value; an N-D one must match input's leading dims, one row for each."""
    if side not in (None, "left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if side == "left" and right:
        raise ValueError("searchsorted: side='left' and right=True disagree; give one")
    side = side or ("right" if right else "left")
    sequence, values = tensor_inputs("searchsorted", (sorted_sequence, input))
    if sequence.ndim != 1 and (sequence.ndim != values.ndim
                               or sequence.shape[:-1] != values.shape[:-1]):
        raise ValueError(f"searchsorted: a sorted_sequence of shape {sequence.shape} must be "
                         f"1-D or match the leading dims of input of shape {values.shape}")
    return SearchSorted.apply(sequence, values, side=side,
                              dtype=np.int32 if out_int32 else np.int64)


def bucketize(input, boundaries, out_int32=False, right=False):
    """The bucket of each value among the 1-D sorted ``boundaries``: i with
    boundaries[i-1] < x <= boundaries[i] (``right=True``: boundaries[i-1] <= x < boundaries[i]),
    which is ``searchsorted(boundaries, input, right=right)``."""
    if getattr(boundaries, "ndim", 1) != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D, got shape {boundaries.shape}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)
