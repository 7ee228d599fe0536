"""Binary ops (ops/binary.py) beyond test_ops_elementwise's arithmetic: add/sub with alpha, the
rounded divisions and remainders, atan2 hypot copysign xlogy lerp (gradcheck and PyTorch
parity through helpers.op_tests), the logical and bitwise ops, isclose/allclose/equal (values
and dtypes against PyTorch), PyTorch's type promotion (a table of dtypes against PyTorch's),
and the errors."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import (BINARY_SHAPES, OpCase, away_from_zero, broadcastable, gradients_of_sum,
                     op_tests, positive, unary)

PAIR_SHAPES = BINARY_SHAPES + [((0,), (0,)), ((2, 0), (1,))]  # and empty inputs


def pair(name, fn, torch_fn, domain=lambda i, x: x, kwargs=({},)):
    """An OpCase for an op of two broadcasting tensors, with each of ``kwargs``."""
    return OpCase(name, lambda data: (data.draw(broadcastable(2), label="shapes"),
                                      data.draw(st.sampled_from(kwargs), label="kwargs")),
                  fn, torch_fn, domain=domain,
                  examples=[(list(shapes), options) for options in kwargs
                            for shapes in PAIR_SHAPES])


def divisor_off_zero(i, x):
    """The second input away from 0: the pole of a division, the jump of a remainder."""
    return away_from_zero(x) if i == 1 else x


CASES = [
    pair("add_alpha", lambda a, b, alpha: mg.add(a, b, alpha=alpha),
         lambda a, b, alpha: a.add(b, alpha=alpha), kwargs=[{"alpha": 2.5}, {"alpha": -1}]),
    pair("sub_alpha", lambda a, b, alpha: mg.sub(a, b, alpha=alpha),
         lambda a, b, alpha: a.sub(b, alpha=alpha), kwargs=[{"alpha": 0.5}, {"alpha": 3}]),
    pair("div_rounded", lambda a, b, mode: mg.div(a, b, rounding_mode=mode),
         lambda a, b, mode: a.div(b, rounding_mode=mode), domain=divisor_off_zero,
         kwargs=[{"mode": "trunc"}, {"mode": "floor"}]),
    pair("fmod", mg.fmod, lambda a, b: a.fmod(b), domain=divisor_off_zero),
    pair("remainder", mg.remainder, lambda a, b: a.remainder(b), domain=divisor_off_zero),
    unary("remainder_by_number", lambda a, other: mg.remainder(a, other),
          lambda a, other: a.remainder(other), kwargs=[{"other": 0.7}, {"other": -1.3}]),
    unary("fmod_by_number", lambda a: mg.fmod(a, -0.8), lambda a: a.fmod(-0.8)),
    pair("atan2", mg.atan2, lambda a, b: a.atan2(b), domain=divisor_off_zero),
    pair("hypot", mg.hypot, lambda a, b: a.hypot(b), domain=lambda i, x: away_from_zero(x)),
    pair("copysign", mg.copysign, lambda a, b: a.copysign(b),
         domain=lambda i, x: away_from_zero(x)),
    pair("xlogy", mg.xlogy, lambda a, b: a.xlogy(b),
         domain=lambda i, x: positive(x) if i == 1 else x),
    pair("lerp_number_weight", lambda a, b, weight: mg.lerp(a, b, weight),
         lambda a, b, weight: a.lerp(b, weight), kwargs=[{"weight": 0.3}, {"weight": 0.8}]),
    OpCase("lerp_tensor_weight", lambda data: (data.draw(broadcastable(3), label="shapes"), {}),
           mg.lerp, lambda a, b, w: a.lerp(b, w),
           examples=[([(2, 3), (2, 3), (2, 3)], {}), ([(2, 1, 4), (3, 1), (4,)], {}),
                     ([(), (2, 2), ()], {}), ([(0,), (1,), ()], {})]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


# --------------------------------------------------------------------------- type promotion
def operand(lib, spec):
    """A promotion-table operand made by ``lib`` (minigrad or torch): ``"int32[]"`` is a
    tensor [1, 2] of that dtype, ``"int32()"`` a 0-d tensor of it; a number is itself."""
    if not isinstance(spec, str):
        return spec
    name, shape = spec[:-2], spec[-2:]
    return lib.tensor([1, 2] if shape == "[]" else 1, dtype=getattr(lib, name))


# name: the two operands. Tensors with dimensions rank above 0-d tensors above Python numbers;
# a lower rank only counts where its category (bool < integer < float) is higher.
PROMOTIONS = {
    "int64 tensor, Python float": ("int64[]", 2.5),
    "int32 tensor, Python float": ("int32[]", 2.5),
    "Python float, int8 tensor": (2.5, "int8[]"),
    "bool tensor, Python float": ("bool[]", 2.5),
    "bool tensor, Python int": ("bool[]", 2),
    "bool tensor, Python bool": ("bool[]", True),
    "float16 tensor, Python float": ("float16[]", 2.5),
    "float16 tensor, Python int": ("float16[]", 2),
    "float64 tensor, Python float": ("float64[]", 2.5),
    "int8 tensor, Python int": ("int8[]", 2),
    "uint8 tensor, Python int": ("uint8[]", 2),
    "int32 tensor, Python bool": ("int32[]", True),
    "int32 tensor, int64 tensor": ("int32[]", "int64[]"),
    "uint8 tensor, int8 tensor": ("uint8[]", "int8[]"),
    "bool tensor, uint8 tensor": ("bool[]", "uint8[]"),
    "int64 tensor, float16 tensor": ("int64[]", "float16[]"),
    "int32 tensor, float32 tensor": ("int32[]", "float32[]"),
    "float32 tensor, float64 tensor": ("float32[]", "float64[]"),
    "int32 tensor, 0-d int64": ("int32[]", "int64()"),
    "float32 tensor, 0-d float64": ("float32[]", "float64()"),
    "int32 tensor, 0-d float64": ("int32[]", "float64()"),
    "int16 tensor, 0-d float16": ("int16[]", "float16()"),
    "bool tensor, 0-d int32": ("bool[]", "int32()"),
    "0-d int32, 0-d int64": ("int32()", "int64()"),
    "0-d int32, Python float": ("int32()", 2.5),
    "0-d float16, Python float": ("float16()", 2.5),
    "0-d bool, Python int": ("bool()", 3),
}


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def promotion_dtypes(lib, specs):
    """The result dtypes of ``lib``'s result_type, add, mul and where on the operands."""
    a, b = (operand(lib, spec) for spec in specs)
    mask = lib.tensor([True, False])
    results = {"result_type": lib.result_type(a, b), "add": lib.add(a, b).dtype,
               "mul": lib.mul(a, b).dtype, "where": lib.where(mask, a, b).dtype}
    return {op: np.array(dtype_name(dtype)) for op, dtype in results.items()}


