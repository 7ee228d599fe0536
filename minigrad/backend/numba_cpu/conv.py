"""Numba convolution, direct: "shift and add" on flattened images. For one term (c, kh, kw) of

    out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, c, i*s + kh*d, j*s + kw*d]

output plane o receives w[o,c,kh,kw] times input channel c shifted by (kh*d, kw*d). Flatten the
padded image row by row (row length U) and the shift is a single offset: output (i, j), kept at
q = i*U + j of an "extended" output, reads flat input q + kh*d*U + kw*d. So every term reads one
contiguous run of the input, and per image the convolution is a GEMM, out_ext = W @ runs, whose
rows of B are the runs: im2col's matrix, read in place instead of copied out. The extended output
has U - W_out junk columns per row (they read across the end of a row); they are computed and
dropped. (A run of W_out inputs per output row would be too short to vectorize.)

Strides: a phase split (space-to-depth) keeps the runs contiguous. With stride (s, t) the padded
image is cut into s*t phase images, phase (a, b) holding x_pad[r, u] for r % s == a and
u % t == b at (r // s, u // t). Output (i, j) reads row i*s + kh*d: row i + (kh*d) // s of a
phase with row phase (kh*d) % s, so within one phase the stride is 1 again. With stride 1 the
only phase is the padded image.

Gradients: dL/dx is the adjoint, W^T @ grad added back into the runs the forward pass read
(grad extended with zero junk columns); dL/dw[o, t] sums, over the images, the dot product of
grad plane o with the run of term t.

The three GEMMs run in 2x4 blocks (``blocks.py``), so the loops are
bound by arithmetic instead of loads and stores; the operands are zero-padded to whole blocks,
and padding terms read an extra, all-zero channel. From ``BLAS_FROM_OUT_CHANNELS`` output
channels on, NumPy's BLAS, which uses every core, beats these loops, and the wrappers call
``gemm_conv.py`` instead (im2col per chunk of images + BLAS, see there).
"""

from functools import lru_cache

import numpy as np
from numba import njit, prange

from minigrad.backend.geometry import output_hw
from minigrad.backend.numba_cpu import gemm_conv
from minigrad.backend.numba_cpu.blocks import (FMA, FMA_SUMS, PARALLEL, add_2x4_times_rows,
                                               add_dots_2x4, common_dtype, image_parts, over_images,
                                               pairs, round_up, zero_padded)

# The choice of algorithm: the direct runs below this many output channels, im2col + BLAS
# (``gemm_conv``) from there on, for all three passes. BLAS runs on every core and is tuned far
# beyond these loops, which run on one; below it, copying out im2col's matrix costs more than the
# narrow GEMM gains (docs/performance.md, "Convolution": the measurements).
BLAS_FROM_OUT_CHANNELS = 32


