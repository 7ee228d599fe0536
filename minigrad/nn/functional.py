"""``minigrad.nn.functional`` (import as F): layers and losses as functions, PyTorch's names.

Convolution and pooling call the kernel-backed ops of ``minigrad.ops.nn``; binary cross-entropy
is a Function of its own (to clamp its logs at -100 as PyTorch does); everything else is a
composite of ordinary ops, so its gradient comes from the chain rule with no new backward code.
Arguments follow ``torch.nn.functional`` (``dim``, and NumPy's ``axis`` too; ``reduction=``).
"""

import math

import numpy as np

from minigrad import ops
from minigrad import random as mg_random
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops.activation import (  # re-exported: PyTorch's F has them
    celu, elu, gelu, hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax,
    logsigmoid, mish, relu, relu6, selu, sigmoid, silu, softmax, softplus, softshrink, softsign,
    tanh, tanhshrink, threshold)
from minigrad.ops.dims import dim_spellings, normalize_dim
from minigrad.ops.indexing import index_array
from minigrad.ops.nn import (AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, MaxPool2dIndices,
                              PutIntoPlanes, SoftmaxCrossEntropy, check_bias, check_conv_groups,
                              check_layer_dtypes, pair, pool_geometry, transposed_output_size,
                              window_geometry)
from minigrad.ops.nn import Linear as LinearOp
from minigrad.ops.normalization import LayerNormFunction, RMSNormFunction
from minigrad.ops.shape import positions_along, read_positions
from minigrad.tensor import Tensor, as_tensor


# --------------------------------------------------------------------------- layers
def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch (one fused
    node; the same as the composite ``x @ weight.T + bias``, which the tests check)."""
    return _fused_linear(input, weight, bias, relu=False)


def _fused_linear(input, weight, bias, relu):
    """``linear``, followed by max(y, 0) in the same node when ``relu`` (``nn.Sequential``
    runs a Linear and the ReLU after it this way under no_grad). Private to ``minigrad.nn``:
    the layers call it and ``_convolution``, so F's public names stay PyTorch's."""
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {input.shape} has {input.shape[-1]} features, weight "
                         f"{weight.shape} expects {weight.shape[1]}")
    check_bias("linear", weight, bias)
    check_layer_dtypes("linear", input, weight, bias)
    return LinearOp.apply(*_present(input, weight, bias), relu=relu)


def _present(*tensors):
    """A layer op's tensor inputs, a missing bias left out (the op then has none)."""
    return [t for t in tensors if t is not None]


def _one(value, name):
    """An int or a 1-tuple as an int: the window arguments of the 1-D ops."""
    if isinstance(value, int):
        return value
    if len(value) != 1:
        raise ValueError(f"{name}: expected an int or a 1-tuple, got {value!r}")
    return value[0]


def _conv_padding(name, padding, kernel, stride, dilation):
    """(padding on both sides, extra padding at the end) along each spatial axis, for an int,
    a tuple, "valid" (no padding) or "same" (stride 1 only, as in PyTorch: d (K - 1) zeros in
    all, half on each side and the odd one, if any, at the end, so the output is as large as
    the input)."""
    if padding == "valid":
        return (0,) * len(kernel), (0,) * len(kernel)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple(t // 2 for t in totals), tuple(t % 2 for t in totals)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', "
                         f"got {padding!r}")
    return padding, (0,) * len(kernel)


def _as_images(x, weight, geometry):
    """A 1-D op's (N, C, L) input and (., ., K) weight as images one row high, (N, C, 1, L)
    and (., ., 1, K), and its per-axis ``geometry`` tuples, given as (first, tuple) pairs,
    with ``first`` prepended for the new axis; a 2-D op's unchanged."""
    if x.ndim == 4:
        return x, weight, [value for _, value in geometry]
    return (x.unsqueeze(2), weight.unsqueeze(2),
            [(first,) + tuple(value) for first, value in geometry])


def _back_to_ndim(out, ndim):
    """An (N, O, H, W) output back in the ``ndim`` dimensions of the op's input (a 1-D op's
    row dropped again)."""
    return out if ndim == 4 else out.squeeze(2)


def _convolution(name, input, weight, bias, stride, padding, dilation, groups, relu=False):
    """conv1d and conv2d (``stride``, ``dilation`` one entry per spatial axis): checks that
    name the op and its shapes, then the Conv2d op, a 1-D input as an image one row high;
    with ``relu``, max(out, 0) in the same node (what ``nn.Sequential`` runs under no_grad)."""
    spatial = len(stride)
    if input.ndim != spatial + 2 or weight.ndim != spatial + 2:
        raise ValueError(f"{name}: input {input.shape} (N, C, {spatial} spatial dims) and weight "
                         f"{weight.shape} (O, C/groups, {spatial} kernel dims) must have "
                         f"{spatial} spatial dims")
    check_conv_groups(name, input.shape, weight.shape, groups)
    check_bias(name, weight, bias)
    check_layer_dtypes(name, input, weight, bias)
    padding, extra = _conv_padding(name, padding, weight.shape[2:], stride, dilation)
    window_geometry(name, input.shape[:2] + tuple(n + e for n, e in zip(input.shape[2:], extra)),
                    weight.shape[2:], stride, padding, dilation)
    x, w, (stride, padding, extra, dilation) = _as_images(
        input, weight, [(1, stride), (0, padding), (0, extra), (1, dilation)])
    if any(extra):
        x = ops.pad(x, (0, extra[1], 0, extra[0]))
    out = Conv2d.apply(*_present(x, w, bias), stride=stride, padding=padding,
                       dilation=dilation, groups=groups, relu=relu)
    return _back_to_ndim(out, input.ndim)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation plus bias: out[n, o] = b[o] + sum_c w[o, c] (*) x[n, g*C/G + c],
    with weight (O, C/G, KH, KW) in G = ``groups`` groups, o in group g = o // (O/G) (G = C:
    depthwise). ``padding`` may also be "valid" (none) or "same" (stride 1: the output as large
    as the input)."""
    padding = padding if isinstance(padding, str) else pair(padding)
    return _convolution("conv2d", input, weight, bias, pair(stride), padding, pair(dilation),
                        groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation plus bias over (N, C, L) inputs with (O, C/groups, K) weights: a
    composite, conv2d on images one row high. ``padding`` and ``groups`` as in conv2d."""
    if not isinstance(padding, str):
        padding = (_one(padding, "conv1d"),)
    return _convolution("conv1d", input, weight, bias, (_one(stride, "conv1d"),),
                        padding, (_one(dilation, "conv1d"),), groups)


