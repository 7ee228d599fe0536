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
from minigrad import random as mg_random
from minigrad.autograd import TensorBase
from minigrad.ops.shape import shape_argument


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

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python "
                             f"number, got shape {self.shape}")
        return self.data.item()

    def numpy(self):
        """The data as a NumPy array (shares memory on the CPU, copies from a GPU)."""
        return backend.to_device(self.data, "cpu")

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
        """A new leaf sharing the same data, cut off from the graph."""
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    # ----------------------------------------------------------------- conversions
    def to(self, target):
        """Move to a device (``"cpu"``/``"cuda"``) or cast to a dtype; differentiable."""
        if isinstance(target, str) and target in backend.DEVICES:
            return ops.to_device(self, target)
        return ops.cast(self, target)

    def float(self):
        return ops.cast(self, np.float32)

    def double(self):
        return ops.cast(self, np.float64)

    def long(self):
        return ops.cast(self, np.int64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

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
    clip = clamp = ops.clip
    maximum, minimum = ops.maximum, ops.minimum
    relu, sigmoid, tanh, softmax, log_softmax = (ops.relu, ops.sigmoid, ops.tanh, ops.softmax,
                                                 ops.log_softmax)
    matmul = ops.matmul

    # reductions
    sum, mean, var, max, min, logsumexp = (ops.sum, ops.mean, ops.var, ops.max, ops.min,
                                           ops.logsumexp)
    argmax, argmin = ops.argmax, ops.argmin

    # shape
    reshape = view = ops.reshape
    transpose, permute, flatten, squeeze, unsqueeze = (ops.transpose, ops.permute, ops.flatten,
                                                       ops.squeeze, ops.unsqueeze)
    expand, broadcast_to, split = ops.expand, ops.broadcast_to, ops.split

    @property
    def T(self):
        """All axes reversed, as NumPy's ``.T``."""
        return ops.permute(self, *reversed(range(self.ndim)))


def as_tensor(value):
    """``value`` as a Tensor: itself if it is one, else a new Tensor (no copy of an array)."""
    return value if isinstance(value, Tensor) else Tensor(value)


# ------------------------------------------------------------------------- constructors
def tensor(data, dtype=None, requires_grad=False, device="cpu"):
    """A new leaf Tensor holding a copy of ``data``."""
    array = _to_array(data, dtype).copy()
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def _full(shape, value, dtype, requires_grad, device):
    array = np.full(shape_argument(shape), value, dtype=np.float32 if dtype is None else dtype)
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu"):
    """``zeros(2, 3)`` or ``zeros((2, 3))``: a float32 tensor of zeros."""
    return _full(shape, 0, dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device="cpu"):
    return _full(shape, 1, dtype, requires_grad, device)


def full(shape, fill_value, dtype=None, requires_grad=False, device="cpu"):
    """A tensor filled with ``fill_value``; its dtype follows the value (1.0 float32, 1 int64)."""
    if dtype is None:
        dtype = _to_array(fill_value).dtype
    return _full((shape,), fill_value, dtype, requires_grad, device)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    """Values from ``start`` (inclusive) to ``stop`` (exclusive); int64 if all are ints."""
    if stop is None:
        start, stop = 0, start
    array = np.arange(start, stop, step)
    if dtype is None and array.dtype == np.float64:
        dtype = np.float32
    return tensor(array, dtype, requires_grad, device)


def randn(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Samples from the standard normal distribution N(0, 1), from the seeded generator."""
    array = mg_random.generator().standard_normal(shape_argument(shape))
    return tensor(array, dtype or np.float32, requires_grad, device)


def rand(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Samples from the uniform distribution on [0, 1), from the seeded generator."""
    array = mg_random.generator().random(shape_argument(shape))
    return tensor(array, dtype or np.float32, requires_grad, device)


def _like(fill):
    def constructor(other, dtype=None, requires_grad=False):
        return fill(other.shape, dtype=dtype or other.dtype, requires_grad=requires_grad,
                    device=other.device)

    constructor.__name__ = f"{fill.__name__}_like"
    constructor.__doc__ = f"``{fill.__name__}`` with the shape, dtype and device of a tensor."
    return constructor


zeros_like = _like(zeros)
ones_like = _like(ones)
randn_like = _like(randn)
rand_like = _like(rand)


def full_like(other, fill_value, dtype=None, requires_grad=False):
    return full(other.shape, fill_value, dtype or other.dtype, requires_grad, other.device)
