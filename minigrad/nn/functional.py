"""``minigrad.nn.functional`` (import as F): layers and losses as functions, PyTorch's names.

Convolution and pooling call the kernel-backed ops of ``minigrad.ops.nn``; everything else is a
composite of ordinary ops, so its gradient comes from the chain rule with no new backward code.
Arguments follow ``torch.nn.functional`` (``dim`` rather than ``axis``, ``reduction=``).
"""

from minigrad import ops
from minigrad import random as mg_random
from minigrad.backend import array_module
from minigrad.ops.activation import gelu, leaky_relu, relu, sigmoid, softplus, tanh  # noqa: F401
from minigrad.ops.nn import AvgPool2d, Conv2d, MaxPool2d, SoftmaxCrossEntropy, pair
from minigrad.ops.nn import Linear as LinearOp
from minigrad.tensor import Tensor, as_tensor


# --------------------------------------------------------------------------- layers
def linear(x, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch (one fused
    node; the same as the composite ``x @ weight.T + bias``, which the tests check)."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} has {x.shape[-1]} features, weight "
                         f"{weight.shape} expects {weight.shape[1]}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias {bias.shape} does not match weight {weight.shape} "
                         f"(expected ({weight.shape[0]},))")
    return LinearOp.apply(x, weight) if bias is None else LinearOp.apply(x, weight, bias)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation plus bias: out[n, o] = b[o] + sum_c w[o, c] (*) x[n, c]."""
    if groups != 1:
        raise ValueError(f"conv2d: groups={groups} is not supported (only groups=1)")
    out = Conv2d.apply(x, weight, stride=pair(stride), padding=pair(padding),
                       dilation=pair(dilation))
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """Max over each window; ``stride`` defaults to ``kernel_size`` (non-overlapping)."""
    stride = kernel_size if stride is None else stride
    return MaxPool2d.apply(x, kernel_size=pair(kernel_size), stride=pair(stride),
                           padding=pair(padding), dilation=pair(dilation))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window (zero padding counted); ``stride`` defaults to ``kernel_size``."""
    stride = kernel_size if stride is None else stride
    return AvgPool2d.apply(x, kernel_size=pair(kernel_size), stride=pair(stride),
                           padding=pair(padding))


def adaptive_avg_pool2d(x, output_size=1):
    """Global average pooling: (N, C, H, W) -> (N, C, 1, 1). Only output_size=1 is supported."""
    if pair(output_size) != (1, 1):
        raise ValueError(f"adaptive_avg_pool2d: only output_size=1 is supported, "
                         f"got {output_size}")
    return x.mean(axis=(2, 3), keepdims=True)


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


def softmax(x, dim=-1):
    return ops.softmax(x, axis=dim)


def log_softmax(x, dim=-1):
    return ops.log_softmax(x, axis=dim)


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


def _class_indices(name, logits, target):
    """Validate (N, C) scores against (N,) integer class indices; return the index array."""
    target = as_tensor(target).data  # a Tensor, or an array (NumPy or CuPy) of indices
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"{name}: expected input (N, C) and target (N,), got input "
                         f"{logits.shape} and target {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"{name}: class indices must be in [0, {logits.shape[1]}), got "
                         f"{int(target.min())}..{int(target.max())}")
    return target


def nll_loss(log_probs, target, reduction="mean"):
    """Negative log-likelihood: loss_n = -log p[n, y_n], from log-probabilities (N, C)."""
    target = _class_indices("nll_loss", log_probs, target)
    rows = array_module(target).arange(len(target))
    return _reduce(-log_probs[rows, target], reduction, "nll_loss")


def cross_entropy(logits, target, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy from raw scores (N, C) and class indices (N,):

        loss_n = -(1 - eps) log p[n, y_n] - (eps / C) sum_c log p[n, c],  p = softmax(logits)

    With label_smoothing eps = 0 this is -log p[n, y_n]; eps > 0 mixes the one-hot target with
    the uniform distribution (Szegedy et al. 2016), as PyTorch does. Computed by the fused
    ``SoftmaxCrossEntropy`` op (gradient p - q), tested against ``cross_entropy_composite``.
    """
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")
    target = _class_indices("cross_entropy", logits, target)
    loss = SoftmaxCrossEntropy.apply(logits, target=target, label_smoothing=label_smoothing)
    return _reduce(loss, reduction, "cross_entropy")


def cross_entropy_composite(logits, target, reduction="mean", label_smoothing=0.0):
    """The same loss from ordinary ops, log_softmax and nll_loss: the readable version and the
    test oracle for the fused op."""
    log_probs = log_softmax(logits, dim=-1)
    loss = nll_loss(log_probs, target, reduction="none")
    if label_smoothing:
        uniform = -log_probs.mean(axis=-1)
        loss = (1 - label_smoothing) * loss + label_smoothing * uniform
    return _reduce(loss, reduction, "cross_entropy")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: (input - target)^2, reduced."""
    _check_same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error: |input - target|, reduced."""
    _check_same_shape("l1_loss", input, target)
    return _reduce(ops.abs(input - target), reduction, "l1_loss")


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """loss = -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], which simplifies to

        softplus(x) - x y,    softplus(x) = log(1 + e^x),

    and softplus is computed stably (it never takes the log of 0 nor the exp of a large
    number). Its gradient, sigmoid(x) - y, is right everywhere, x = 0 included."""
    _check_same_shape("binary_cross_entropy_with_logits", logits, target)
    loss = softplus(logits) - logits * target
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


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


__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits",
    "conv2d", "cross_entropy", "dropout", "gelu", "kl_div", "l1_loss", "leaky_relu", "linear",
    "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax",
    "softplus", "tanh",
]
