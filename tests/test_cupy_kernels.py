"""The CUDA kernels (``backend/cupy_gpu.py``) equal the NumPy reference kernels: each runs on
random geometries (odd sizes, batch 1, strides 1-3, paddings 0-2, dilations 1-2, rectangular
kernels; float32 and float64) and must give ``numpy_ref``'s result for the same data on the CPU.
Skipped (with the reason) without CuPy or a CUDA GPU."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import backend

try:
    cupy = backend.cupy_module()
except RuntimeError as error:
    pytest.skip(f"GPU tests need a CUDA GPU and CuPy (.venv/bin/pip install -e \".[cuda]\"): "
                f"{error}", allow_module_level=True)

from helpers import tolerances  # noqa: E402 (after the skip)
from kernel_cases import DTYPES, EXAMPLES, windows  # noqa: E402
from minigrad.backend import cupy_gpu, numpy_ref  # noqa: E402

pytestmark = pytest.mark.gpu


def random_arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def assert_same(gpu_result, cpu_result):
    """The GPU result equals the reference's: same dtype, shape and values."""
    assert isinstance(gpu_result, cupy.ndarray)
    assert gpu_result.dtype == cpu_result.dtype
    np.testing.assert_allclose(cupy.asnumpy(gpu_result), cpu_result,
                               **tolerances(cpu_result.dtype))


def test_cuda_device_gets_the_cupy_kernels():
    assert backend.kernels("cuda") is cupy_gpu


@EXAMPLES
@given(m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9),
       batch=st.sampled_from([(), (1,), (3,)]), dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_matmul(m, k, n, batch, dtype, seed):
    a, b = random_arrays(seed, dtype, batch + (m, k), (k, n))
    assert_same(cupy_gpu.matmul(cupy.asarray(a), cupy.asarray(b)), numpy_ref.matmul(a, b))


@EXAMPLES
@given(geometry=windows(), out_channels=st.integers(1, 4), dtype=DTYPES,
       seed=st.integers(0, 2**32 - 1))
def test_conv2d_forward_and_both_gradients(geometry, out_channels, dtype, seed):
    x_shape, kernel_hw, *conv_args = geometry  # conv_args: stride, padding, dilation
    w_shape = (out_channels, x_shape[1]) + kernel_hw
    out_shape = (x_shape[0], out_channels) + numpy_ref._geometry(x_shape, kernel_hw, *conv_args)
    x, w, grad_out = random_arrays(seed, dtype, x_shape, w_shape, out_shape)
    x_gpu, w_gpu, grad_gpu = map(cupy.asarray, (x, w, grad_out))
    assert_same(cupy_gpu.conv2d_forward(x_gpu, w_gpu, *conv_args),
                numpy_ref.conv2d_forward(x, w, *conv_args))
    assert_same(cupy_gpu.conv2d_backward_input(grad_gpu, w_gpu, x_shape, *conv_args),
                numpy_ref.conv2d_backward_input(grad_out, w, x_shape, *conv_args))
    assert_same(cupy_gpu.conv2d_backward_weight(grad_gpu, x_gpu, w_shape, *conv_args),
                numpy_ref.conv2d_backward_weight(grad_out, x, w_shape, *conv_args))


@EXAMPLES
@given(geometry=windows(), dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_max_pool2d_forward_and_gradient(geometry, dtype, seed):
    # small integers: many ties, so the first-maximum rule is exercised
    x_shape, *window = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=x_shape).astype(dtype)
    out, winner = numpy_ref.max_pool2d_forward(x, *window)
    out_gpu, winner_gpu = cupy_gpu.max_pool2d_forward(cupy.asarray(x), *window)
    assert_same(out_gpu, out)
    assert winner_gpu.dtype == np.int32
    np.testing.assert_array_equal(cupy.asnumpy(winner_gpu), winner)

    grad_out = rng.standard_normal(out.shape).astype(dtype)
    assert_same(cupy_gpu.max_pool2d_backward(cupy.asarray(grad_out), winner_gpu, x_shape, *window),
                numpy_ref.max_pool2d_backward(grad_out, winner, x_shape, *window))


@EXAMPLES
@given(geometry=windows(dilation=False), dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_avg_pool2d_forward_and_gradient(geometry, dtype, seed):
    x_shape, kernel_hw, stride, padding, _ = geometry
    out_shape = x_shape[:2] + numpy_ref._geometry(x_shape, kernel_hw, stride, padding, (1, 1))
    x, grad_out = random_arrays(seed, dtype, x_shape, out_shape)
    assert_same(cupy_gpu.avg_pool2d_forward(cupy.asarray(x), kernel_hw, stride, padding),
                numpy_ref.avg_pool2d_forward(x, kernel_hw, stride, padding))
    assert_same(cupy_gpu.avg_pool2d_backward(cupy.asarray(grad_out), x_shape, kernel_hw, stride,
                                             padding),
                numpy_ref.avg_pool2d_backward(grad_out, x_shape, kernel_hw, stride, padding))


def test_kernels_read_non_contiguous_arrays():
    # conv2d_forward returns a transposed view, and a gradient can be a broadcast view
    base = np.random.default_rng(0).standard_normal((3, 5, 7, 2))
    x, x_gpu = base.transpose(1, 0, 3, 2), cupy.asarray(base).transpose(1, 0, 3, 2)
    window = ((2, 3), (1, 2), (1, 0), (1, 1))
    out, winner = numpy_ref.max_pool2d_forward(x, *window)
    assert_same(cupy_gpu.max_pool2d_forward(x_gpu, *window)[0], out)
    grad_out = cupy.broadcast_to(cupy.ones(1), out.shape)
    assert_same(cupy_gpu.max_pool2d_backward(grad_out, cupy.asarray(winner), x.shape, *window),
                numpy_ref.max_pool2d_backward(np.ones(out.shape), winner, x.shape, *window))


def test_other_dtypes_are_a_clear_error():
    with pytest.raises(TypeError, match="float32 or float64.*float16"):
        cupy_gpu.avg_pool2d_forward(cupy.ones((1, 1, 2, 2), np.float16), (2, 2), (2, 2), (0, 0))