@pytest.mark.parametrize("row", PROMOTIONS)
def test_promotion_follows_torch(row, torch_reference):
    expected = torch_reference(f"promotion: {row}",
                               lambda torch: promotion_dtypes(torch, PROMOTIONS[row]))
    ours = promotion_dtypes(mg, PROMOTIONS[row])
    assert {op: str(d) for op, d in ours.items()} == {op: str(d) for op, d in expected.items()}


def test_promote_types_puts_category_before_size():
    assert mg.promote_types(np.int64, np.float16) == np.float16
    assert mg.promote_types(np.int32, np.float32) == np.float32
    assert mg.promote_types(np.uint8, np.int8) == np.int16
    assert mg.promote_types(np.bool_, np.uint8) == np.uint8
    assert mg.promote_types(np.float16, np.float64) == np.float64


def test_promotion_casts_are_recorded_so_each_gradient_keeps_its_dtype(torch_reference):
    a_np, b_np = np.array([1.5, -2.0, 0.5], dtype=np.float32), np.array(3.0)

    def run(lib):
        a, b = lib.tensor(a_np, requires_grad=True), lib.tensor(b_np, requires_grad=True)
        out = a * b  # a 0-d float64 tensor beside float32 ones: float32
        out.sum().backward()
        return {"out": out, "grad_a": a.grad, "grad_b": b.grad}

    expected = torch_reference("0-d float64 gradient", lambda torch: {
        key: value.detach() for key, value in run(torch).items()})
    for key, value in run(mg).items():
        assert value.dtype == expected[key].dtype, key
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-6, err_msg=key)


