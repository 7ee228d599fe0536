"""The Numba kernel set (``backend/numba_cpu/``) against the NumPy reference: every kernel on
geometry drawn by Hypothesis, the blocked GEMM against ``np.matmul``, a whole LeNet-5 training
step under both kernel sets, and a kernel run as plain Python with ``NUMBA_DISABLE_JIT=1``."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend, optim
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.models import LeNet5
from minigrad.nn import functional as F

from kernel_cases import DTYPES, EXAMPLES, assert_same, random, windows


@EXAMPLES
@given(windows(), st.integers(1, 5), DTYPES, st.integers(0, 2**16))
def test_conv2d_kernels_equal_the_reference(window, out_channels, dtype, seed):
    shape, kernel, stride, padding, dilation = window
    x = random(shape, dtype, seed)
    weight = random((out_channels, shape[1]) + kernel, dtype, seed + 1)
    geometry = (stride, padding, dilation)
    out = numpy_ref.conv2d_forward(x, weight, *geometry)
    assert_same(numba_cpu.conv2d_forward(x, weight, *geometry), out)
    grad = random(out.shape, dtype, seed + 2)
    assert_same(numba_cpu.conv2d_backward_input(grad, weight, x.shape, *geometry),
                numpy_ref.conv2d_backward_input(grad, weight, x.shape, *geometry))
    assert_same(numba_cpu.conv2d_backward_weight(grad, x, weight.shape, *geometry),
                numpy_ref.conv2d_backward_weight(grad, x, weight.shape, *geometry))


@pytest.mark.parametrize("out_channels", [numba_cpu.conv.BLAS_FROM_OUT_CHANNELS - 1,
                                          numba_cpu.conv.BLAS_FROM_OUT_CHANNELS])
def test_narrow_convolutions_run_the_loops_wide_ones_the_reference(out_channels):
    x, weight = random((2, 3, 9, 8), np.float32, 0), random((out_channels, 3, 3, 2), np.float32, 1)
    geometry = ((2, 1), (1, 1), (1, 2))
    out = numpy_ref.conv2d_forward(x, weight, *geometry)
    grad = random(out.shape, np.float32, 2)
    assert_same(numba_cpu.conv2d_forward(x, weight, *geometry), out)
    assert_same(numba_cpu.conv2d_backward_input(grad, weight, x.shape, *geometry),
                numpy_ref.conv2d_backward_input(grad, weight, x.shape, *geometry))
    assert_same(numba_cpu.conv2d_backward_weight(grad, x, weight.shape, *geometry),
                numpy_ref.conv2d_backward_weight(grad, x, weight.shape, *geometry))


@EXAMPLES
@given(windows(), DTYPES, st.integers(0, 2**16))
def test_max_pool2d_kernels_equal_the_reference(window, dtype, seed):
    shape, kernel, stride, padding, dilation = window
    # Small integers make ties common: the first maximum in (kh, kw) order must win.
    x = np.random.default_rng(seed).integers(-2, 3, shape).astype(dtype)
    out, winner = numpy_ref.max_pool2d_forward(x, kernel, stride, padding, dilation)
    ours, our_winner = numba_cpu.max_pool2d_forward(x, kernel, stride, padding, dilation)
    assert_same(ours, out)
    assert our_winner.dtype == winner.dtype == np.int32 and np.array_equal(our_winner, winner)
    grad = random(out.shape, dtype, seed)
    assert_same(numba_cpu.max_pool2d_backward(grad, winner, shape, kernel, stride, padding,
                                              dilation),
                numpy_ref.max_pool2d_backward(grad, winner, shape, kernel, stride, padding,
                                              dilation))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape, padding", [((3, 4, 8, 8), (0, 0)), ((1, 2, 9, 7), (0, 0)),
                                            ((2, 3, 7, 6), (1, 1)), ((2, 1, 5, 8), (0, 1))])
def test_the_2x2_stride_2_pooling_loop_equals_the_reference(shape, padding, dtype):
    """The 2x2, stride-2 windows have a loop of their own (``_max_pool2x2_forward``): ties of
    small integers, NaNs, odd sizes and padding, as the general one."""
    x = np.random.default_rng(shape[2]).integers(-2, 3, shape).astype(dtype)
    if dtype != np.int32:
        x[0, 0, 1, :3] = np.nan
    window = ((2, 2), (2, 2), padding, (1, 1))
    out, winner = numpy_ref.max_pool2d_forward(x, *window)
    ours, our_winner = numba_cpu.max_pool2d_forward(x, *window)
    np.testing.assert_array_equal(ours, out)
    assert our_winner.dtype == np.int32 and np.array_equal(our_winner, winner)


@EXAMPLES
@given(windows(dilation=False), DTYPES, st.integers(0, 2**16))
def test_avg_pool2d_kernels_equal_the_reference(window, dtype, seed):
    shape, kernel, stride, padding, _ = window
    x = random(shape, dtype, seed)
    out = numpy_ref.avg_pool2d_forward(x, kernel, stride, padding)
    assert_same(numba_cpu.avg_pool2d_forward(x, kernel, stride, padding), out)
    grad = random(out.shape, dtype, seed + 1)
    assert_same(numba_cpu.avg_pool2d_backward(grad, shape, kernel, stride, padding),
                numpy_ref.avg_pool2d_backward(grad, shape, kernel, stride, padding))


def test_windows_that_do_not_fit_raise_the_reference_error():
    x, weight = np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5))
    with pytest.raises(ValueError, match="window of size 5 .* does not fit an input of size 3"):
        numba_cpu.conv2d_forward(x, weight, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="window of size 4 .* does not fit"):
        numba_cpu.max_pool2d_forward(x, (4, 4), (1, 1), (0, 0), (1, 1))


def test_matmul_keeps_numpy_semantics():
    a, b = random((2, 1, 3, 4), np.float32, 0), random((5, 4, 2), np.float32, 1)
    # numba_cpu.matmul is np.matmul underneath (BLAS): the same call, so bit-exact.
    np.testing.assert_array_equal(numba_cpu.matmul(a, b), np.matmul(a, b))
    np.testing.assert_array_equal(numba_cpu.matmul(a[0, 0, 0], b[0]), np.matmul(a[0, 0, 0], b[0]))


@pytest.fixture
def kernel_sets(monkeypatch):
    """``set_cpu_kernels``, with whatever set was active restored after the test."""
    monkeypatch.setattr(backend, "_cpu_kernels", backend.kernels("cpu"))
    return backend.set_cpu_kernels


def lenet_steps(steps=2):
    """Loss and gradients after ``steps`` SGD-momentum steps of LeNet-5 on a fixed batch."""
    mg.manual_seed(0)
    model = LeNet5()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = mg.tensor(random((8, 1, 28, 28), np.float32, 0))
    y = mg.tensor(np.arange(8) % 10)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item(), {name: p.grad.numpy().copy() for name, p in model.named_parameters()}


def test_a_lenet5_training_step_is_the_same_under_both_kernel_sets(kernel_sets):
    kernel_sets("numpy")
    loss, grads = lenet_steps()
    kernel_sets("numba")
    our_loss, our_grads = lenet_steps()
    assert our_loss == pytest.approx(loss, rel=1e-5)
    for name, grad in grads.items():
        np.testing.assert_allclose(our_grads[name], grad, rtol=1e-4, atol=1e-6, err_msg=name)


PLAIN_PYTHON_CONV = """
import inspect, sys
import numpy as np
from minigrad.backend import numba_cpu
assert inspect.isfunction(numba_cpu.conv._conv2d_forward)  # a Python function, not a Numba dispatcher
x, weight = (np.random.default_rng(seed).standard_normal(shape)
             for seed, shape in [(0, (2, 3, 7, 6)), (1, (4, 3, 3, 2))])
