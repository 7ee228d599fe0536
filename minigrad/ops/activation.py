"""Activation functions and (log-)softmax, each with its derivative.

All are written to be numerically stable in float32: sigmoid via tanh, softplus and
log_softmax with the max subtracted first, so no ``exp`` ever overflows.
"""

import math

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops.dims import dim_spellings, normalize_dim


__all__ = [
    "gelu", "leaky_relu", "log_softmax", "relu", "sigmoid", "softmax", "softplus", "tanh",
]


class ReLU(Function):
    """z = max(a, 0);  dz/da = 1 where a > 0, else 0 (0 at a = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return array_module(a).maximum(a, 0)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return (grad * positive,)


class LeakyReLU(Function):
    """z = a if a > 0 else s·a;  dz/da = 1 if a > 0 else s (s = ``negative_slope``)."""

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        slope = array_module(a).where(a > 0, 1, negative_slope).astype(a.dtype)
        ctx.save_for_backward(slope)
        return a * slope

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return (grad * slope,)


def stable_sigmoid(a):
    """1 / (1 + e^-a) written with e = e^-|a|, which never overflows: 1 / (1 + e) for a >= 0
    and e / (1 + e) for a < 0, so both halves keep full relative precision."""
    xp = array_module(a)
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1, e) / (1 + e)


class Sigmoid(Function):
    """z = 1 / (1 + e^-a) (see ``stable_sigmoid``);  dz/da = z (1 - z)."""

    @staticmethod
    def forward(ctx, a):
        out = stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * out * (1 - out),)


class Tanh(Function):
    """z = tanh(a);  dz/da = 1 - z^2."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * (1 - out * out),)


_erf_python = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """The error function, elementwise. NumPy has none (SciPy is not a dependency), so on the
    CPU this maps Python's exact ``math.erf`` over the array: correct, not fast."""
    if array_module(x) is np:
        return np.asarray(_erf_python(x), dtype=x.dtype)
    from cupyx.scipy.special import erf as cupy_erf  # reached only with CuPy arrays

    return cupy_erf(x)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELU(Function):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016): z = a·Phi(a), Phi the standard
    normal CDF, Phi(a) = (1 + erf(a/sqrt 2)) / 2;  dz/da = Phi(a) + a·phi(a), with
    phi(a) = exp(-a^2/2) / sqrt(2 pi).

    ``approximate="tanh"``: z = a/2 (1 + tanh u), u = sqrt(2/pi)(a + 0.044715 a^3). Since
    (1 + tanh u)/2 = sigmoid(2u), we compute z = a·s with s = sigmoid(2u), which keeps full
    precision for negative a where 1 + tanh u would cancel;
    dz/da = s + 2 a s (1 - s) du/da, with du/da = sqrt(2/pi)(1 + 3·0.044715 a^2).
    """

    @staticmethod
    def forward(ctx, a, approximate="none"):
        if approximate == "tanh":
            s = stable_sigmoid(2 * _SQRT_2_OVER_PI * (a + 0.044715 * a**3))
            ctx.save_for_backward(a, s)
            ctx.approximate = True
            return a * s
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        cdf = 0.5 * (1 + erf(a / math.sqrt(2)))
        ctx.save_for_backward(a, cdf)
        ctx.approximate = False
        return a * cdf

    @staticmethod
    def backward(ctx, grad):
        a, saved = ctx.saved_tensors
        if ctx.approximate:
            s = saved
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a**2)
            return (grad * (s + 2 * a * s * (1 - s) * du),)
        pdf = array_module(a).exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
        return (grad * (saved + a * pdf),)


class Softplus(Function):
    """z = (1/beta) log(1 + e^(beta·a)), and z = a where beta·a > threshold (PyTorch's rule);
    dz/da = sigmoid(beta·a) (1 where the threshold applies). Computed stably as
    (max(ba, 0) + log1p(e^-|ba|)) / beta."""

    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=20.0):
        xp = array_module(a)
        ba = beta * a
        linear = ba > threshold
        ctx.save_for_backward(ba, linear)
        soft = (xp.maximum(ba, 0) + xp.log1p(xp.exp(-xp.abs(ba)))) / beta
        return xp.where(linear, a, soft).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        ba, linear = ctx.saved_tensors
        xp = array_module(ba)
        return (grad * xp.where(linear, 1, stable_sigmoid(ba)),)


class Softmax(Function):
    """z_i = e^(a_i - m) / sum_j e^(a_j - m) along ``axis`` (m = max a, for stability);
    dL/da_i = z_i (g_i - sum_j g_j z_j)."""

    @staticmethod
    def forward(ctx, a, axis=-1):
        xp = array_module(a)
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True)),)


def log_softmax_array(a, axis=-1):
    """log softmax(a) = (a - m) - log sum exp(a - m), m = max a: no exp overflows."""
    xp = array_module(a)
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """z_i = a_i - logsumexp(a) along ``axis``;  dL/da_i = g_i - softmax(a)_i sum_j g_j."""

    @staticmethod
    def forward(ctx, a, axis=-1):
        out = log_softmax_array(a, axis)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        softmax = array_module(out).exp(out)
        return (grad - softmax * grad.sum(axis=ctx.axis, keepdims=True),)


# --------------------------------------------------------------------------- public functions
def relu(a):
    return ReLU.apply(a)


def leaky_relu(a, negative_slope=0.01):
    return LeakyReLU.apply(a, negative_slope=negative_slope)


def sigmoid(a):
    return Sigmoid.apply(a)


def tanh(a):
    return Tanh.apply(a)


def gelu(a, approximate="none"):
    return GELU.apply(a, approximate=approximate)


def softplus(a, beta=1.0, threshold=20.0):
    return Softplus.apply(a, beta=beta, threshold=threshold)


@dim_spellings
def softmax(a, dim=-1):
    return Softmax.apply(a, axis=normalize_dim(dim, a.shape, "softmax"))


@dim_spellings
def log_softmax(a, dim=-1):
    return LogSoftmax.apply(a, axis=normalize_dim(dim, a.shape, "log_softmax"))
