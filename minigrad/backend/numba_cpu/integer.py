"""Numba integer kernels (quantized inference): ``int8_gemm`` takes dot products of A's rows
with B's columns (both runs of K 8-bit codes) in 2x4 blocks, ``int8_conv2d`` is the direct
convolution of ``conv.py`` on the codes, padded with their zero point, one output channel and
eight terms per pass; both add in int32 and apply the zero points afterwards (gemmlowp's
trick, see ``numpy_ref.int8_gemm``). ``requantize`` turns the accumulators into 8-bit codes in
one pass. Why these loop shapes (LLVM's choice of vector instructions decides it): below, and
``docs/performance.md``.

The same results as ``numpy_ref.int8_gemm`` / ``int8_conv2d`` (exact int32), timed in
``docs/performance.md``. Two facts about how LLVM compiles integer loops shape them:

* Numba computes int8 * int8 in int64 (it widens integers as Python would). Storing into an
  int32 array, or wrapping a running sum in np.int32(...), lets LLVM narrow the arithmetic
  back to 32-bit lanes, where it uses vpmaddwd / vpdpwssd (16-bit multiplies added into
  32-bit lanes). It did so for a single output row (``_add_8_int_rows``) and for blocks of
  dot products (``_int_dots_2x4``), but not for the float kernels' 2x4 shape
  (``blocks.add_2x4_times_rows``: two output rows), which it computed in 64-bit lanes, 1.7x slower.
* Integer addition is associative, so a dot product vectorizes with no fastmath flag.

Neither loop shape got the 8-bit instructions (vpdpbusd: 64 multiply-adds per instruction)
or 16-bit pairs packed two to a lane: 16 multiply-adds per instruction, as for float32.
"""

import numpy as np
from numba import njit, prange

from minigrad.backend import fixed_point, numpy_ref
from minigrad.backend.fixed_point import check_int8_conv2d_operands, check_int8_gemm_operands
from minigrad.backend.numba_cpu.blocks import PARALLEL, pairs, round_up, zero_padded
from minigrad.backend.numba_cpu.conv import (conv_layout, crop_extended, extended_length,
                                             four_runs, phase_split)


@njit(inline="always")
def _int_dots_2x4(out0, out1, a0, a1, b0, b1, b2, b3):
    """out_r[c] += dot(a_r, b_c) for two rows of A and four of B^T, each summed in int32 (a
    wrapping sum: exact whenever the final value fits int32)."""
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.int32(0)
    for k in range(a0.shape[0]):
        x0, x1 = np.int32(a0[k]), np.int32(a1[k])
        u0, u1, u2, u3 = np.int32(b0[k]), np.int32(b1[k]), np.int32(b2[k]), np.int32(b3[k])
        s00, s01 = np.int32(s00 + x0 * u0), np.int32(s01 + x0 * u1)
        s02, s03 = np.int32(s02 + x0 * u2), np.int32(s03 + x0 * u3)
        s10, s11 = np.int32(s10 + x1 * u0), np.int32(s11 + x1 * u1)
        s12, s13 = np.int32(s12 + x1 * u2), np.int32(s13 + x1 * u3)
    sums = (s00, s01, s02, s03, s10, s11, s12, s13)
    for c in range(4):
        out0[c] += sums[c]
        out1[c] += sums[4 + c]


@njit(inline="always")
def _int_dot(a, b):
    """dot(a, b) summed in int32."""
    total = np.int32(0)
    for k in range(a.shape[0]):
        total = np.int32(total + np.int32(a[k]) * np.int32(b[k]))
    return total


