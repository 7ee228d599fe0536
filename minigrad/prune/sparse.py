"""Sparse inference for pruned layers: weights in CSR form, and layers that multiply by them.

A pruned weight is mostly zeros. CSR (compressed sparse row) keeps only the nonzero values,
row by row, in three arrays:

    A = [[0, 5, 0, 0],        data    = [5, 1, 2, 3]    the nonzero values, row after row
         [0, 0, 0, 0],        indices = [1, 0, 2, 3]    the column of each value
         [1, 0, 2, 3]]        indptr  = [0, 1, 1, 4]    row i is data[indptr[i]:indptr[i+1]]

Row 0 holds data[0:1] = [5] in column 1; row 1 is data[1:1], empty; row 2 holds data[1:4] =
[1, 2, 3] in columns 0, 2, 3. A product Y = A @ X then only touches stored values:

    Y[i, :] = sum over j in indptr[i] .. indptr[i+1]-1 of data[j] * X[indices[j], :]

(``kernels("cpu").csr_matmul``; the reference is ``backend/numpy_ref.py``, the fast version
``backend/numba_cpu/sparse.py``). In float32 with int32 indices a stored value costs 8 bytes instead
of 4, so CSR is smaller than the dense matrix above 50% sparsity, and 5x smaller at 90%.
Whether it is also faster depends on the sparsity and the batch: see "Sparse (CSR) matmul" in
``docs/performance.md`` and ``benchmarks/sparse.py``.

    sparse_model = to_sparse(pruned_model, min_sparsity=0.5)
    with minigrad.no_grad():
        y = sparse_model(x)             # equals pruned_model(x)

``SparseLinear`` computes y = x W^T + b as (W @ x^T)^T + b, and ``SparseConv2d`` a convolution
as W (O x C*KH*KW) @ im2col(x) + b (the reference convolution's matrix product, with a sparse
W). Both are inference only: they have no backward, and raise an error when called on an
input that requires a gradient with grad mode on. They run on the CPU only. The CSR weight is
a plain attribute, not a Parameter or buffer, so a sparse model's ``state_dict`` holds only
biases: save the pruned dense model, and convert it after loading.
"""

import copy
from dataclasses import dataclass

import numpy as np

from minigrad import backend
from minigrad.autograd import is_grad_enabled
from minigrad.backend import kernels
from minigrad.nn.layers import Conv2d, Linear
from minigrad.nn.module import Module
from minigrad.ops.nn import check_window_fits
from minigrad.prune.reparam import effective_weight
from minigrad.tensor import Tensor

INDEX_DTYPE = np.int32


def _cpu_array(value, name):
    """The NumPy array of a Tensor or array; TypeError for a CuPy (GPU) array."""
    array = value.data if isinstance(value, Tensor) else value
    if backend.is_cupy_array(array):
        raise TypeError(f"{name}: sparse inference runs on the CPU only, got a CuPy (cuda) "
                        "array; move it with .to('cpu') first")
    return np.asarray(array)


