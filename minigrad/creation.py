"""Making tensors: filled with a value (zeros, ones, full, empty, eye), ranges (arange,
linspace, logspace), random samples from minigrad's seeded generator (rand, randn, randint,
randperm), index sets (tril_indices, triu_indices), and the ``*_like`` forms that take the
shape, dtype and device of another tensor.

dtypes follow PyTorch: float32 unless asked otherwise, int64 for integer ranges and indices.
The constructors take ``dtype`` and ``device`` (the ``*_like`` forms take them from the
tensor), and those of float tensors ``requires_grad`` as well.
"""

import numpy as np

from minigrad import backend
from minigrad import random as mg_random
from minigrad.ops.shape import shape_argument
from minigrad.tensor import Tensor, _to_array, tensor


def _full(shape, value, dtype, requires_grad, device):
    array = np.full(shape_argument(shape), value, dtype=np.float32 if dtype is None else dtype)
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu"):
    """``zeros(2, 3)`` or ``zeros((2, 3))``: a float32 tensor of zeros."""
    return _full(shape, 0, dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device="cpu"):
    return _full(shape, 1, dtype, requires_grad, device)


def empty(*shape, dtype=None, requires_grad=False, device="cpu"):
    """A tensor whose values are whatever the memory held (as ``torch.empty``): fill it before
    reading it."""
    array = np.empty(shape_argument(shape), dtype=np.float32 if dtype is None else dtype)
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device="cpu"):
    """The n x m identity matrix (ones on the diagonal), m = n by default."""
    array = np.eye(n, n if m is None else m, dtype=np.float32 if dtype is None else dtype)
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


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


def linspace(start, end, steps, dtype=None, requires_grad=False, device="cpu"):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included:
    start + i (end - start) / (steps - 1)."""
    array = np.linspace(start, end, steps)
    return tensor(array, dtype or np.float32, requires_grad, device)


def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False, device="cpu"):
    """base ** linspace(start, end, steps)."""
    array = np.float_power(base, np.linspace(start, end, steps))
    return tensor(array, dtype or np.float32, requires_grad, device)


def randn(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Samples from the standard normal distribution N(0, 1), from the seeded generator."""
    array = mg_random.generator().standard_normal(shape_argument(shape))
    return tensor(array, dtype or np.float32, requires_grad, device)


def rand(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Samples from the uniform distribution on [0, 1), from the seeded generator."""
    array = mg_random.generator().random(shape_argument(shape))
    return tensor(array, dtype or np.float32, requires_grad, device)


def randint(low, high=None, size=(), dtype=None, device="cpu"):
    """Integers drawn uniformly from [low, high), int64; ``randint(high, size)`` draws from
    [0, high), as ``torch.randint(high, size)``."""
    if high is None or isinstance(high, (tuple, list)):
        low, high, size = 0, low, size if high is None else high
    array = mg_random.generator().integers(low, high, size=shape_argument((size,)))
    return tensor(array, dtype or np.int64, device=device)


def randperm(n, dtype=None, device="cpu"):
    """A random permutation of 0 .. n-1 (int64)."""
    return tensor(mg_random.generator().permutation(n), dtype or np.int64, device=device)


def tril_indices(row, col, offset=0, dtype=None, device="cpu"):
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, diagonal
    ``offset`` included, in row-major order (as ``torch.tril_indices``)."""
    return tensor(np.stack(np.tril_indices(row, offset, col)), dtype or np.int64,
                  device=device)


def triu_indices(row, col, offset=0, dtype=None, device="cpu"):
    """The (2, N) indices of the upper triangle, from diagonal ``offset`` up (as
    ``torch.triu_indices``)."""
    return tensor(np.stack(np.triu_indices(row, offset, col)), dtype or np.int64,
                  device=device)


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
empty_like = _like(empty)


def full_like(other, fill_value, dtype=None, requires_grad=False):
    return full(other.shape, fill_value, dtype or other.dtype, requires_grad, other.device)