# --------------------------------------------------------------------------- exact results
I64 = np.array([-7, -6, -1, 0, 1, 5, 7, 9])
J64 = np.array([2, -2, 3, -3, 4, -4, 5, 3])
SHIFTS = np.array([0, 1, 2, 3, 62, 64, 70, 1])
U8, V8 = np.array([0, 1, 7, 200, 255], dtype=np.uint8), np.array([3, 1, 2, 7, 16], dtype=np.uint8)
MASK, MASK2 = np.array([True, False, True, False]), np.array([True, True, False, False])
X = np.array([-1.5, 0.0, 2.0, np.nan])
K = np.array([0, 3, 0, -1], dtype=np.int32)
SPECIAL = np.array([-1.5, -0.0, 0.0, 2.0, np.nan, np.inf])
SIGNS = np.array([-3.5, -1.0, 0.0, 0.75, 4.25])
NEAR = np.array([1.0, 1.0, 1.0, np.inf, -np.inf, np.inf, np.nan, np.nan, 0.0, 1e-9])
FAR = np.array([1.0, 1.0 + 1e-6, 1.1, np.inf, np.inf, 1.0, np.nan, 1.0, 1e-9, 0.0])

# name: (call, inputs). ``call(lib, *inputs)`` is the same code for minigrad and for torch;
# array inputs become tensors of their dtype, numbers stay numbers.
EXACT = {
    "div_trunc_int64": (lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"), [I64, J64]),
    "div_floor_int64": (lambda lib, a, b: lib.div(a, b, rounding_mode="floor"), [I64, J64]),
    "div_trunc_int8": (lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"),
                       [I64.astype(np.int8), J64.astype(np.int8)]),
    "floor_divide_int8": (lambda lib, a, b: lib.floor_divide(a, b),
                          [I64.astype(np.int8), J64.astype(np.int8)]),
    "floor_divide_number_first": (lambda lib, b: lib.floor_divide(-7, b), [J64]),
    "fmod_int64": (lambda lib, a, b: lib.fmod(a, b), [I64, J64]),
    "fmod_int8_broadcast": (lambda lib, a, b: lib.fmod(a, b),
                            [I64.reshape(2, 4).astype(np.int8), J64[:4].astype(np.int8)]),
    "remainder_int64": (lambda lib, a, b: lib.remainder(a, b), [I64, J64]),
    "remainder_int8_number": (lambda lib, a: lib.remainder(a, -3), [I64.astype(np.int8)]),
    "remainder_number_first": (lambda lib, b: lib.remainder(5, b), [J64]),
    "number_remainder_float": (lambda lib, b: lib.remainder(2.5, b), [SIGNS[[0, 1, 3, 4]]]),
    "remainder_bool_number": (lambda lib, a: lib.remainder(a, 2), [MASK]),
    "fmod_float_signs": (lambda lib, a: lib.fmod(a, -1.5), [SIGNS]),
    "remainder_float_signs": (lambda lib, a: lib.remainder(a, -1.5), [SIGNS]),
    "fmod_by_zero_float": (lambda lib, a: lib.fmod(a, 0.0), [SPECIAL]),
    "remainder_by_zero_float": (lambda lib, a: lib.remainder(a, 0.0), [SPECIAL]),
    "floor_divide_by_zero_float": (lambda lib, a: lib.floor_divide(a, 0.0), [SPECIAL]),
    "div_trunc_special": (lambda lib, a: lib.div(a, 0.75, rounding_mode="trunc"), [SPECIAL]),
    "true_divide_int": (lambda lib, a, b: lib.true_divide(a, b), [I64, J64]),
    "add_alpha_int": (lambda lib, a, b: lib.add(a, b, alpha=3), [I64, J64]),
    "sub_alpha_int8": (lambda lib, a, b: lib.sub(a, b, alpha=2),
                       [I64.astype(np.int8), J64.astype(np.int8)]),
    "add_bool_alpha": (lambda lib, a, b: lib.add(a, b, alpha=2), [MASK, MASK2]),
    "add_int8_wraps_a_python_int": (lambda lib, a: lib.add(a, 300), [I64.astype(np.int8)]),
    "atan2_int": (lambda lib, a, b: lib.atan2(a, b), [I64, J64]),
    "copysign_int": (lambda lib, a, b: lib.copysign(a, b), [I64, J64]),
    "copysign_negative_zero": (lambda lib, a, b: lib.copysign(a, b), [SIGNS[:2], SPECIAL[1:3]]),
    "logical_and_float_int": (lambda lib, a, b: lib.logical_and(a, b), [X, K]),
    "logical_or_float_bool": (lambda lib, a, b: lib.logical_or(a, b), [X, MASK]),
    "logical_xor_int_bool": (lambda lib, a, b: lib.logical_xor(a, b), [K, MASK]),
    "logical_or_broadcast": (lambda lib, a, b: lib.logical_or(a, b), [X.reshape(4, 1), MASK]),
    "logical_not_float": (lambda lib, a: lib.logical_not(a), [X]),
    "logical_not_int": (lambda lib, a: lib.logical_not(a), [K]),
    "logical_and_empty": (lambda lib, a, b: lib.logical_and(a, b), [X[:0], K[:0]]),
    "bitwise_and_int64": (lambda lib, a, b: lib.bitwise_and(a, b), [I64, J64]),
    "bitwise_or_uint8": (lambda lib, a, b: lib.bitwise_or(a, b), [U8, V8]),
    "bitwise_xor_int8": (lambda lib, a, b: lib.bitwise_xor(a, b),
                         [I64.astype(np.int8), J64.astype(np.int8)]),
    "bitwise_and_bool": (lambda lib, a, b: lib.bitwise_and(a, b), [MASK, MASK2]),
    "bitwise_or_bool": (lambda lib, a, b: lib.bitwise_or(a, b), [MASK, MASK2]),
    "bitwise_xor_bool": (lambda lib, a, b: lib.bitwise_xor(a, b), [MASK, MASK2]),
    "bitwise_and_int32_int64": (lambda lib, a, b: lib.bitwise_and(a, b),
                                [I64.astype(np.int32), J64]),
    "bitwise_or_int8_number": (lambda lib, a: lib.bitwise_or(a, 3), [I64.astype(np.int8)]),
    "bitwise_and_bool_number": (lambda lib, a: lib.bitwise_and(a, 3), [MASK]),
    "bitwise_xor_0d": (lambda lib, a, b: lib.bitwise_xor(a, b), [np.array(6), J64]),
    "bitwise_not_int8": (lambda lib, a: lib.bitwise_not(a), [I64.astype(np.int8)]),
    "bitwise_not_uint8": (lambda lib, a: lib.bitwise_not(a), [U8]),
    "bitwise_not_bool": (lambda lib, a: lib.bitwise_not(a), [MASK]),
    "left_shift_int64": (lambda lib, a, b: lib.bitwise_left_shift(a, b), [I64, SHIFTS]),
    "right_shift_int64": (lambda lib, a, b: lib.bitwise_right_shift(a, b), [I64, SHIFTS]),
    "left_shift_int8": (lambda lib, a: lib.bitwise_left_shift(a, 5), [I64.astype(np.int8)]),
    "right_shift_number": (lambda lib, a: lib.bitwise_right_shift(a, 1), [I64]),
    "left_shift_number_first": (lambda lib, b: lib.bitwise_left_shift(1, b), [SHIFTS[:4]]),
    "isclose_defaults": (lambda lib, a, b: lib.isclose(a, b), [NEAR, FAR]),
    "isclose_float32": (lambda lib, a, b: lib.isclose(a, b),
                        [NEAR.astype(np.float32), FAR.astype(np.float32)]),
    "isclose_equal_nan": (lambda lib, a, b: lib.isclose(a, b, equal_nan=True), [NEAR, FAR]),
    "isclose_exact": (lambda lib, a, b: lib.isclose(a, b, rtol=0, atol=0), [NEAR, FAR]),
    "isclose_rtol": (lambda lib, a, b: lib.isclose(a, b, rtol=0.2), [NEAR, FAR]),
    "isclose_atol": (lambda lib, a, b: lib.isclose(a, b, rtol=0, atol=1e-8), [NEAR, FAR]),
    "isclose_int": (lambda lib, a, b: lib.isclose(a, b, rtol=0.3, atol=1), [I64, J64]),
    "isclose_bool": (lambda lib, a, b: lib.isclose(a, b), [MASK, MASK2]),
    "isclose_broadcast": (lambda lib, a, b: lib.isclose(a, b, rtol=0.2),
                          [NEAR.reshape(2, 5), FAR[:5]]),
    "allclose_false": (lambda lib, a, b: lib.allclose(a, b), [NEAR, FAR]),
    "allclose_true": (lambda lib, a, b: lib.allclose(a, b, rtol=1e-3, equal_nan=True),
                      [NEAR[:2], FAR[:2]]),
    "equal_same": (lambda lib, a, b: lib.equal(a, b), [I64, I64.astype(np.float32)]),
    "equal_values_differ": (lambda lib, a, b: lib.equal(a, b), [I64, J64]),
    "equal_shapes_differ": (lambda lib, a, b: lib.equal(a, b), [I64[:4], I64.reshape(2, 4)]),
    "equal_nan": (lambda lib, a: lib.equal(a, a), [X]),
}


def run_exact(lib, name):
    call, inputs = EXACT[name]
    return call(lib, *[lib.tensor(x) if isinstance(x, np.ndarray) else x for x in inputs])


@pytest.mark.parametrize("name", EXACT)
def test_exact_results_and_dtypes_match_torch(name, torch_reference):
    expected = torch_reference(name, lambda torch: {"out": run_exact(torch, name)})["out"]
    ours = run_exact(mg, name)
    if isinstance(ours, mg.Tensor):
        assert not ours.requires_grad
        ours = ours.numpy()
    else:
        assert isinstance(ours, bool), f"{name} gave a {type(ours).__name__}, not a bool"
    ours = np.asarray(ours)
    assert ours.dtype == expected.dtype, f"{name}: {ours.dtype}, PyTorch {expected.dtype}"
    if ours.dtype.kind == "f":  # atan2 and true division may differ in the last bit
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=0, err_msg=name)
    else:
        np.testing.assert_array_equal(ours, expected, err_msg=name)


