"""Grouped and depthwise convolution for the Numba set: the public ``conv2d_*`` kernels with
``groups``. With G groups, weight (O, C/G, KH, KW), output channel o of group g = o // (O/G)
reads only input channels g*C/G + c, c < C/G (stride (s, t), dilation d):

    out[n, o, i, j] = sum_{c,kh,kw} w[o, c, kh, kw] x_pad[n, g*C/G + c, i*s + kh*d, j*t + kw*d]

so a grouped convolution is G ungrouped ones side by side. Three cases:

* G = 1: ``conv.py``'s kernels, unchanged;
* depthwise, G = C (weight (C*m, 1, KH, KW), m outputs per input channel, output o reads
  channel o // m): each output plane is a weighted sum of KH*KW shifted copies of one input
  plane, too little work per channel for a GEMM. The loops below run it directly: per
  (image, output channel) and offset (kh, kw), a multiply-add of every output row with the
  W_out inputs it reads. Those are contiguous once the padded input is split by column
  phase (``column_phases``), so the loops vectorize for every stride;
* any other G: ``conv.py``'s kernels on each group's contiguous slice of channels.
"""

import numpy as np
from numba import njit, prange

from minigrad.backend.geometry import output_hw
from minigrad.backend.numba_cpu import conv
from minigrad.backend.numba_cpu.blocks import FMA, FMA_SUMS, PARALLEL, common_dtype, pairs


