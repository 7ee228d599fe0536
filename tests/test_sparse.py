"""Sparse inference (``minigrad/prune/sparse.py``) and the ``csr_matmul`` kernels: both kernel
sets against a dense matmul, the CSR round trip, SparseLinear / SparseConv2d / to_sparse
against the dense layers and a LeNet-5 with 90% of its weights zeroed by hand, and the errors.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend, nn, prune
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.models import LeNet5
from minigrad.prune.sparse import (CSRMatrix, SparseConv2d, SparseLinear, to_csr, to_sparse,
                                   weight_sparsity)

EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True)
KERNEL_SETS = [numpy_ref, numba_cpu]
SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]


def sparse_matrix(shape, sparsity, dtype=np.float32, seed=0):
    """A random matrix with about ``sparsity`` of its entries set to 0."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal(shape).astype(dtype)
    dense[rng.random(shape) < sparsity] = 0
    return dense


def assert_same(ours, reference):
    """Same shape and dtype, values equal to 1e-5 of the reference's scale."""
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    scale = np.abs(reference).max(initial=1.0)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * scale)


def csr_product(kernel_set, dense, x):
    csr = to_csr(dense)
    return kernel_set.csr_matmul(csr.data, csr.indices, csr.indptr, dense.shape[0], x)


# ---------------------------------------------------------------------------- kernels

@EXAMPLES
@given(st.integers(0, 12), st.integers(0, 21), st.integers(0, 9), st.sampled_from(SPARSITIES),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
def test_csr_matmul_kernels_equal_dense_matmul(rows, cols, batch, sparsity, dtype, seed):
    dense = sparse_matrix((rows, cols), sparsity, dtype, seed)
    x = sparse_matrix((cols, batch), 0.0, dtype, seed + 1)
    for kernel_set in KERNEL_SETS:
        assert_same(csr_product(kernel_set, dense, x), dense @ x)


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("batch", [1, 3, 4, 64])
def test_csr_matmul_on_a_lenet_300_layer(kernel_set, sparsity, batch):
    """Long rows (the unrolled loops), both numba loop orders, and X given as a transposed
    batch, the way SparseLinear passes it."""
    dense = sparse_matrix((300, 784), sparsity)
    batch_x = sparse_matrix((batch, 784), 0.0, seed=1)
    assert_same(csr_product(kernel_set, dense, batch_x.T), dense @ batch_x.T)


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
def test_csr_matmul_with_empty_rows_and_mixed_dtypes(kernel_set):
    dense = sparse_matrix((9, 6), 0.3)
    dense[[0, 4, 8]] = 0
    x = sparse_matrix((6, 5), 0.0, np.float64, seed=2)
    out = csr_product(kernel_set, dense, x)
    assert out.dtype == np.float64 and not out[[0, 4, 8]].any()
    assert_same(out, dense.astype(np.float64) @ x)


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
def test_csr_matmul_checks_its_operands(kernel_set):
    csr = to_csr(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"csr_matmul: X must be a \(K, B\) matrix, got "
                                         r"shape \(3,\)"):
        kernel_set.csr_matmul(csr.data, csr.indices, csr.indptr, 3, np.ones(3))
    with pytest.raises(ValueError, match="indptr must have n_rows \\+ 1 = 3 entries"):
        kernel_set.csr_matmul(csr.data, csr.indices, csr.indptr, 2, np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"data \(3,\) and indices \(2,\)"):
        kernel_set.csr_matmul(csr.data, csr.indices[:2], csr.indptr, 3, np.ones((3, 1)))


# ------------------------------------------------------------------------- CSR format

def test_the_worked_example_of_the_docstring():
    dense = np.array([[0, 5, 0, 0], [0, 0, 0, 0], [1, 0, 2, 3]], np.float32)
    csr = to_csr(dense)
    np.testing.assert_array_equal(csr.data, [5, 1, 2, 3])
    np.testing.assert_array_equal(csr.indices, [1, 0, 2, 3])
    np.testing.assert_array_equal(csr.indptr, [0, 1, 1, 4])
    assert csr.shape == (3, 4) and csr.nnz == 4 and csr.sparsity == pytest.approx(2 / 3)
    assert csr.indices.dtype == csr.indptr.dtype == np.int32 and csr.data.dtype == np.float32
    assert csr.nbytes == 4 * 4 + 4 * 4 + 4 * 4
    assert "nnz=4" in repr(csr)


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (0, 5), (5, 0), (31, 2)])
def test_csr_round_trip(shape, dtype, sparsity):
    dense = sparse_matrix(shape, sparsity, dtype)
    csr = to_csr(dense)
    back = csr.to_dense()
    assert back.dtype == dtype and np.array_equal(back, dense)
    assert csr.nnz == np.count_nonzero(dense)
    np.testing.assert_array_equal(to_csr(mg.tensor(dense)).to_dense(), dense)  # a Tensor too


