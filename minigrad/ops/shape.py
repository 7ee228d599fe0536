"""Shape ops: reshape, permute/transpose, broadcast_to/expand, indexing, concatenate, pad.

None of these change values, they only move them, so every backward moves the gradient back
to where each value came from: reshape back, permute with the inverse permutation, sum over
broadcast copies, scatter-add into the indexed positions, slice the concatenated pieces apart.
Composites built on them: flatten, squeeze, unsqueeze, stack, split.
"""

import numpy as np

from minigrad.autograd import Function, TensorBase, tensor_inputs, unbroadcast
from minigrad.backend import array_module
from minigrad.ops.dims import dim_spellings, normalize_dim, normalize_dims


__all__ = [
    "broadcast_to", "cat", "concatenate", "expand", "flatten", "getitem", "pad", "permute",
    "reshape", "split", "squeeze", "stack", "transpose", "unsqueeze",
]


def shape_argument(shape):
    """Accept both ``f(2, 3)`` and ``f((2, 3))``, as PyTorch's constructors do."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


class Reshape(Function):
    """Same values, new shape (one entry may be -1 and is inferred)."""

    @staticmethod
    def forward(ctx, a, shape=()):
        ctx.input_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(ctx.input_shape),)


class Permute(Function):
    """z = a with its axes reordered: z.shape[i] = a.shape[axes[i]]; the backward applies the
    inverse permutation (``argsort(axes)``)."""

    @staticmethod
    def forward(ctx, a, axes=()):
        if len(axes) != a.ndim or any(not -a.ndim <= i < a.ndim for i in axes) or sorted(
                i % a.ndim for i in axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.axes = tuple(i % a.ndim for i in axes)  # non-negative, so argsort inverts them
        return array_module(a).transpose(a, ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        return (array_module(grad).transpose(grad, np.argsort(ctx.axes)),)


class BroadcastTo(Function):
    """z = a repeated along new leading axes and along its size-1 axes; the backward sums the
    copies (``unbroadcast``)."""

    @staticmethod
    def forward(ctx, a, shape=()):
        ctx.input_shape = a.shape
        try:
            return array_module(a).broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to "
                             f"{tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return (unbroadcast(grad, ctx.input_shape),)


class GetItem(Function):
    """z = a[index] for any NumPy index: ints, slices, None, Ellipsis, integer or bool arrays.

    Backward: dL/da is zero except at the positions that were read, which receive the gradient
    of the element they became. An integer array may read one position several times, so the
    gradients are *added* there with ``add.at`` (a plain ``g[index] += grad`` would keep only
    one of them).
    """

    @staticmethod
    def forward(ctx, a, index=()):
        ctx.index, ctx.input_shape = index, a.shape
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        grad_a = xp.zeros(ctx.input_shape, dtype=grad.dtype)
        xp.add.at(grad_a, ctx.index, grad)
        return (grad_a,)


class Concatenate(Function):
    """z = [a_1, a_2, ...] joined along ``axis``; the backward cuts the gradient at the same
    offsets."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.offsets = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(array_module(grad).split(grad, ctx.offsets, axis=ctx.axis))


class Pad(Function):
    """Constant padding with PyTorch's ``F.pad`` convention: ``pad`` lists (before, after)
    pairs starting from the *last* axis: (left, right) pads the last axis, (left, right, top,
    bottom) the last two. The backward slices the padding off the gradient."""

    @staticmethod
    def forward(ctx, a, pad=(), value=0.0):
        if len(pad) % 2 or len(pad) // 2 > a.ndim or any(p < 0 for p in pad):
            raise ValueError(f"pad: {tuple(pad)} must be non-negative (before, after) pairs for "
                             f"at most {a.ndim} axes of a tensor of shape {a.shape}")
        pairs = [tuple(pad[i:i + 2]) for i in range(0, len(pad), 2)][::-1]
        widths = [(0, 0)] * (a.ndim - len(pairs)) + pairs
        ctx.inside = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        return array_module(a).pad(a, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return (grad[ctx.inside],)


# --------------------------------------------------------------------------- public functions
def reshape(a, *shape):
    return Reshape.apply(a, shape=shape_argument(shape))


def permute(a, *axes):
    return Permute.apply(a, axes=shape_argument(axes))


def transpose(a, dim0=-2, dim1=-1):
    """Swap two dims (PyTorch's ``transpose``); the default swaps the last two."""
    dim0, dim1 = (normalize_dim(d, a.shape, "transpose") for d in (dim0, dim1))
    axes = list(range(a.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return Permute.apply(a, axes=tuple(axes))


def broadcast_to(a, shape):
    return BroadcastTo.apply(a, shape=shape_argument((shape,)))


def expand(a, *shape):
    """``broadcast_to`` where -1 keeps that axis's size (PyTorch's ``expand``)."""
    shape = shape_argument(shape)
    offset = len(shape) - a.ndim
    shape = tuple(a.shape[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return BroadcastTo.apply(a, shape=shape)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim (inclusive) into one."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = (normalize_dim(d, a.shape, "flatten") for d in (start_dim, end_dim))
    return reshape(a, a.shape[:start] + (-1,) + a.shape[end + 1:])


@dim_spellings
def squeeze(a, dim=None):
    """Drop dims of size 1 (all of them, or only those of ``dim``, an int or a tuple; a named
    dim whose size is not 1 is kept)."""
    axes = normalize_dims(dim, a.shape, "squeeze")
    drop = {i for i in axes if a.shape[i] == 1}
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if i not in drop))


@dim_spellings
def unsqueeze(a, dim):
    """Insert a dim of size 1 at position ``dim`` (negative counts from the new end)."""
    dim = normalize_dim(dim, a.shape, "unsqueeze", new=1)
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def _index_arrays(index):
    """Replace Tensors inside an index (masks, index tensors) by their arrays."""
    if isinstance(index, tuple):
        return tuple(_index_arrays(i) for i in index)
    return index.data if isinstance(index, TensorBase) else index


def getitem(a, index):
    return GetItem.apply(a, index=_index_arrays(index))


@dim_spellings
def cat(tensors, dim=0):
    """Join tensors along an existing axis; all other axes must match."""
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    tensors = tensor_inputs("cat", tensors)
    first = tensors[0]
    axis = normalize_dim(dim, first.shape, "cat")
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(
                i != axis and n != m for i, (n, m) in enumerate(zip(t.shape, first.shape))):
            raise ValueError(f"cat: shapes {first.shape} and {t.shape} differ outside axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


concatenate = cat


@dim_spellings
def stack(tensors, dim=0):
    """Join same-shape tensors along a new dim."""
    tensors = tensor_inputs("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    dim = normalize_dim(dim, tensors[0].shape, "stack", new=1)
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


@dim_spellings
def split(a, split_size_or_sections, dim=0):
    """Cut ``a`` along ``axis`` into pieces of ``split_size`` (the last may be smaller), or of
    the listed sizes (PyTorch's ``split``); returns a tuple of tensors."""
    axis = normalize_dim(dim, a.shape, "split")
    length = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections:
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} do not add up to {length}, the size of "
                             f"axis {axis} of shape {a.shape}")
    prefix = (slice(None),) * axis
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(getitem(a, prefix + (slice(s, s + n),)) for s, n in zip(starts, sizes))


def pad(a, pad, value=0.0):
    """Constant padding, PyTorch ``F.pad`` order: (last-axis before, after, next axis ...)."""
    return Pad.apply(a, pad=tuple(int(p) for p in pad), value=value)