def _transposed_convolution(name, input, weight, bias, stride, padding, output_padding,
                           groups, dilation, relu=False):
    """conv_transpose1d and conv_transpose2d (one entry per spatial axis in each geometry
    tuple): the ConvTranspose2d op, a 1-D input as an image one row high; ``relu`` as in
    ``convolution``."""
    transposed_output_size(name, input.shape, weight.shape, stride, padding, output_padding,
                           dilation)
    check_conv_groups(name, input.shape, weight.shape, groups, transposed=True)
    check_bias(name, weight, bias, channels=weight.shape[1] * groups)
    check_layer_dtypes(name, input, weight, bias)
    x, w, (stride, padding, output_padding, dilation) = _as_images(
        input, weight, [(1, stride), (0, padding), (0, output_padding), (1, dilation)])
    out = ConvTranspose2d.apply(*_present(x, w, bias), stride=stride, padding=padding,
                                output_padding=output_padding, dilation=dilation, groups=groups,
                                relu=relu)
    return _back_to_ndim(out, input.ndim)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The transposed convolution ("deconvolution"), weight (C_in, C_out/groups, KH, KW): the
    gradient of conv2d with respect to its input, plus bias (input channel c of group
    g = c // (C_in/groups) adds only into output channels g*C_out/groups + o).
    H_out = (H - 1) s - 2p + d (KH - 1) + output_padding + 1; output_padding (smaller than the
    stride or the dilation) picks among the output sizes that a stride-s conv2d maps back to
    H."""
    return _transposed_convolution("conv_transpose2d", input, weight, bias, pair(stride),
                                   pair(padding), pair(output_padding), groups, pair(dilation))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The transposed convolution of (N, C_in, L) inputs with (C_in, C_out/groups, K) weights: a
    composite, conv_transpose2d on images one row high."""
    name = "conv_transpose1d"
    return _transposed_convolution(
        name, input, weight, bias, (_one(stride, name),),
        (_one(padding, name),), (_one(output_padding, name),),
        groups, (_one(dilation, name),))


def _window(kernel_size, stride, padding, dilation, to):
    """The window arguments as ``to`` makes them (pairs, or 1-tuples); ``stride`` defaults to
    ``kernel_size`` (non-overlapping windows)."""
    stride = kernel_size if stride is None else stride
    return to(kernel_size), to(stride), to(padding), to(dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window (padding counts as -inf); ``stride`` defaults to ``kernel_size``.
    ``ceil_mode`` keeps a last partial window that starts inside the input or the left
    padding. ``return_indices`` also returns where each maximum is, as PyTorch: its flat
    index h*W + w in its (H, W) plane (int64), what ``max_unpool2d`` takes."""
    kernel_size, stride, padding, dilation = _window(kernel_size, stride, padding, dilation,
                                                     pair)
    geometry = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode)
    if not return_indices:
        return MaxPool2d.apply(input, **geometry)
    indices = MaxPool2dIndices.apply(input, **geometry)
    planes = input.reshape(input.shape[0] * input.shape[1], -1)  # one row per (H, W) plane
    flat = indices.data.reshape(planes.shape[0], -1)
    return read_positions(planes, positions_along(flat, 1)).reshape(indices.shape), indices


def _check_signal_batch(name, input):
    if input.ndim != 3:
        raise ValueError(f"{name}: expected an (N, C, L) input, got shape {input.shape}")


def _single(name):
    """``_one`` as a 1-tuple, for the window arguments of op ``name``."""
    return lambda value: (_one(value, name),)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """max_pool2d over (N, C, L) inputs (a composite: images one row high); the indices are
    positions along L."""
    _check_signal_batch("max_pool1d", input)
    window = _window(kernel_size, stride, padding, dilation, _single("max_pool1d"))
    pool_geometry("max_pool1d", input.shape, *window, ceil_mode)
    (k,), (s,), (p,), (d,) = window
    out = max_pool2d(input.unsqueeze(2), (1, k), (1, s), (0, p), (1, d), ceil_mode,
                     return_indices)
    if return_indices:
        return out[0].squeeze(2), out[1].squeeze(2)
    return out.squeeze(2)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window; ``stride`` defaults to ``kernel_size``. The divisor is KH*KW
    (zero padding counted), or with ``count_include_pad=False`` the number of the window's
    inputs inside the image, or ``divisor_override``; ``ceil_mode`` as in max_pool2d."""
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("avg_pool2d: divisor_override must not be 0")
    kernel_size, stride, padding, _ = _window(kernel_size, stride, padding, 1, pair)
    return AvgPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                           divisor_override=divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """avg_pool2d over (N, C, L) inputs (a composite: images one row high)."""
    _check_signal_batch("avg_pool1d", input)
    (k,), (s,), (p,), _ = _window(kernel_size, stride, padding, 1, _single("avg_pool1d"))
    pool_geometry("avg_pool1d", input.shape, (k,), (s,), (p,), (1,), ceil_mode)
    return avg_pool2d(input.unsqueeze(2), (1, k), (1, s), (0, p), ceil_mode,
                      count_include_pad).squeeze(2)


def _unpool_plane(name, input_hw, kernel_size, stride, padding, output_size):
    """The (H, W) plane max unpooling writes into: by default the size max pooling maps to
    the input, (H_in - 1) s - 2p + K; a given ``output_size`` (its last two entries) must be
    within a stride of it, as in PyTorch."""
    default = tuple((n - 1) * s - 2 * p + k
                    for n, k, s, p in zip(input_hw, kernel_size, stride, padding))
    if output_size is None:
        return default
    size = tuple(output_size)[-2:]
    if len(size) != 2 or any(not d - s < n < d + s for n, d, s in zip(size, default, stride)):
        raise ValueError(f"{name}: output_size {tuple(output_size)} must end with (H, W) each "
                         f"within a stride {stride} of {default}")
    return size


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of max_pool2d as far as it goes: zeros, with each value of ``input`` put
    back where max_pool2d(..., return_indices=True) found it (``indices``: flat h*W + w).
    Its gradient reads dL/dout at the indices, as PyTorch's, so where pooling windows overlap
    an input that won k of them receives it k times through max_pool2d."""
    kernel_size, stride, padding, _ = _window(kernel_size, stride, padding, 1, pair)
    indices = as_tensor(indices)
    if input.ndim != 4 or indices.shape != input.shape:
        raise ValueError(f"max_unpool2d: expected an (N, C, H, W) input and indices of its "
                         f"shape, got {input.shape} and {indices.shape}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"max_unpool2d: indices must be integers, got {indices.dtype}")
    plane = _unpool_plane("max_unpool2d", input.shape[2:], kernel_size, stride, padding,
                          output_size)
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < plane[0] * plane[1]:
        raise ValueError(f"max_unpool2d: indices {int(indices.min())}..{int(indices.max())} "
                         f"are outside the output plane {plane} ({plane[0] * plane[1]} elements)")
    return PutIntoPlanes.apply(input, indices, plane=plane)


def _per_axis(name, argument, value, n):
    """A number or a sequence of ``n`` as a tuple of ``n``."""
    if not isinstance(value, (tuple, list)):
        return (value,) * n
    if len(value) != n:
        raise ValueError(f"{name}: {argument} {tuple(value)} must have one entry per spatial "
                         f"dim ({n})")
    return tuple(value)


def _along_hw(x, rows, columns):
    """rows @ x @ columns^T on the last two axes: each (H, W) image through one constant
    (H_out, H) matrix down its columns and one (W_out, W) matrix along its rows."""
    return ops.matmul(ops.matmul(Tensor(rows), x), Tensor(columns.T))


def _average_matrix(xp, size, out, dtype):
    """(out, size): row i averages inputs start_i .. end_i - 1, start_i = floor(i size / out),
    end_i = ceil((i + 1) size / out) (PyTorch's adaptive windows, which may overlap)."""
    i = xp.arange(out)[:, None]
    start, end = i * size // out, -(-(i + 1) * size // out)
    inside = (xp.arange(size) >= start) & (xp.arange(size) < end)
    return (inside / (end - start)).astype(dtype)


def adaptive_avg_pool2d(input, output_size=1):
    """Average pooling to an (H_out, W_out) of your choice (None keeps that size): window i
    along an axis of size H spans floor(i H / H_out) .. ceil((i + 1) H / H_out) - 1. A
    composite: the window means are two matrix products (``_average_matrix`` down and across
    each image), whose gradients spread each output's back over its window."""
    if input.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected an (N, C, H, W) or (C, H, W) input, "
                         f"got shape {input.shape}")
    sizes = tuple(n if out is None else out for n, out in zip(
        input.shape[-2:], _per_axis("adaptive_avg_pool2d", "output_size", output_size, 2)))
    if min(sizes) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size {sizes} must be positive")
    xp = array_module(input.data)
    return _along_hw(input, *(_average_matrix(xp, n, out, input.dtype)
                              for n, out in zip(input.shape[-2:], sizes)))


def _interpolated_sizes(input_sizes, size, scale_factor):
    """(output sizes, scale factors or Nones) of ``interpolate``: exactly one of ``size`` and
    ``scale_factor``; a factor f gives floor(n f) outputs."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    n = len(input_sizes)
    if size is not None:
        sizes, factors = _per_axis("interpolate", "size", size, n), (None,) * n
    else:
        factors = _per_axis("interpolate", "scale_factor", scale_factor, n)
        sizes = tuple(math.floor(m * f) for m, f in zip(input_sizes, factors))
    if min(sizes) < 1:
        raise ValueError(f"interpolate: the output size {sizes} of an input of spatial size "
                         f"{tuple(input_sizes)} must be positive")
    return sizes, factors


def _nearest_source(xp, size, out, factor, doubling_is_exact):
    """For each output position, the input it copies: floor(i * scale) in float32 (as
    PyTorch computes it), scale = 1 / factor when a factor was given, else size / out. The 2-D
    kernel of PyTorch copies straight when out is size or 2 size, whatever the factor."""
    i = xp.arange(out)
    if doubling_is_exact and out in (size, 2 * size):
        return i // (out // size)
    scale = np.float32(1 / factor) if factor else np.float32(size) / np.float32(out)
    return xp.minimum(xp.floor(i.astype(np.float32) * scale).astype(np.int64), size - 1)


def _linear_matrix(xp, size, out, factor, align_corners, dtype):
    """(out, size): row i is (1 - t) at i0 and t at i1 = min(i0 + 1, size - 1), for the
    source position src = i0 + t (0 <= t < 1): with align_corners, src = i (size - 1) /
    (out - 1), the corner pixels' centres meeting; otherwise src = max((i + 0.5) scale - 0.5,
    0), scale = 1 / factor or size / out (PyTorch's rule). An axis whose size does not change
    is copied, whatever the factor, as PyTorch's kernel does."""
    if out == size:
        return xp.eye(size, dtype=dtype)
    i = xp.arange(out, dtype=np.float64)
    if align_corners:
        src = i * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = xp.maximum((i + 0.5) * (1 / factor if factor else size / out) - 0.5, 0)
    low = xp.minimum(xp.floor(src).astype(np.int64), size - 1)
    t = src - low
    matrix = xp.zeros((out, size))
    xp.add.at(matrix, (xp.arange(out), low), 1 - t)
    xp.add.at(matrix, (xp.arange(out), xp.minimum(low + 1, size - 1)), t)
    return matrix.astype(dtype)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the spatial dims to ``size``, or by ``scale_factor``, as
    ``torch.nn.functional.interpolate`` (a composite):

    * "nearest" ((N, C, L) or (N, C, H, W)): output i copies input floor(i * scale), read by
      indexing, so its gradient is added back there;
    * "bilinear" ((N, C, H, W)): each output is the two-by-two weighted mean of the input
      pixels around its source position, two matrix products (``_linear_matrix``).
    """
    ndims = {"nearest": (3, 4), "bilinear": (4,)}
    if mode not in ndims:
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if input.ndim not in ndims[mode]:
        raise ValueError(f"interpolate: mode {mode!r} takes "
                         f"{' or '.join(f'{n}-D' for n in ndims[mode])} inputs, got shape "
                         f"{input.shape}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with mode='bilinear'")
    sizes, factors = _interpolated_sizes(input.shape[2:], size, scale_factor)
    xp = array_module(input.data)
    if mode == "bilinear":
        return _along_hw(input, *(_linear_matrix(xp, n, out, f, bool(align_corners),
                                                 input.dtype)
                                  for n, out, f in zip(input.shape[2:], sizes, factors)))
    sources = [_nearest_source(xp, n, out, f, input.ndim == 4)
               for n, out, f in zip(input.shape[2:], sizes, factors)]
    if input.ndim == 3:
        return input[:, :, sources[0]]
    return input[:, :, sources[0][:, None], sources[1]]


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization (Ioffe & Szegedy 2015) over every axis but the channel axis 1:

        y = (x - mu) / sqrt(var + eps) * gamma + beta

    In training, mu and var are the batch's mean and biased variance, and the running
    statistics move towards them in place: r <- (1 - momentum) r + momentum * stat, using the
    *unbiased* batch variance for r_var (PyTorch's rule). In eval, the running statistics are
    used instead, so the output no longer depends on the rest of the batch.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, ...) input, got shape {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, "
                             f"got input shape {x.shape}")
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, correction=0, keepdims=True)
        if running_mean is not None:
            running_mean.data[...] = ((1 - momentum) * running_mean.data
                                      + momentum * mean.data.reshape(-1))
            running_var.data[...] = ((1 - momentum) * running_var.data
                                     + momentum * var.data.reshape(-1) * count / (count - 1))
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / ops.sqrt(var + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _as_shape(normalized_shape):
    """An int or a sequence of ints as a tuple of ints: 4 -> (4,), [2, 3] -> (2, 3). Private to
    ``minigrad.nn`` (the normalization layers use it)."""
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def _normalized_shape(name, input, normalized_shape, **affine):
    """``normalized_shape`` (an int or a sequence) as a tuple; ValueError naming the shapes
    unless it is the input's last dims and each given tensor of ``affine`` ({name: tensor or
    None}) has that shape."""
    shape = _as_shape(normalized_shape)
    if not shape or len(shape) > input.ndim or tuple(input.shape[-len(shape):]) != shape:
        raise ValueError(f"{name}: normalized_shape {shape} does not match the last dims of "
                         f"input of shape {tuple(input.shape)}")
    for what, tensor in affine.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name}: {what} of shape {tuple(tensor.shape)} does not match "
                             f"normalized_shape {shape}")
    if any(tensor is not None for tensor in affine.values()):
        check_layer_dtypes(name, input, *_present(*affine.values()))
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization (Ba et al. 2016) over the last ``len(normalized_shape)`` dims:

        y = (x - mean) / sqrt(var + eps) * weight + bias,   var biased (divided by n)

    One node with a closed-form backward (``ops.normalization.LayerNormFunction``)."""
    shape = _normalized_shape("layer_norm", input, normalized_shape, weight=weight, bias=bias)
    return LayerNormFunction.apply(*_present(input, weight, bias), normalized_ndim=len(shape),
                                   eps=float(eps), has_weight=weight is not None,
                                   has_bias=bias is not None)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """RMS normalization (Zhang & Sennrich 2019) over the last ``len(normalized_shape)`` dims:

        y = x / sqrt(mean(x^2) + eps) * weight,   eps=None: the machine epsilon of x's dtype

    as PyTorch (``torch.finfo(x.dtype).eps``). One node (``ops.normalization.RMSNormFunction``)."""
    shape = _normalized_shape("rms_norm", input, normalized_shape, weight=weight)
    eps = np.finfo(input.dtype).eps if eps is None else eps
    return RMSNormFunction.apply(*_present(input, weight), normalized_ndim=len(shape),
                                 eps=float(eps), has_weight=weight is not None, has_bias=False)


