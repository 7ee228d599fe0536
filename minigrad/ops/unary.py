"""Unary math: neg, exp, log, sqrt, abs, sign, clip (clamp), and the casts (dtype, device).

Each op is a ``Function`` whose ``backward`` multiplies the incoming gradient by the local
derivative dz/da, given in its docstring.
"""

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, TensorBase
from minigrad.backend import array_module

__all__ = [
    "abs", "cast", "clamp", "clip", "exp", "log", "neg", "sign", "sqrt", "to_device",
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
    float math of an integer or bool tensor (``exp``, ``sin``, ``mean``) gives float32."""
    return a if a.dtype.kind == "f" else cast(a, np.float32)


def neg(a):
    return Neg.apply(a)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def abs(a):
    return Abs.apply(a)


def sign(a):
    return Sign.apply(a)


def clip(a, min=None, max=None):
    """Limit values to [min, max]; either bound may be None, a number, or a tensor that
    broadcasts against ``a`` (bounds are constants: no gradient flows to them). PyTorch's
    ``clamp``."""
    lo, hi = (bound.data if isinstance(bound, TensorBase) else bound for bound in (min, max))
    return Clip.apply(a, lo=lo, hi=hi)


clamp = clip


def cast(a, dtype):
    return Cast.apply(a, dtype=np.dtype(dtype))


def to_device(a, device):
    return ToDevice.apply(a, device=device)
