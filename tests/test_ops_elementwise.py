"""Elementwise ops: gradcheck and PyTorch parity for every op (via helpers.op_tests), and the
behaviour around them: dtype of Python scalars, comparisons, casts, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from helpers import (EXAMPLES, OpCase, away_from_zero, binary, broadcastable, gradients_of_sum,
                     op_tests, positive, unary)


def keep_off_bounds(i, x, bounds=(-0.5, 0.5), gap=0.05):
    """Move values at least ``gap`` away from the clip bounds, where clip has a kink."""
    for b in bounds:
        near = np.abs(x - b) < gap
        x = np.where(near, b + np.sign(x - b + 1e-12) * gap, x)
    return x


CASES = [
    binary("add", lambda a, b: a + b, lambda a, b: a + b),
    binary("sub", lambda a, b: a - b, lambda a, b: a - b),
    binary("mul", lambda a, b: a * b, lambda a, b: a * b),
    binary("div", lambda a, b: a / b, lambda a, b: a / b,
           domain=lambda i, x: away_from_zero(x) if i == 1 else x),
    binary("pow_tensor", lambda a, b: a**b, lambda a, b: a**b,
           domain=lambda i, x: positive(x) if i == 0 else x),
    binary("maximum", mg.maximum, lambda a, b: a.maximum(b)),
    binary("minimum", mg.minimum, lambda a, b: a.minimum(b)),
    unary("neg", lambda a: -a, lambda a: -a),
    unary("pow_scalar", lambda a, p: a**p, lambda a, p: a**p, domain=lambda i, x: positive(x),
          kwargs=[{"p": p} for p in [2, 3, -1, 0.5, -1.5]]),
    unary("pow_int_negative_base", lambda a: a**3, lambda a: a**3),
    unary("rpow", lambda a: 2.0**a, lambda a: 2.0**a),
    unary("scalar_arithmetic", lambda a: (3.0 - a) / 2.0 + 1.0 / (a * a + 1.0),
          lambda a: (3.0 - a) / 2.0 + 1.0 / (a * a + 1.0)),
    unary("exp", mg.exp, lambda a: a.exp()),
    unary("log", mg.log, lambda a: a.log(), domain=lambda i, x: positive(x)),
    unary("sqrt", mg.sqrt, lambda a: a.sqrt(), domain=lambda i, x: positive(x)),
    unary("abs", mg.abs, lambda a: a.abs(), domain=lambda i, x: away_from_zero(x)),
    unary("sign", lambda a: mg.sign(a) * a, lambda a: a.sign() * a,
          domain=lambda i, x: away_from_zero(x)),
    unary("clip", lambda a, lo, hi: mg.clip(a, lo, hi), lambda a, lo, hi: a.clamp(lo, hi),
          domain=keep_off_bounds,
          kwargs=[{"lo": -0.5, "hi": 0.5}, {"lo": -0.5, "hi": None}, {"lo": None, "hi": 0.5}]),
    OpCase("where", lambda data: (data.draw(broadcastable(3), label="shapes"), {}),
           mg.where, lambda c, a, b: a.where(c, b), dtypes={0: bool},
           examples=[([(2, 3), (2, 3), (2, 3)], {}), ([(2, 3), (3,), ()], {}),
                     ([(3, 1), (1, 4), (3, 4)], {})]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


def test_python_scalars_keep_the_tensor_dtype():
    x = mg.ones(3)
    assert (x + 2.0).dtype == np.float32
    assert (2 * x).dtype == np.float32
    assert (x ** 2).dtype == np.float32
    assert (mg.ones(2, dtype=np.float64) * 0.5).dtype == np.float64


def test_float32_and_float64_promote_and_grads_keep_each_dtype():
    a = mg.ones(2, requires_grad=True)
    b = mg.ones(2, dtype=np.float64, requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


@EXAMPLES
@given(shape_pair=broadcastable(2), seed=st.integers(0, 2**31))
def test_comparisons_match_numpy_and_build_no_graph(shape_pair, seed):
    rng = np.random.default_rng(seed)
    a_np = rng.integers(-2, 3, size=shape_pair[0]).astype(np.float32)
    b_np = rng.integers(-2, 3, size=shape_pair[1]).astype(np.float32)
    a, b = mg.tensor(a_np, requires_grad=True), mg.tensor(b_np)
    for ours, theirs in [(a == b, a_np == b_np), (a != b, a_np != b_np), (a < b, a_np < b_np),
                         (a <= b, a_np <= b_np), (a > b, a_np > b_np), (a >= b, a_np >= b_np),
                         (a > 0.5, a_np > 0.5)]:
        assert ours.dtype == np.bool_ and not ours.requires_grad
        np.testing.assert_array_equal(ours.numpy(), theirs)


def test_cast_moves_values_and_gradient_between_dtypes():
    x = mg.tensor([1.5, -2.25], dtype=np.float64, requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    assert x.to(np.float32).dtype == np.float32 and x.long().dtype == np.int64


# Where an op has a kink or tie, the gradient is a convention: clip passes it at the bounds,
# maximum splits it on ties, pow at base 0 follows the limits. name: (minigrad op, PyTorch op,
# inputs).
KINKS = {
    "clip_at_the_bounds": (lambda x: mg.clip(x, -0.5, 0.5), lambda x: x.clamp(-0.5, 0.5),
                           [np.array([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=np.float32)]),
    "maximum_ties": (mg.maximum, lambda a, b: a.maximum(b),
                     [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])]),
    "pow_at_base_zero": (lambda a, b: a**b, lambda a, b: a**b,
                         [np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])]),
}


@pytest.mark.parametrize("name", KINKS)
def test_gradient_at_kinks_and_ties_follows_torch(name, torch_reference):
    ours, theirs, inputs = KINKS[name]
    expected = torch_reference(name, lambda torch: {
        f"grad{i}": grad for i, grad in enumerate(gradients_of_sum(torch, theirs, *inputs))})
    for i, grad in enumerate(gradients_of_sum(mg, ours, *inputs)):
        np.testing.assert_array_equal(grad, expected[f"grad{i}"], err_msg=f"input {i}")


@pytest.mark.parametrize("op", [mg.add, mg.mul, mg.maximum, mg.where])
def test_broadcast_mismatch_names_the_op_and_both_shapes(op):
    a, b = mg.ones(2, 3), mg.ones(4)
    args = (mg.ones(2, 3) > 0, a, b) if op is mg.where else (a, b)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)") as error:
        op(*args)
    assert type(error.value) is ValueError
    assert op.__name__.capitalize() in str(error.value)


def test_pow_scalar_exponent_needs_no_log_of_negative_bases():
    x = mg.tensor([-2.0, 3.0], requires_grad=True)
    (x**2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-4.0, 6.0])


def test_unary_ops_keep_shape_for_scalars():
    for shape in [(), (1,), (2, 1)]:
        x = mg.ones(shape) if shape else mg.tensor(1.0)
        assert mg.exp(x).shape == x.shape


def test_numpy_values_on_the_left_give_tensors_with_a_graph():
    x = mg.ones(3, requires_grad=True)
    # A float64 array is a tensor of its own dtype (float64 wins, as in PyTorch); NumPy
    # scalars count as Python numbers and keep float32.
    for y, dtype in ((np.ones(3) * x, np.float64), (np.float32(2) * x, np.float32),
                     (np.float64(2) * x, np.float32)):
        assert isinstance(y, mg.Tensor) and y.requires_grad and y.dtype == dtype


def test_integer_and_float_mixes_keep_the_float_dtype_like_torch():
    ints, floats = mg.tensor([1, 2]), mg.ones(2)
    assert (floats + ints).dtype == np.float32 and (ints * floats).dtype == np.float32
    assert (ints / ints).dtype == np.float32
    np.testing.assert_array_equal((ints / mg.tensor([2, 4])).numpy(), [0.5, 0.5])


def test_maximum_of_int_and_float_splits_ties_in_halves():
    b = mg.tensor([1.0, 1.0], requires_grad=True)
    mg.maximum(mg.tensor([1, 2]), b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.0])


def test_clip_accepts_tensor_bounds():
    x = mg.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = mg.clip(x, mg.tensor([-1.0, 0.0, 0.0]), mg.tensor(1.0))
    np.testing.assert_array_equal(y.numpy(), [-1.0, 0.5, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])


def test_clamp_of_an_integer_tensor_with_float_bounds_is_float32_as_in_pytorch():
    out = mg.clamp(mg.tensor([0, 2, 5]), 1.5, 3.5)
    assert out.dtype == np.float32 and out.tolist() == [1.5, 2.0, 3.5]
    assert mg.clamp(mg.tensor([0, 2, 5]), 1, 3).dtype == np.int64
