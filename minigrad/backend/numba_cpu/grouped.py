"""Grouped and depthwise convolution for the Numba set: the public ``conv2d_*`` kernels with
``groups``. With G groups, weight (O, C/G, KH, KW), output channel o of group g = o // (O/G)
reads only input channels g*C/G + c, c < C/G (stride (s, t), dilation d):

    out[n, o, i, j] = sum_{c,kh,kw} w[o, c, kh, kw] x_pad[n, g*C/G + c, i*s + kh*d, j*t + kw*d]

so a grouped convolution is G ungrouped ones side by side. Three cases:

* G = 1: ``conv.py``'s kernels, unchanged;
* depthwise, G = C (weight (C*m, 1, KH, KW), m outputs per input channel, output o reads
  channel o // m): each output plane is a weighted sum of KH*KW shifted copies of one input
  plane, too little work per channel for a GEMM. The loops below run it directly, on
  ``conv.py``'s phase images (the zero-padded planes split by stride phase and flattened):
  there every tap (kh, kw) reads one contiguous run of its channel's phase images, as long as
  the whole "extended" output plane, so that

      out_ext[o] = sum_t w[o, t] run_t,   four taps per pass over out_ext,

  and the junk columns are cropped. (Loops over single output rows, 7 to 56 values, spend
  more on their setup than on the work: the first version of these kernels was 1.4x slower.)
* any other G: ``conv.py``'s kernels on each group's contiguous slice of channels.
"""

from functools import lru_cache

import numpy as np
from numba import njit, prange

from minigrad.backend.numba_cpu import conv
from minigrad.backend.numba_cpu.blocks import (FMA, FMA_SUMS, PARALLEL, common_dtype, image_parts,
                                               over_images, pairs)
from minigrad.backend.numba_cpu.conv import (crop_extended, extend_plane, extended_length,
                                             four_runs, run_of)


@njit(inline="always")
def _add_4_runs(acc, w, r0, r1, r2, r3):
    """acc += w[0] r0 + w[1] r1 + w[2] r2 + w[3] r3: five loads and a store feed four
    multiply-adds (one tap per pass would load and store acc for each)."""
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    for q in range(acc.shape[0]):
        acc[q] += w0 * r0[q] + w1 * r1[q] + w2 * r2[q] + w3 * r3[q]


@njit(inline="always")
def _add_dots_1x4(out, g, r0, r1, r2, r3):
    """out[k] += dot(g, r_k) for four runs: g is loaded once for four products."""
    s0 = s1 = s2 = s3 = g.dtype.type(0)
    for q in range(g.shape[0]):
        s0 += g[q] * r0[q]
        s1 += g[q] * r1[q]
        s2 += g[q] * r2[q]
        s3 += g[q] * r3[q]
    out[0] += s0
    out[1] += s1
    out[2] += s2
    out[3] += s3


@njit(inline="always")
def _add_taps(acc, weight, buffer, taps):
    """acc += sum_t weight[t] run_t: four taps per pass, then the rest one by one."""
    length, blocked = acc.shape[0], taps.shape[0] - taps.shape[0] % 4
    for t in range(0, blocked, 4):
        r0, r1, r2, r3 = four_runs(buffer, taps, t, length)
        _add_4_runs(acc, weight[t:t + 4], r0, r1, r2, r3)
    for t in range(blocked, taps.shape[0]):
        run, w = run_of(buffer, taps[t], length), weight[t]
        for q in range(length):
            acc[q] += w * run[q]


@njit(inline="always")
def _outputs_per_channel(outputs, phases, phase_count):
    """m, the output channels per input channel: ``phases`` holds s*t rows per input channel
    and those of one more, the zero channel."""
    return outputs // (phases.shape[1] // phase_count - 1)


@njit(inline="always")
def _channel_phases(phases, b, channel, phase_count):
    """The s*t phase images of one channel of image b: rows of ``conv.phase_split``'s output."""
    return phases[b, channel * phase_count:(channel + 1) * phase_count]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA, nogil=True)