# --------------------------------------------------------------------------- gradients
# name: (minigrad op, PyTorch op, inputs) where the gradient is a convention: xlogy and
# copysign at input 0, the zero gradient of rounded division.
CONVENTIONS = {
    "xlogy_at_zero": (mg.xlogy, lambda a, b: a.xlogy(b),
                      [np.array([0.0, 0.0, 0.0, 1.5, 0.0]),
                       np.array([2.0, 0.0, -1.0, 3.0, 0.5])]),
    "copysign_at_zero": (mg.copysign, lambda a, b: a.copysign(b),
                         [np.array([0.0, -0.0, 2.0, -3.0]), np.array([-1.0, 1.0, -0.0, 2.0])]),
    "div_floor": (lambda a, b: mg.div(a, b, rounding_mode="floor"),
                  lambda a, b: a.div(b, rounding_mode="floor"),
                  [np.array([1.5, -2.5]), np.array([0.5, 2.0])]),
    "remainder_at_zero_remainder": (mg.remainder, lambda a, b: a.remainder(b),
                                    [np.array([3.0, -4.0]), np.array([1.5, 2.0])]),
}


@pytest.mark.parametrize("name", CONVENTIONS)
def test_gradient_conventions_follow_torch(name, torch_reference):
    ours, theirs, inputs = CONVENTIONS[name]
    expected = torch_reference(f"gradient: {name}", lambda torch: {
        f"grad{i}": grad for i, grad in enumerate(gradients_of_sum(torch, theirs, *inputs))})
    for i, grad in enumerate(gradients_of_sum(mg, ours, *inputs)):
        np.testing.assert_array_equal(grad, expected[f"grad{i}"], err_msg=f"input {i}")


