"""Unary math: neg, exp and the logarithms, powers (sqrt, rsqrt, reciprocal, square), the
trigonometric and hyperbolic functions and their inverses, erf, abs, sign, clip (clamp), and
the casts (dtype, device).

Each op is a ``Function`` whose ``backward`` multiplies the incoming gradient by the local
derivative dz/da, given in its docstring. Float math of an integer or bool tensor computes in
float32, as in PyTorch (``as_floating``); neg, abs, sign and square keep integer dtypes.
"""

import math

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, TensorBase
from minigrad.backend import array_module

__all__ = [
    "abs", "absolute", "acos", "acosh", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctanh", "asin", "asinh", "atan", "atanh", "cast", "clamp", "clip", "clone", "cos", "cosh", "erf",
    "exp", "exp2", "expm1", "log", "log10", "log1p", "log2", "neg", "negative", "reciprocal",
    "rsqrt", "sign", "sin", "sinh", "sqrt", "square", "tan", "to_device",
]


class Neg(Function):
    """z = -a;  dz/da = -1."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Exp(Function):
    """z = e^a;  dz/da = e^a = z."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * out,)


class Log(Function):
    """z = ln a;  dz/da = 1/a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / a,)


class Sqrt(Function):
    """z = sqrt(a);  dz/da = 1 / (2 sqrt(a)) = 1 / (2z)."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad / (2 * out),)


class Rsqrt(Function):
    """z = 1 / sqrt(a);  dz/da = -1 / (2 a^(3/2)) = -z^3 / 2."""

    @staticmethod
    def forward(ctx, a):
        out = 1 / array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (-0.5 * grad * out**3,)


class Reciprocal(Function):
    """z = 1 / a;  dz/da = -1/a^2 = -z^2."""

    @staticmethod
    def forward(ctx, a):
        out = 1 / a
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (-grad * out * out,)


class Square(Function):
    """z = a^2;  dz/da = 2a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (2 * grad * a,)


class Log2(Function):
    """z = log_2 a;  dz/da = 1 / (a ln 2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log2(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / (a * math.log(2)),)


class Log10(Function):
    """z = log_10 a;  dz/da = 1 / (a ln 10)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log10(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / (a * math.log(10)),)


class Log1p(Function):
    """z = ln(1 + a), accurate for small a;  dz/da = 1 / (1 + a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / (1 + a),)


class Expm1(Function):
    """z = e^a - 1, accurate for small a;  dz/da = e^a = z + 1."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * (out + 1),)


class Exp2(Function):
    """z = 2^a;  dz/da = 2^a ln 2 = z ln 2."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).exp2(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * out * math.log(2),)


class Sin(Function):
    """z = sin a;  dz/da = cos a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * array_module(a).cos(a),)


class Cos(Function):
    """z = cos a;  dz/da = -sin a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (-grad * array_module(a).sin(a),)


class Tan(Function):
    """z = tan a;  dz/da = 1 / cos^2 a = 1 + z^2."""

    @staticmethod
    def forward(ctx, a):
        out = array_module(a).tan(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * (1 + out * out),)


class Asin(Function):
    """z = arcsin a, for -1 <= a <= 1;  dz/da = 1 / sqrt(1 - a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arcsin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / array_module(a).sqrt(1 - a * a),)


class Acos(Function):
    """z = arccos a, for -1 <= a <= 1;  dz/da = -1 / sqrt(1 - a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arccos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (-grad / array_module(a).sqrt(1 - a * a),)


class Atan(Function):
    """z = arctan a;  dz/da = 1 / (1 + a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arctan(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / (1 + a * a),)


class Sinh(Function):
    """z = sinh a = (e^a - e^-a) / 2;  dz/da = cosh a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).sinh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * array_module(a).cosh(a),)


class Cosh(Function):
    """z = cosh a = (e^a + e^-a) / 2;  dz/da = sinh a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).cosh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * array_module(a).sinh(a),)


class Asinh(Function):
    """z = arsinh a = ln(a + sqrt(a^2 + 1));  dz/da = 1 / sqrt(a^2 + 1)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arcsinh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / array_module(a).sqrt(a * a + 1),)


class Acosh(Function):
    """z = arcosh a = ln(a + sqrt(a^2 - 1)), for a >= 1;  dz/da = 1 / sqrt(a^2 - 1), taken as
    1 / (sqrt(a - 1) sqrt(a + 1)), which does not lose digits to a^2 - 1 near a = 1."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arccosh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        xp = array_module(a)
        return (grad / (xp.sqrt(a - 1) * xp.sqrt(a + 1)),)


class Atanh(Function):
    """z = artanh a = ln((1 + a) / (1 - a)) / 2, for -1 < a < 1;  dz/da = 1 / (1 - a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arctanh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / (1 - a * a),)


def erf_array(x):
    """The error function of a float array, elementwise: the kernel set's ``erf`` (Python's
    ``math.erf`` mapped over the array in the reference, a Numba ufunc of the same libm
    function on the CPU, CuPy's on a GPU)."""
    return backend.kernels_for(x).erf(x)


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