def _padding_index(padding_idx, num_embeddings):
    """``padding_idx`` in [0, num_embeddings) (a negative one counts from the end, as in
    PyTorch), or None; ValueError naming both numbers when it is outside
    [-num_embeddings, num_embeddings). Private to ``minigrad.nn`` (``nn.Embedding`` uses it)."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"embedding: padding_idx {padding_idx} must be within "
                         f"num_embeddings={num_embeddings}")
    return padding_idx % num_embeddings


def embedding(input, weight, padding_idx=None):
    """The rows of ``weight`` (num_embeddings, embedding_dim) at the integer indices ``input``
    (any shape): out[..., :] = weight[input[...], :], of shape input.shape + (embedding_dim,).

    A read at positions (``read_positions``), whose backward adds each output row's gradient
    into the weight row it came from: dL/dweight[i] = sum of dL/dout over the positions where
    input == i (``add.at``, so repeated indices add up). Rows read at ``padding_idx`` give no
    gradient, so that row's gradient stays zero (PyTorch's rule); the forward still reads it."""
    index = index_array("embedding", input)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got "
                         f"shape {tuple(weight.shape)}")
    num_embeddings = weight.shape[0]
    padding_idx = _padding_index(padding_idx, num_embeddings)
    outside = (index < 0) | (index >= num_embeddings)
    if outside.any():
        raise ValueError(f"embedding: index {int(index[outside].ravel()[0])} is out of range "
                         f"for Embedding with num_embeddings={num_embeddings}")
    out = read_positions(weight, (index,))
    if padding_idx is None or not (index == padding_idx).any():
        return out
    # Where the index is padding_idx, take the same values from a copy cut off the graph.
    return ops.where(Tensor((index == padding_idx)[..., None]), out.detach(), out)


def dropout(x, p=0.5, training=True):
    """Inverted dropout (Srivastava et al. 2014): in training each element is zeroed with
    probability p and the survivors are scaled by 1/(1 - p), so the expected value is unchanged
    and evaluation needs no rescaling; in eval it is the identity."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = mg_random.generator().random(x.shape) >= p
    mask = array_module(x.data).asarray(keep / (1 - p), dtype=x.dtype)
    return x * Tensor(mask)


