"""Neural-network ops with their own kernels or fused backward: convolution and transposed
convolution, pooling (and max pooling's indices, max unpooling), linear, softmax cross-entropy.

The math lives in the kernels (``minigrad.backend.kernels_for(array)``; the readable reference is
``backend/numpy_ref.py``, with the index math in its docstring). These Functions only connect
the kernels to the graph: forward saves what backward needs, backward calls the matching
gradient kernels. What the kernels do not know (ceil_mode, a divisor other than KH*KW, output
padding) is geometry computed here: extra padding below and to the right of the input, and a
per-position rescaling of the kernel's mean. ``Linear`` and ``SoftmaxCrossEntropy`` are fused
versions of composites (fewer graph nodes, no scatter in the backward), each tested against
its composite. The other layers (batch norm, dropout, the other losses) are composites of
ordinary ops in ``minigrad.nn.functional``.
"""

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module, kernels_for, lowest_value
from minigrad.backend.geometry import output_size
from minigrad.ops.activation import log_softmax_array


def pair(value):
    """An int or a pair of ints as a pair: 3 -> (3, 3)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def check_window_arguments(name, kernel_size, stride, padding, dilation, output_padding=0):
    """ValueError naming ``name``, the argument and its value unless kernel_size, stride and
    dilation are at least 1 and padding and output_padding at least 0 (each an int or one int
    per axis; a padding given as a string, "same" or "valid", is not checked here). These are
    PyTorch's limits; PyTorch raises a RuntimeError at the forward pass, the layers here check
    when they are built and the ops when they run."""
    limits = (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
              ("dilation", dilation, 1), ("output_padding", output_padding, 0))
    for argument, value, least in limits:
        if isinstance(value, str):
            continue
        if min((value,) if isinstance(value, int) else tuple(value)) < least:
            raise ValueError(f"{name}: {argument} must be "
                             f"{'positive' if least else 'non-negative'}, got {value!r}")


def window_geometry(name, x_shape, kernel, stride, padding, dilation, ceil_mode=False):
    """(output sizes, extra padding at the end) of a window op over the last ``len(kernel)``
    axes of ``x_shape`` (one ``pool_output_size`` per axis); ValueError naming the op and the
    argument (``check_window_arguments``), or the shapes when the window does not fit the
    input."""
    check_window_arguments(name, kernel, stride, padding, dilation)
    try:
        sizes = [pool_output_size(x_shape[len(x_shape) - len(kernel) + axis], kernel[axis],
                                  stride[axis], padding[axis], dilation[axis], ceil_mode)
                 for axis in range(len(kernel))]
    except ValueError as error:
        raise ValueError(f"{name}: input {tuple(x_shape)} with kernel {tuple(kernel)}, "
                         f"stride {stride}, padding {padding}, dilation {dilation}: "
                         f"{error}") from None
    return tuple(out for out, _ in sizes), tuple(extra for _, extra in sizes)


def check_window_fits(name, x_shape, kernel_hw, stride, padding, dilation=(1, 1)):
    """ValueError naming the op and the shapes when the window does not fit the input."""
    window_geometry(name, x_shape, kernel_hw, stride, padding, dilation)


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """(H_out, extra) along one axis: the number of windows, and how far the last one reaches
    past the padding on the right (bottom), which the input must be padded with in addition.

    Rounding down, H_out = (H + 2p - d(K - 1) - 1) // s + 1 (``geometry.output_size``) and the
    windows stay inside the padded input (extra = 0). ``ceil_mode`` rounds up instead, keeping
    a last partial window only if it starts inside the input or the left padding,
    (H_out - 1) s < H + p: PyTorch's rule.
    """
    out = output_size(size, kernel, stride, padding, dilation)
    if ceil_mode:
        out = -(-(size + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    reach = (out - 1) * stride + dilation * (kernel - 1) + 1
    return out, max(0, reach - (size + 2 * padding))


def pad_end(x, extra, value):
    """x (N, C, H, W) with ``extra`` = (rows, columns) of ``value`` added below and right."""
    if not any(extra):
        return x
    widths = ((0, 0), (0, 0), (0, extra[0]), (0, extra[1]))
    return array_module(x).pad(x, widths, mode="constant", constant_values=value)


_CASTS = {"float16": "half", "float32": "float", "float64": "double"}


def check_layer_dtypes(name, x, weight, bias=None):
    """TypeError naming the op and the dtypes when input, weight (and bias) differ, as PyTorch
    raises: a layer never converts its input (the float64 copy would be silently slower, and
    its gradients a different dtype from the weights'). Takes arrays or tensors."""
    dtypes = {"input": x.dtype, "weight": weight.dtype}
    if bias is not None:
        dtypes["bias"] = bias.dtype
    if len(set(dtypes.values())) == 1:
        return
    fixes = []
    if str(weight.dtype) in _CASTS:
        fixes.append(f"the input to the weight's dtype (x.{_CASTS[str(weight.dtype)]}())")
    if str(x.dtype) in _CASTS:
        fixes.append(f"the model to the input's (model.{_CASTS[str(x.dtype)]}())")
    listed = ", ".join(f"{role} {dtype}" for role, dtype in dtypes.items())
    raise TypeError(f"{name}: {listed} must all have one dtype; convert "
                    f"{' or '.join(fixes) or 'them with .to()'}")


def check_groups(name, groups, channels):
    """ValueError naming ``name`` and the numbers unless ``groups`` is a positive int that
    divides each count of ``channels`` ({what: count})."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    for what, count in channels.items():
        if count % groups:
            raise ValueError(f"{name}: {what} {count} not divisible by groups {groups}")


def check_conv_groups(name, x_shape, weight_shape, groups, transposed=False):
    """ValueError naming the op and the numbers unless ``groups`` G is a positive int that
    divides the input channels C and fits the weight: (O, C/G, *kernel) with G dividing O for
    a convolution; a transposed one's (C, C_out/G, *kernel) the caller checks against C."""
    channels = {"input channels": x_shape[1]}
    if not transposed:
        channels["output channels"] = weight_shape[0]
    check_groups(name, groups, channels)
    if not transposed and weight_shape[1] * groups != x_shape[1]:
        kernel = "K" if len(weight_shape) == 3 else "KH, KW"
        raise ValueError(f"{name}: input {tuple(x_shape)} and weight {tuple(weight_shape)} "
                         f"(O, C/groups, {kernel}): groups {groups} needs input channels "
                         f"{weight_shape[1]}*groups = {weight_shape[1] * groups}, "
                         f"got {x_shape[1]}")


def check_bias(name, weight, bias, channels=None):
    """ValueError naming the op and both shapes when ``bias`` is not one value per output
    channel (weight.shape[0] of them unless ``channels`` says otherwise)."""
    channels = weight.shape[0] if channels is None else channels
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{name}: bias {bias.shape} does not match weight {weight.shape} "
                         f"(expected ({channels},))")