class Erf(Function):
    """z = erf a = 2/sqrt(pi) int_0^a e^(-t^2) dt;  dz/da = 2/sqrt(pi) e^(-a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * _TWO_OVER_SQRT_PI * array_module(a).exp(-a * a),)


class Abs(Function):
    """z = |a|;  dz/da = sign(a) (0 at a = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * array_module(a).sign(a),)


class Sign(Function):
    """z = sign(a) in {-1, 0, 1};  dz/da = 0 everywhere it is defined."""

    @staticmethod
    def forward(ctx, a):
        return array_module(a).sign(a)

    @staticmethod
    def backward(ctx, grad):
        return (grad * 0,)


class Clip(Function):
    """z = min(max(a, lo), hi);  dz/da = 1 where lo <= a <= hi, else 0 (PyTorch's clamp)."""

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        inside = array_module(a).ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        ctx.save_for_backward(inside)
        return array_module(a).clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return (grad * inside,)


class Clone(Function):
    """z = a copied into new memory;  dz/da = 1. (A later in-place change of either leaves the
    other as it was, which is what ``clone`` is for.)"""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


class Cast(Function):
    """z = a converted to another dtype; the gradient is converted back."""

    @staticmethod
    def forward(ctx, a, dtype=None):
        ctx.input_dtype = a.dtype
        return a.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(ctx.input_dtype),)


class ToDevice(Function):
    """z = a copied to another device; the gradient is copied back."""

    @staticmethod
    def forward(ctx, a, device="cpu"):
        ctx.input_device = backend.device_of(a)
        return backend.to_device(a, device)

    @staticmethod
    def backward(ctx, grad):
        return (backend.to_device(grad, ctx.input_device),)


# --------------------------------------------------------------------------- public functions
def as_floating(a):
    """``a`` itself if it holds floats, else cast to float32, PyTorch's default float: the
    float math of an integer or bool tensor (``exp``, ``sin``, ``mean``) gives float32.
    Anything but a tensor is passed on as it is, for ``Function.apply`` to refuse by name."""
    if not isinstance(a, TensorBase) or a.data.dtype.kind == "f":
        return a
    return cast(a, np.float32)


def neg(a):
    return Neg.apply(a)


negative = neg


def exp(a):
    return Exp.apply(as_floating(a))


def exp2(a):
    return Exp2.apply(as_floating(a))


def expm1(a):
    return Expm1.apply(as_floating(a))


def log(a):
    return Log.apply(as_floating(a))


def log2(a):
    return Log2.apply(as_floating(a))


def log10(a):
    return Log10.apply(as_floating(a))


def log1p(a):
    return Log1p.apply(as_floating(a))


def sqrt(a):
    return Sqrt.apply(as_floating(a))


def rsqrt(a):
    return Rsqrt.apply(as_floating(a))


def reciprocal(a):
    return Reciprocal.apply(as_floating(a))


def square(a):
    """a * a; integers stay integers and bool becomes int64, as in PyTorch."""
    if isinstance(a, TensorBase) and a.data.dtype == np.bool_:
        a = cast(a, np.int64)
    return Square.apply(a)


def sin(a):
    return Sin.apply(as_floating(a))


def cos(a):
    return Cos.apply(as_floating(a))


def tan(a):
    return Tan.apply(as_floating(a))


def asin(a):
    return Asin.apply(as_floating(a))


def acos(a):
    return Acos.apply(as_floating(a))


def atan(a):
    return Atan.apply(as_floating(a))


def sinh(a):
    return Sinh.apply(as_floating(a))


def cosh(a):
    return Cosh.apply(as_floating(a))


def asinh(a):
    return Asinh.apply(as_floating(a))


def acosh(a):
    return Acosh.apply(as_floating(a))


def atanh(a):
    return Atanh.apply(as_floating(a))


# NumPy's names of the inverse functions, which PyTorch has too.
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def erf(a):
    return Erf.apply(as_floating(a))


def abs(a):
    return Abs.apply(a)


absolute = abs


def sign(a):
    return Sign.apply(a)


def clip(a, min=None, max=None):
    """Limit values to [min, max]; either bound may be None, a number, or a tensor that
    broadcasts against ``a`` (bounds are constants: no gradient flows to them). PyTorch's
    ``clamp``. An integer tensor with a float bound is clamped in float32, PyTorch's
    promotion."""
    lo, hi = (bound.data if isinstance(bound, TensorBase) else bound for bound in (min, max))
    bound_kinds = [(b.dtype if hasattr(b, "dtype") else np.result_type(b)).kind
                   for b in (lo, hi) if b is not None]
    if "f" in bound_kinds:
        a = as_floating(a)
    return Clip.apply(a, lo=lo, hi=hi)


clamp = clip


def cast(a, dtype):
    return Cast.apply(a, dtype=np.dtype(dtype))


def clone(a):
    """A copy of ``a`` with its own memory, differentiable (PyTorch's ``clone``)."""
    return Clone.apply(a)


def to_device(a, device):
    return ToDevice.apply(a, device=device)
