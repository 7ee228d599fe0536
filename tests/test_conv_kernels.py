"""The im2col + BLAS convolution (``numba_cpu/gemm_conv.py``) and the choice between it and the
direct loops (``numba_cpu/conv.py``) against the NumPy reference: forward, dL/dx and dL/dw on
odd sizes, batch 1, strides, padding, dilation, channel counts on both sides of every switch,
batches cut into several chunks, float32 and float64."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.backend import numpy_ref
from minigrad.backend.numba_cpu import conv, gemm_conv

from kernel_cases import DTYPES, EXAMPLES, assert_same, random, windows

WIDE = conv.BLAS_FROM_OUT_CHANNELS


def three_passes(kernels, x, weight, geometry, seed=2):
    """(forward, dL/dx, dL/dw) of ``kernels`` and of the reference, for a random gradient."""
    out = numpy_ref.conv2d_forward(x, weight, *geometry)
    grad = random(out.shape, x.dtype, seed)
    ours = (kernels.conv2d_forward(x, weight, *geometry),
            kernels.conv2d_backward_input(grad, weight, x.shape, *geometry),
            kernels.conv2d_backward_weight(grad, x, weight.shape, *geometry))
    reference = (out, numpy_ref.conv2d_backward_input(grad, weight, x.shape, *geometry),
                 numpy_ref.conv2d_backward_weight(grad, x, weight.shape, *geometry))
    return ours, reference


# (N, C, H, W), (O, KH, KW), stride, padding, dilation
CASES = [
    ((2, 3, 9, 7), (5, 3, 3), (1, 1), (1, 1), (1, 1)),    # O > C: dL/dx by col2im
    ((2, 6, 8, 8), (4, 3, 3), (1, 1), (1, 1), (1, 1)),    # O < C: dL/dx as a convolution
    ((2, 4, 8, 7), (4, 3, 3), (1, 1), (1, 1), (1, 1)),    # O = C: by col2im
    ((1, 4, 11, 10), (6, 3, 3), (2, 2), (0, 0), (1, 1)),  # batch 1, stride 2
    ((3, 5, 10, 9), (3, 3, 2), (2, 1), (2, 1), (1, 2)),   # mixed strides, padding 2, dilation 2
    ((2, 4, 9, 9), (4, 3, 3), (1, 1), (2, 2), (2, 2)),    # padding = d(K-1): grad unpadded
    ((2, 4, 5, 6), (3, 1, 1), (1, 1), (0, 0), (1, 1)),    # 1x1: cols are the input itself
    ((2, 4, 5, 6), (3, 1, 1), (1, 1), (1, 1), (1, 1)),    # 1x1 with padding > d(K-1)
    ((2, 3, 7, 7), (2, 1, 1), (2, 2), (0, 0), (1, 1)),    # 1x1 at stride 2
    ((1, 1, 4, 4), (1, 4, 4), (1, 1), (0, 0), (1, 1)),    # one output position
    ((3, 2, 13, 12), (3, 3, 3), (1, 1), (1, 1), (1, 1)),  # 156 positions: dL/dW per image
    ((2, 3, 12, 12), (2, 1, 1), (1, 1), (0, 0), (1, 1)),  # the same, 1x1
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_gemm_conv_equals_the_reference(case, dtype):
    shape, (o, kh, kw), *geometry = case
    x, weight = random(shape, dtype, 0), random((o, shape[1], kh, kw), dtype, 1)
    for ours, reference in zip(*three_passes(gemm_conv, x, weight, geometry)):
        assert_same(ours, reference)


@EXAMPLES
@given(windows(), st.integers(1, 9), DTYPES, st.integers(0, 2**16))
def test_gemm_conv_equals_the_reference_on_drawn_windows(window, out_channels, dtype, seed):
    shape, kernel, stride, padding, dilation = window
    x = random(shape, dtype, seed)
    weight = random((out_channels, shape[1]) + kernel, dtype, seed + 1)
    for ours, reference in zip(*three_passes(gemm_conv, x, weight, (stride, padding, dilation),
                                             seed + 2)):
        assert_same(ours, reference)


@pytest.mark.parametrize("dw_per_chunk_below", [0, 10**9])
@pytest.mark.parametrize("chunk_bytes", [1, 20736])
def test_batches_cut_into_chunks_give_the_same_result(monkeypatch, chunk_bytes,
                                                      dw_per_chunk_below):
    # 1 byte: one image per chunk. 20736 bytes: two images of the first case's cols
    # (36 rows x 36 columns of float64) a chunk, so 5 images leave a ragged last chunk.
    # dL/dW by one product per image, then by one per chunk.
    monkeypatch.setattr(gemm_conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(gemm_conv, "DW_PER_CHUNK_BELOW_POSITIONS", dw_per_chunk_below)
    for shape, (o, kh, kw), *geometry in [((5, 4, 6, 6), (6, 3, 3), (1, 1), (1, 1), (1, 1)),
                                          ((5, 4, 6, 6), (3, 3, 3), (1, 1), (1, 1), (1, 1)),
                                          ((5, 4, 6, 6), (3, 1, 1), (1, 1), (0, 0), (1, 1))]:
        x, weight = random(shape, np.float64, 0), random((o, shape[1], kh, kw), np.float64, 1)
        for ours, reference in zip(*three_passes(gemm_conv, x, weight, geometry)):
            assert_same(ours, reference)


def test_chunks_cover_the_batch_once(monkeypatch):
    monkeypatch.setattr(gemm_conv, "CHUNK_BYTES", 100)  # 2*3 float32 = 24 bytes: 4 images
    chunks, buffer = gemm_conv._chunks(11, 2, 3, np.float32)
    assert [(c.start, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 11)]
    assert buffer.shape == (4 * 2 * 3,) and buffer.dtype == np.float32


@pytest.mark.parametrize("out_channels", [WIDE - 1, WIDE, WIDE + 3])
@pytest.mark.parametrize("in_channels", [3, WIDE + 1])
def test_both_sides_of_the_switch_equal_the_reference(out_channels, in_channels):
    x = random((2, in_channels, 7, 6), np.float32, 0)
    weight = random((out_channels, in_channels, 3, 3), np.float32, 1)
    for geometry in [((1, 1), (1, 1), (1, 1)), ((2, 1), (0, 2), (1, 2))]:
        for ours, reference in zip(*three_passes(conv, x, weight, geometry)):
            assert_same(ours, reference)


def test_the_switch_picks_gemm_conv_from_the_threshold_on(monkeypatch):
    calls = []

    def recorded(*args):
        calls.append(args[1].shape)
        return numpy_ref.conv2d_forward(*args)

    monkeypatch.setattr(gemm_conv, "conv2d_forward", recorded)
    x = random((1, 2, 5, 5), np.float32, 0)
    for o in (WIDE - 1, WIDE):
        conv.conv2d_forward(x, random((o, 2, 3, 3), np.float32, 1), (1, 1), (1, 1), (1, 1))
    assert calls == [(WIDE, 2, 3, 3)]


def test_results_are_not_overwritten_by_later_calls():
    x, weight = random((2, 3, 6, 6), np.float32, 0), random((4, 3, 3, 3), np.float32, 1)
    geometry = ((1, 1), (1, 1), (1, 1))
    first = gemm_conv.conv2d_forward(x, weight, *geometry)
    kept = first.copy()
    gemm_conv.conv2d_forward(2 * x, weight, *geometry)
    gemm_conv.conv2d_backward_weight(first, x, weight.shape, *geometry)
    np.testing.assert_array_equal(first, kept)


def test_mixed_dtypes_give_the_reference_dtype():
    x, weight = random((1, 2, 5, 5), np.float32, 0), random((WIDE, 2, 3, 3), np.float64, 1)
    for ours, reference in zip(*three_passes(conv, x, weight, ((1, 1), (1, 1), (1, 1)))):
        assert_same(ours, reference)


def test_gemm_conv_runs_as_plain_python_with_the_jit_disabled():
    code = ("import numpy as np, inspect\n"
            "from minigrad.backend import numpy_ref\n"
            "from minigrad.backend.numba_cpu import gemm_conv\n"
            "assert inspect.isfunction(gemm_conv._im2col)\n"
            "x = np.random.default_rng(0).standard_normal((2, 2, 5, 4))\n"
            "w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))\n"
            "g = np.random.default_rng(2).standard_normal((2, 3, 2, 2))\n"
            "geo = ((2, 1), (0, 0), (1, 1))\n"
            "assert np.allclose(gemm_conv.conv2d_forward(x, w, *geo),"
            " numpy_ref.conv2d_forward(x, w, *geo))\n"
            "assert np.allclose(gemm_conv.conv2d_backward_input(g, w, x.shape, *geo),"
            " numpy_ref.conv2d_backward_input(g, w, x.shape, *geo))\n")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