def phase_size(image_hw, padding, stride):
    """Rows R and columns U of each phase image: the padded size divided by the stride, rounded
    up (the image is padded on the bottom and right to fit exactly)."""
    return tuple(-(-(size + 2 * pad) // step) for size, pad, step in zip(image_hw, padding, stride))


def phase_split(x, padding, stride):
    """(N, C, H, W) -> (N, (C+1)*s*t, R*U): the s*t phase images of every channel, flattened
    (see the module docstring), and those of one more, all-zero channel that the padding terms
    read. Zero padding, then one reshape and one transpose do the split."""
    (n, c, h, w), (s, t) = x.shape, stride
    rows, cols = phase_size((h, w), padding, stride)
    x_pad = np.zeros((n, c + 1, rows * s, cols * t), x.dtype)
    x_pad[:, :c, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    phases = x_pad.reshape(n, c + 1, rows, s, cols, t).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(phases).reshape(n, (c + 1) * s * t, rows * cols)


def phase_zeros(x_shape, padding, stride, dtype):
    """Zeros shaped like ``phase_split``'s output, to add gradients into."""
    (n, c), (s, t) = x_shape[:2], stride
    rows, cols = phase_size(x_shape[2:], padding, stride)
    return np.zeros((n, (c + 1) * s * t, rows * cols), dtype)


def phase_merge(phases, x_shape, padding, stride):
    """The adjoint of ``phase_split``: phase images back to padded images, padding dropped."""
    (n, c, h, w), (s, t) = x_shape, stride
    rows, cols = phase_size((h, w), padding, stride)
    x_pad = phases.reshape(n, c + 1, s, t, rows, cols).transpose(0, 1, 4, 2, 5, 3)
    x_pad = x_pad.reshape(n, c + 1, rows * s, cols * t)
    return np.ascontiguousarray(x_pad[:, :c, padding[0]:padding[0] + h, padding[1]:padding[1] + w])


@lru_cache(maxsize=256)
def conv_layout(x_shape, weight_shape, stride, padding, dilation):
    """What the kernels need to know about one convolution's shapes (the same at every step,
    so it is computed once): the output size (checked as the reference checks it), the phase
    row length U, and for each term (c, kh, kw) of the sum, in im2col's row order, the phase
    image it reads (a row of ``phase_split``'s output) and where in it its run starts. The
    list goes on with terms of the zero channel: the padding to whole blocks reads those."""
    channels, (kh_size, kw_size), (s, t) = x_shape[1], weight_shape[2:], stride
    out_hw = output_hw(x_shape, (kh_size, kw_size), stride, padding, dilation)
    phase_w = phase_size(x_shape[2:], padding, stride)[1]
    per_channel = kh_size * kw_size
    term = np.arange(max(round_up(channels * per_channel, 4), (channels + 1) * per_channel))
    c = np.minimum(term // per_channel, channels)
    rh, rw = (term // kw_size % kh_size) * dilation[0], (term % kw_size) * dilation[1]
    offsets = np.stack([c * s * t + (rh % s) * t + rw % t, (rh // s) * phase_w + rw // t], axis=1)
    offsets.flags.writeable = False  # shared by every call with these shapes
    return out_hw, phase_w, offsets


@njit(inline="always")
def run_of(phases, offset, length):
    """The inputs one term reads, as a contiguous view: extended output q reads entry q."""
    return phases[offset[0], offset[1]:offset[1] + length]


@njit(inline="always")
def four_runs(phases, offsets, t, length):
    """The runs of terms t, t+1, t+2, t+3."""
    return (run_of(phases, offsets[t], length), run_of(phases, offsets[t + 1], length),
            run_of(phases, offsets[t + 2], length), run_of(phases, offsets[t + 3], length))


@njit(inline="always")
def extended_length(out_hw, phase_w):
    """Length of an extended output plane: out_h - 1 rows of phase_w, then out_w."""
    return (out_hw[0] - 1) * phase_w + out_hw[1]


@njit(inline="always")
def crop_extended(extended, phase_w, out):
    """out[i, j] = extended[i * phase_w + j]: the junk columns are dropped. (Loops, because
    Numba takes seconds to compile slice assignments.)"""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = extended[i * phase_w + j]


@njit(inline="always")
def extend_plane(plane, phase_w, extended):
    """The inverse of ``crop_extended``, with zeros in the junk columns."""
    for q in range(extended.shape[0]):
        extended[q] = 0
    for i in range(plane.shape[0]):
        for j in range(plane.shape[1]):
            extended[i * phase_w + j] = plane[i, j]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA, nogil=True)
def _conv2d_forward(phases, weight, offsets, phase_w, out):
    """Per image, acc = weight @ runs: a GEMM whose rows of B are the terms' runs.
    ``weight`` is (O, terms) padded with zeros to whole 2x4 blocks."""
    o, terms = weight.shape
    length = extended_length(out.shape[2:], phase_w)
    for b in prange(out.shape[0]):
        acc = np.zeros((o, length), out.dtype)
        for t in range(0, terms, 4):
            x0, x1, x2, x3 = four_runs(phases[b], offsets, t, length)
            for oc in range(0, o, 2):
                add_2x4_times_rows(acc[oc], acc[oc + 1], weight[oc, t:t + 4],
                                    weight[oc + 1, t:t + 4], x0, x1, x2, x3)
        for oc in range(out.shape[1]):
            crop_extended(acc[oc], phase_w, out[b, oc])


@njit(parallel=PARALLEL, cache=True, fastmath=FMA, nogil=True)
def _conv2d_backward_input(grad_out, weight_t, per_channel, offsets, phase_w, grad_phases):
    """Per image, every term's run of dL/dx_pad += weight[:, t] @ grad, in 2x4 blocks: two
    runs (term (c, kh, kw) and (c+1, kh, kw): runs of one channel can overlap, of two cannot)
    times four output channels. ``weight_t`` is (terms, O), zero-padded to whole channel pairs
    (the zero channel pairs with an odd last one) and to a multiple of 4 output channels."""
    terms, o = weight_t.shape
    length = extended_length(grad_out.shape[2:], phase_w)
    for b in prange(grad_out.shape[0]):
        g = np.zeros((o, length), grad_out.dtype)
        for oc in range(grad_out.shape[1]):
            extend_plane(grad_out[b, oc], phase_w, g[oc])
        for pair in range(0, terms, 2 * per_channel):
            for t in range(pair, pair + per_channel):
                x0 = run_of(grad_phases[b], offsets[t], length)
                x1 = run_of(grad_phases[b], offsets[t + per_channel], length)
                for oc in range(0, o, 4):
                    add_2x4_times_rows(x0, x1, weight_t[t, oc:oc + 4],
                                        weight_t[t + per_channel, oc:oc + 4], g[oc], g[oc + 1],
                                        g[oc + 2], g[oc + 3])


@njit(parallel=PARALLEL, cache=True, fastmath=FMA_SUMS, nogil=True)
def _conv2d_backward_weight(grad_out, phases, offsets, phase_w, grad_w):
    """grad_w[o, t] = sum over images of dot(grad plane o, run of term t), in 2x4 blocks.
    ``grad_out`` has its channels padded to an even number, ``grad_w`` is (O, terms)."""
    o, terms = grad_w.shape
    length = extended_length(grad_out.shape[2:], phase_w)
    for pair in prange(o // 2):  # each pair of output channels owns two rows of grad_w
        oc, g = 2 * pair, np.empty((2, length), grad_out.dtype)
        for b in range(grad_out.shape[0]):
            extend_plane(grad_out[b, oc], phase_w, g[0])
            extend_plane(grad_out[b, oc + 1], phase_w, g[1])
            for t in range(0, terms, 4):
                x0, x1, x2, x3 = four_runs(phases[b], offsets, t, length)
                add_dots_2x4(grad_w[oc, t:t + 4], grad_w[oc + 1, t:t + 4], g[0], g[1],
                              x0, x1, x2, x3)


def conv2d_forward(x, weight, stride, padding, dilation):
    """out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, c, i*s+kh*d, j*s+kw*d]."""
    stride, padding, dilation = pairs(stride, padding, dilation)
    x, weight = common_dtype(x, weight)
    if len(weight) >= BLAS_FROM_OUT_CHANNELS:
        return gemm_conv.conv2d_forward(x, weight, stride, padding, dilation)
    out_hw, phase_w, offsets = conv_layout(x.shape, weight.shape, stride, padding, dilation)
    o = len(weight)
    weight = zero_padded(weight.reshape(o, -1), (round_up(o, 2), round_up(weight[0].size, 4)))
    out = np.empty((len(x), o) + out_hw, x.dtype)
    phases = phase_split(x, padding, stride)
    over_images(lambda _, part: _conv2d_forward(phases[part], weight, offsets, phase_w, out[part]),
                len(x))
    return out


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation):
    """dL/dx: every output's gradient, times the weights, added back where it was read."""
    stride, padding, dilation = pairs(stride, padding, dilation)
    grad_out, weight = common_dtype(grad_out, weight)
    if len(weight) >= BLAS_FROM_OUT_CHANNELS:
        return gemm_conv.conv2d_backward_input(grad_out, weight, tuple(x_shape), stride, padding,
                                               dilation)
    _, phase_w, offsets = conv_layout(tuple(x_shape), weight.shape, stride, padding, dilation)
    o, c, kh_size, kw_size = weight.shape
    weight_t = zero_padded(weight.reshape(o, -1).T,
                            (round_up(c, 2) * kh_size * kw_size, round_up(o, 4)))
    grad_phases = phase_zeros(x_shape, padding, stride, grad_out.dtype)
    over_images(lambda _, part: _conv2d_backward_input(grad_out[part], weight_t, kh_size * kw_size,
                                                       offsets, phase_w, grad_phases[part]),
                len(grad_out))
    return phase_merge(grad_phases, x_shape, padding, stride)


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation):
    """dL/dw[o, c, kh, kw] = sum_{n,i,j} grad[n, o, i, j] x_pad[n, c, i*s+kh*d, j*s+kw*d]."""
    stride, padding, dilation = pairs(stride, padding, dilation)
    grad_out, x = common_dtype(grad_out, x)
    if weight_shape[0] >= BLAS_FROM_OUT_CHANNELS:
        return gemm_conv.conv2d_backward_weight(grad_out, x, tuple(weight_shape), stride, padding,
                                                dilation)
    _, phase_w, offsets = conv_layout(x.shape, tuple(weight_shape), stride, padding, dilation)
    (n, o), terms = grad_out.shape[:2], int(np.prod(weight_shape[1:]))
    grad = zero_padded(grad_out, (n, round_up(o, 2)) + grad_out.shape[2:])
    phases = phase_split(x, padding, stride)
    grad_w = np.zeros((image_parts(n), round_up(o, 2), round_up(terms, 4)), x.dtype)
    over_images(lambda k, part: _conv2d_backward_weight(grad[part], phases[part], offsets, phase_w,
                                                        grad_w[k]), n)
    return np.ascontiguousarray(grad_w.sum(axis=0)[:o, :terms]).reshape(weight_shape)