@njit(inline="always")
def _phase_and_start(kw, dilation_w, step):
    """Where the runs of kernel column kw start: phase (kw*d) % t, position (kw*d) // t."""
    column = kw * dilation_w
    return column % step, column // step


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _depthwise_forward(phases, weight, stride_h, dilation, out):
    """out[n, o, i, j] = sum_{kh,kw} w[o, kh, kw] x_pad[n, o // m, i*s + kh*d, j*t + kw*d]:
    for each offset (kh, kw), every output row gets w times the run of W_out inputs it reads
    (a contiguous run of the phase image, ``column_phases``). ``out`` is zeros, ``weight``
    (O, KH, KW)."""
    multiplier, (out_h, width) = out.shape[1] // phases.shape[1], out.shape[2:]
    for n in prange(out.shape[0]):
        for o in range(out.shape[1]):
            image = phases[n, o // multiplier]
            for kh in range(weight.shape[1]):
                for kw in range(weight.shape[2]):
                    w = weight[o, kh, kw]
                    phase, start = _phase_and_start(kw, dilation[1], phases.shape[3])
                    for i in range(out_h):
                        run = image[i * stride_h + kh * dilation[0], phase, start:start + width]
                        out_row = out[n, o, i]
                        for j in range(width):
                            out_row[j] += w * run[j]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _depthwise_backward_input(grad_out, weight, stride_h, dilation, grad_phases):
    """The adjoint of ``_depthwise_forward``: each grad row, times w[o, kh, kw], is added to
    the run it read. ``grad_phases`` (zeros) is laid out like the forward pass's phases. The m
    outputs of one channel add into the same image, so only images run in parallel."""
    multiplier, (out_h, width) = grad_out.shape[1] // grad_phases.shape[1], grad_out.shape[2:]
    for n in prange(grad_out.shape[0]):
        for o in range(grad_out.shape[1]):
            image = grad_phases[n, o // multiplier]
            for kh in range(weight.shape[1]):
                for kw in range(weight.shape[2]):
                    w = weight[o, kh, kw]
                    phase, start = _phase_and_start(kw, dilation[1], grad_phases.shape[3])
                    for i in range(out_h):
                        run = image[i * stride_h + kh * dilation[0], phase, start:start + width]
                        grad_row = grad_out[n, o, i]
                        for j in range(width):
                            run[j] += w * grad_row[j]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA_SUMS)
def _depthwise_backward_weight(grad_out, phases, stride_h, dilation, grad_w):
    """grad_w[o, kh, kw] = sum_{n,i,j} grad[n, o, i, j] x_pad[n, o // m, i*s + kh*d, j*t + kw*d]:
    the products of each grad row with the run it met are added up elementwise, into one row
    of sums per weight, and each row is summed once at the end (a dot product per grad row
    would spend more on its final reduction than on its 2 W_out flops). Each output channel
    owns its weights, so channels run in parallel."""
    multiplier, (out_h, width) = grad_out.shape[1] // phases.shape[1], grad_out.shape[2:]
    kh_size, kw_size = grad_w.shape[1:]
    for o in prange(grad_out.shape[1]):
        sums = np.zeros((kh_size, kw_size, width), grad_w.dtype)
        for n in range(grad_out.shape[0]):
            image = phases[n, o // multiplier]
            for kh in range(kh_size):
                for kw in range(kw_size):
                    phase, start = _phase_and_start(kw, dilation[1], phases.shape[3])
                    row_sums = sums[kh, kw]
                    for i in range(out_h):
                        run = image[i * stride_h + kh * dilation[0], phase, start:start + width]
                        grad_row = grad_out[n, o, i]
                        for j in range(width):
                            row_sums[j] += grad_row[j] * run[j]
        for kh in range(kh_size):
            for kw in range(kw_size):
                grad_w[o, kh, kw] = sums[kh, kw].sum()


def _phases_shape(x_shape, padding, column_stride):
    """(N, C, H_pad, t, U): U = W_pad / t rounded up (zeros fill the last columns)."""
    (n, c, h, w), (ph, pw), t = x_shape, padding, column_stride
    return (n, c, h + 2 * ph, t, -(-(w + 2 * pw) // t))


def column_phases(x, padding, column_stride):
    """x (N, C, H, W) zero-padded, as (N, C, H_pad, t, U) phase images for column stride t:
    padded column u at [..., u % t, u // t]. Output column j at kernel offset kw reads padded
    column j*t + kw*d, which is phase (kw*d) % t, position j + (kw*d) // t: a strided read
    becomes a contiguous run, which the loops vectorize. With t = 1 the only phase is the
    padded image."""
    (n, c, h_pad, t, columns), (h, w), (ph, pw) = (_phases_shape(x.shape, padding, column_stride),
                                                    x.shape[2:], padding)
    x_pad = np.zeros((n, c, h_pad, columns * t), x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return np.ascontiguousarray(x_pad.reshape(n, c, h_pad, columns, t).swapaxes(3, 4))


def _merge_column_phases(phases, x_shape, padding):
    """The adjoint of ``column_phases``: the padded images again, padding dropped."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    x_pad = phases.swapaxes(3, 4).reshape(n, c, h + 2 * ph, -1)
    return np.ascontiguousarray(x_pad[:, :, ph:ph + h, pw:pw + w])


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
    out_hw = output_hw(x.shape, weight.shape[2:], stride, padding, dilation)
    x, weight = common_dtype(x, weight)
    out = np.zeros((len(x), len(weight)) + out_hw, x.dtype)
    _depthwise_forward(column_phases(x, padding, stride[1]), weight[:, 0], stride[0], dilation,
                       out)
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
    output_hw(x_shape, weight.shape[2:], stride, padding, dilation)
    grad_out, weight = common_dtype(grad_out, weight)
    grad_phases = np.zeros(_phases_shape(x_shape, padding, stride[1]), grad_out.dtype)
    _depthwise_backward_input(grad_out, weight[:, 0], stride[0], dilation, grad_phases)
    return _merge_column_phases(grad_phases, x_shape, padding)


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
    output_hw(x.shape, weight_shape[2:], stride, padding, dilation)
    grad_out, x = common_dtype(grad_out, x)
    grad_w = np.empty((weight_shape[0],) + weight_shape[2:], x.dtype)
    _depthwise_backward_weight(grad_out, column_phases(x, padding, stride[1]), stride[0],
                               dilation, grad_w)
    return grad_w.reshape(weight_shape)