@dataclass(frozen=True, eq=False)
class CSRMatrix:
    """A sparse (rows x cols) matrix in CSR form (see the module docstring): float32 or float64
    ``data``, int32 ``indices`` and ``indptr``. The arrays are checked once, here; the kernels
    trust them (a column index out of range would read outside X)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple

    def __post_init__(self):
        rows, cols = self.shape
        if self.data.dtype not in (np.float32, np.float64):
            raise TypeError(f"CSRMatrix: data must be float32 or float64, got {self.data.dtype}")
        if self.indices.dtype != INDEX_DTYPE or self.indptr.dtype != INDEX_DTYPE:
            raise TypeError(f"CSRMatrix: indices and indptr must be int32, got "
                            f"{self.indices.dtype} and {self.indptr.dtype}")
        if (self.data.ndim != 1 or self.indices.shape != self.data.shape
                or self.indptr.shape != (rows + 1,)):
            raise ValueError(f"CSRMatrix {self.shape}: need 1-D data and indices of one length "
                             f"and rows + 1 = {rows + 1} row pointers, got data "
                             f"{self.data.shape}, indices {self.indices.shape}, indptr "
                             f"{self.indptr.shape}")
        if (self.indptr[0] != 0 or self.indptr[-1] != len(self.data)
                or np.any(np.diff(self.indptr) < 0)):
            raise ValueError(f"CSRMatrix {self.shape}: indptr must rise from 0 to nnz = "
                             f"{len(self.data)}, got {self.indptr[0]} .. {self.indptr[-1]}")
        if len(self.indices) and not 0 <= self.indices.min() <= self.indices.max() < cols:
            raise ValueError(f"CSRMatrix {self.shape}: column indices must lie in [0, {cols}), "
                             f"got {self.indices.min()} .. {self.indices.max()}")

    @property
    def nnz(self):
        """Number of stored (nonzero) values."""
        return len(self.data)

    @property
    def sparsity(self):
        """Fraction of the entries that are zero."""
        size = self.shape[0] * self.shape[1]
        return 1 - self.nnz / size if size else 0.0

    @property
    def nbytes(self):
        """Bytes held by the three arrays (the dense matrix takes rows * cols * itemsize)."""
        return self.data.nbytes + self.indices.nbytes + self.indptr.nbytes

    def to_dense(self):
        """The dense (rows x cols) array: each stored value put back at (row, column)."""
        dense = np.zeros(self.shape, self.data.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        dense[rows, self.indices] = self.data
        return dense

    def matmul(self, x):
        """A @ X for a dense (cols x B) NumPy array X, with the CPU kernel set's csr_matmul."""
        x = _cpu_array(x, "CSRMatrix.matmul")
        if x.ndim != 2 or x.shape[0] != self.shape[1]:
            raise ValueError(f"CSRMatrix.matmul: sparse matrix {self.shape} @ X {x.shape}: X "
                             f"must be a matrix with {self.shape[1]} rows")
        return kernels("cpu").csr_matmul(self.data, self.indices, self.indptr, self.shape[0], x)

    __matmul__ = matmul

    def __repr__(self):
        return (f"CSRMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.data.dtype}, "
                f"sparsity={self.sparsity:.1%})")


def to_csr(dense):
    """The CSR form of a 2-D float32/float64 array or Tensor (every nonzero entry is stored)."""
    dense = _cpu_array(dense, "to_csr")
    if dense.ndim != 2:
        raise ValueError(f"to_csr: expected a 2-D matrix, got shape {dense.shape}")
    if dense.dtype not in (np.float32, np.float64):
        raise TypeError(f"to_csr: float32 or float64 values only, got {dense.dtype}")
    if np.count_nonzero(dense) > np.iinfo(INDEX_DTYPE).max:
        raise ValueError(f"to_csr: {np.count_nonzero(dense)} nonzeros do not fit int32 indices")
    rows, cols = np.nonzero(dense)  # row by row, columns ascending within a row: CSR's order
    indptr = np.zeros(dense.shape[0] + 1, INDEX_DTYPE)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
    return CSRMatrix(dense[rows, cols], cols.astype(INDEX_DTYPE), indptr, dense.shape)


def weight_sparsity(module):
    """Fraction of zeros in the effective weight of ``module``."""
    weight = effective_weight(module, "weight")
    return 1 - np.count_nonzero(weight) / weight.size if weight.size else 0.0


class _SparseLayer(Module):
    """What SparseLinear and SparseConv2d share: the CSR weight (``weight``, a plain
    attribute), the bias (a buffer or None), the checks on the input, and W @ X + b."""

    storage_kind = "csr"  # the weight format ``quant.model_size`` shows

    def __init__(self, dense, weight_2d):
        super().__init__()
        self.weight = to_csr(weight_2d)
        bias = None if dense.bias is None else Tensor(_cpu_array(dense.bias, "bias").copy())
        self.register_buffer("bias", bias)

    def _input_array(self, x):
        name = type(self).__name__
        if is_grad_enabled() and getattr(x, "requires_grad", False):
            raise RuntimeError(f"{name} is inference only (it has no backward) and the input "
                               "requires a gradient: run it under minigrad.no_grad(), or train "
                               "the dense model")
        return _cpu_array(x, name)

    def _times_weight(self, x_2d):
        """W @ X for a (K, B) array X; the result is (O, B)."""
        w = self.weight
        return kernels("cpu").csr_matmul(w.data, w.indices, w.indptr, w.shape[0], x_2d)

    def extra_repr(self):
        return f"{self.weight}, bias={self.bias is not None}"


