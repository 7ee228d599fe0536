"""``Tensor``: an array plus what autograd needs to differentiate through it.

A Tensor holds

* ``data``: a NumPy (CPU) or CuPy (GPU) array, float32 unless asked otherwise;
* ``requires_grad``: whether gradients should flow back to it;
* ``grad``: after ``backward()``, dL/d(this tensor) as a Tensor of the same shape (leaves, and
  intermediates that called ``retain_grad()``);
* ``_ctx``: the graph node (a ``Function`` instance) that produced it, ``None`` for a leaf.

Those four, and ``backward()``, are the engine's part of a tensor (``autograd.TensorBase``).
The methods here are thin: each one calls an op from ``minigrad.ops``, where the forward and
backward math lives, so this module sits above the ops (and the ops never import it).

dtype rules follow PyTorch: Python floats become float32, Python ints int64, bools bool; a
NumPy array keeps its dtype. Only floating-point tensors can require grad.
"""

import numpy as np

from minigrad import backend, ops
from minigrad.autograd import TensorBase, is_grad_enabled, no_grad
from minigrad.dtypes import is_dtype_name


def _is_array(value):
    return isinstance(value, np.ndarray) or backend.is_cupy_array(value)


def _to_array(data, dtype=None):
    """Turn data (Tensor, array, scalar, nested list) into an array, with PyTorch's dtype rules."""
    if isinstance(data, Tensor):
        data = data.data
    if not _is_array(data):
        from_python = not isinstance(data, np.generic)
        data = np.asarray(data)
        if dtype is None and from_python and data.dtype == np.float64:
            dtype = np.float32  # the default float type, like torch.get_default_dtype()
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    if data.dtype.kind in "OUS":
        raise TypeError(f"a tensor holds numbers, not {data.dtype} data (to join tensors "
                        "use minigrad.stack or minigrad.cat)")
    return data


