"""Binary elementwise ops: arithmetic, pow, maximum/minimum, where, and the comparisons.

Each op is a ``Function`` whose ``backward`` multiplies the incoming gradient by the local
derivatives dz/da and dz/db. Binary ops broadcast like NumPy; the engine sums their gradients
back to each input's shape (``autograd.unbroadcast``), so the backward methods here return
full-shape gradients. Operands follow PyTorch's type promotion (``_operands``).
"""

import numpy as np

from minigrad.autograd import Function, TensorBase, first_tensor
from minigrad.backend import array_module
from minigrad.ops.unary import cast

__all__ = [
    "add", "div", "eq", "ge", "gt", "le", "lt", "maximum", "minimum", "mul", "ne", "pow", "sub",
    "where",
]


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a


class Div(Function):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b^2."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad / b
        grad_b = -grad_a * a / b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Pow(Function):
    """z = a^b;  dz/da = b a^(b-1),  dz/db = a^b ln a (needs a > 0).

    A constant exponent (``x ** 2``) needs no dz/db, so ln a is never evaluated and negative
    bases work as they do in NumPy. At the edges PyTorch's values are used: dz/da = 0 where
    b = 0 (z is the constant 1), and dz/db = 0 where a = 0 and b >= 0.
    """

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        xp = array_module(a)
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):  # the edges are masked below
            if ctx.needs_input_grad[0]:
                grad_a = xp.where(b == 0, 0, grad * b * a ** (b - 1))
            if ctx.needs_input_grad[1]:
                grad_b = xp.where((a == 0) & (b >= 0), 0, grad * out * xp.log(a))
        return grad_a, grad_b


class Maximum(Function):
    """z = max(a, b) elementwise; the gradient goes to the larger input (split 1/2-1/2 on ties,
    as in PyTorch)."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, take_max=True):
        xp = array_module(a)
        wins_a = (a > b) if take_max else (a < b)
        share_a = (wins_a + 0.5 * (a == b)).astype(xp.result_type(a, b))  # a's part of the grad
        ctx.save_for_backward(share_a)
        return xp.maximum(a, b) if take_max else xp.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        (share_a,) = ctx.saved_tensors
        return grad * share_a, grad * (1 - share_a)


class Where(Function):
    """z = a where cond else b;  dz/da = cond, dz/db = not cond (cond gets no gradient)."""

    broadcasts = True

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return array_module(a).where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        zero = grad.dtype.type(0)
        xp = array_module(grad)
        return None, xp.where(cond, grad, zero), xp.where(cond, zero, grad)


# --------------------------------------------------------------------------- public functions
def _beside(value, like):
    """``value`` as a tensor next to the tensor ``like``; a Python number takes the dtype it
    would have beside it. With NumPy 2's promotion rules a Python scalar is "weak": float32
    tensor + 2.0 stays float32, int64 tensor + 0.5 becomes float64 (PyTorch would give float32
    here). NumPy scalars (np.float64(0.5)) are treated as Python numbers, as in PyTorch."""
    if isinstance(value, TensorBase):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float)):
        xp = array_module(like.data)
        return like._wrap(xp.asarray(value, dtype=np.result_type(like.data.dtype, value)))
    return like._wrap(value)


def _operands(name, a, b):
    """Both operands of op ``name`` as tensors (at least one must be one); a Python number takes
    the dtype of the tensor beside it, and an integer or bool tensor beside a float tensor takes
    the float dtype (PyTorch's rule: float32 + int64 stays float32, where NumPy would give
    float64)."""
    like = first_tensor(name, (a, b))
    a, b = _beside(a, like), _beside(b, like)
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float and not b_float:
        b = cast(b, a.dtype)
    elif b_float and not a_float:
        a = cast(a, b.dtype)
    return a, b


def _binary(function, a, b, **attrs):
    return function.apply(*_operands(function.__name__, a, b), **attrs)


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    """True division; two integer tensors divide as float32 (PyTorch's default float)."""
    a, b = _operands("Div", a, b)
    if a.dtype.kind != "f":
        a, b = cast(a, np.float32), cast(b, np.float32)
    return Div.apply(a, b)


def pow(a, exponent):
    return _binary(Pow, a, exponent)


def maximum(a, b):
    return _binary(Maximum, a, b, take_max=True)


def minimum(a, b):
    return _binary(Maximum, a, b, take_max=False)


def where(condition, a, b):
    """Pick ``a`` where ``condition`` is true, else ``b`` (all three broadcast together)."""
    return Where.apply(condition, *_operands("Where", a, b))


# --------------------------------------------------------------------------- comparisons
class Compare(Function):
    """z = (a <op> b) elementwise, a bool tensor: a constant, so the engine records no node."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, ufunc_name):
        return getattr(array_module(a), ufunc_name)(a, b)


def _compare(ufunc_name, a, b):
    return Compare.apply(*_operands(ufunc_name, a, b), ufunc_name=ufunc_name)


def eq(a, b):
    return _compare("equal", a, b)


def ne(a, b):
    return _compare("not_equal", a, b)


def lt(a, b):
    return _compare("less", a, b)


def le(a, b):
    return _compare("less_equal", a, b)


def gt(a, b):
    return _compare("greater", a, b)


def ge(a, b):
    return _compare("greater_equal", a, b)
