"""Shape ops: reshape, permute/transpose, broadcast_to/expand, flip, roll, tril/triu,
diagonal/diag_embed, repeat/tile, take along a dim, indexing, concatenate, pad.

None of these change values, they only move them, so every backward moves the gradient back
to where each value came from: reshape back, permute with the inverse permutation, flip and
roll the other way, sum over broadcast and tiled copies, scatter-add into the indexed or
copied positions, slice the concatenated pieces apart.

Composites built on them: flatten, squeeze, unsqueeze, unflatten, movedim, swapaxes, stack,
split, chunk, narrow, trace, repeat_interleave, unfold, meshgrid, the atleast_*d and *stack
functions, and the non-constant pad modes (reflect, replicate, circular: one ``index_along``
per padded dim, with the source position of every output position).

Indexing follows PyTorch, not NumPy, where the two differ: integers index first, like slices,
so ``x[1, :, idx]`` keeps the dims of ``idx`` in place (NumPy would move them to the front,
counting the 1 as an index array); see ``torch_index``.
"""

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, TensorBase, tensor_inputs, unbroadcast
from minigrad.backend import array_module
from minigrad.ops.dims import dim_spellings, normalize_dim, normalize_dims


__all__ = [
    "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to", "cat", "chunk", "column_stack",
    "concatenate", "diag", "diag_embed", "diagonal", "dstack", "expand", "flatten", "flip",
    "getitem", "hstack", "meshgrid", "moveaxis", "movedim", "narrow", "pad", "permute",
    "repeat", "repeat_interleave", "reshape", "roll", "split", "squeeze", "stack", "swapaxes",
    "swapdims", "tile", "trace", "transpose", "tril", "triu", "unflatten", "unfold",
    "unsqueeze", "vstack",
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


class Flip(Function):
    """z = a with the order of its elements reversed along ``axes``; the backward flips the
    gradient back."""

    @staticmethod
    def forward(ctx, a, axes=()):
        ctx.axes = axes
        return array_module(a).flip(a, axes)

    @staticmethod
    def backward(ctx, grad):
        return (array_module(grad).flip(grad, ctx.axes),)


class Roll(Function):
    """z = a shifted cyclically by ``shifts`` along ``axes`` (all of them flattened for
    None): z[i + s] = a[i] (mod n); the backward rolls the gradient by -s."""

    @staticmethod
    def forward(ctx, a, shifts=(), axes=None):
        ctx.shifts, ctx.axes = shifts, axes
        return array_module(a).roll(a, shifts, axes)

    @staticmethod
    def backward(ctx, grad):
        return (array_module(grad).roll(grad, tuple(-s for s in ctx.shifts), ctx.axes),)


class Triangle(Function):
    """z = a on and below (``lower``, tril) or on and above (triu) the ``diagonal``-th
    diagonal of its last two dims, 0 elsewhere: a mask, so dz/da is the same mask."""

    @staticmethod
    def forward(ctx, a, diagonal=0, lower=True):
        xp = array_module(a)
        ctx.keep = xp.tril if lower else xp.triu
        ctx.diagonal = diagonal
        return ctx.keep(a, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return (ctx.keep(grad, ctx.diagonal),)


def diagonal_positions(rows, cols, offset):
    """The (row, column) positions of the ``offset``-th diagonal of a rows x cols matrix
    (above the main one for offset > 0): two index arrays of the diagonal's length."""
    length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
    steps = np.arange(length)
    return steps + max(-offset, 0), steps + max(offset, 0)


class Diagonal(Function):
    """z[..., i] = a[..., r_i, c_i] with (r_i, c_i) the ``offset``-th diagonal of the last
    two dims of a; the backward writes the gradient back onto that diagonal (zeros
    elsewhere). ``DiagEmbed`` is its adjoint."""

    @staticmethod
    def forward(ctx, a, offset=0):
        ctx.input_shape = a.shape
        ctx.positions = diagonal_positions(*a.shape[-2:], offset)
        return a[(Ellipsis,) + ctx.positions]

    @staticmethod
    def backward(ctx, grad):
        grad_a = array_module(grad).zeros(ctx.input_shape, dtype=grad.dtype)
        grad_a[(Ellipsis,) + ctx.positions] = grad
        return (grad_a,)


class DiagEmbed(Function):
    """z[..., :, :] = a square matrix, zero except its ``offset``-th diagonal, which holds
    a[..., :]; the backward reads that diagonal of the gradient (the adjoint of
    ``Diagonal``)."""

    @staticmethod
    def forward(ctx, a, offset=0):
        size = a.shape[-1] + abs(offset)
        ctx.positions = diagonal_positions(size, size, offset)
        out = array_module(a).zeros(a.shape[:-1] + (size, size), dtype=a.dtype)
        out[(Ellipsis,) + ctx.positions] = a
        return out

    @staticmethod
    def backward(ctx, grad):
        return (grad[(Ellipsis,) + ctx.positions],)


class Tile(Function):
    """z = a copied ``reps[i]`` times along each dim i (PyTorch's ``repeat``, NumPy's
    ``tile``; a has at most len(reps) dims, the missing leading ones count as size 1).
    Backward: every copy's gradient goes back to its original, so the gradient is cut into
    the copies (a (reps_0, n_0, reps_1, n_1, ...) reshape) and summed over them."""

    @staticmethod
    def forward(ctx, a, reps=()):
        ctx.input_shape, ctx.reps = a.shape, reps
        return array_module(a).tile(a, reps)

    @staticmethod
    def backward(ctx, grad):
        sizes = (1,) * (len(ctx.reps) - len(ctx.input_shape)) + ctx.input_shape
        copies = grad.reshape([n for pair in zip(ctx.reps, sizes) for n in pair])
        summed = copies.sum(axis=tuple(range(0, copies.ndim, 2)))
        return (summed.reshape(ctx.input_shape),)


class GetItem(Function):
    """z = a[basic][advanced]: ``basic`` holds ints, slices and None (a view of a), then
    ``advanced`` index arrays and slices (``torch_index`` splits PyTorch's index so).

    Backward: dL/da is zero except at the positions that were read, which receive the gradient
    of the element they became. An index array may read one position several times, so the
    gradients are *added* there with ``add.at`` (a plain ``g[index] += grad`` would keep only
    one of them), into the view ``basic`` of the zero gradient.
    """

    @staticmethod
    def forward(ctx, a, basic=(), advanced=()):
        ctx.basic, ctx.advanced, ctx.input_shape = basic + (Ellipsis,), advanced, a.shape
        view = a[ctx.basic]  # Ellipsis last: a 0-d view, not a scalar, when all are ints
        return view[advanced] if advanced else view

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        grad_a = xp.zeros(ctx.input_shape, dtype=grad.dtype)
        xp.add.at(grad_a[ctx.basic], ctx.advanced, grad)
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


def constant_pad(x, widths, value):
    """``x`` with ``widths[i] = (before, after)`` elements of ``value`` added at the ends of
    dim i; a negative width removes that many elements instead."""
    crop = tuple(slice(max(-before, 0), n - max(-after, 0))
                 for (before, after), n in zip(widths, x.shape))
    grow = [(max(before, 0), max(after, 0)) for before, after in widths]
    return array_module(x).pad(x[crop], grow, mode="constant", constant_values=value)


class Pad(Function):
    """Constant padding (and cropping, for negative widths): ``widths[i] = (before, after)``
    for every dim. Its backward is the opposite padding of the gradient with zeros: what was
    added is cut off, what was cut off gets a zero gradient."""

    @staticmethod
    def forward(ctx, a, widths=(), value=0.0):
        ctx.widths = widths
        return constant_pad(a, widths, value)

    @staticmethod
    def backward(ctx, grad):
        return (constant_pad(grad, [(-before, -after) for before, after in ctx.widths], 0),)


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
    if -1 in shape[:max(offset, 0)]:
        raise ValueError(f"expand: -1 keeps a dim's size, so it cannot stand for a new leading "
                         f"dim: shape {shape} for a tensor of shape {a.shape}")
    shape = tuple(a.shape[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return BroadcastTo.apply(a, shape=shape)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim (inclusive) into one."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = (normalize_dim(d, a.shape, "flatten") for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                         f"tensor of shape {a.shape}")
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


def _is_array(item):
    return isinstance(item, np.ndarray) or backend.is_cupy_array(item)


def _index_item(item):
    """One entry of an index as ``torch_index`` reads it: Tensors and lists become arrays, a
    0-d integer array (or NumPy integer) an int, a bool a 0-d bool array."""
    if isinstance(item, TensorBase):
        item = item.data
    if isinstance(item, list):
        item = np.asarray(item) if item else np.zeros(0, dtype=np.int64)
    if isinstance(item, (bool, np.bool_)):
        return np.asarray(item)
    if isinstance(item, np.integer) or (_is_array(item) and item.ndim == 0
                                        and item.dtype.kind in "iu"):
        return int(item)
    if _is_array(item):
        if item.dtype.kind not in "biu":
            raise IndexError(f"getitem: tensors used as indices must be integer or bool, "
                             f"got {item.dtype}")
        return item
    if item is None or item is Ellipsis or isinstance(item, (int, slice)):
        return item
    raise IndexError(f"getitem: only integers, slices, None, Ellipsis and integer or bool "
                     f"tensors are valid indices, got {type(item).__name__}")


def _dims_indexed(item):
    """How many dims of the tensor an index entry reads (a k-d mask reads k)."""
    if item is None or item is Ellipsis:
        return 0
    return item.ndim if _is_array(item) and item.dtype.kind == "b" else 1


def check_in_range(op, index, size, dim, wrap=False, shape=None):
    """IndexError naming ``op`` and the first of ``index`` (an int or an integer array) outside
    [0, size), or outside [-size, size) with ``wrap`` (negative indices counting from the end);
    ``shape``, when given, is named too."""
    index = index if _is_array(index) else np.asarray(index)
    outside = (index < (-size if wrap else 0)) | (index >= size)
    if outside.any():
        of_shape = "" if shape is None else f" (a tensor of shape {tuple(shape)})"
        raise IndexError(f"{op}: index {int(index[outside].ravel()[0])} is out of bounds for "
                         f"dim {dim} with size {size}{of_shape}")


def torch_index(index, shape):
    """PyTorch's ``index`` into a tensor of ``shape`` as two NumPy indices, applied one after
    the other: ``basic`` (ints, slices, None) then ``advanced`` (index arrays and masks, with
    slices for the other dims; () when there are none).

    NumPy counts an int as an index array as soon as there is one, and puts the dims of
    index arrays that are not next to each other first; PyTorch selects with the ints first,
    so that ``x[1, :, 3:11:2, idx, 0:2]`` keeps ``idx``'s dims in place. Applying the ints in
    the first step leaves NumPy's rule right for the rest. A bool (``x[None]``'s cousin
    ``x[True]``) adds a dim of size 1 in the first step and selects it (or nothing, for
    False) with an index array in the second, as PyTorch does.
    """
    items = [_index_item(item) for item in (index if isinstance(index, tuple) else (index,))]
    indexed = sum(_dims_indexed(item) for item in items)
    if indexed > len(shape):
        raise IndexError(f"getitem: too many indices for a tensor of shape {tuple(shape)}: "
                         f"{indexed} dims indexed")
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    if ellipses:
        items[ellipses[0]:ellipses[0] + 1] = [slice(None)] * (len(shape) - indexed)
    basic, advanced, dim = [], [], 0
    for item in items:
        if _is_array(item) and item.dtype.kind == "b" and item.ndim == 0:
            basic.append(None)
            advanced.append(np.zeros(int(item), dtype=np.int64))
        elif _is_array(item) and item.dtype.kind == "b":
            if item.shape != tuple(shape[dim:dim + item.ndim]):
                raise IndexError(f"getitem: the mask of shape {item.shape} does not match "
                                 f"dims {dim}.. of the tensor of shape {tuple(shape)}")
            basic += [slice(None)] * item.ndim
            advanced.append(item)
            dim += item.ndim
        elif _is_array(item) or isinstance(item, int):
            check_in_range("getitem", item, shape[dim], dim, wrap=True, shape=shape)
            basic.append(slice(None) if _is_array(item) else item)
            advanced += [item] if _is_array(item) else []
            dim += 1
        else:  # a slice or None
            basic.append(item)
            advanced.append(slice(None))
            dim += item is not None
    if all(isinstance(item, slice) and item == slice(None) for item in advanced):
        advanced = []
    return tuple(basic), tuple(advanced)


def getitem(a, index):
    """``a[index]`` with PyTorch's rules: ints, slices, None, Ellipsis, bools, lists and
    integer (int32/int64) or bool tensors and arrays, negative indices counting from the end
    (``torch_index`` says where the dims of index arrays go)."""
    basic, advanced = torch_index(index, a.shape)
    return GetItem.apply(a, basic=basic, advanced=advanced)


def read_positions(a, positions):
    """``a[positions]`` for a NumPy index ``positions`` (a tuple of index arrays, slices and
    ints), differentiable: the one op that reads values at positions (``GetItem``), for the
    ops built on it (take, gather, sort's values, pad's copies, ...)."""
    xp = array_module(a.data)
    return GetItem.apply(a, advanced=tuple(xp.asarray(p) if isinstance(p, np.ndarray) else p
                                           for p in positions))


def index_along(a, index, axis):
    """``a`` at the positions ``index`` (an integer array) along ``axis``, NumPy's ``take``:
    z[..., j, ...] = a[..., index[j], ...], j running over index's own shape."""
    return read_positions(a, (slice(None),) * axis + (index,))


def positions_along(index, dim):
    """The full NumPy index that reads ``index[i, j, k]`` along ``dim`` and ``i, j, k`` at the
    other dims (``take_along_axis``'s): for dim = 1, the positions (i, index[i, j, k], k)."""
    xp = array_module(index)
    return tuple(index if d == dim else xp.arange(n).reshape((-1,) + (1,) * (index.ndim - d - 1))
                 for d, n in enumerate(index.shape))


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
    """Cut ``a`` along ``dim`` into pieces of ``split_size`` (the last may be smaller), or of
    the listed sizes (PyTorch's ``split``); returns a tuple of tensors."""
    axis = normalize_dim(dim, a.shape, "split")
    length = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size < 0 or (size == 0 and length):
            raise ValueError(f"split: split_size {size} must be positive (0 only for a dim of "
                             f"size 0), got it for dim {axis} of shape {a.shape}")
        count = max(-(-length // size), 1) if size else 1  # one piece even when empty
        sizes = [size] * (count - 1) + [length - size * (count - 1)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} do not add up to {length}, the size of "
                             f"axis {axis} of shape {a.shape}")
    prefix = (slice(None),) * axis
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(getitem(a, prefix + (slice(s, s + n),)) for s, n in zip(starts, sizes))


@dim_spellings
def chunk(a, chunks, dim=0):
    """Cut ``a`` along ``dim`` into at most ``chunks`` pieces of ceil(size / chunks) elements
    (the last may be smaller, and there may be fewer pieces, as in PyTorch: 5 in 4 chunks is
    2, 2, 1); a dim of size 0 gives ``chunks`` empty pieces."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    axis = normalize_dim(dim, a.shape, "chunk")
    length = a.shape[axis]
    if length == 0:
        return split(a, [0] * chunks, axis)
    return split(a, -(-length // chunks), axis)


@dim_spellings
def narrow(a, dim, start, length):
    """``length`` elements of ``dim`` from ``start`` on (negative counts from the end): a
    slice, as a composite of ``getitem``."""
    axis = normalize_dim(dim, a.shape, "narrow")
    size = a.shape[axis]
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range [{-size}, {size}] of dim "
                         f"{axis} of shape {a.shape}")
    start += size if start < 0 else 0
    if length < 0 or start + length > size:
        raise ValueError(f"narrow: start {start} + length {length} exceeds size {size} of dim "
                         f"{axis} of shape {a.shape}")
    return getitem(a, (slice(None),) * axis + (slice(start, start + length),))


@dim_spellings
def unflatten(a, dim, sizes):
    """Dim ``dim`` split into dims of ``sizes`` (whose product is its size; one may be -1):
    a reshape."""
    axis = normalize_dim(dim, a.shape, "unflatten")
    sizes, size = tuple(int(n) for n in sizes), a.shape[axis]
    known = int(np.prod([n for n in sizes if n != -1]))
    if sizes.count(-1) > 1 or (size != known if -1 not in sizes else known == 0 or size % known):
        raise ValueError(f"unflatten: sizes {list(sizes)} do not multiply up to {size}, the "
                         f"size of dim {axis} of shape {a.shape}")
    return reshape(a, a.shape[:axis] + sizes + a.shape[axis + 1:])


def _dim_list(dims, shape, op):
    """``dims`` (an int or a sequence) as a list of non-negative dims, in their order."""
    dims = [dims] if isinstance(dims, int) else list(dims)
    dims = [normalize_dim(d, shape, op) for d in dims]
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op}: dims {dims} name a dim twice")
    return dims


def movedim(a, source, destination):
    """Move dims ``source`` to positions ``destination`` (ints or sequences of the same
    length), the other dims keeping their order: a permute."""
    source = _dim_list(source, a.shape, "movedim")
    destination = _dim_list(destination, a.shape, "movedim")
    if len(source) != len(destination):
        raise ValueError(f"movedim: source {source} and destination {destination} must name "
                         f"the same number of dims")
    rest = iter(d for d in range(a.ndim) if d not in source)
    placed = dict(zip(destination, source))
    return permute(a, *(placed[i] if i in placed else next(rest) for i in range(a.ndim)))


moveaxis = movedim


def swapaxes(a, axis0, axis1):
    """``transpose`` in NumPy's words."""
    return transpose(a, axis0, axis1)


def swapdims(a, dim0, dim1):
    """``transpose`` (PyTorch's other name for it)."""
    return transpose(a, dim0, dim1)


def flip(a, dims, *more_dims):
    """Reverse the order of elements along ``dims``: ``flip(x, (0, 1))`` or ``x.flip(0, 1)``."""
    axes = normalize_dims(shape_argument((dims,) + more_dims), a.shape, "flip")
    return Flip.apply(a, axes=axes)


def roll(a, shifts, dims=None):
    """Shift elements cyclically by ``shifts`` along ``dims`` (ints or tuples of the same
    length); without dims, over the flattened tensor, keeping its shape."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
        return Roll.apply(a, shifts=shifts, axes=None)
    axes = tuple(normalize_dim(d, a.shape, "roll")
                 for d in ((dims,) if isinstance(dims, int) else dims))
    if len(axes) != len(shifts):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    return Roll.apply(a, shifts=shifts, axes=axes)


def _triangle(a, diagonal, lower):
    if a.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs a tensor of at least 2 dims, "
                         f"got shape {a.shape}")
    return Triangle.apply(a, diagonal=diagonal, lower=lower)


def tril(a, diagonal=0):
    """The lower triangle of the last two dims: elements (i, j) with j - i <= diagonal, the
    others 0."""
    return _triangle(a, diagonal, lower=True)


def triu(a, diagonal=0):
    """The upper triangle of the last two dims: elements (i, j) with j - i >= diagonal, the
    others 0."""
    return _triangle(a, diagonal, lower=False)


def diagonal(a, offset=0, dim1=0, dim2=1):
    """The ``offset``-th diagonal of the matrices in dims ``dim1``, ``dim2`` (above the main
    diagonal for offset > 0), as a new last dim; the two dims are removed."""
    dim1, dim2 = (normalize_dim(d, a.shape, "diagonal") for d in (dim1, dim2))
    if dim1 == dim2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} twice")
    return Diagonal.apply(movedim(a, (dim1, dim2), (-2, -1)), offset=offset)


def diag_embed(a, offset=0, dim1=-2, dim2=-1):
    """Matrices in the new dims ``dim1``, ``dim2`` of the result, zero except their
    ``offset``-th diagonal, which holds the last dim of ``a``."""
    if a.ndim == 0:
        raise ValueError("diag_embed: needs a tensor of at least 1 dim, got a 0-d tensor")
    out_shape = a.shape[:-1] + (0, 0)
    dim1, dim2 = (normalize_dim(d, out_shape, "diag_embed") for d in (dim1, dim2))
    if dim1 == dim2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} twice")
    return movedim(DiagEmbed.apply(a, offset=offset), (-2, -1), (dim1, dim2))


def diag(a, diagonal=0):
    """PyTorch's ``diag``: for a 1-D tensor the square matrix with it on the ``diagonal``-th
    diagonal; for a 2-D tensor that diagonal, as a 1-D tensor."""
    if a.ndim == 1:
        return DiagEmbed.apply(a, offset=diagonal)
    if a.ndim == 2:
        return Diagonal.apply(a, offset=diagonal)
    raise ValueError(f"diag: needs a 1-D or 2-D tensor, got shape {a.shape}")


def trace(a):
    """The sum of the main diagonal of a matrix: a composite of ``diagonal`` and ``sum``
    (integers sum to int64, as in PyTorch)."""
    if a.ndim != 2:
        raise ValueError(f"trace: needs a matrix (2-D tensor), got shape {a.shape}")
    return diagonal(a).sum()


def repeat(a, *sizes):
    """PyTorch's ``repeat``: ``a`` copied ``sizes[i]`` times along dim i (NumPy's ``tile``);
    there are at least as many sizes as dims, extra ones add leading dims."""
    reps = shape_argument(sizes)
    if len(reps) < a.ndim or any(n < 0 for n in reps):
        raise ValueError(f"repeat: sizes {reps} must be non-negative, at least one per dim of "
                         f"shape {a.shape}")
    return Tile.apply(a, reps=reps)


def tile(a, dims, *more_dims):
    """``repeat`` where fewer sizes than dims are allowed: the missing leading ones are 1."""
    reps = shape_argument((dims,) + more_dims)
    return repeat(a, (1,) * (a.ndim - len(reps)) + reps)


@dim_spellings
def repeat_interleave(a, repeats, dim=None):
    """Each element along ``dim`` repeated ``repeats`` times (an int, or a tensor with one
    count per element, or one count for all), one after the other: [a, b] -> [a, a, b, b].
    Without dim, of the flattened tensor. An ``index_along`` of every element's position."""
    if dim is None:
        a, dim = flatten(a), 0
    axis = normalize_dim(dim, a.shape, "repeat_interleave")
    counts = backend.to_device(repeats.data if isinstance(repeats, TensorBase)
                               else np.asarray(repeats), "cpu").reshape(-1)
    size = a.shape[axis] if a.ndim else 1
    if counts.dtype.kind not in "iu" or counts.size not in (1, size) or (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be non-negative integers, one or "
                         f"{size} (the size of dim {axis} of shape {a.shape}), got {repeats}")
    return index_along(reshape(a, 1) if a.ndim == 0 else a, np.repeat(np.arange(size), counts),
                       axis)


def unfold(a, dimension, size, step):
    """PyTorch's ``Tensor.unfold``: the windows of ``size`` elements along ``dimension``, one
    every ``step``, as a new last dim (dimension keeps one entry per window). An ``index_along`` of
    every window's positions, then a movedim; overlapping windows add their gradients."""
    axis = normalize_dim(dimension, a.shape, "unfold")
    length = a.shape[axis] if a.ndim else 1
    if step <= 0 or not 0 <= size <= length:
        raise ValueError(f"unfold: size {size} must be in [0, {length}] (the size of dim "
                         f"{axis} of shape {a.shape}) and step {step} positive")
    starts = np.arange(0, length - size + 1, step)
    windows = starts[:, None] + np.arange(size)
    if a.ndim == 0:
        return reshape(index_along(reshape(a, 1), windows[0], 0), size)
    return movedim(index_along(a, windows, axis), axis + 1, -1)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids: for 0-d or 1-D tensors of sizes n_1, ..., n_k, k tensors of shape
    (n_1, ..., n_k), the i-th varying along dim i only (``indexing="ij"``); ``"xy"`` swaps
    the first two dims, as NumPy's default. Composites of reshape and expand."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = tensor_inputs("meshgrid", tensors)
    if any(t.ndim > 1 for t in tensors):
        raise ValueError(f"meshgrid: needs 0-d or 1-D tensors, got shapes "
                         f"{[t.shape for t in tensors]}")
    places = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        places[0], places[1] = 1, 0
    sizes = [0] * len(tensors)
    for t, place in zip(tensors, places):
        sizes[place] = t.data.size
    dims = range(len(tensors))
    return tuple(broadcast_to(reshape(t, tuple(-1 if i == place else 1 for i in dims)),
                              tuple(sizes))
                 for t, place in zip(tensors, places))


def _each(tensors, make):
    """``make`` of one tensor, or a tuple of ``make`` of several (given one by one or as a
    sequence), as PyTorch's atleast_*d return."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(make(t) for t in tensors[0])
    return make(tensors[0]) if len(tensors) == 1 else tuple(make(t) for t in tensors)


def atleast_1d(*tensors):
    """Tensors with at least 1 dim: a 0-d one becomes shape (1,)."""
    return _each(tensors, lambda t: reshape(t, 1) if t.ndim == 0 else t)


def atleast_2d(*tensors):
    """Tensors with at least 2 dims: () -> (1, 1), (n,) -> (1, n)."""
    return _each(tensors, lambda t: reshape(t, (1,) * (2 - t.ndim) + t.shape)
                 if t.ndim < 2 else t)


def atleast_3d(*tensors):
    """Tensors with at least 3 dims: () -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1),
    as PyTorch and NumPy."""
    shapes = {0: lambda s: (1, 1, 1), 1: lambda s: (1,) + s + (1,), 2: lambda s: s + (1,)}
    return _each(tensors, lambda t: reshape(t, shapes[t.ndim](t.shape)) if t.ndim < 3 else t)


def hstack(tensors):
    """Join along dim 1, or dim 0 for 1-D tensors (0-d ones count as 1-D)."""
    tensors = atleast_1d(list(tensor_inputs("hstack", tensors)))
    return cat(tensors, dim=0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Join along dim 0, 0-d and 1-D tensors first made rows ((n,) -> (1, n))."""
    return cat(atleast_2d(list(tensor_inputs("vstack", tensors))), dim=0)


def dstack(tensors):
    """Join along dim 2, after ``atleast_3d``."""
    return cat(atleast_3d(list(tensor_inputs("dstack", tensors))), dim=2)


def column_stack(tensors):
    """Join along dim 1, 0-d and 1-D tensors first made columns ((n,) -> (n, 1))."""
    tensors = tensor_inputs("column_stack", tensors)
    return cat([reshape(t, -1, 1) if t.ndim < 2 else t for t in tensors], dim=1)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_widths(a, pad, mode):
    """PyTorch's ``pad`` (pairs from the last dim back) as (before, after) for every dim of
    ``a``, after PyTorch's checks for ``mode``."""
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: {tuple(pad)} must be (before, after) pairs for at most "
                         f"{a.ndim} dims of a tensor of shape {a.shape}")
    padded = len(pad) // 2
    if mode != "constant" and not (padded in (1, 2, 3) and a.ndim in (padded + 1, padded + 2)):
        raise NotImplementedError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a tensor with 1 or 2 more "
            f"dims (channels, and a batch); {len(pad)} pad values do not fit shape {a.shape}")
    pairs = [tuple(pad[i:i + 2]) for i in range(0, len(pad), 2)][::-1]
    widths = [(0, 0)] * (a.ndim - padded) + pairs
    for dim, ((before, after), n) in enumerate(zip(widths, a.shape)):
        if max(-before, 0) + max(-after, 0) > n:
            raise ValueError(f"pad: padding {(before, after)} crops more than the {n} "
                             f"elements of dim {dim} of shape {a.shape}")
        if mode == "reflect" and (before or after) and max(before, after) >= n:
            raise ValueError(f"pad: reflect padding {(before, after)} of dim {dim} must be "
                             f"smaller than its size {n} (shape {a.shape})")
        if mode == "circular" and max(before, after) > n - max(-before, 0) - max(-after, 0):
            raise ValueError(f"pad: circular padding {(before, after)} of dim {dim} wraps "
                             f"around more than once (size {n}, shape {a.shape})")
    if mode in ("reflect", "replicate") and 0 in a.shape[a.ndim - padded - 1:]:
        raise ValueError(f"pad: mode {mode!r} needs non-empty channel and padded dims, got "
                         f"shape {a.shape}")
    return widths


def source_positions(n, before, after, mode):
    """For each position of a dim of size ``n`` padded by (before, after) in ``mode``, the
    position of the input element it copies: the edge mirrored without repeating it
    (reflect), the edge repeated (replicate), or the other end (circular, after cropping
    negative widths)."""
    if mode == "circular":
        start, kept = max(-before, 0), n - max(-before, 0) - max(-after, 0)
        return start + np.arange(-max(before, 0), kept + max(after, 0)) % max(kept, 1)
    positions = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    positions = np.abs(positions)
    return np.where(positions > n - 1, 2 * (n - 1) - positions, positions)


def pad(a, pad, mode="constant", value=None):
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) widths from the last dim back
    ((left, right) pads the last dim, (left, right, top, bottom) the last two). ``mode``:

    * "constant": ``value`` (0 by default) added; negative widths crop;
    * "reflect": the input mirrored at its edges, without repeating the edge (widths smaller
      than the dim);
    * "replicate": the edge element repeated;
    * "circular": the input continued from its other end (widths at most the dim).

    The last three pad the last 1-3 dims of a tensor with one or two leading dims (channels,
    batch), as PyTorch; each padded dim is one ``index_along`` of the positions it copies.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' does)")
    widths = _pad_widths(a, tuple(int(p) for p in pad), mode)
    if mode == "constant":
        return Pad.apply(a, widths=widths, value=0.0 if value is None else value)
    for dim, (before, after) in enumerate(widths):
        if before or after:
            a = index_along(a, source_positions(a.shape[dim], before, after, mode), dim)
    return a