class Tensor(TensorBase):
    """An n-dimensional array that records the operations applied to it.

    ``Tensor(data, dtype=None, requires_grad=False)`` wraps ``data`` without copying when it
    is already an array; use ``minigrad.tensor(...)`` for a copy.
    """

    __hash__ = object.__hash__  # __eq__ is elementwise, but tensors still work as dict keys
    # NumPy must not handle `ndarray * tensor` itself (it would build an object array of
    # Tensors): None makes it return NotImplemented, so Python calls Tensor.__rmul__.
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, requires_grad=False):
        super().__init__(_to_array(data, dtype), requires_grad)

    def _wrap(self, data):
        return Tensor(data)

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    def size(self, dim=None):
        """The shape, or the length of one dimension (PyTorch's ``Tensor.size``)."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        """The number of dimensions (``ndim``), PyTorch's ``Tensor.dim()``."""
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    nelement = numel

    def element_size(self):
        """Bytes per element."""
        return self.data.itemsize

    def __len__(self):
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python "
                             f"number, got shape {self.shape}")
        return self.data.item()

    def numpy(self):
        """The data as a NumPy array (shares memory on the CPU, copies from a GPU).

        For a tensor that requires grad the array is a *read-only* view: writing into it would
        change values a graph saved for backward and so, silently, later gradients. (PyTorch
        refuses ``numpy()`` on such a tensor and wants ``detach().numpy()``; reading values
        this way is too common in tests and lessons to refuse it.) ``detach().numpy()`` is the
        writable view, as ``numpy()`` of any tensor that does not require grad."""
        array = backend.to_device(self.data, "cpu")
        if self.requires_grad and array is self.data:
            array = array.view()
            array.flags.writeable = False
        return array

    def tolist(self):
        return self.numpy().tolist()

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        """float(t) of a one-element tensor, as in PyTorch (``item`` says why not otherwise)."""
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ----------------------------------------------------------------- autograd
    def detach(self):
        """A new leaf sharing the same data (and so the same version counter), cut off from
        the graph."""
        detached = Tensor(self.data)
        detached._version_counter = self._version_counter
        return detached

    clone = ops.clone

    def contiguous(self):
        """Self: minigrad's ops accept arrays of any layout (PyTorch's returns self too when
        the tensor is already contiguous)."""
        return self

    def zero_grad(self):
        self.grad = None

    # ----------------------------------------------------------------- conversions
    def to(self, target):
        """Move to a device (``"cpu"``, ``"cuda"``, ``"cuda:0"``, a ``minigrad.device``) or
        cast to a dtype; differentiable."""
        if isinstance(target, str) and not is_dtype_name(target):
            return ops.to_device(self, backend.device(target))  # unknown names: "unknown device"
        return ops.cast(self, target)

    def type(self, dtype=None):
        """Cast to ``dtype``; without one, the dtype's name (PyTorch gives a type name such as
        "torch.FloatTensor"; minigrad's types are NumPy's dtypes)."""
        return str(self.dtype) if dtype is None else ops.cast(self, dtype)

    def type_as(self, other):
        return ops.cast(self, other.dtype)

    def half(self):
        return ops.cast(self, np.float16)

    def float(self):
        return ops.cast(self, np.float32)

    def double(self):
        return ops.cast(self, np.float64)

    def int(self):
        return ops.cast(self, np.int32)

    def long(self):
        return ops.cast(self, np.int64)

    def bool(self):
        return ops.cast(self, np.bool_)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def is_floating_point(self):
        return self.dtype.kind == "f"

    # ----------------------------------------------------------------- in place
    # PyTorch's in-place methods (``add_``) and operators (``+=``) change ``data`` itself and
    # count the change in ``_version``, so a graph that saved this tensor refuses to compute a
    # gradient from the old values (``autograd.check_saved_versions``). minigrad records no
    # in-place op in a graph, so a tensor that requires grad is changed in place only under
    # ``no_grad`` (the optimizer's update, ``p -= lr * p.grad``), as PyTorch demands of leaves.
    def _write(self, name, value, target=None, index=Ellipsis):
        """``target[index] = value`` in place, after the checks above; ``target`` is ``data``
        or a view of it (None: ``data``). Returns self."""
        if self.requires_grad and is_grad_enabled():
            if self.is_leaf:
                raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be changed "
                                   "in place while grad mode is on; update it under "
                                   "`with minigrad.no_grad():`, as optimizers do")
            raise RuntimeError(f"{name}: this tensor is part of a graph, and minigrad records "
                               "no in-place op; use the out-of-place op instead")
        target = self.data if target is None else target
        value = value.data if isinstance(value, Tensor) else value
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        # A Python number is cast to the tensor's dtype, as PyTorch casts it (fill_(1.5) of an
        # int tensor writes 1); an array or a result must cast without changing kind.
        if not isinstance(value, (bool, int, float)) and not np.can_cast(
                np.result_type(value), self.dtype, "same_kind"):
            raise TypeError(f"{name}: the result's dtype {np.result_type(value)} cannot be "
                            f"written into a {self.dtype} tensor in place")
        target_shape = np.shape(target[index])
        if np.broadcast_shapes(np.shape(value), target_shape) != target_shape:
            raise ValueError(f"{name}: a result of shape {np.shape(value)} does not fit in place "
                             f"into shape {target_shape}")
        target[index] = value
        self._version += 1
        return self

    def _update(self, name, op, *args, **kwargs):
        """``self = op(self, *args)`` in place (see ``_write``)."""
        with no_grad():
            result = op(self, *args, **kwargs)
        return self._write(name, result)

    def add_(self, other, alpha=1):
        return self._update("add_", ops.add, other, alpha=alpha)

    def sub_(self, other, alpha=1):
        return self._update("sub_", ops.sub, other, alpha=alpha)

    def mul_(self, other):
        return self._update("mul_", ops.mul, other)

    def div_(self, other):
        return self._update("div_", ops.div, other)

    def pow_(self, exponent):
        return self._update("pow_", ops.pow, exponent)

    def clamp_(self, min=None, max=None):
        return self._update("clamp_", ops.clip, min, max)

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        return self._update("masked_fill_", ops.masked_fill, mask, value)

    def neg_(self):
        return self._update("neg_", ops.neg)

    def zero_(self):
        return self._write("zero_", 0)

    def fill_(self, value):
        return self._write("fill_", value)

    def copy_(self, source):
        """Copy ``source``'s values (broadcast to this shape, cast to this dtype) into self."""
        source = as_tensor(source)
        if backend.device_of(source.data) != self.device:
            source = source.to(self.device)
        return self._write("copy_", source.data.astype(self.dtype, copy=False))

    def __setitem__(self, index, value):
        """``x[index] = value`` writes in place (same rules as ``add_``), the index read as
        ``x[index]`` reads it (``ops.shape.torch_index``: ints and slices, then arrays)."""
        basic, advanced = ops.shape.torch_index(index, self.shape)
        if advanced:  # data[basic] is a view (its array dims are kept as slices): write into it
            self._write("__setitem__", value, self.data[basic], advanced)
        else:
            self._write("__setitem__", value, index=basic)

    def __iadd__(self, other):
        return self._update("+=", ops.add, other)

    def __isub__(self, other):
        return self._update("-=", ops.sub, other)

    def __imul__(self, other):
        return self._update("*=", ops.mul, other)

    def __itruediv__(self, other):
        return self._update("/=", ops.div, other)

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __rpow__(self, base):
        return ops.pow(base, self)

    def __floordiv__(self, other):
        return ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return ops.floor_divide(other, self)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __and__(self, other):
        return ops.bitwise_and(self, other)

    def __rand__(self, other):
        return ops.bitwise_and(other, self)

    def __or__(self, other):
        return ops.bitwise_or(self, other)

    def __ror__(self, other):
        return ops.bitwise_or(other, self)

    def __xor__(self, other):
        return ops.bitwise_xor(self, other)

    def __rxor__(self, other):
        return ops.bitwise_xor(other, self)

    def __invert__(self):
        return ops.bitwise_not(self)

    def __lshift__(self, other):
        return ops.bitwise_left_shift(self, other)

    def __rshift__(self, other):
        return ops.bitwise_right_shift(self, other)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __eq__(self, other):
        return ops.eq(self, other)

    def __ne__(self, other):
        return ops.ne(self, other)

    def __lt__(self, other):
        return ops.lt(self, other)

    def __le__(self, other):
        return ops.le(self, other)

    def __gt__(self, other):
        return ops.gt(self, other)

    def __ge__(self, other):
        return ops.ge(self, other)

    # ----------------------------------------------------------------- ops as methods
    # Each op's method is the op itself (``x.exp()`` is ``ops.exp(x)``), so the two take the
    # same arguments, in both spellings of a dim (``dim=``/``axis=``).
    exp, log, sqrt, abs, sign, pow = ops.exp, ops.log, ops.sqrt, ops.abs, ops.sign, ops.pow
    neg, negative, absolute, square = ops.neg, ops.negative, ops.absolute, ops.square
    sin, cos, tan, asin, acos, atan = ops.sin, ops.cos, ops.tan, ops.asin, ops.acos, ops.atan
    arcsin, arccos, arctan = ops.arcsin, ops.arccos, ops.arctan
    sinh, cosh, asinh, acosh, atanh = ops.sinh, ops.cosh, ops.asinh, ops.acosh, ops.atanh
    arcsinh, arccosh, arctanh = ops.arcsinh, ops.arccosh, ops.arctanh
    rsqrt, reciprocal, erf = ops.rsqrt, ops.reciprocal, ops.erf
    log2, log10, log1p, expm1, exp2 = ops.log2, ops.log10, ops.log1p, ops.expm1, ops.exp2
    floor, ceil, round, trunc, fix, frac = (ops.floor, ops.ceil, ops.round, ops.trunc, ops.fix,
                                            ops.frac)
    clip = clamp = ops.clip
    maximum, minimum = ops.maximum, ops.minimum
    relu, sigmoid, tanh, softmax, log_softmax = (ops.relu, ops.sigmoid, ops.tanh, ops.softmax,
                                                 ops.log_softmax)
    hardshrink = ops.hardshrink
    matmul, dot, vdot, mv, mm, bmm, outer, ger, inner = (ops.matmul, ops.dot, ops.vdot, ops.mv,
                                                         ops.mm, ops.bmm, ops.outer, ops.ger,
                                                         ops.inner)

    # indexing
    gather, scatter, scatter_add, index_select, index_add = (ops.gather, ops.scatter,
                                                             ops.scatter_add, ops.index_select,
                                                             ops.index_add)
    take, take_along_dim, masked_fill, masked_select = (ops.take, ops.take_along_dim,
                                                        ops.masked_fill, ops.masked_select)
    nonzero, argwhere = ops.nonzero, ops.argwhere
    sort, argsort, msort, topk, kthvalue = ops.sort, ops.argsort, ops.msort, ops.topk, ops.kthvalue

    add, sub, subtract, mul, multiply = ops.add, ops.sub, ops.subtract, ops.mul, ops.multiply
    div, divide, true_divide, floor_divide = ops.div, ops.divide, ops.true_divide, ops.floor_divide
    fmod, remainder, atan2, arctan2, hypot = (ops.fmod, ops.remainder, ops.atan2, ops.arctan2,
                                              ops.hypot)
    copysign, xlogy, lerp = ops.copysign, ops.xlogy, ops.lerp
    eq, ne, lt, le, gt, ge = ops.eq, ops.ne, ops.lt, ops.le, ops.gt, ops.ge
    greater, less, greater_equal, less_equal, not_equal = (ops.greater, ops.less,
                                                           ops.greater_equal, ops.less_equal,
                                                           ops.not_equal)
    equal, isclose, allclose = ops.equal, ops.isclose, ops.allclose
    logical_and, logical_or, logical_xor, logical_not = (ops.logical_and, ops.logical_or,
                                                         ops.logical_xor, ops.logical_not)
    bitwise_and, bitwise_or, bitwise_xor, bitwise_not = (ops.bitwise_and, ops.bitwise_or,
                                                         ops.bitwise_xor, ops.bitwise_not)
    bitwise_left_shift, bitwise_right_shift = ops.bitwise_left_shift, ops.bitwise_right_shift

    def where(self, condition, other):
        """``where(condition, self, other)``: PyTorch's method puts self second."""
        return ops.where(condition, self, other)

    # reductions
    sum, mean, var, max, min, logsumexp = (ops.sum, ops.mean, ops.var, ops.max, ops.min,
                                           ops.logsumexp)
    argmax, argmin = ops.argmax, ops.argmin
    amax, amin, aminmax, std, prod = ops.amax, ops.amin, ops.aminmax, ops.std, ops.prod
    nansum, nanmean, any, all, count_nonzero = (ops.nansum, ops.nanmean, ops.any, ops.all,
                                                ops.count_nonzero)
    cumsum, cumprod, cummax, cummin = ops.cumsum, ops.cumprod, ops.cummax, ops.cummin
    norm, median, mode = ops.norm, ops.median, ops.mode

    # shape
    reshape = view = ops.reshape
    transpose, permute, flatten, squeeze, unsqueeze = (ops.transpose, ops.permute, ops.flatten,
                                                       ops.squeeze, ops.unsqueeze)
    expand, broadcast_to, split, chunk, narrow = (ops.expand, ops.broadcast_to, ops.split,
                                                  ops.chunk, ops.narrow)
    flip, roll, repeat, tile, repeat_interleave = (ops.flip, ops.roll, ops.repeat, ops.tile,
                                                   ops.repeat_interleave)
    tril, triu, diag, diagonal, diag_embed, trace = (ops.tril, ops.triu, ops.diag, ops.diagonal,
                                                     ops.diag_embed, ops.trace)
    unfold, unflatten = ops.unfold, ops.unflatten
    movedim, moveaxis, swapaxes, swapdims = ops.movedim, ops.moveaxis, ops.swapaxes, ops.swapdims

    @property
    def T(self):
        """All axes reversed, as NumPy's ``.T``."""
        return ops.permute(self, *reversed(range(self.ndim)))

    def t(self):
        """The transpose of a tensor of at most 2 dims (PyTorch's ``t``)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {self.shape}; "
                             "use transpose(dim0, dim1) or permute")
        return self.T

    def expand_as(self, other):
        return ops.expand(self, other.shape)

    def reshape_as(self, other):
        return ops.reshape(self, other.shape)

    view_as = reshape_as


def as_tensor(value):
    """``value`` as a Tensor: itself if it is one, else a new Tensor (no copy of an array)."""
    return value if isinstance(value, Tensor) else Tensor(value)


def tensor(data, dtype=None, requires_grad=False, device="cpu"):
    """A new leaf Tensor holding a copy of ``data``."""
    array = _to_array(data, dtype).copy()
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def from_numpy(array):
    """A tensor sharing ``array``'s memory and dtype (a float64 array stays float64, as in
    PyTorch; ``tensor(array)`` copies)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    return Tensor(array)