class SparseLinear(_SparseLayer):
    """y = x W^T + b with W in CSR form, computed as (W @ x^T)^T + b. Built from a Linear,
    pruned or not: ``SparseLinear(linear)``."""

    def __init__(self, linear):
        super().__init__(linear, effective_weight(linear, "weight"))
        self.out_features, self.in_features = self.weight.shape

    def forward(self, x):
        x = self._input_array(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"SparseLinear: input {x.shape} has {x.shape[-1] if x.ndim else 0} "
                             f"features, weight {self.weight.shape} expects {self.in_features}")
        y = self._times_weight(x.reshape(-1, self.in_features).T).T
        y = y.reshape(x.shape[:-1] + (self.out_features,))
        return Tensor(y if self.bias is None else y + self.bias.data)


class SparseConv2d(_SparseLayer):
    """A convolution with its (O, C, KH, KW) weight as a CSR matrix of shape (O, C*KH*KW):
    out = W @ im2col(x) + b, reshaped to (N, O, H_out, W_out). Built from a Conv2d."""

    def __init__(self, conv):
        if conv.groups != 1:  # a grouped weight is one CSR matrix per group, not one
            raise ValueError(f"SparseConv2d: the Conv2d has groups={conv.groups}; only groups=1 "
                             "is supported")
        weight = effective_weight(conv, "weight")
        super().__init__(conv, weight.reshape(len(weight), -1))
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation

    def forward(self, x):
        x = self._input_array(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SparseConv2d: input {x.shape} (N, C, H, W) and weight "
                             f"{(self.out_channels, self.in_channels) + self.kernel_size} "
                             "(O, C, KH, KW) must agree on C")
        geometry = (self.stride, self.padding, self.dilation)
        check_window_fits("SparseConv2d", x.shape, self.kernel_size, *geometry)
        cols, out_hw = kernels("cpu").im2col(x, self.kernel_size, *geometry)
        out = self._times_weight(cols).reshape((self.out_channels, len(x)) + out_hw)
        out = np.ascontiguousarray(out.transpose(1, 0, 2, 3))
        return Tensor(out if self.bias is None else out + self.bias.data.reshape(1, -1, 1, 1))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                + super().extra_repr())


SPARSE_VERSION = {Linear: SparseLinear, Conv2d: SparseConv2d}


def _sparse_version(module):
    return next((sparse for dense, sparse in SPARSE_VERSION.items()
                 if isinstance(module, dense)), None)


def to_sparse(model, min_sparsity=0.5):
    """A copy of ``model`` (in eval mode) in which every Linear and Conv2d whose effective
    weight has at least ``min_sparsity`` zeros is replaced by SparseLinear / SparseConv2d.
    ``model`` itself is not changed. The copy computes the same outputs, for inference only."""
    if not 0 <= min_sparsity <= 1:
        raise ValueError(f"to_sparse: min_sparsity must be in [0, 1], got {min_sparsity}")

    def convert(module):
        sparse = _sparse_version(module)
        return sparse(module) if sparse and weight_sparsity(module) >= min_sparsity else None

    sparse_model = copy.deepcopy(model)
    whole = convert(sparse_model)
    if whole is not None:  # the model is itself one layer
        return whole.eval()
    for _, parent in list(sparse_model.named_modules()):
        for name, child in list(parent.named_children()):
            replacement = convert(child)
            if replacement is not None:
                parent.add_module(name, replacement)  # in place: a Sequential keeps its order
    return sparse_model.eval()