def _depthwise_forward(phases, weight, taps, phase_count, phase_w, out):
    """out[n, o] = crop(sum_t w[o, t] run_t) over the phase images of channel o // m;
    ``weight`` (O, T), ``taps`` (T, 2): each tap's phase and where its run starts."""
    multiplier = _outputs_per_channel(out.shape[1], phases, phase_count)
    length = extended_length(out.shape[2:], phase_w)
    for b in prange(out.shape[0]):
        acc = np.empty(length, out.dtype)
        for o in range(out.shape[1]):
            for q in range(length):  # a loop: slice assignment compiles for seconds
                acc[q] = 0
            _add_taps(acc, weight[o], _channel_phases(phases, b, o // multiplier, phase_count),
                      taps)
            crop_extended(acc, phase_w, out[b, o])


@njit(parallel=PARALLEL, cache=True, fastmath=FMA, nogil=True)
def _depthwise_backward_input(grad_out, weight, taps, phase_count, phase_w, grad_phases):
    """The adjoint of ``_depthwise_forward``: each tap's run gets w[o, t] times the extended
    gradient plane (zeros in its junk columns), one tap at a time, since the runs of one
    channel overlap. ``grad_phases`` (zeros) is laid out like ``conv.phase_split``'s output.
    The m outputs of a channel add into the same images, so only images could run in
    parallel."""
    multiplier = _outputs_per_channel(grad_out.shape[1], grad_phases, phase_count)
    length = extended_length(grad_out.shape[2:], phase_w)
    for b in prange(grad_out.shape[0]):
        g = np.empty(length, grad_out.dtype)
        for o in range(grad_out.shape[1]):
            extend_plane(grad_out[b, o], phase_w, g)
            images = _channel_phases(grad_phases, b, o // multiplier, phase_count)
            for t in range(taps.shape[0]):
                run, w = run_of(images, taps[t], length), weight[o, t]
                for q in range(length):
                    run[q] += w * g[q]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA_SUMS, nogil=True)
def _depthwise_backward_weight(grad_out, phases, taps, phase_count, phase_w, grad_w):
    """grad_w[o, t] = sum over images of dot(extended grad plane o, run of tap t), four taps
    at a time. Each output channel owns its row of ``grad_w`` (O, T), so channels could run
    in parallel."""
    multiplier = _outputs_per_channel(grad_out.shape[1], phases, phase_count)
    length, count = extended_length(grad_out.shape[2:], phase_w), taps.shape[0]
    blocked = count - count % 4
    for o in prange(grad_out.shape[1]):
        g = np.empty(length, grad_out.dtype)
        for b in range(grad_out.shape[0]):
            extend_plane(grad_out[b, o], phase_w, g)
            images = _channel_phases(phases, b, o // multiplier, phase_count)
            for t in range(0, blocked, 4):
                r0, r1, r2, r3 = four_runs(images, taps, t, length)
                _add_dots_1x4(grad_w[o, t:t + 4], g, r0, r1, r2, r3)
            for t in range(blocked, count):
                run, total = run_of(images, taps[t], length), grad_w.dtype.type(0)
                for q in range(length):
                    total += g[q] * run[q]
                grad_w[o, t] += total


@lru_cache(maxsize=256)
def _tap_layout(x_shape, weight_shape, stride, padding, dilation):
    """For a depthwise convolution: the output size, the phase row length U, and per tap
    (kh, kw) its phase among a channel's s*t phase images and where its run starts:
    ``conv_layout``'s offsets for a one-channel image."""
    kh, kw = weight_shape[2:]
    out_hw, phase_w, offsets = conv.conv_layout((x_shape[0], 1) + x_shape[2:],
                                                (weight_shape[0], 1, kh, kw), stride, padding,
                                                dilation)
    taps = np.ascontiguousarray(offsets[:kh * kw])
    taps.flags.writeable = False  # shared by every call with these shapes
    return out_hw, phase_w, taps


def _per_group(array, axis, groups):
    """The ``groups`` equal slices of ``array`` along ``axis``, each C-contiguous."""
    return [np.ascontiguousarray(part) for part in np.split(array, groups, axis=axis)]


def conv2d_forward(x, weight, stride, padding, dilation, groups=1):
    """out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, g*C/G + c, i*s+kh*d, j*s+kw*d]."""
    if groups == 1:
        return conv.conv2d_forward(x, weight, stride, padding, dilation)
    if groups != x.shape[1]:
        return np.concatenate([conv.conv2d_forward(x_g, w_g, stride, padding, dilation)
                               for x_g, w_g in zip(_per_group(x, 1, groups),
                                                   _per_group(weight, 0, groups))], axis=1)
    stride, padding, dilation = pairs(stride, padding, dilation)
    x, weight = common_dtype(x, weight)
    out_hw, phase_w, taps = _tap_layout(x.shape, weight.shape, stride, padding, dilation)
    out = np.empty((len(x), len(weight)) + out_hw, x.dtype)
    phases, weight, count = (conv.phase_split(x, padding, stride), weight.reshape(len(weight), -1),
                             stride[0] * stride[1])
    over_images(lambda _, part: _depthwise_forward(phases[part], weight, taps, count, phase_w,
                                                   out[part]), len(x))
    return out


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups=1):
    """dL/dx: every output's gradient, times the weights, added back where it was read."""
    if groups == 1:
        return conv.conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation)
    x_shape = tuple(x_shape)
    if groups != x_shape[1]:
        group_shape = (x_shape[0], x_shape[1] // groups) + x_shape[2:]
        return np.concatenate([
            conv.conv2d_backward_input(g_g, w_g, group_shape, stride, padding, dilation)
            for g_g, w_g in zip(_per_group(grad_out, 1, groups), _per_group(weight, 0, groups))],
            axis=1)
    stride, padding, dilation = pairs(stride, padding, dilation)
    grad_out, weight = common_dtype(grad_out, weight)
    _, phase_w, taps = _tap_layout(x_shape, weight.shape, stride, padding, dilation)
    grad_phases = conv.phase_zeros(x_shape, padding, stride, grad_out.dtype)
    weight, count = weight.reshape(len(weight), -1), stride[0] * stride[1]
    over_images(lambda _, part: _depthwise_backward_input(grad_out[part], weight, taps, count,
                                                          phase_w, grad_phases[part]),
                len(grad_out))
    return conv.phase_merge(grad_phases, x_shape, padding, stride)


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups=1):
    """dL/dw[o, c, kh, kw] = sum_{n,i,j} grad[n, o, i, j] x_pad[n, g*C/G + c, i*s+kh*d,
    j*s+kw*d]."""
    if groups == 1:
        return conv.conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation)
    weight_shape = tuple(weight_shape)
    if groups != x.shape[1]:
        group_shape = (weight_shape[0] // groups,) + weight_shape[1:]
        return np.concatenate([
            conv.conv2d_backward_weight(g_g, x_g, group_shape, stride, padding, dilation)
            for g_g, x_g in zip(_per_group(grad_out, 1, groups), _per_group(x, 1, groups))])
    stride, padding, dilation = pairs(stride, padding, dilation)
    grad_out, x = common_dtype(grad_out, x)
    _, phase_w, taps = _tap_layout(x.shape, weight_shape, stride, padding, dilation)
    phases, count = conv.phase_split(x, padding, stride), stride[0] * stride[1]
    grad_w = np.zeros((image_parts(len(x)), weight_shape[0], len(taps)), x.dtype)
    over_images(lambda k, part: _depthwise_backward_weight(grad_out[part], phases[part], taps,
                                                           count, phase_w, grad_w[k]), len(x))
    return grad_w.sum(axis=0).reshape(weight_shape)