def add_bias_relu_(out, bias, relu, channel_axis):
    """The epilogue of a layer, in place on its fresh output: out += b along ``channel_axis``,
    then out = max(out, 0) when ``relu``. One pass over memory already in cache, where the
    composites (out + b, then relu) would each allocate and fill another array the size of
    the output."""
    if bias is not None:
        out += bias.reshape((-1,) + (1,) * (out.ndim - 1 - channel_axis % out.ndim))
    if relu:
        array_module(out).maximum(out, 0, out=out)
    return out


def epilogue_mask(ctx, out):
    """What an op fused with ``add_bias_relu_`` saves for ``epilogue_grads``: out > 0 where a
    ReLU was fused (``ctx.relu``) and a backward will run; else None, since under no_grad
    (where ``nn.Sequential`` fuses) no backward would read it."""
    return out > 0 if ctx.relu and any(ctx.needs_input_grad) else None


def epilogue_grads(ctx, grad, positive, channel_axes):
    """What an op fused with ``add_bias_relu_`` gives backward: dL/d(pre-activation) = grad
    where the output was > 0 (``positive``, the mask saved in forward: ReLU's gradient, 0 at 0),
    and dL/db = that summed over every axis but the channel's (None without a bias).
    ``ctx.relu`` and ``ctx.has_bias`` say what was fused."""
    if ctx.relu:
        grad = grad * positive
    grad_b = grad.sum(axis=channel_axes) if ctx.has_bias and ctx.needs_input_grad[2] else None
    return grad, grad_b


