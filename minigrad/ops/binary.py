"""Binary elementwise ops: arithmetic (add sub mul div pow, the rounded divisions and
remainders, atan2 hypot copysign xlogy lerp), maximum/minimum, where, the comparisons, the
logical and bitwise ops, and PyTorch's type promotion.

Each differentiable op is a ``Function`` whose ``backward`` multiplies the incoming gradient by
the local derivatives dz/da and dz/db. Binary ops broadcast like NumPy; the engine sums their
gradients back to each input's shape (``autograd.unbroadcast``), so the backward methods here
return full-shape gradients. Ops with bool or integer results (comparisons, logical and bitwise
ops, ``isclose``) are constants: the engine records no node for them.

Every public function takes its operands through ``_operands``, one place for PyTorch's type
promotion (``result_type``), so Python numbers and mixed dtypes promote the same way in every
op.
"""

import numpy as np

from minigrad.autograd import Function, TensorBase, first_tensor
from minigrad.backend import array_module
from minigrad.ops.unary import as_floating, cast

__all__ = [
    "add", "allclose", "arctan2", "atan2", "bitwise_and", "bitwise_left_shift", "bitwise_not",
    "bitwise_or", "bitwise_right_shift", "bitwise_xor", "copysign", "div", "divide", "eq",
    "equal", "floor_divide", "fmod", "ge", "greater", "greater_equal", "gt", "hypot", "isclose",
    "le", "lerp", "less", "less_equal", "logical_and", "logical_not", "logical_or",
    "logical_xor", "lt", "maximum", "minimum", "mul", "multiply", "ne", "not_equal", "pow",
    "promote_types", "remainder", "result_type", "sub", "subtract", "true_divide", "where",
    "xlogy",
]


def _scaled(x, alpha):
    """alpha x, skipping the product for the usual alpha = 1."""
    return x if alpha == 1 else alpha * x


class Add(Function):
    """z = a + alpha b;  dz/da = 1, dz/db = alpha."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.alpha = alpha
        return a + _scaled(b, alpha)

    @staticmethod
    def backward(ctx, grad):
        return grad, _scaled(grad, ctx.alpha)


class Sub(Function):
    """z = a - alpha b;  dz/da = 1, dz/db = -alpha."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.alpha = alpha
        return a - _scaled(b, alpha)

    @staticmethod
    def backward(ctx, grad):
        return grad, -_scaled(grad, ctx.alpha)


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