def test_floor_divide_has_a_zero_gradient():
    a, b = mg.tensor([3.5, -1.0], requires_grad=True), mg.tensor([2.0, 0.3], requires_grad=True)
    out = mg.floor_divide(a, b)
    np.testing.assert_array_equal(out.numpy(), [1.0, -4.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 0.0])


def test_lerp_reaches_end_exactly():
    start, end = mg.tensor([0.1, -3.0, 1e8]), mg.tensor([0.7, 2.0, -1e-3])
    np.testing.assert_array_equal(mg.lerp(start, end, 1.0).numpy(), end.numpy())
    np.testing.assert_array_equal(mg.lerp(start, end, 0.0).numpy(), start.numpy())


def test_integer_operands_of_float_math_give_float32():
    ints = mg.tensor([1, 2, 3])
    for op in (mg.atan2, mg.hypot, mg.copysign, mg.xlogy, mg.div):
        assert op(ints, ints).dtype == np.float32, op.__name__
    assert mg.lerp(ints, ints, 0.5).dtype == np.float32


def test_aliases_are_the_same_functions():
    pairs = [(mg.subtract, mg.sub), (mg.multiply, mg.mul), (mg.divide, mg.div),
             (mg.arctan2, mg.atan2), (mg.greater, mg.gt), (mg.less, mg.lt),
             (mg.greater_equal, mg.ge), (mg.less_equal, mg.le), (mg.not_equal, mg.ne)]
    for alias, op in pairs:
        assert alias is op, alias.__name__