class Conv2d(Function):
    """out = x (*) w (+ b), cross-correlation over NCHW input with (O, C/G, KH, KW) weights in G
    groups: output channel o, of group g = o // (O/G), sees input channels g*C/G + c only,

        out[n, o, i, j] = b[o] + sum_{c,kh,kw} w[o, c, kh, kw] x_pad[n, g*C/G + c, i*s+kh*d,
                                                                     j*s+kw*d];

    and with ``relu=True``, max(out, 0): the layer and its activation in one node
    (``add_bias_relu_``; ``nn.Sequential`` asks for it under no_grad). dL/dx and dL/dw come
    from ``conv2d_backward_input`` and ``conv2d_backward_weight``, dL/db = sum_{n,i,j} dL/dout."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                groups=1, relu=False):
        if x.ndim != 4 or weight.ndim != 4:
            raise ValueError(f"conv2d: input {x.shape} (N, C, H, W) and weight {weight.shape} "
                             "(O, C/groups, KH, KW) must be 4-d")
        check_conv_groups("conv2d", x.shape, weight.shape, groups)
        check_window_fits("conv2d", x.shape, weight.shape[2:], stride, padding, dilation)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.has_bias, ctx.relu = bias is not None, relu
        out = add_bias_relu_(kernels_for(x).conv2d_forward(x, weight, *ctx.geometry), bias,
                             relu, channel_axis=1)
        ctx.save_for_backward(x, weight, epilogue_mask(ctx, out))
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, positive = ctx.saved_tensors
        grad, grad_b = epilogue_grads(ctx, grad, positive, channel_axes=(0, 2, 3))
        k = kernels_for(x)
        grad_x = (k.conv2d_backward_input(grad, weight, x.shape, *ctx.geometry)
                  if ctx.needs_input_grad[0] else None)
        grad_w = (k.conv2d_backward_weight(grad, x, weight.shape, *ctx.geometry)
                  if ctx.needs_input_grad[1] else None)
        return (grad_x, grad_w) + ((grad_b,) if ctx.has_bias else ())


def transposed_output_size(name, x_shape, weight_shape, stride, padding, output_padding,
                           dilation):
    """The spatial output size of a transposed convolution of an (N, C_in, ...) input with
    (C_in, C_out/groups, ...) weights, along each axis H_out = (H - 1) s - 2p + d (K - 1) +
    output_padding + 1; ValueError naming the op and what is wrong."""
    check_window_arguments(name, weight_shape[2:], stride, padding, dilation, output_padding)
    spatial = len(stride)
    if (len(x_shape) != spatial + 2 or len(weight_shape) != spatial + 2
            or x_shape[1] != weight_shape[0]):
        raise ValueError(f"{name}: input {tuple(x_shape)} (N, C_in, ...) and weight "
                         f"{tuple(weight_shape)} (C_in, C_out, ...) must have {spatial} spatial "
                         "dims and agree on C_in")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{name}: output_padding {tuple(output_padding)} must be smaller than "
                         f"the stride {tuple(stride)} or the dilation {tuple(dilation)}")
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in zip(
        x_shape[2:], weight_shape[2:], stride, padding, output_padding, dilation))
    if min(out) < 1:
        raise ValueError(f"{name}: input {tuple(x_shape)} with kernel {tuple(weight_shape[2:])}, "
                         f"stride {tuple(stride)}, padding {tuple(padding)}, dilation "
                         f"{tuple(dilation)} gives an empty output {out}")
    return out


class ConvTranspose2d(Function):
    """The transposed convolution: the adjoint of x -> conv2d(x, w), so the gradient of a
    convolution with respect to its input, plus a bias b per output channel (and max(., 0)
    with ``relu=True``, as ``Conv2d``). With weight (C_in, C_out/G, KH, KW) in G groups,
    each input x[n, c, i, j] of group g = c // (C_in/G) adds x[n, c, i, j] w[c, o, kh, kw] to
    out[n, g*C_out/G + o, i*s - p + kh*d, j*s - p + kw*d], and
    H_out = (H - 1) s - 2p + d (KH - 1) + output_padding + 1.

    The weight is, as it stands, the weight of the grouped convolution from C_out channels to
    C_in that this op is the adjoint of ((O, C/G, ...) with O = C_in, C = C_out), so
    forward is the ``conv2d_backward_input`` kernel (x in the place of dL/dout); then
        dL/dx = conv2d(dL/dout, w)                       (``conv2d_forward``)
        dL/dw = ``conv2d_backward_weight`` with x in the place of dL/dout, dL/dout of the input,
        dL/db = sum_{n,i,j} dL/dout.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                dilation=(1, 1), groups=1, relu=False):
        out_hw = transposed_output_size("conv_transpose2d", x.shape, weight.shape, stride,
                                        padding, output_padding, dilation)
        check_conv_groups("conv_transpose2d", x.shape, weight.shape, groups, transposed=True)
        # The convolution of an out_hw input has output_padding // stride more positions than
        # x along each axis (a second one when output_padding >= stride, which PyTorch allows
        # below the dilation): zeros there, which add nothing to the output.
        conv_hw = window_geometry("conv_transpose2d", out_hw, weight.shape[2:], stride, padding,
                                  dilation)[0]
        x_full = pad_end(x, (conv_hw[0] - x.shape[2], conv_hw[1] - x.shape[3]), 0)
        ctx.geometry, ctx.x_hw = (stride, padding, dilation, groups), x.shape[2:]
        ctx.has_bias, ctx.relu = bias is not None, relu
        out = kernels_for(x).conv2d_backward_input(
            x_full, weight, (x.shape[0], weight.shape[1] * groups) + out_hw, *ctx.geometry)
        out = add_bias_relu_(out, bias, relu, channel_axis=1)
        ctx.save_for_backward(x_full, weight, epilogue_mask(ctx, out))
        return out

    @staticmethod
    def backward(ctx, grad):
        x_full, weight, positive = ctx.saved_tensors
        grad, grad_b = epilogue_grads(ctx, grad, positive, channel_axes=(0, 2, 3))
        k = kernels_for(grad)
        (h, w) = ctx.x_hw
        grad_x = (k.conv2d_forward(grad, weight, *ctx.geometry)[:, :, :h, :w]
                  if ctx.needs_input_grad[0] else None)
        grad_w = (k.conv2d_backward_weight(x_full, grad, weight.shape, *ctx.geometry)
                  if ctx.needs_input_grad[1] else None)
        return (grad_x, grad_w) + ((grad_b,) if ctx.has_bias else ())