# --------------------------------------------------------------------------- attention
def _attention_bias(mask, dtype, masked_where):
    """A bool attention mask as the additive bias it stands for: -inf where the mask equals
    ``masked_where``, 0 elsewhere (a constant); a float mask already is a bias and is returned
    as it is. SDPA masks where a bool mask is False, ``nn.MultiheadAttention`` where it is
    True: PyTorch's two conventions."""
    mask = as_tensor(mask)
    if mask.dtype != np.bool_:
        return mask
    xp = array_module(mask.data)
    return Tensor(xp.where(mask.data == masked_where, -xp.inf, 0).astype(dtype))


def _attention(query, key, value, bias, dropout_p, scale):
    """(softmax(Q K^T * scale + bias) with dropout) V, and those attention weights
    (..., L, S), as ``nn.MultiheadAttention`` returns them (after dropout, as in PyTorch)."""
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = ops.matmul(query, key.swapaxes(-2, -1)) * scale
    if bias is not None:
        scores = scores + bias
    weights = dropout(softmax(scores, dim=-1), dropout_p)
    return ops.matmul(weights, value), weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """Scaled dot-product attention (Vaswani et al. 2017), as ``torch.nn.functional``'s:

        softmax(Q K^T * scale + B) V,   scale = 1 / sqrt(E) unless given

    for query (..., L, E), key (..., S, E) and value (..., S, Ev). The bias B comes from
    ``attn_mask``, which broadcasts to (..., L, S): a bool mask lets a query attend where it is
    True (B = -inf where False), a float mask is B itself; ``is_causal`` masks the keys after
    each query (the lower triangle of an (L, S) mask of ones stays) and excludes
    ``attn_mask``. Dropout with probability ``dropout_p`` acts on the attention weights
    whenever it is > 0 (no training flag here, as in PyTorch), drawing from minigrad's seeded
    generator."""
    scores_shape = (np.broadcast_shapes(query.shape[:-2], key.shape[:-2])
                    + (query.shape[-2], key.shape[-2]))
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: pass either attn_mask or "
                             "is_causal=True, not both")
        xp = array_module(query.data)
        attn_mask = Tensor(xp.tril(xp.ones(scores_shape[-2:], dtype=bool)))
    if attn_mask is None:
        return _attention(query, key, value, None, dropout_p, scale)[0]
    mask_shape = tuple(attn_mask.shape)
    try:
        fits = np.broadcast_shapes(mask_shape, scores_shape) == scores_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {mask_shape} does "
                         f"not broadcast to the attention weights' shape {scores_shape} "
                         f"(..., L, S)")
    bias = _attention_bias(attn_mask, query.dtype, masked_where=False)
    return _attention(query, key, value, bias, dropout_p, scale)[0]