def test_csr_matrix_product_checks_shapes():
    csr = to_csr(sparse_matrix((3, 4), 0.5))
    x = sparse_matrix((4, 2), 0.0, seed=1)
    assert_same(csr @ x, csr.to_dense() @ x)
    with pytest.raises(ValueError, match=r"sparse matrix \(3, 4\) @ X \(5, 2\)"):
        csr.matmul(np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"sparse matrix \(3, 4\) @ X \(4,\)"):
        csr.matmul(np.ones(4, np.float32))


def test_bad_input_to_the_csr_format_is_refused():
    with pytest.raises(ValueError, match=r"to_csr: expected a 2-D matrix, got shape \(4,\)"):
        to_csr(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        to_csr(np.ones((2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="float32 or float64 values only, got int64"):
        to_csr(np.ones((2, 2), np.int64))
    data, indices = np.ones(2, np.float32), np.array([0, 5], np.int32)
    with pytest.raises(ValueError, match=r"column indices must lie in \[0, 3\)"):
        CSRMatrix(data, indices, np.array([0, 1, 2], np.int32), (2, 3))
    with pytest.raises(ValueError, match="indptr must rise from 0 to nnz = 2"):
        CSRMatrix(data, indices % 3, np.array([0, 2, 1], np.int32), (2, 3))
    with pytest.raises(TypeError, match="must be int32"):
        CSRMatrix(data, indices.astype(np.int64), np.array([0, 1, 2], np.int32), (2, 3))


# ----------------------------------------------------------------------------- layers

def zero_weights(module, sparsity, seed=0):
    """Set about ``sparsity`` of every Linear and Conv2d weight to 0, by hand."""
    rng = np.random.default_rng(seed)
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            layer.weight.data[rng.random(layer.weight.shape) < sparsity] = 0
    return module


def dense_and_sparse(dense_module, sparse_module, x):
    with mg.no_grad():
        return dense_module(x).numpy(), sparse_module(x).numpy()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(1, 13), (5, 13), (2, 3, 13)])
def test_sparse_linear_equals_linear(x_shape, bias):
    mg.manual_seed(0)
    linear = zero_weights(nn.Linear(13, 7, bias=bias), 0.9)
    x = mg.tensor(sparse_matrix((int(np.prod(x_shape[:-1])), 13), 0.0).reshape(x_shape))
    expected, ours = dense_and_sparse(linear, SparseLinear(linear), x)
    assert_same(ours, expected)


def test_sparse_linear_uses_the_pruned_weight_orig_times_mask():
    """weight_orig * weight_mask is what it multiplies by, also right after weight_orig
    changed."""
    mg.manual_seed(0)
    linear = nn.Linear(6, 4)
    mask = (np.random.default_rng(0).random((4, 6)) < 0.2).astype(np.float32)
    prune.custom_from_mask(linear, "weight", mask)
    linear.weight_orig.data += 1.0  # as an optimizer step would
    sparse = SparseLinear(linear)
    np.testing.assert_array_equal(sparse.weight.to_dense(), linear.weight_orig.data * mask)
    assert weight_sparsity(linear) == pytest.approx(1 - mask.mean())


@pytest.mark.parametrize("stride, padding, dilation, bias", [
    (1, 0, 1, True), (2, 1, 1, False), ((1, 2), (2, 0), (2, 1), True), (3, 2, 2, True)])
def test_sparse_conv2d_equals_conv2d(stride, padding, dilation, bias):
    mg.manual_seed(0)
    conv = zero_weights(nn.Conv2d(3, 5, (3, 2), stride, padding, dilation, bias=bias), 0.8)
    x = mg.tensor(sparse_matrix((2, 3 * 9 * 8), 0.0).reshape(2, 3, 9, 8))
    expected, ours = dense_and_sparse(conv, SparseConv2d(conv), x)
    assert_same(ours, expected)


@pytest.fixture
def kernel_sets(monkeypatch):
    """``set_cpu_kernels``, with whatever set was active restored after the test."""
    monkeypatch.setattr(backend, "_cpu_kernels", backend.kernels("cpu"))
    return backend.set_cpu_kernels


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("batch", [1, 8])
def test_to_sparse_lenet5_computes_the_same_outputs(kernel_sets, kernels, batch):
    kernel_sets(kernels)
    mg.manual_seed(0)
    model = zero_weights(LeNet5(), 0.9)
    sparse_model = to_sparse(model)
    layers = [type(m) for m in sparse_model.modules()]
    assert layers.count(SparseConv2d) == 2 and layers.count(SparseLinear) == 3
    assert not any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in sparse_model.modules())
    assert isinstance(model.features[0], nn.Conv2d)  # the original is left alone
    x = mg.tensor(sparse_matrix((batch, 28 * 28), 0.0).reshape(batch, 1, 28, 28))
    expected, ours = dense_and_sparse(model, sparse_model, x)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_to_sparse_keeps_layers_below_min_sparsity_dense():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    zero_weights(model[2], 0.7)
    sparse_model = to_sparse(model, min_sparsity=0.5)
    assert [type(m) for m in sparse_model] == [nn.Linear, nn.ReLU, SparseLinear]
    assert not sparse_model.training
    x = mg.tensor(sparse_matrix((4, 8), 0.0))
    expected, ours = dense_and_sparse(model, sparse_model, x)
    assert_same(ours, expected)
    assert isinstance(to_sparse(model[2]), SparseLinear)  # a single layer is converted too
    assert isinstance(to_sparse(model[0], min_sparsity=0.0), SparseLinear)
    with pytest.raises(ValueError, match=r"min_sparsity must be in \[0, 1\], got 1.5"):
        to_sparse(model, min_sparsity=1.5)


