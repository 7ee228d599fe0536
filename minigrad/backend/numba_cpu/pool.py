"""Numba pooling. A window position (kh, kw) is a flat offset, kh*d*Wp + kw*e, in the padded
image, flattened (padding -inf for max, 0 for average); one loop per output runs over its
window's offsets.
"""

from functools import lru_cache

import numpy as np
from numba import njit, prange

from minigrad.backend import lowest_value
from minigrad.backend.geometry import output_hw
from minigrad.backend.numba_cpu.blocks import PARALLEL, pairs


def _padded_flat(x, padding, value):
    """x with ``padding`` rows and columns of ``value`` around every image, each image
    flattened: (N, C, Hp * Wp)."""
    (n, c, h, w), (ph, pw) = x.shape, padding
    if ph == pw == 0:
        return np.ascontiguousarray(x).reshape(n, c, h * w)
    x_pad = np.full((n, c, h + 2 * ph, w + 2 * pw), value, x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad.reshape(n, c, -1)


def _padded_zeros(x_shape, padding, dtype):
    """Zeros shaped like ``_padded_flat``'s output, to add gradients into."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    return np.zeros((n, c, (h + 2 * ph) * (w + 2 * pw)), dtype)


def _unpadded(grad_flat, x_shape, padding):
    """Back to (N, C, H, W), the padding dropped: gradients that landed on it belong to no input."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    grad_pad = grad_flat.reshape(n, c, h + 2 * ph, w + 2 * pw)
    return np.ascontiguousarray(grad_pad[:, :, ph:ph + h, pw:pw + w])


@lru_cache(maxsize=256)
def _pool_layout(x_shape, kernel_hw, stride, padding, dilation):
    """Output size (checked as the reference checks it), padded row length Wp, and the flat
    offset of each window position (kh, kw) in (kh, kw) order: kh*d*Wp + kw*e."""
    out_hw = output_hw(x_shape, kernel_hw, stride, padding, dilation)
    width = x_shape[3] + 2 * padding[1]
    kh, kw = np.divmod(np.arange(kernel_hw[0] * kernel_hw[1]), kernel_hw[1])
    offsets = kh * dilation[0] * width + kw * dilation[1]
    offsets.flags.writeable = False  # shared by every call with these shapes
    return out_hw, width, offsets


@njit(inline="always")
def _window_start(i, j, stride, width):
    """Flat index in the padded image of output (i, j)'s window corner."""
    return i * stride[0] * width + j * stride[1]


@njit(inline="always")
def _larger(value, k, best, won):
    """(value, k) if ``value`` beats ``best`` (strictly, so on ties the first wins; a NaN always
    wins, so the last NaN of a window does: PyTorch's rule), else (best, won). Written as
    selects, not branches: on real data the comparison goes either way at random, and a
    mispredicted branch per compare made the pooling 4x slower."""
    take = (value > best) | (value != value)
    return (value if take else best), (k if take else won)


@njit(inline="always")
def _take_larger_run(src, step, best, won, k):
    """best[j], won[j] = _larger(src[j * step], k, best[j], won[j]) along one output row.
    Called with ``step`` a literal 1 or 2, so that LLVM vectorizes the strided loads."""
    for j in range(best.shape[0]):
        best[j], won[j] = _larger(src[j * step], k, best[j], won[j])


@njit(parallel=PARALLEL, cache=True)
def _max_pool2d_forward(x_flat, offsets, stride, width, out, winner):
    """Any window: per output row, the row of maxima starts as the window's first position
    and every further position (kh, kw) is compared in along the row (a loop over W_out that
    vectorizes)."""
    n, c, out_h, out_w = out.shape
    for b in prange(n):
        for ch in range(c):
            image = x_flat[b, ch]
            for i in range(out_h):
                best, won, row = out[b, ch, i], winner[b, ch, i], i * stride[0] * width
                for j in range(out_w):
                    best[j], won[j] = image[row + offsets[0] + j * stride[1]], 0
                for k in range(1, offsets.shape[0]):
                    src = image[row + offsets[k]:]
                    if stride[1] == 1:
                        _take_larger_run(src, 1, best, won, k)
                    elif stride[1] == 2:
                        _take_larger_run(src, 2, best, won, k)
                    else:
                        _take_larger_run(src, stride[1], best, won, k)


@njit(parallel=PARALLEL, cache=True)
def _max_pool2x2_forward(x_flat, width, out, winner):
    """2x2 windows at stride 2 (LeNet's, VGG's): the four inputs of an output in registers,
    3.5x faster than the row loops of any window."""
    n, c, out_h, out_w = out.shape
    for b in prange(n):
        for ch in range(c):
            image = x_flat[b, ch]
            for i in range(out_h):
                top, bottom = image[2 * i * width:], image[(2 * i + 1) * width:]
                best_row, won_row = out[b, ch, i], winner[b, ch, i]
                for j in range(out_w):
                    best, won = top[2 * j], 0
                    best, won = _larger(top[2 * j + 1], 1, best, won)
                    best, won = _larger(bottom[2 * j], 2, best, won)
                    best_row[j], won_row[j] = _larger(bottom[2 * j + 1], 3, best, won)


@njit(parallel=PARALLEL, cache=True)
def _max_pool2d_backward(grad_out, winner, offsets, stride, width, grad_flat):
    n, c, out_h, out_w = grad_out.shape
    for b in prange(n):
        for ch in range(c):
            for i in range(out_h):
                for j in range(out_w):
                    start = _window_start(i, j, stride, width)
                    grad_flat[b, ch, start + offsets[winner[b, ch, i, j]]] += grad_out[b, ch, i, j]


@njit(parallel=PARALLEL, cache=True)
def _avg_pool2d_forward(x_flat, offsets, stride, width, out):
    n, c, out_h, out_w = out.shape
    for b in prange(n):
        for ch in range(c):
            image = x_flat[b, ch]
            for i in range(out_h):
                for j in range(out_w):
                    start, total = _window_start(i, j, stride, width), x_flat.dtype.type(0)
                    for k in range(offsets.shape[0]):
                        total += image[start + offsets[k]]
                    out[b, ch, i, j] = total / offsets.shape[0]


@njit(parallel=PARALLEL, cache=True)
def _avg_pool2d_backward(grad_out, offsets, stride, width, grad_flat):
    n, c, out_h, out_w = grad_out.shape
    for b in prange(n):
        for ch in range(c):
            grad_image = grad_flat[b, ch]
            for i in range(out_h):
                for j in range(out_w):
                    start = _window_start(i, j, stride, width)
                    share = grad_out[b, ch, i, j] / offsets.shape[0]
                    for k in range(offsets.shape[0]):
                        grad_image[start + offsets[k]] += share


def max_pool2d_forward(x, kernel_hw, stride, padding, dilation):
    """out = max over each window, and the winning offset kh*KW + kw (first max wins; the
    padding is -inf, so it never wins). A window holding a NaN gives NaN, and its last NaN
    wins, as in PyTorch."""
    kernel_hw, stride, padding, dilation = pairs(kernel_hw, stride, padding, dilation)
    out_hw, width, offsets = _pool_layout(x.shape, kernel_hw, stride, padding, dilation)
    out = np.empty(x.shape[:2] + out_hw, x.dtype)
    winner = np.empty(out.shape, np.int32)
    x_flat = _padded_flat(x, padding, lowest_value(x.dtype))
    if kernel_hw == stride == (2, 2) and dilation == (1, 1):
        _max_pool2x2_forward(x_flat, width, out, winner)
    else:
        _max_pool2d_forward(x_flat, offsets, stride, width, out, winner)
    return out, winner


def max_pool2d_backward(grad_out, winner, x_shape, kernel_hw, stride, padding, dilation):
    """The whole gradient of each output goes to the input that won its window."""
    kernel_hw, stride, padding, dilation = pairs(kernel_hw, stride, padding, dilation)
    _, width, offsets = _pool_layout(tuple(x_shape), kernel_hw, stride, padding, dilation)
    grad_flat = _padded_zeros(x_shape, padding, grad_out.dtype)
    _max_pool2d_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(winner), offsets,
                         stride, width, grad_flat)
    return _unpadded(grad_flat, x_shape, padding)


def avg_pool2d_forward(x, kernel_hw, stride, padding):
    """out = (1 / (KH*KW)) * sum over the window, zero padding included in the count."""
    kernel_hw, stride, padding = pairs(kernel_hw, stride, padding)
    out_hw, width, offsets = _pool_layout(x.shape, kernel_hw, stride, padding, (1, 1))
    out = np.empty(x.shape[:2] + out_hw, x.dtype)
    _avg_pool2d_forward(_padded_flat(x, padding, 0), offsets, stride, width, out)
    return out


def avg_pool2d_backward(grad_out, x_shape, kernel_hw, stride, padding):
    """Each input in a window receives 1 / (KH*KW) of that window's gradient."""
    kernel_hw, stride, padding = pairs(kernel_hw, stride, padding)
    _, width, offsets = _pool_layout(tuple(x_shape), kernel_hw, stride, padding, (1, 1))
    grad_flat = _padded_zeros(x_shape, padding, grad_out.dtype)
    _avg_pool2d_backward(np.ascontiguousarray(grad_out), offsets, stride, width, grad_flat)
    return _unpadded(grad_flat, x_shape, padding)