def rounded_quotient(a, b, rounding_mode):
    """a / b rounded toward zero (``"trunc"``) or down (``"floor"``, Python's //), in the dtype
    of a and b; exact for integers (no detour through floats). Float division by zero gives
    inf or NaN, as in PyTorch."""
    xp = array_module(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        if rounding_mode == "floor":
            return xp.floor_divide(a, b)
        if a.dtype.kind == "f":
            return xp.trunc(a / b)
        floor = xp.floor_divide(a, b)
        return floor + ((floor * b != a) & ((a < 0) != (b < 0)))  # up by one if signs differ


class RoundedDiv(Function):
    """z = a / b rounded toward zero or down (``rounded_quotient``);  dz/da = dz/db = 0 (a step
    function: PyTorch's gradient is zero too)."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, rounding_mode):
        return rounded_quotient(a, b, rounding_mode)

    @staticmethod
    def backward(ctx, grad):
        zeros = array_module(grad).zeros_like(grad)
        return zeros, zeros


class Remainder(Function):
    """z = a - q b, q = a / b rounded toward zero (``"trunc"``: fmod, z has the sign of a) or
    down (``"floor"``: remainder, z has the sign of b, Python's %);  dz/da = 1, dz/db = -q
    (PyTorch's derivatives, true away from the jumps where b divides a)."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, rounding_mode):
        ctx.save_for_backward(a, b)
        ctx.rounding_mode = rounding_mode
        xp = array_module(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # x % 0.0 is NaN, as in PyTorch
            return xp.fmod(a, b) if rounding_mode == "trunc" else xp.remainder(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_b = (-grad * rounded_quotient(a, b, ctx.rounding_mode)
                  if ctx.needs_input_grad[1] else None)
        return grad, grad_b


class Atan2(Function):
    """z = atan2(a, b), the angle of the point (b, a);  dz/da = b / (a^2 + b^2),
    dz/db = -a / (a^2 + b^2)."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a).arctan2(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        scale = grad / (a * a + b * b)
        return scale * b, -scale * a


class Hypot(Function):
    """z = sqrt(a^2 + b^2);  dz/da = a / z, dz/db = b / z."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        out = array_module(a).hypot(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        scale = grad / out
        return scale * a, scale * b


class Copysign(Function):
    """z = |a| with the sign of b (its sign bit: -0.0 counts as negative);
    dz/da = z / a = sign(a) sign(z) (0 at a = 0, as PyTorch), dz/db = 0."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a)
        out = xp.copysign(a, b)
        ctx.save_for_backward(xp.sign(a) * xp.sign(out))
        return out

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return grad * slope, array_module(grad).zeros_like(grad)


def _xlogy(x, y):
    """x ln y, and 0 where x = 0 (unless y is NaN): ln y of a y <= 0 does not matter there."""
    xp = array_module(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where((x == 0) & ~xp.isnan(y), 0, x * xp.log(y))


class Xlogy(Function):
    """z = a ln b (0 where a = 0);  dz/da = ln b, dz/db = a / b. Where a = 0 and b <= 0 z is
    not differentiable; dz/da = 0 there, PyTorch's choice."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _xlogy(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):  # at b = 0, as PyTorch: inf, NaN
            grad_b = grad * a / b
        grad_a = array_module(a).where((a == 0) & (b <= 0), 0, _xlogy(grad, b))
        return grad_a, grad_b


class Lerp(Function):
    """z = a + w (b - a), from a (w = 0) to b (w = 1);  dz/da = 1 - w, dz/db = w,
    dz/dw = b - a. Where |w| >= 0.5 it is computed as b - (b - a)(1 - w), as PyTorch does, so
    that w = 1 gives b exactly."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, w):
        xp = array_module(a)
        diff = b - a
        ctx.save_for_backward(diff, w)
        return xp.where(xp.abs(w) < 0.5, a + w * diff, b - diff * (1 - w))

    @staticmethod
    def backward(ctx, grad):
        diff, w = ctx.saved_tensors
        grad_w = grad * diff if ctx.needs_input_grad[2] else None
        return grad * (1 - w), grad * w, grad_w


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


# --------------------------------------------------------------------------- type promotion
CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}  # dtype.kind -> bool, integer, float, complex
NUMBER_DTYPES = ((bool, np.dtype(np.bool_)), (int, np.dtype(np.int64)),
                 (float, np.dtype(np.float32)), (complex, np.dtype(np.complex64)))


def promote_types(type1, type2):
    """The dtype two dtypes promote to, as ``torch.promote_types``: within a category (bool,
    integer, floating, complex) the larger one (NumPy's ``result_type``); an integer or bool
    beside a floating or complex type takes that type whatever their sizes (int64 with float16
    gives float16, int32 with float32 float32, where NumPy gives float64 for both)."""
    type1, type2 = np.dtype(type1), np.dtype(type2)
    low, high = sorted((type1, type2), key=lambda dtype: CATEGORY[dtype.kind])
    if CATEGORY[low.kind] < CATEGORY["f"] <= CATEGORY[high.kind]:
        return high
    return np.result_type(type1, type2)


def result_type(tensor, other):
    """The dtype of an op on ``tensor`` and ``other`` (tensors or numbers, at least one a
    tensor), as ``torch.result_type``; ``_result_type`` gives the rule."""
    like = first_tensor("result_type", (tensor, other))
    return _result_type([_as_operand(value, like) for value in (tensor, other)])


def _result_type(operands):
    """PyTorch's promotion of tensors and Python numbers (c10's ResultTypeState).

    The operands fall in three ranks: tensors with dimensions, 0-d tensors, Python numbers (a
    bool counts as bool, an int as int64, a float as float32, PyTorch's default dtype). Within
    a rank the dtypes promote (``promote_types``); a lower rank changes the result only where
    its category is higher. So an int32 tensor with an int64 tensor gives int64, but with a
    0-d int64 tensor or a Python int it stays int32; an integer or bool tensor with a Python
    float gives float32 (NumPy: float64); a float16 tensor with a Python float stays float16;
    a bool tensor with a Python int gives int64.
    """
    ranks = [None, None, None]
    for value in operands:
        rank, dtype = _rank_and_dtype(value)
        ranks[rank] = dtype if ranks[rank] is None else promote_types(ranks[rank], dtype)
    dimensioned, zero_dim, numbers = ranks
    return _combine(dimensioned, _combine(zero_dim, numbers))


def _rank_and_dtype(value):
    """An operand's rank for ``_result_type`` (0: has dimensions, 1: 0-d, 2: a number) and its
    dtype."""
    if isinstance(value, TensorBase):
        return (1 if value.data.ndim == 0 else 0), value.data.dtype
    return 2, next(dtype for kind, dtype in NUMBER_DTYPES if isinstance(value, kind))


def _combine(higher, lower):
    """The dtype of the ``higher`` rank, promoted with the ``lower`` rank's only where that is
    of a higher category (either may be None: no operand of that rank)."""
    if higher is None:
        return lower
    if lower is None or CATEGORY[lower.kind] <= CATEGORY[higher.kind]:
        return higher
    return promote_types(higher, lower)


def _as_operand(value, like):
    """A tensor or a Python number as it is; a NumPy scalar as the Python number it holds (as
    PyTorch treats np.float64(0.5)); anything else (an array, a list) as a tensor made by
    ``like``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (TensorBase, bool, int, float, complex)):
        return value
    return like._wrap(value)


def _beside(value, dtype, like):
    """An operand as a tensor of ``dtype``: a tensor of another dtype is cast (a recorded
    cast, so its gradient comes back in its own dtype); a number becomes a constant made by
    ``like``. A Python int wraps around in a small integer dtype, as in PyTorch (int8 tensor
    + 300 adds 44), and a float too large for float16 becomes inf."""
    if isinstance(value, TensorBase):
        return value if value.data.dtype == dtype else cast(value, dtype)
    with np.errstate(over="ignore"):
        return like._wrap(array_module(like.data).asarray(value).astype(dtype))


def _operands(name, *values, like=None):
    """The operands of op ``name`` as tensors of one dtype, PyTorch's result type
    (``_result_type``). Constants are made by ``like``, by default the first tensor among
    ``values`` (a TypeError naming ``name`` when there is none)."""
    if all(isinstance(value, TensorBase) and value.data.dtype == values[0].data.dtype
           for value in values):
        return values  # the common case, tensors of one dtype: nothing to promote
    if like is None:
        like = first_tensor(name, values)
    values = [_as_operand(value, like) for value in values]
    dtype = _result_type(values)
    return tuple(_beside(value, dtype, like) for value in values)


def _float_operands(name, *values):
    """``_operands`` of float math: integer and bool operands become float32, PyTorch's
    default float (atan2 of two int64 tensors is float32)."""
    return tuple(as_floating(value) for value in _operands(name, *values))


def _division_operands(name, input, other):
    """``_operands`` of a rounded division or a remainder: bool tensors are refused, and an
    integer division by zero is a ZeroDivisionError, as in PyTorch (NumPy gives 0 and a
    warning)."""
    a, b = _operands(name, input, other)
    if a.data.dtype == np.bool_:
        raise TypeError(f"{name}: not defined for bool tensors")
    if a.data.dtype.kind in "iu" and bool((b.data == 0).any()):
        raise ZeroDivisionError(f"{name}: integer division by zero")
    return a, b


def _type_names(values):
    """The dtypes of the tensors and the types of the numbers among ``values`` (for errors)."""
    return " and ".join(str(value.data.dtype) if isinstance(value, TensorBase)
                        else type(value).__name__ for value in values)


# --------------------------------------------------------------------------- public functions
def _binary(function, *values, **attrs):
    return function.apply(*_operands(function.__name__, *values), **attrs)


def _check_alpha(name, dtype, alpha):
    """``alpha`` of add and sub under PyTorch's rules: no float alpha for integer or bool
    tensors, a bool alpha only for bool tensors (where any alpha counts as true or false)."""
    if isinstance(alpha, bool) and dtype.kind != "b":
        raise TypeError(f"{name}: a bool alpha needs bool tensors, got {dtype}")
    if isinstance(alpha, float) and dtype.kind in "biu":
        raise TypeError(f"{name}: alpha must not be a float for {dtype} tensors, got {alpha}")
    return bool(alpha) if dtype.kind == "b" else alpha


def add(input, other, *, alpha=1):
    """input + alpha other."""
    a, b = _operands("add", input, other)
    return Add.apply(a, b, alpha=_check_alpha("add", a.data.dtype, alpha))


def sub(input, other, *, alpha=1):
    """input - alpha other. A bool operand is a TypeError, as in PyTorch: ``~`` or
    ``logical_not`` flips a mask, ``^`` or ``logical_xor`` says where two masks differ."""
    if any(isinstance(value, bool) or getattr(value, "dtype", None) == np.bool_
           for value in (input, other)):
        raise TypeError("sub: subtraction with a bool operand is not supported; use ~ "
                        "(logical_not) to flip a mask, ^ (logical_xor) for where masks differ")
    a, b = _operands("sub", input, other)
    return Sub.apply(a, b, alpha=_check_alpha("sub", a.data.dtype, alpha))


def mul(input, other):
    return _binary(Mul, input, other)


def div(input, other, *, rounding_mode=None):
    """input / other. ``rounding_mode=None``: true division, where integer and bool tensors
    divide as float32 (PyTorch's default float). ``"trunc"`` rounds the quotient toward zero,
    ``"floor"`` down (Python's //): those keep integer dtypes and have a zero gradient, as in
    PyTorch."""
    if rounding_mode is None:
        return Div.apply(*_float_operands("div", input, other))
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', "
                         f"got {rounding_mode!r}")
    return RoundedDiv.apply(*_division_operands("div", input, other),
                            rounding_mode=rounding_mode)


def true_divide(input, other):
    """input / other, true division (``div`` without a rounding mode)."""
    return div(input, other)


def floor_divide(input, other):
    """input // other, the quotient rounded down (``div`` with ``rounding_mode="floor"``):
    integers stay integers; the gradient is zero."""
    return RoundedDiv.apply(*_division_operands("floor_divide", input, other),
                            rounding_mode="floor")


def fmod(input, other):
    """The remainder of input / other with the quotient rounded toward zero: it has the sign
    of ``input`` (C's fmod)."""
    return Remainder.apply(*_division_operands("fmod", input, other), rounding_mode="trunc")


def remainder(input, other):
    """The remainder of input / other with the quotient rounded down: it has the sign of
    ``other`` (Python's %)."""
    return Remainder.apply(*_division_operands("remainder", input, other),
                           rounding_mode="floor")


def atan2(input, other):
    """The angle of the point (other, input), in [-pi, pi]."""
    return Atan2.apply(*_float_operands("atan2", input, other))


def hypot(input, other):
    return Hypot.apply(*_float_operands("hypot", input, other))


def copysign(input, other):
    """|input| with the sign of ``other``; a float result, as in PyTorch."""
    return Copysign.apply(*_float_operands("copysign", input, other))


def xlogy(input, other):
    """input * ln(other), 0 where input is 0 (so 0 ln 0 = 0, as entropies need)."""
    return Xlogy.apply(*_float_operands("xlogy", input, other))


def lerp(input, end, weight):
    """input + weight (end - input): from ``input`` (weight 0) to ``end`` (weight 1);
    ``weight`` is a number or a tensor that broadcasts."""
    return Lerp.apply(*_float_operands("lerp", input, end, weight))


def pow(input, exponent):
    return _binary(Pow, input, exponent)


def maximum(input, other):
    return _binary(Maximum, input, other, take_max=True)


def minimum(input, other):
    return _binary(Maximum, input, other, take_max=False)


def where(condition, input, other):
    """Pick ``input`` where ``condition`` is true, else ``other`` (all three broadcast
    together; ``input`` and ``other`` may both be numbers: where(mask, 1.0, 0) is float32)."""
    like = first_tensor("where", (input, other, condition))
    return Where.apply(condition, *_operands("where", input, other, like=like))


subtract, multiply, divide, arctan2 = sub, mul, div, atan2


# --------------------------------------------------------------------------- comparisons
class Compare(Function):
    """z = f(a, b) elementwise for a ufunc f with bool results (a comparison, a logical op,
    or ``logical_not`` of one input): a constant, so the engine records no node."""

    broadcasts = True

    @staticmethod
    def forward(ctx, *arrays, ufunc_name):
        return getattr(array_module(arrays[0]), ufunc_name)(*arrays)


class Bitwise(Compare):
    """z = f(a, b) elementwise for a bitwise ufunc f (and, or, xor, the shifts; invert of one
    input) on bool or integer arrays, of their dtype: a constant, so the engine records no
    node."""


class IsClose(Function):
    """z = (a == b) or |a - b| <= atol + rtol |b| with a finite |a - b|, a bool tensor (a
    constant); NaNs are close to NaNs only with ``equal_nan``. Integer and bool inputs measure
    the error in float32, as PyTorch does."""

    broadcasts = True

    @staticmethod
    def forward(ctx, a, b, rtol, atol, equal_nan):
        xp = array_module(a)
        close = a == b
        if equal_nan and a.dtype.kind == "f":
            close |= xp.isnan(a) & xp.isnan(b)
        if rtol == 0 and atol == 0:
            return close
        a, b = (x if x.dtype.kind == "f" else x.astype(np.float32) for x in (a, b))
        with np.errstate(invalid="ignore"):  # inf - inf is NaN: not close, unless equal above
            error = xp.abs(a - b)
            return close | (xp.isfinite(error) & (error <= atol + xp.abs(rtol * b)))


def _compare(ufunc_name, *values, op=None):
    """``Compare`` with NumPy's ufunc ``ufunc_name``; ``op`` (default: the ufunc's name) is
    the name errors give."""
    return Compare.apply(*_operands(op or ufunc_name, *values), ufunc_name=ufunc_name)


def eq(input, other):
    return _compare("equal", input, other, op="eq")


def ne(input, other):
    return _compare("not_equal", input, other, op="ne")


def lt(input, other):
    return _compare("less", input, other, op="lt")


def le(input, other):
    return _compare("less_equal", input, other, op="le")


def gt(input, other):
    return _compare("greater", input, other, op="gt")


def ge(input, other):
    return _compare("greater_equal", input, other, op="ge")


greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(input, other):
    """True when both have the same shape and the same values (a Python bool)."""
    a, b = _operands("equal", input, other)
    return a.data.shape == b.data.shape and bool((a.data == b.data).all())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Where |input - other| <= atol + rtol |other| (a bool tensor): equal values are close
    (infinities of one sign too), NaNs only with ``equal_nan``."""
    for label, tolerance in (("rtol", rtol), ("atol", atol)):
        if tolerance < 0:
            raise ValueError(f"isclose: {label} must be >= 0, got {tolerance}")
    return IsClose.apply(*_operands("isclose", input, other), rtol=rtol, atol=atol,
                         equal_nan=equal_nan)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element of ``input`` is close to ``other`` (``isclose``): a Python
    bool."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


# --------------------------------------------------------------------------- logical, bitwise
def logical_and(input, other):
    """Where both are nonzero (a bool tensor, for inputs of any dtype)."""
    return _compare("logical_and", input, other)


def logical_or(input, other):
    return _compare("logical_or", input, other)


def logical_xor(input, other):
    return _compare("logical_xor", input, other)


def logical_not(input):
    """Where ``input`` is zero (a bool tensor, for inputs of any dtype)."""
    return _compare("logical_not", input)


def _bitwise(name, ufunc_name, *values, bool_ok=True):
    """Bitwise ``ufunc_name`` on the promoted operands, which must be integers (or bools, with
    ``bool_ok``): a float is a TypeError naming the op and the dtypes."""
    operands = _operands(name, *values)
    if operands[0].data.dtype.kind not in ("biu" if bool_ok else "iu"):
        needed = "bool or integer" if bool_ok else "integer"
        raise TypeError(f"{name}: needs {needed} tensors, got {_type_names(values)}")
    return Bitwise.apply(*operands, ufunc_name=ufunc_name)


def bitwise_and(input, other):
    return _bitwise("bitwise_and", "bitwise_and", input, other)


def bitwise_or(input, other):
    return _bitwise("bitwise_or", "bitwise_or", input, other)


def bitwise_xor(input, other):
    return _bitwise("bitwise_xor", "bitwise_xor", input, other)


def bitwise_not(input):
    """~input: every bit flipped (logical not for bools)."""
    return _bitwise("bitwise_not", "invert", input)


def bitwise_left_shift(input, other):
    """input << other on integers (shifting out every bit gives 0, as in PyTorch)."""
    return _bitwise("bitwise_left_shift", "left_shift", input, other, bool_ok=False)


def bitwise_right_shift(input, other):
    """input >> other on integers, an arithmetic shift (the sign bit is copied in)."""
    return _bitwise("bitwise_right_shift", "right_shift", input, other, bool_ok=False)
