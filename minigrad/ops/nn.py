"""Neural-network ops with their own kernels or fused backward: convolution, pooling, linear,
softmax cross-entropy.

The math lives in the kernels (``minigrad.backend.kernels_for(array)``; the readable reference is
``backend/numpy_ref.py``, with the index math in its docstring). These Functions only connect
the kernels to the graph: forward saves what backward needs, backward calls the matching
gradient kernels. ``Linear`` and ``SoftmaxCrossEntropy`` are fused versions of composites
(fewer graph nodes, no scatter in the backward), each tested against its composite. The
other layers (batch norm, dropout, the other losses) are composites of ordinary ops in
``minigrad.nn.functional``.
"""

from minigrad.autograd import Function
from minigrad.backend import array_module, kernels_for
from minigrad.backend.geometry import output_size
from minigrad.ops.activation import log_softmax_array


def pair(value):
    """An int or a pair of ints as a pair: 3 -> (3, 3)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def check_window_fits(name, x_shape, kernel_hw, stride, padding, dilation=(1, 1)):
    """ValueError naming the op and the shapes when the window does not fit the input."""
    try:
        for axis in (0, 1):
            output_size(x_shape[2 + axis], kernel_hw[axis], stride[axis], padding[axis],
                        dilation[axis])
    except ValueError as error:
        raise ValueError(f"{name}: input {tuple(x_shape)} with kernel {tuple(kernel_hw)}, "
                         f"stride {stride}, padding {padding}, dilation {dilation}: "
                         f"{error}") from None


class Conv2d(Function):
    """out = x (*) w, cross-correlation over NCHW input with (O, C, KH, KW) weights;
    dL/dx and dL/dw come from ``conv2d_backward_input`` and ``conv2d_backward_weight``."""

    @staticmethod
    def forward(ctx, x, weight, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
            raise ValueError(f"conv2d: input {x.shape} (N, C, H, W) and weight {weight.shape} "
                             "(O, C, KH, KW) must agree on C")
        check_window_fits("conv2d", x.shape, weight.shape[2:], stride, padding, dilation)
        ctx.geometry = (stride, padding, dilation)
        ctx.save_for_backward(x, weight)
        return kernels_for(x).conv2d_forward(x, weight, *ctx.geometry)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        k = kernels_for(x)
        grad_x = (k.conv2d_backward_input(grad, weight, x.shape, *ctx.geometry)
                  if ctx.needs_input_grad[0] else None)
        grad_w = (k.conv2d_backward_weight(grad, x, weight.shape, *ctx.geometry)
                  if ctx.needs_input_grad[1] else None)
        return grad_x, grad_w


def _check_image_batch(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an (N, C, H, W) input, got shape {x.shape}")


class MaxPool2d(Function):
    """out = max over each window; the gradient goes to the input that was the max."""

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
        _check_image_batch("max_pool2d", x)
        check_window_fits("max_pool2d", x.shape, kernel_size, stride, padding, dilation)
        out, winner = kernels_for(x).max_pool2d_forward(x, kernel_size, stride, padding,
                                                               dilation)
        ctx.args = (x.shape, kernel_size, stride, padding, dilation)
        ctx.save_for_backward(winner)
        return out

    @staticmethod
    def backward(ctx, grad):
        (winner,) = ctx.saved_tensors
        return (kernels_for(grad).max_pool2d_backward(grad, winner, *ctx.args),)


class AvgPool2d(Function):
    """out = mean over each window (zero padding included); each input gets 1/(KH*KW) of the
    gradient of every window it is in."""

    @staticmethod
    def forward(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        _check_image_batch("avg_pool2d", x)
        check_window_fits("avg_pool2d", x.shape, kernel_size, stride, padding)
        ctx.args = (x.shape, kernel_size, stride, padding)
        return kernels_for(x).avg_pool2d_forward(x, kernel_size, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        return (kernels_for(grad).avg_pool2d_backward(grad, *ctx.args),)


class Linear(Function):
    """y = x W^T + b in one node (the composite x @ W.T + b takes three, and a transposed copy).

    For x of shape (..., in) and W of shape (out, in), with g = dL/dy of shape (..., out):
        dL/dx = g W,    dL/dW = sum over leading axes of g^T x,    dL/db = sum of g.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        y = kernels_for(x).matmul(x, weight.T)
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        k = kernels_for(x)
        grad_2d = grad.reshape(-1, grad.shape[-1])
        grad_x = k.matmul(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = (k.matmul(grad_2d.T, x.reshape(-1, x.shape[-1]))
                  if ctx.needs_input_grad[1] else None)
        has_bias = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        grad_b = grad_2d.sum(axis=0) if has_bias else None
        return grad_x, grad_w, grad_b


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