# --------------------------------------------------------------------------- losses
def _reduce(loss, reduction, name):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(name, input, target):
    target = as_tensor(target)
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {input.shape} and target shape {target.shape} "
                         "differ")


def _weighted_mean_or_reduce(loss, weights, reduction, name):
    """``_reduce``, except that "mean" is sum(loss) / sum(weights): the weighted mean of
    nll_loss and cross_entropy (NaN when the weights sum to 0, as in PyTorch)."""
    if reduction != "mean":
        return _reduce(loss, reduction, name)
    total = float(weights.sum())
    return loss.sum() / total if total else loss.sum() * float("nan")


def _check_label_smoothing(label_smoothing):
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")


def _class_dim(name, input):
    """The dim of ``input`` that holds the classes: 0 for one unbatched sample (C,), else 1
    ((N, C) or (N, C, d1, ...))."""
    if input.ndim == 0:
        raise ValueError(f"{name}: expected input (C,), (N, C) or (N, C, d1, ...), "
                         "got a 0-d tensor")
    return 0 if input.ndim == 1 else 1


def _layout(ndim):
    """The shapes an input of ``ndim`` dims and its class-index target must have."""
    return {1: "input (C,) and target ()", 2: "input (N, C) and target (N,)"}.get(
        ndim, "input (N, C, d1, ...) and target (N, d1, ...)")


def _is_probability_target(input, target):
    """A floating-point target of the input's shape holds class probabilities (PyTorch's
    rule); any other target holds class indices."""
    return target.shape == input.shape and target.dtype.kind == "f"


def _class_indices(name, input, target, ignore_index):
    """Validate class indices against scores (C,), (N, C) or (N, C, d1, ...): the target has
    the input's shape without the class dim, and each index is in [0, C) or is
    ``ignore_index``. Returns the index array."""
    target = as_tensor(target).data  # a Tensor, or an array (NumPy or CuPy) of indices
    class_dim = _class_dim(name, input)
    classes = input.shape[class_dim]
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, or class "
                        f"probabilities of the input's shape {input.shape}; got {target.dtype} "
                        f"of shape {target.shape}")
    if target.shape != input.shape[:class_dim] + input.shape[class_dim + 1:]:
        raise ValueError(f"{name}: expected {_layout(input.ndim)}, got input {input.shape} "
                         f"and target {target.shape}")
    counted = target[target != ignore_index]
    outside = counted[(counted < 0) | (counted >= classes)]
    if outside.size:
        raise ValueError(f"{name}: class indices must be in [0, {classes}), got "
                         f"{int(counted.min())}..{int(counted.max())}: class index "
                         f"{int(outside[0])} is out of range (targets equal to "
                         f"ignore_index={ignore_index} are skipped)")
    return target