# --------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: mg.bitwise_and(mg.ones(2), mg.tensor([1, 2])), TypeError,
     r"bitwise_and: needs bool or integer tensors, got float32 and int64"),
    (lambda: mg.bitwise_or(mg.tensor([1, 2]), 2.5), TypeError,
     r"bitwise_or: needs bool or integer tensors, got int64 and float"),
    (lambda: mg.bitwise_not(mg.ones(2, dtype=np.float16)), TypeError,
     r"bitwise_not: needs bool or integer tensors, got float16"),
    (lambda: mg.bitwise_left_shift(mg.tensor([True]), mg.tensor([True])), TypeError,
     r"bitwise_left_shift: needs integer tensors, got bool and bool"),
    (lambda: mg.fmod(mg.tensor([1, 2]), mg.tensor([1, 0])), ZeroDivisionError,
     r"fmod: integer division by zero"),
    (lambda: mg.remainder(mg.tensor([1, 2]), 0), ZeroDivisionError,
     r"remainder: integer division by zero"),
    (lambda: mg.div(mg.tensor([1]), 0, rounding_mode="floor"), ZeroDivisionError,
     r"div: integer division by zero"),
    (lambda: mg.floor_divide(mg.tensor([True]), mg.tensor([True])), TypeError,
     r"floor_divide: not defined for bool tensors"),
    (lambda: mg.div(mg.ones(2), 2.0, rounding_mode="round"), ValueError,
     r"div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"),
    (lambda: mg.add(mg.tensor([1]), mg.tensor([2]), alpha=0.5), TypeError,
     r"add: alpha must not be a float for int64 tensors, got 0.5"),
    (lambda: mg.sub(mg.ones(2), mg.ones(2), alpha=True), TypeError,
     r"sub: a bool alpha needs bool tensors, got float32"),
    (lambda: mg.sub(mg.tensor([True]), mg.tensor([False])), TypeError,
     r"sub: subtraction with a bool operand is not supported"),
    (lambda: mg.sub(1, mg.tensor([True])), TypeError,
     r"sub: subtraction with a bool operand is not supported"),
    (lambda: mg.isclose(mg.ones(2), mg.ones(2), rtol=-1), ValueError,
     r"isclose: rtol must be >= 0, got -1"),
    (lambda: mg.allclose(mg.ones(2), mg.ones(2), atol=-0.5), ValueError,
     r"isclose: atol must be >= 0, got -0.5"),
    (lambda: mg.fmod(5, 3), TypeError, r"fmod: expected a Tensor among the inputs, got int, int"),
    (lambda: mg.atan2(mg.ones(2, 3), mg.ones(4)), ValueError,
     r"Atan2: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
    (lambda: mg.logical_and(mg.ones(2), mg.ones(3)), ValueError,
     r"Compare: shapes \(2,\) and \(3,\) cannot be broadcast together"),
]


@pytest.mark.parametrize("call, error, message", ERRORS,
                         ids=[message.split(":")[0] + f"-{i}"
                              for i, (_, _, message) in enumerate(ERRORS)])
def test_bad_inputs_are_named_in_the_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
