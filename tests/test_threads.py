"""``backend.set_num_threads``: it sets BLAS's threads (as threadpoolctl reports them) and
Numba's together, or with ``owner="kernels"`` gives the threads to the direct Numba kernels and
one to BLAS; it rejects counts the machine cannot run and unknown owners, and leaves every
kernel's result equal to the reference's."""

import os

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from minigrad import backend
from minigrad.backend import numba_cpu, numpy_ref

from kernel_cases import assert_same, random

COUNTS = sorted({1, min(2, os.cpu_count())})


@pytest.fixture(autouse=True)
def restore_threads():
    blas, numba_threads = backend.get_num_threads(), numba.get_num_threads()
    yield
    backend.set_num_threads(blas)
    numba.set_num_threads(numba_threads)


def blas_counts():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize("threads", COUNTS)
def test_set_num_threads_sets_blas_and_numba(threads):
    other = COUNTS[-1] if threads == COUNTS[0] else COUNTS[0]
    backend.set_num_threads(other)
    backend.set_num_threads(threads)
    assert blas_counts() == {threads}
    assert backend.get_num_threads() == threads
    assert numba.get_num_threads() == threads


@pytest.mark.parametrize("threads", [0, -1, os.cpu_count() + 1, 1.5, "2"])
def test_set_num_threads_rejects_counts_outside_the_cores(threads):
    before = blas_counts()
    with pytest.raises(ValueError, match=rf"from 1 to {os.cpu_count()}.*got {threads!r}"):
        backend.set_num_threads(threads)
    assert blas_counts() == before


@pytest.mark.parametrize("threads", COUNTS)
def test_the_kernels_can_own_the_threads_and_blas_then_runs_on_one(threads):
    backend.set_num_threads(threads, owner="kernels")
    assert blas_counts() == {1}
    assert backend.threads.kernel_threads() == threads == backend.get_num_threads()
    backend.set_num_threads(threads)
    assert backend.threads.kernel_threads() == 1 and blas_counts() == {threads}


def test_set_num_threads_rejects_an_unknown_owner():
    with pytest.raises(ValueError, match=r"owner must be one of \('blas', 'kernels'\), got 'numba'"):
        backend.set_num_threads(1, owner="numba")


@pytest.mark.parametrize("owner", ["blas", "kernels"])
@pytest.mark.parametrize("threads", COUNTS)
def test_kernels_equal_the_reference_under_each_setting(threads, owner):
    backend.set_num_threads(threads, owner=owner)
    geometry = ((1, 1), (2, 2), (1, 1))
    # 6 output channels run the direct loops, 32 the im2col + BLAS path (gemm_conv).
    for out_channels in (6, numba_cpu.conv.BLAS_FROM_OUT_CHANNELS):
        x = random((5, 3, 12, 12), np.float32, threads)  # 5 images: parts of 3 and 2
        weight = random((out_channels, 3, 5, 5), np.float32, threads + 1)
        out = numpy_ref.conv2d_forward(x, weight, *geometry)
        assert_same(numba_cpu.conv2d_forward(x, weight, *geometry), out)
        grad = random(out.shape, np.float32, threads + 2)
        assert_same(numba_cpu.conv2d_backward_input(grad, weight, x.shape, *geometry),
                    numpy_ref.conv2d_backward_input(grad, weight, x.shape, *geometry))
        assert_same(numba_cpu.conv2d_backward_weight(grad, x, weight.shape, *geometry),
                    numpy_ref.conv2d_backward_weight(grad, x, weight.shape, *geometry))
    weight = random((6, 1, 3, 3), np.float32, threads + 3)  # depthwise, 2 outputs per channel
    out = numpy_ref.conv2d_forward(x, weight, *geometry, 3)
    grad = random(out.shape, np.float32, threads + 4)
    assert_same(numba_cpu.conv2d_forward(x, weight, *geometry, 3), out)
    assert_same(numba_cpu.conv2d_backward_input(grad, weight, x.shape, *geometry, 3),
                numpy_ref.conv2d_backward_input(grad, weight, x.shape, *geometry, 3))
    assert_same(numba_cpu.conv2d_backward_weight(grad, x, weight.shape, *geometry, 3),
                numpy_ref.conv2d_backward_weight(grad, x, weight.shape, *geometry, 3))
    pool = ((2, 2), (2, 2), (0, 0), (1, 1))
    out, indices = numpy_ref.max_pool2d_forward(x, *pool)
    ours, our_indices = numba_cpu.max_pool2d_forward(x, *pool)
    assert_same(ours, out)
    np.testing.assert_array_equal(our_indices, indices)
    a, b = random((300, 200), np.float32, 5), random((200, 100), np.float32, 6)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert_same(numba_cpu.matmul(a, b), exact.astype(np.float32))