def _class_weights(name, input, weight):
    """``weight``, one per class, as a constant array of the input's dtype (None stays None)."""
    if weight is None:
        return None
    weight = as_tensor(weight).data
    classes = input.shape[_class_dim(name, input)]
    if weight.shape != (classes,):
        raise ValueError(f"{name}: weight must hold one value per class: got {weight.size} "
                         f"(shape {weight.shape}) for {classes} classes")
    return weight.astype(input.dtype, copy=False)


def _class_targets(name, input, target, weight, ignore_index):
    """The validated targets as three arrays of the target's shape: the class index (0 where
    ignored, so it can index), whether the target counts (is not ``ignore_index``), and its
    weight w[y_n] (1 without ``weight``; 0 where ignored)."""
    indices = _class_indices(name, input, target, ignore_index)
    xp = array_module(indices)
    counted = indices != ignore_index
    safe = xp.where(counted, indices, 0)
    class_weights = _class_weights(name, input, weight)
    weights = counted.astype(input.dtype) if class_weights is None else (
        class_weights[safe] * counted)
    return safe, counted, weights


def _rows_of_classes(scores):
    """Scores (C,), (N, C) or (N, C, d1, ...) as an (M, C) matrix with one row per target:
    the class dim moved last, the others flattened in the target's order."""
    if scores.ndim == 2:
        return scores
    if scores.ndim > 2:
        scores = scores.permute(0, *range(2, scores.ndim), 1)
    return scores.reshape(-1, scores.shape[-1])


