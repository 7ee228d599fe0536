"""Activation functions and (log-)softmax, each with its derivative.

All are written to be numerically stable in float32: sigmoid with e^-|a|, softplus and
log_softmax with the max subtracted first, so no ``exp`` ever overflows.

At a kink the derivative is a convention; each op uses PyTorch's, stated in its docstring
(hardtanh passes no gradient at its bounds, ELU takes the exponential side at 0, ...).
Float math of an integer or bool tensor computes in float32 (``unary.as_floating``); relu,
hardtanh, relu6 and threshold keep integer dtypes, as in PyTorch.
"""

import math

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.ops.dims import dim_spellings, normalize_dim
from minigrad.ops.unary import as_floating, erf_array


__all__ = [
    "celu", "elu", "gelu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu",
    "log_softmax", "logsigmoid", "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softmax",
    "softplus", "softshrink", "softsign", "swish", "tanh", "tanhshrink", "threshold",
]


class PassWhere(Function):
    """Base of the piecewise activations whose slope is 1 or 0: ``forward`` saves the boolean
    mask where the slope is 1, and dz/da = mask."""

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return (grad * mask,)


class ReLU(PassWhere):
    """z = max(a, 0);  dz/da = 1 where a > 0, else 0 (0 at a = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return array_module(a).maximum(a, 0)


class Hardtanh(PassWhere):
    """z = min(max(a, lo), hi);  dz/da = 1 where lo < a < hi, else 0 (0 at the bounds, as
    in PyTorch; ``clamp`` passes the gradient there instead)."""

    @staticmethod
    def forward(ctx, a, lo=-1.0, hi=1.0):
        ctx.save_for_backward((a > lo) & (a < hi))
        return array_module(a).clip(a, lo, hi).astype(a.dtype, copy=False)


class Threshold(PassWhere):
    """z = a where a > threshold, else ``value``;  dz/da = 1 where a > threshold, else 0."""

    @staticmethod
    def forward(ctx, a, threshold=0.0, value=0.0):
        above = a > threshold
        ctx.save_for_backward(above)
        return array_module(a).where(above, a, value).astype(a.dtype, copy=False)


class Softshrink(PassWhere):
    """z = a - lambd where a > lambd, a + lambd where a < -lambd, else 0 (computed as
    a - clip(a, -lambd, lambd));  dz/da = 1 where |a| > lambd, else 0."""

    @staticmethod
    def forward(ctx, a, lambd=0.5):
        xp = array_module(a)
        ctx.save_for_backward(xp.abs(a) > lambd)
        return a - xp.clip(a, -lambd, lambd)


class Hardshrink(PassWhere):
    """z = a where |a| > lambd, else 0;  dz/da = 1 where |a| > lambd, else 0."""

    @staticmethod
    def forward(ctx, a, lambd=0.5):
        xp = array_module(a)
        outside = xp.abs(a) > lambd
        ctx.save_for_backward(outside)
        return xp.where(outside, a, 0)


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


class ELU(Function):
    """The exponential linear units, in PyTorch's general form with ``alpha``, ``scale`` and
    ``input_scale`` (s, c below):

        z = s·a                         where a > 0
        z = s·alpha·(e^(c·a) - 1)       where a <= 0
        dz/da = s where a > 0, s·alpha·c·e^(c·a) where a <= 0 (so at 0: s·alpha·c, PyTorch's).

    ELU (Clevert et al. 2015) is s = c = 1; SELU (Klambauer et al. 2017) fixes alpha and s;
    CELU (Barron 2017) is c = 1/alpha. e^x - 1 is ``expm1``, exact for small |x|.
    """

    @staticmethod
    def forward(ctx, a, alpha=1.0, scale=1.0, input_scale=1.0):
        xp = array_module(a)
        positive = a > 0
        # min(a, 0): the positive side is masked out, and its exp could overflow.
        scaled = input_scale * xp.minimum(a, 0)
        ctx.save_for_backward(positive, xp.exp(scaled))
        ctx.constants = alpha, scale, input_scale
        return scale * xp.where(positive, a, alpha * xp.expm1(scaled))

    @staticmethod
    def backward(ctx, grad):
        positive, exponential = ctx.saved_tensors
        alpha, scale, input_scale = ctx.constants
        xp = array_module(grad)
        return (grad * scale * xp.where(positive, 1, alpha * input_scale * exponential),)


def softplus_array(a):
    """log(1 + e^a) = max(a, 0) + log1p(e^-|a|), which never overflows."""
    xp = array_module(a)
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


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


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class SiLU(Function):
    """Sigmoid linear unit (also called swish): z = a·s, s = sigmoid(a);
    dz/da = s + a·s(1 - s) = s (1 + a (1 - s))."""

    @staticmethod
    def forward(ctx, a):
        s = stable_sigmoid(a)
        ctx.save_for_backward(a, s)
        return a * s

    @staticmethod
    def backward(ctx, grad):
        a, s = ctx.saved_tensors
        return (grad * s * (1 + a * (1 - s)),)


class Mish(Function):
    """Mish (Misra 2019): z = a·t, t = tanh(softplus(a));
    dz/da = t + a (1 - t^2) sigmoid(a), since d softplus(a)/da = sigmoid(a)."""

    @staticmethod
    def forward(ctx, a):
        t = array_module(a).tanh(softplus_array(a))
        ctx.save_for_backward(a, t)
        return a * t

    @staticmethod
    def backward(ctx, grad):
        a, t = ctx.saved_tensors
        return (grad * (t + a * (1 - t * t) * stable_sigmoid(a)),)


class LogSigmoid(Function):
    """z = log sigmoid(a) = -softplus(-a) (stable for any a);  dz/da = 1 - sigmoid(a) =
    sigmoid(-a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return -softplus_array(-a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * stable_sigmoid(-a),)


class Softsign(Function):
    """z = a / (1 + |a|);  dz/da = 1 / (1 + |a|)^2."""

    @staticmethod
    def forward(ctx, a):
        denominator = 1 + array_module(a).abs(a)
        ctx.save_for_backward(denominator)
        return a / denominator

    @staticmethod
    def backward(ctx, grad):
        (denominator,) = ctx.saved_tensors
        return (grad / (denominator * denominator),)


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
        cdf = 0.5 * (1 + erf_array(a / math.sqrt(2)))
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
    ``softplus_array(beta·a) / beta``."""

    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=20.0):
        xp = array_module(a)
        ba = beta * a
        linear = ba > threshold
        ctx.save_for_backward(ba, linear)
        soft = softplus_array(ba) / beta
        return xp.where(linear, a, soft).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        ba, linear = ctx.saved_tensors
        xp = array_module(ba)
        return (grad * xp.where(linear, 1, stable_sigmoid(ba)),)


def shifted_by_max(a, axis):
    """a - max a along ``axis`` (kept), so that exp of it never overflows; an empty tensor as
    it is (there is no max of nothing, and nothing to shift)."""
    return a - a.max(axis=axis, keepdims=True) if a.size else a


class Softmax(Function):
    """z_i = e^(a_i - m) / sum_j e^(a_j - m) along ``axis`` (m = max a, for stability);
    dL/da_i = z_i (g_i - sum_j g_j z_j)."""

    @staticmethod
    def forward(ctx, a, axis=-1):
        xp = array_module(a)
        e = xp.exp(shifted_by_max(a, axis))
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
    shifted = shifted_by_max(a, axis)
    with np.errstate(divide="ignore"):  # log 0 only for an empty axis, where nothing uses it
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


def hardtanh(a, min_val=-1.0, max_val=1.0):
    """min(max(a, min_val), max_val), with no gradient at the bounds (see ``Hardtanh``)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return Hardtanh.apply(a, lo=min_val, hi=max_val)


def relu6(a):
    """min(max(a, 0), 6): ``hardtanh(a, 0, 6)``, a composite (dz/da = 1 for 0 < a < 6)."""
    return hardtanh(a, 0.0, 6.0)


def hardsigmoid(a):
    """relu6(a + 3) / 6, a composite: z = 0 for a <= -3, 1 for a >= 3, a/6 + 1/2 between;
    dz/da = 1/6 for -3 < a < 3, else 0 (0 at a = ±3, as in PyTorch)."""
    return relu6(as_floating(a) + 3) / 6


def hardswish(a):
    """a·hardsigmoid(a) (Howard et al. 2019, MobileNetV3), a composite: dz/da = 0 for
    a <= -3, a/3 + 1/2 for -3 < a < 3, 1 for a >= 3 (the product rule with hardsigmoid's
    zero slope at ±3 gives PyTorch's values there: 0 at -3, 1 at 3)."""
    a = as_floating(a)
    return a * hardsigmoid(a)


def threshold(a, threshold, value):
    """a where a > threshold, else ``value`` (see ``Threshold``)."""
    return Threshold.apply(a, threshold=threshold, value=value)


def softshrink(a, lambd=0.5):
    """Shrink toward 0 by ``lambd``, which must be >= 0 (see ``Softshrink``)."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return Softshrink.apply(as_floating(a), lambd=lambd)


def hardshrink(a, lambd=0.5):
    """Zero where |a| <= lambd (see ``Hardshrink``)."""
    return Hardshrink.apply(as_floating(a), lambd=lambd)


def elu(a, alpha=1.0):
    return ELU.apply(as_floating(a), alpha=alpha)


# SELU's constants (Klambauer et al. 2017), as PyTorch has them: they make the activations of
# a deep network converge to mean 0 and variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(a):
    return ELU.apply(as_floating(a), alpha=SELU_ALPHA, scale=SELU_SCALE)


def celu(a, alpha=1.0):
    """a for a > 0, alpha (e^(a/alpha) - 1) otherwise (ELU with input scale 1/alpha)."""
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 (the input is divided by it)")
    return ELU.apply(as_floating(a), alpha=alpha, input_scale=1.0 / alpha)


def silu(a):
    return SiLU.apply(as_floating(a))


swish = silu  # SiLU's other name (Ramachandran et al. 2017); PyTorch has only ``silu``


def mish(a):
    return Mish.apply(as_floating(a))


def logsigmoid(a):
    return LogSigmoid.apply(as_floating(a))


def softsign(a):
    return Softsign.apply(as_floating(a))


def tanhshrink(a):
    """a - tanh(a), a composite;  dz/da = 1 - (1 - tanh^2 a) = tanh^2 a."""
    a = as_floating(a)
    return a - tanh(a)


def sigmoid(a):
    return Sigmoid.apply(as_floating(a))


def tanh(a):
    return Tanh.apply(as_floating(a))


def gelu(a, approximate="none"):
    return GELU.apply(as_floating(a), approximate=approximate)


def softplus(a, beta=1.0, threshold=20.0):
    return Softplus.apply(as_floating(a), beta=beta, threshold=threshold)


@dim_spellings
def softmax(a, dim=-1):
    return Softmax.apply(as_floating(a), axis=normalize_dim(dim, a.shape, "softmax"))


@dim_spellings
def log_softmax(a, dim=-1):
    return LogSoftmax.apply(as_floating(a), axis=normalize_dim(dim, a.shape, "log_softmax"))