@njit(parallel=PARALLEL, cache=True)
def _int8_gemm(a, b_t, out):
    """out[i, j] += dot(a[i], b_t[j]): 2x4 blocks, then single dots for the last odd row and
    the last N % 4 columns (no padded copies of A: it changes at every call)."""
    m, n = a.shape[0], b_t.shape[0]
    n4 = n - n % 4
    for pair in prange(m // 2):
        i = 2 * pair
        for j in range(0, n4, 4):
            _int_dots_2x4(out[i, j:j + 4], out[i + 1, j:j + 4], a[i], a[i + 1], b_t[j],
                          b_t[j + 1], b_t[j + 2], b_t[j + 3])
        for j in range(n4, n):
            out[i, j] += _int_dot(a[i], b_t[j])
            out[i + 1, j] += _int_dot(a[i + 1], b_t[j])
    for i in range(m - m % 2, m):
        for j in range(n):
            out[i, j] += _int_dot(a[i], b_t[j])


def int8_gemm(a, b, a_zero_point=0, b_zero_point=0, bias=None):
    """C = (A - z_a) @ (B - z_b) (+ bias) as int32 (see ``numpy_ref.int8_gemm``). C starts at
    the zero-point corrections and the bias; the loops add the dot products of A's rows with
    B's columns, so B is read as B^T, rows of K: pass a Linear weight W (N, K) as ``W.T``, a
    free view."""
    check_int8_gemm_operands("int8_gemm", a, b, a_zero_point, b_zero_point, bias)
    za, zb, k = int(a_zero_point), int(b_zero_point), a.shape[1]
    column = k * za * zb - za * b.sum(axis=0, dtype=np.int32)
    if bias is not None:
        column = column + bias
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    out[:] = column
    if zb:
        out -= zb * a.sum(axis=1, dtype=np.int32)[:, None]
    _int8_gemm(np.ascontiguousarray(a), np.ascontiguousarray(b.T), out)
    return out


@njit(inline="always")
def _add_8_int_rows(c, w, x0, x1, x2, x3, x4, x5, x6, x7):
    """c += w[0] x0 + ... + w[7] x7 for one int32 output row and eight rows of inputs. (The
    weights are made int32 for plain Python, where int8 * uint8 would be an int16 product and
    a sum of eight could wrap.)"""
    w0, w1, w2, w3 = np.int32(w[0]), np.int32(w[1]), np.int32(w[2]), np.int32(w[3])
    w4, w5, w6, w7 = np.int32(w[4]), np.int32(w[5]), np.int32(w[6]), np.int32(w[7])
    for q in range(c.shape[0]):
        c[q] += (w0 * x0[q] + w1 * x1[q] + w2 * x2[q] + w3 * x3[q]
                 + w4 * x4[q] + w5 * x5[q] + w6 * x6[q] + w7 * x7[q])


@njit(inline="always")
def _add_4_int_rows(c, w, x0, x1, x2, x3):
    """The last four terms when their number is 4 mod 8 (LeNet's 25 -> 28, not 32)."""
    w0, w1, w2, w3 = np.int32(w[0]), np.int32(w[1]), np.int32(w[2]), np.int32(w[3])
    for q in range(c.shape[0]):
        c[q] += w0 * x0[q] + w1 * x1[q] + w2 * x2[q] + w3 * x3[q]


@njit(parallel=PARALLEL, cache=True)
def _int8_conv2d(phases, weight, offsets, phase_w, constant, out):
    """Per image, acc = constant + weight @ runs, like ``_conv2d_forward`` but one output
    channel and eight terms per pass (see ``_add_8_int_rows``). ``weight`` is (O, terms), terms
    padded with zeros to a multiple of 4."""
    o, terms = weight.shape
    length = extended_length(out.shape[2:], phase_w)
    whole = terms - terms % 8
    for b in prange(out.shape[0]):
        acc = np.empty((o, length), np.int32)
        for oc in range(o):
            for q in range(length):
                acc[oc, q] = constant[oc]
        for t in range(0, whole, 8):
            x0, x1, x2, x3 = four_runs(phases[b], offsets, t, length)
            x4, x5, x6, x7 = four_runs(phases[b], offsets, t + 4, length)
            for oc in range(o):
                _add_8_int_rows(acc[oc], weight[oc, t:t + 8], x0, x1, x2, x3, x4, x5, x6, x7)
        if whole < terms:
            x0, x1, x2, x3 = four_runs(phases[b], offsets, whole, length)
            for oc in range(o):
                _add_4_int_rows(acc[oc], weight[oc, whole:whole + 4], x0, x1, x2, x3)
        for oc in range(o):
            crop_extended(acc[oc], phase_w, out[b, oc])


def int8_conv2d(x, weight, x_zero_point, stride, padding, dilation, bias=None):
    """int32 accumulators of a convolution of int8/uint8 codes with int8 weights (see
    ``numpy_ref.int8_conv2d``), computed directly (no im2col copy): the input is padded with
    its zero point, each sum taken over the raw codes, and z_x * (the channel's weight sum)
    subtracted: sum w (x - z_x) = sum w x - z_x sum w."""
    check_int8_conv2d_operands("int8_conv2d", x, weight, x_zero_point, stride,
                                         padding, dilation, bias)
    stride, padding, dilation = pairs(stride, padding, dilation)
    x_pad = numpy_ref.pad(x, padding, value=x_zero_point)
    out_hw, phase_w, offsets = conv_layout(x_pad.shape, weight.shape, stride, (0, 0), dilation)
    o, terms = weight.shape[0], weight[0].size
    flat = weight.reshape(o, -1)
    constant = -int(x_zero_point) * flat.sum(axis=1, dtype=np.int32)
    if bias is not None:
        constant = constant + bias
    out = np.empty((x.shape[0], o) + out_hw, np.int32)
    _int8_conv2d(phase_split(x_pad, (0, 0), stride), zero_padded(flat, (o, round_up(terms, 4))),
                 offsets, phase_w, constant.astype(np.int32), out)
    return out


@njit(parallel=PARALLEL, cache=True)
def _requantize(acc, m0, total_shift, zero_point, qmin, qmax, out):
    """out[b, c, q] = clamp(round(acc * M0[c] / 2^total_shift[c]) + z, qmin, qmax), the
    rounding half to even done as in ``fixed_point.rounding_right_shift`` (total shift >= 1)."""
    for b in prange(acc.shape[0]):
        for c in range(acc.shape[1]):
            multiplier, shift = m0[c], total_shift[c]
            half = np.int64(1) << (shift - 1)
            for q in range(acc.shape[2]):
                x = np.int64(acc[b, c, q]) * multiplier
                floor = x >> shift
                remainder = x - (floor << shift)
                up = (remainder > half) | ((remainder == half) & ((floor & 1) == 1))
                out[b, c, q] = min(max(floor + np.int64(up) + zero_point, qmin), qmax)


def requantize(acc, m0, shift, zero_point, qmin, qmax):
    """``numpy_ref.requantize`` (the same codes, bit for bit) in one pass over acc."""
    if acc.dtype != np.int32 or acc.ndim < 2:
        raise TypeError(f"requantize: acc must be int32 of shape (N, C, ...), got {acc.dtype} "
                        f"{acc.shape}")
    m0, shift = fixed_point.check_fixed_point("requantize", m0, shift)
    channels = acc.shape[1]
    m0, total = (np.ascontiguousarray(np.broadcast_to(v, (channels,)))
                 for v in (m0, shift + fixed_point.FRACTION_BITS))
    out = np.empty(acc.shape, fixed_point.storage_dtype(int(qmin), int(qmax)))
    _requantize(np.ascontiguousarray(acc).reshape(len(acc), channels, -1), m0, total,
                int(zero_point), int(qmin), int(qmax), out.reshape(len(acc), channels, -1))
    return out