def _check_image_batch(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an (N, C, H, W) input, got shape {x.shape}")


def pool_geometry(name, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """``window_geometry`` of a pooling window, which PyTorch also limits to a padding of at
    most half the kernel (so every window holds at least one input)."""
    if any(p > k // 2 for k, p in zip(kernel_size, padding)):
        raise ValueError(f"{name}: padding {tuple(padding)} must be at most half of "
                         f"kernel_size {tuple(kernel_size)}")
    return window_geometry(name, x_shape, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode):
    """The max-pool kernel's (out, winner) on x padded below and right, as far as ceil_mode's
    last windows reach, with the smallest value of its dtype (-inf for floats), and that
    padded shape."""
    _check_image_batch("max_pool2d", x)
    _, extra = pool_geometry("max_pool2d", x.shape, kernel_size, stride, padding, dilation,
                             ceil_mode)
    x_full = pad_end(x, extra, lowest_value(x.dtype))
    out, winner = kernels_for(x).max_pool2d_forward(x_full, kernel_size, stride, padding,
                                                    dilation)
    return out, winner, x_full.shape


class MaxPool2d(Function):
    """out = max over each window; the gradient goes to the input that was the max."""

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False):
        out, winner, full_shape = _max_pool(x, kernel_size, stride, padding, dilation,
                                            ceil_mode)
        ctx.args = (full_shape, kernel_size, stride, padding, dilation)
        ctx.x_hw = x.shape[2:]
        ctx.save_for_backward(winner)
        return out

    @staticmethod
    def backward(ctx, grad):
        (winner,) = ctx.saved_tensors
        (h, w) = ctx.x_hw
        return (kernels_for(grad).max_pool2d_backward(grad, winner, *ctx.args)[:, :, :h, :w],)


class MaxPool2dIndices(Function):
    """Where each window's maximum is: its flat index h*W + w in its (H, W) plane (int64, as
    PyTorch's return_indices), from the kernel's winning offset (kh, kw):
        h = i*s - p + kh*d,   w = j*s - p + kw*d.
    A constant: no node is recorded."""

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False):
        xp = array_module(x)
        _, winner, _ = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        out_h, out_w = winner.shape[2:]
        rows = (xp.arange(out_h)[:, None] * stride[0] - padding[0]
                + winner // kernel_size[1] * dilation[0])
        cols = (xp.arange(out_w) * stride[1] - padding[1]
                + winner % kernel_size[1] * dilation[1])
        return (rows * x.shape[3] + cols).astype(np.int64)


def _plane_index(index, plane_size):
    """Row and column arrays that address element ``index[n, c, ...]`` of plane (n, c) in a
    (N*C, plane_size) view; also that view's shape."""
    xp = array_module(index)
    planes = index.shape[0] * index.shape[1]
    return (xp.arange(planes)[:, None], index.reshape(planes, -1)), (planes, plane_size)


class PutIntoPlanes(Function):
    """out[n, c].flat[index[n, c, ...]] = x[n, c, ...] in zeros of shape (N, C) + ``plane``:
    max unpooling, the adjoint of reading each plane at the indices (``F.max_pool2d``'s values);
    dL/dx = dL/dout read at the indices."""

    @staticmethod
    def forward(ctx, x, index, plane=(1, 1)):
        xp = array_module(x)
        ctx.where, view = _plane_index(index, plane[0] * plane[1])
        ctx.x_shape = x.shape
        out = xp.zeros(view, dtype=x.dtype)
        out[ctx.where] = x.reshape(ctx.where[1].shape)
        return out.reshape(x.shape[:2] + tuple(plane))

    @staticmethod
    def backward(ctx, grad):
        planes = ctx.x_shape[0] * ctx.x_shape[1]
        return grad.reshape(planes, -1)[ctx.where].reshape(ctx.x_shape), None


class AvgPool2d(Function):
    """out = (sum over each window) / divisor; each input of a window gets dL/dout / divisor.

    The divisor is KH*KW (zero padding counted), or with ``count_include_pad=False`` the
    number of the window's positions inside the input, or ``divisor_override``. Windows that
    ceil_mode adds may reach past the padding; those positions never count (PyTorch's rule).
    The kernel gives sum / (KH*KW), which ``avg_pool_scale`` rescales position by position.
    """

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        _check_image_batch("avg_pool2d", x)
        out_hw, extra = pool_geometry("avg_pool2d", x.shape, kernel_size, stride, padding,
                                      (1, 1), ceil_mode)
        x_full = pad_end(x, extra, 0)
        ctx.scale = avg_pool_scale(array_module(x), x.shape[2:], out_hw, kernel_size, stride,
                                   padding, count_include_pad, divisor_override, any(extra),
                                   x.dtype)
        ctx.args = (x_full.shape, kernel_size, stride, padding)
        ctx.x_hw = x.shape[2:]
        out = kernels_for(x).avg_pool2d_forward(x_full, kernel_size, stride, padding)
        return out if ctx.scale is None else out * ctx.scale

    @staticmethod
    def backward(ctx, grad):
        (h, w) = ctx.x_hw
        grad = grad if ctx.scale is None else grad * ctx.scale
        return (kernels_for(grad).avg_pool2d_backward(grad, *ctx.args)[:, :, :h, :w],)


def avg_pool_scale(xp, x_hw, out_hw, kernel_size, stride, padding, count_include_pad,
                   divisor_override, past_padding, dtype):
    """KH*KW / divisor for each output position (None where it is 1 everywhere).

    Along an axis, window i covers [i*s - p, i*s - p + K) clipped to the padded input
    [-p, H + p), or to the input [0, H) when padding does not count; the divisor is the
    product of the two axes' lengths. Without padding, or with padding counted, that is KH*KW
    unless ceil_mode's windows reach past the padding (``past_padding``)."""
    if divisor_override is not None:
        return dtype.type(kernel_size[0] * kernel_size[1] / divisor_override)
    if (count_include_pad or not any(padding)) and not past_padding:
        return None
    lengths = []
    for size, out, k, s, p in zip(x_hw, out_hw, kernel_size, stride, padding):
        start = xp.arange(out) * s - p
        end = xp.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, size)
        lengths.append(end - start)
    divisor = lengths[0][:, None] * lengths[1][None, :]
    return (kernel_size[0] * kernel_size[1] / divisor).astype(dtype)


class Linear(Function):
    """y = x W^T + b in one node (the composite x @ W.T + b takes three, and a transposed copy),
    and with ``relu=True``, max(y, 0) in the same node (``add_bias_relu_``; ``nn.Sequential``
    asks for it under no_grad).

    For x of shape (..., in) and W of shape (out, in), with g = dL/dy of shape (..., out)
    (times the ReLU's mask y > 0 when fused):
        dL/dx = g W,    dL/dW = sum over leading axes of g^T x,    dL/db = sum of g.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, relu=False):
        ctx.has_bias, ctx.relu = bias is not None, relu
        y = add_bias_relu_(kernels_for(x).matmul(x, weight.T), bias, relu, channel_axis=-1)
        ctx.save_for_backward(x, weight, epilogue_mask(ctx, y))
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, positive = ctx.saved_tensors
        grad, grad_b = epilogue_grads(ctx, grad, positive,
                                      channel_axes=tuple(range(grad.ndim - 1)))
        k = kernels_for(x)
        grad_x = k.matmul(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = (k.matmul(grad.reshape(-1, grad.shape[-1]).T, x.reshape(-1, x.shape[-1]))
                  if ctx.needs_input_grad[1] else None)
        return (grad_x, grad_w) + ((grad_b,) if ctx.has_bias else ())


class SoftmaxCrossEntropy(Function):
    """Per-sample cross-entropy of softmax(logits) against a target distribution, fused:

        q = (1 - eps) onehot(y) + eps / C          (label smoothing eps; eps = 0: one-hot)
        loss_n = -sum_c q[n, c] log softmax(z)[n, c]
        dloss_n / dz[n, c] = softmax(z)[n, c] - q[n, c]

    The gradient needs no log or scatter: one subtraction. ``tests`` check it against the
    composite log_softmax + nll_loss.
    """

    @staticmethod
    def forward(ctx, logits, target=None, label_smoothing=0.0):
        xp = array_module(logits)
        log_probs = log_softmax_array(logits, axis=1)
        q = xp.zeros_like(logits)
        q[xp.arange(len(target)), target] = 1
        if label_smoothing:
            q = (1 - label_smoothing) * q + label_smoothing / logits.shape[1]
        ctx.save_for_backward(xp.exp(log_probs) - q)
        # Where q = 0 the term is 0 even if log p = -inf (a logit of -inf): 0 * -inf is nan.
        return -(q * xp.where(q > 0, log_probs, 0)).sum(axis=1)

    @staticmethod
    def backward(ctx, grad):
        (softmax_minus_q,) = ctx.saved_tensors
        return (grad[:, None] * softmax_minus_q,)