np.save(sys.argv[1], numba_cpu.conv2d_forward(x, weight, (2, 1), (1, 2), (1, 2)))
"""


def test_a_kernel_runs_as_plain_python_with_the_jit_disabled(tmp_path):
    path = tmp_path / "plain.npy"
    subprocess.run([sys.executable, "-c", PLAIN_PYTHON_CONV, str(path)], check=True,
                   env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    x, weight = (np.random.default_rng(seed).standard_normal(shape)
                 for seed, shape in [(0, (2, 3, 7, 6)), (1, (4, 3, 3, 2))])
    assert not inspect.isfunction(numba_cpu.conv._conv2d_forward)
    np.testing.assert_allclose(np.load(path),
                               numba_cpu.conv2d_forward(x, weight, (2, 1), (1, 2), (1, 2)),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_equals_the_reference_to_one_ulp(dtype):
    """Both call libm's erf; the float32 ufunc may round its result differently, by one ulp."""
    x = np.concatenate([np.linspace(-6, 6, 2001), [-0.0, 1e-30, np.inf, -np.inf]]).astype(dtype)
    ours, reference = numba_cpu.erf(x), numpy_ref.erf(x)
    assert ours.dtype == dtype
    assert np.max(np.abs(ours - reference) / np.spacing(np.abs(reference))) <= 1
    np.testing.assert_array_equal(numba_cpu.erf(np.array([np.nan], dtype)), [np.nan])