def _negative_log_likelihood(log_probs, indices, counted, weights):
    """-w[y_n] log p[n, y_n] for each target, and 0 for an ignored one (even where its
    log-probability is -inf)."""
    flat = indices.reshape(-1)
    picked = _rows_of_classes(log_probs)[array_module(flat).arange(flat.size), flat]
    return ops.where(counted, -picked.reshape(indices.shape) * weights, 0.0)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood from log-probabilities ``input`` (C,), (N, C) or
    (N, C, d1, ...) and class indices ``target`` (the input's shape without the class dim):

        loss_n = -w[y_n] input[n, y_n],   and 0 where y_n = ignore_index,

    with w = ``weight`` (one per class; 1 when None). "mean" is the weighted mean,
    sum_n loss_n / sum_n w[y_n] over the targets that are not ignored, as in PyTorch."""
    indices, counted, weights = _class_targets("nll_loss", input, target, weight, ignore_index)
    loss = _negative_log_likelihood(input, indices, counted, weights)
    return _weighted_mean_or_reduce(loss, weights, reduction, "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy from raw scores ``input`` (C,), (N, C) or (N, C, d1, ...), as
    ``torch.nn.functional.cross_entropy``. With p = softmax over the class dim and class
    indices y (the input's shape without the class dim):

        loss_n = (1 - eps) w[y_n] (-log p[n, y_n]) + (eps / C) sum_c w[c] (-log p[n, c]),

    0 where y_n = ignore_index; "mean" divides the sum by sum_n w[y_n] over the targets not
    ignored (w = ``weight``, 1 when None; eps = ``label_smoothing``, which mixes the one-hot
    target with the uniform distribution, Szegedy et al. 2016). A floating-point target of the
    input's shape holds class probabilities q instead:

        loss_n = -sum_c w[c] q'[n, c] log p[n, c],   q' = (1 - eps) q + eps / C,

    and "mean" divides by the number of samples. The plain case (class indices, no weight,
    nothing ignored) runs the fused ``SoftmaxCrossEntropy`` op, whose gradient is p - q; the
    others run ``cross_entropy_composite``, against which the tests check the fused op.
    """
    _check_label_smoothing(label_smoothing)
    if weight is None and not _is_probability_target(input, as_tensor(target)):
        indices = _class_indices("cross_entropy", input, target, ignore_index)
        if not (indices == ignore_index).any():
            loss = SoftmaxCrossEntropy.apply(_rows_of_classes(input), target=indices.reshape(-1),
                                             label_smoothing=label_smoothing)
            if loss.shape != indices.shape:  # (C,) or (N, C, d1, ...) scores: back to d1, ...
                loss = loss.reshape(indices.shape)
            return _reduce(loss, reduction, "cross_entropy")
    return cross_entropy_composite(input, target, weight, ignore_index, reduction,
                                   label_smoothing)


def cross_entropy_composite(input, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """``cross_entropy`` from ordinary ops (log_softmax, a gather of the targets' entries,
    sums), with every option: the readable version, and the test oracle of the fused op."""
    _check_label_smoothing(label_smoothing)
    target = as_tensor(target)
    class_dim = _class_dim("cross_entropy", input)
    classes = input.shape[class_dim]
    log_probs = log_softmax(input, dim=class_dim)
    class_weights = _class_weights("cross_entropy", input, weight)
    if class_weights is not None:  # w[c] along the class dim, to broadcast against log p
        class_weights = class_weights.reshape((classes,) + (1,) * (input.ndim - class_dim - 1))
    weighted = log_probs if class_weights is None else log_probs * class_weights
    if _is_probability_target(input, target):
        if ignore_index >= 0:
            raise ValueError(f"cross_entropy: ignore_index={ignore_index} has no meaning for "
                             "a target of class probabilities")
        smoothed = target * (1 - label_smoothing) + label_smoothing / classes
        return _reduce(-(weighted * smoothed).sum(dim=class_dim), reduction, "cross_entropy")
    indices, counted, weights = _class_targets("cross_entropy", input, target, weight,
                                               ignore_index)
    loss = _negative_log_likelihood(log_probs, indices, counted, weights)
    if label_smoothing:
        uniform = ops.where(counted, -weighted.sum(dim=class_dim), 0.0)
        loss = (1 - label_smoothing) * loss + (label_smoothing / classes) * uniform
    return _weighted_mean_or_reduce(loss, weights, reduction, "cross_entropy")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: (input - target)^2, reduced."""
    _check_same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error: |input - target|, reduced."""
    _check_same_shape("l1_loss", input, target)
    return _reduce(ops.abs(input - target), reduction, "l1_loss")


def _check_broadcasts_to(name, what, tensor, shape):
    """ValueError naming both shapes unless ``tensor`` broadcasts to ``shape`` as it is (a
    weight may repeat along the input's dims but not add to them)."""
    try:
        fits = np.broadcast_shapes(tensor.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: {what} of shape {tensor.shape} does not broadcast to the "
                         f"input's shape {tuple(shape)}")


def _weighted(name, loss, weight):
    """loss * weight, the weight broadcast over the loss (unchanged when None)."""
    if weight is None:
        return loss
    weight = as_tensor(weight)
    _check_broadcasts_to(name, "weight", weight, loss.shape)
    return loss * weight


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross-entropy of sigmoid(x) against y, from raw scores x:

        loss = -w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
             = w [(1 - y) x + (1 + (pw - 1) y) softplus(-x)],   softplus(x) = log(1 + e^x),

    with w = ``weight`` and pw = ``pos_weight`` (the weight of the positive term, one per class
    along the last dim; 1 when None). Without pos_weight it is softplus(x) - x y. softplus is
    computed stably (it never takes the log of 0 nor the exp of a large number), and the
    gradient, w [(1 + (pw - 1) y) sigmoid(x) - pw y], is right everywhere, x = 0 included."""
    name = "binary_cross_entropy_with_logits"
    _check_same_shape(name, input, target)
    if pos_weight is None:
        loss = softplus(input) - input * target
    else:
        pos_weight = as_tensor(pos_weight)
        _check_broadcasts_to(name, "pos_weight", pos_weight, input.shape)
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus(-input)
    return _reduce(_weighted(name, loss, weight), reduction, name)


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence KL(target || model), PyTorch's argument order: ``input`` is
    the model's log-probabilities log q, ``target`` the reference distribution p (or log p when
    ``log_target``):

        loss = p (log p - log q),   with 0 where p = 0 (0 log 0 = 0).

    ``reduction="batchmean"`` divides the sum by the batch size, which is the true KL per
    sample; ``"mean"`` divides by the number of elements (PyTorch keeps it for compatibility).
    """
    _check_same_shape("kl_div", input, target)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        positive = target > 0
        safe_log = ops.log(ops.where(positive, target, 1.0))
        loss = ops.where(positive, target * (safe_log - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction, "kl_div")


class BinaryCrossEntropy(Function):
    """Binary cross-entropy of probabilities x against targets y, each log clamped at -100 as
    in PyTorch (so x = 0 or 1 gives a finite loss, and a finite gradient):

        loss = -[y max(log x, -100) + (1 - y) max(log(1 - x), -100)]
        dloss/dx = (x - y) / max(x (1 - x), 1e-12),    dloss/dy = log(1 - x) - log x.
    """

    @staticmethod
    def forward(ctx, x, y):
        xp = array_module(x)
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped to -100
            log_x, log_rest = xp.log(x), xp.log1p(-x)
        ctx.save_for_backward(x, y)
        return -(y * xp.maximum(log_x, -100) + (1 - y) * xp.maximum(log_rest, -100))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        xp = array_module(x)
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * (x - y) / xp.maximum(x * (1 - x), 1e-12)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # an infinite log-odds at x = 0 or 1
                grad_y = grad * (xp.log1p(-x) - xp.log(x))
        return grad_x, grad_y


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-w [y log x + (1 - y) log(1 - x)] on probabilities x in [0, 1] (``BinaryCrossEntropy``,
    logs clamped at -100), w = ``weight`` broadcast over the input. From raw scores,
    ``binary_cross_entropy_with_logits`` is the stable choice."""
    name = "binary_cross_entropy"
    _check_same_shape(name, input, target)
    values = input.data
    if values.size and bool(((values < 0) | (values > 1)).any()):
        raise ValueError(f"{name}: input must hold probabilities in [0, 1], got values in "
                         f"[{float(values.min())}, {float(values.max())}] (for raw scores use "
                         "binary_cross_entropy_with_logits)")
    target = as_tensor(target)
    if target.dtype != input.dtype:
        target = ops.cast(target, input.dtype)
    return _reduce(_weighted(name, BinaryCrossEntropy.apply(input, target), weight), reduction,
                   name)


def _huber(difference, delta):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta): quadratic near 0, linear
    beyond, with slope d clipped to [-delta, delta]."""
    size = ops.abs(difference)
    return ops.where(size <= delta, 0.5 * difference * difference,
                     delta * (size - 0.5 * delta))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """Huber loss (Huber 1964) of d = input - target: 0.5 d^2 where |d| <= delta, else
    delta (|d| - 0.5 delta); its gradient is d clipped to [-delta, delta]. ``weight`` (the
    input's shape) multiplies each element's loss."""
    _check_same_shape("huber_loss", input, target)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    if weight is not None:
        _check_same_shape("huber_loss", input, weight)
    loss = _weighted("huber_loss", _huber(input - target, delta), weight)
    return _reduce(loss, reduction, "huber_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Smooth L1 of d = input - target (Girshick 2015): 0.5 d^2 / beta where |d| < beta, else
    |d| - 0.5 beta, i.e. huber(d, delta=beta) / beta; its gradient is d / beta clipped to
    [-1, 1]. beta = 0 is the L1 loss."""
    _check_same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    return _reduce(_huber(input - target, beta) / beta, reduction, "smooth_l1_loss")


def soft_margin_loss(input, target, reduction="mean"):
    """Two-class logistic loss for targets y in {-1, 1}: log(1 + e^(-y x)) = softplus(-y x)."""
    _check_same_shape("soft_margin_loss", input, target)
    return _reduce(softplus(-input * target), reduction, "soft_margin_loss")


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """max(0, -y (x1 - x2) + margin) for y in {-1, 1}: x1 should rank above x2 by ``margin``
    where y = 1, below it where y = -1. The gradient at the hinge is that of the linear side
    (PyTorch's clamp_min)."""
    _check_same_shape("margin_ranking_loss", input1, input2)
    _check_same_shape("margin_ranking_loss", input1, target)
    loss = ops.clip(-target * (input1 - input2) + margin, 0.0, None)
    return _reduce(loss, reduction, "margin_ranking_loss")


def _vector_norm(x, p, dim, keepdim):
    """||x||_p = (sum_i |x_i|^p)^(1/p) along ``dim`` (p = inf: max_i |x_i|). Where the norm is
    0 its gradient is 0, as in PyTorch, rather than the 0/0 of the chain rule."""
    if p == math.inf:
        return ops.amax(ops.abs(x), dim=dim, keepdim=keepdim)
    if not p > 0:
        raise ValueError(f"norm: p must be positive (or inf), got {p}")
    total = (ops.abs(x) ** p).sum(dim=dim, keepdim=keepdim)
    nonzero = total.data > 0
    return ops.where(nonzero, ops.where(nonzero, total, 1.0) ** (1 / p), 0.0)


def _clamped_in_value(norm, eps):
    """max(norm, eps) in value with the gradient of norm itself: PyTorch clamps the norms of
    cosine_similarity in place under no_grad, so the gradient flows on through the norm."""
    xp = array_module(norm.data)
    return norm + Tensor(xp.maximum(norm.data, eps) - norm.data)


@dim_spellings
def normalize(input, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along ``dim``: unit vectors (F.normalize)."""
    dim = normalize_dim(dim, input.shape, "normalize")
    return input / ops.clip(_vector_norm(input, p, dim, keepdim=True), eps, None)


def _broadcast_pair(name, x1, x2):
    """x1 and x2 broadcast to their common shape (ValueError naming both shapes if none)."""
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"{name}: shapes {x1.shape} and {x2.shape} cannot be broadcast "
                         "together") from None
    return ops.broadcast_to(x1, shape), ops.broadcast_to(x2, shape)


@dim_spellings
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """cos = <x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim`` of the broadcast
    shape, computed as the dot product of the two normalized vectors (so |cos| <= 1, and
    no product of norms overflows), as PyTorch does."""
    x1, x2 = _broadcast_pair("cosine_similarity", x1, x2)
    dim = normalize_dim(dim, x1.shape, "cosine_similarity")
    unit1, unit2 = (x / _clamped_in_value(_vector_norm(x, 2, dim, keepdim=True), eps)
                    for x in (x1, x2))
    return (unit1 * unit2).sum(dim=dim)


@dim_spellings
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim (eps keeps the norm of equal rows off 0)."""
    x1, x2 = _broadcast_pair("pairwise_distance", x1, x2)
    return _vector_norm(x1 - x2 + eps, p, -1, keepdim)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """For pairs of rows (N, D) (or one pair (D,)) and targets y in {1, -1} (N,) (or ()):
    1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1, 0 elsewhere; cos
    = <x1, x2> / sqrt((||x1||^2 + 1e-12) (||x2||^2 + 1e-12)), PyTorch's formula."""
    name = "cosine_embedding_loss"
    target = as_tensor(target)
    _check_same_shape(name, input1, input2)
    if input1.ndim not in (1, 2) or target.shape != input1.shape[:-1]:
        raise ValueError(f"{name}: expected inputs (N, D) with target (N,), or inputs (D,) "
                         f"with target (), got inputs {input1.shape} and target {target.shape}")
    dim = input1.ndim - 1
    squares = [(x * x).sum(dim=dim) + 1e-12 for x in (input1, input2)]
    cos = (input1 * input2).sum(dim=dim) / ops.sqrt(squares[0] * squares[1])
    loss = (ops.where(target.data == 1, 1 - cos, 0.0)
            + ops.where(target.data == -1, ops.clip(cos - margin, 0.0, None), 0.0))
    return _reduce(loss, reduction, name)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0), d = ``pairwise_distance`` (Schroff et al. 2015);
    ``swap`` uses min(d(a, n), d(p, n)) for the negative distance (Balntas et al. 2016)."""
    name = "triplet_margin_loss"
    if not anchor.ndim == positive.ndim == negative.ndim or anchor.ndim not in (1, 2):
        raise ValueError(f"{name}: expected anchor, positive and negative of 1 or 2 dims "
                         f"alike, got {anchor.shape}, {positive.shape} and {negative.shape}")
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = ops.minimum(to_negative, pairwise_distance(positive, negative, p, eps))
    return _reduce(ops.clip(to_positive - to_negative + margin, 0.0, None), reduction, name)


__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits",
    "conv2d", "cross_entropy", "dropout", "gelu", "kl_div", "l1_loss", "leaky_relu", "linear",
    "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax",
    "softplus", "tanh",
    "avg_pool1d", "conv1d", "conv_transpose1d", "conv_transpose2d", "interpolate",
    "max_pool1d", "max_unpool2d",
    "binary_cross_entropy", "cosine_embedding_loss", "cosine_similarity", "huber_loss",
    "margin_ranking_loss", "normalize", "pairwise_distance", "smooth_l1_loss",
    "soft_margin_loss", "triplet_margin_loss",
    "celu", "elu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "logsigmoid", "mish",
    "relu6", "selu", "silu", "softshrink", "softsign", "tanhshrink", "threshold",
    "embedding", "layer_norm", "rms_norm",
    "scaled_dot_product_attention",
]


def __dir__():
    """``dir(F)`` lists the public functions only, not the modules and helpers F imports
    (PEP 562)."""
    return sorted(__all__)