def test_sparse_layers_refuse_gradients_and_wrong_shapes():
    mg.manual_seed(0)
    sparse = SparseLinear(nn.Linear(4, 3))
    with pytest.raises(RuntimeError, match="SparseLinear is inference only .*no_grad"):
        sparse(mg.randn(2, 4, requires_grad=True))
    with mg.no_grad():
        assert sparse(mg.randn(2, 4, requires_grad=True)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"SparseLinear: input \(2, 5\) has 5 features, "
                                         r"weight \(3, 4\) expects 4"):
        sparse(mg.randn(2, 5))
    conv = SparseConv2d(nn.Conv2d(2, 3, 3))
    with pytest.raises(ValueError, match=r"SparseConv2d: input \(1, 4, 5, 5\) .* weight "
                                         r"\(3, 2, 3, 3\)"):
        conv(mg.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="SparseConv2d: input .* does not fit"):
        conv(mg.randn(1, 2, 2, 2))


def test_gpu_arrays_are_refused_with_a_clear_error(monkeypatch):
    """No GPU needed: every array is made to look like a CuPy one."""
    sparse, x = SparseLinear(nn.Linear(4, 3)), mg.randn(2, 4)
    monkeypatch.setattr(backend, "is_cupy_array", lambda array: True)
    with pytest.raises(TypeError, match="to_csr: sparse inference runs on the CPU only"):
        to_csr(np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="SparseLinear: .* CPU only, got a CuPy"):
        sparse(x)
