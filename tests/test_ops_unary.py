"""Unary math (trigonometric, hyperbolic, logarithms, powers, erf): gradcheck and PyTorch
parity for every op (via helpers.op_tests), the dtypes of integer and bool inputs, the aliases
and the errors."""

import numpy as np
import pytest

import minigrad as mg
from helpers import away_from_zero, op_tests, positive, unary


def inside_unit_interval(i, x):
    """Values in (-0.9, 0.9): asin, acos and atanh have poles at ±1."""
    return 0.9 * np.tanh(x)


def unary_with_empty(name, fn, torch_fn, domain=lambda i, x: x):
    """``helpers.unary``, with empty inputs, (0,) and (2, 0), among the fixed examples."""
    case = unary(name, fn, torch_fn, domain=domain)
    case.examples = case.examples + [([(0,)], {}), ([(2, 0)], {})]
    return case


CASES = [
    unary_with_empty("sin", mg.sin, lambda a: a.sin()),
    unary_with_empty("cos", mg.cos, lambda a: a.cos()),
    unary_with_empty("tan", mg.tan, lambda a: a.tan(), domain=lambda i, x: 1.3 * np.tanh(x)),
    unary_with_empty("asin", mg.asin, lambda a: a.asin(), domain=inside_unit_interval),
    unary_with_empty("acos", mg.acos, lambda a: a.acos(), domain=inside_unit_interval),
    unary_with_empty("atan", mg.atan, lambda a: a.atan(), domain=lambda i, x: 3 * x),
    unary_with_empty("sinh", mg.sinh, lambda a: a.sinh()),
    unary_with_empty("cosh", mg.cosh, lambda a: a.cosh()),
    unary_with_empty("asinh", mg.asinh, lambda a: a.asinh(), domain=lambda i, x: 3 * x),
    unary_with_empty("acosh", mg.acosh, lambda a: a.acosh(),
                     domain=lambda i, x: 1.2 + np.abs(x)),
    unary_with_empty("atanh", mg.atanh, lambda a: a.atanh(), domain=inside_unit_interval),
    unary_with_empty("rsqrt", mg.rsqrt, lambda a: a.rsqrt(), domain=lambda i, x: positive(x)),
    unary_with_empty("reciprocal", mg.reciprocal, lambda a: a.reciprocal(),
                     domain=lambda i, x: away_from_zero(x)),
    unary_with_empty("square", mg.square, lambda a: a.square()),
    unary_with_empty("log2", mg.log2, lambda a: a.log2(), domain=lambda i, x: positive(x)),
    unary_with_empty("log10", mg.log10, lambda a: a.log10(), domain=lambda i, x: positive(x)),
    unary_with_empty("log1p", mg.log1p, lambda a: a.log1p(),
                     domain=lambda i, x: np.abs(x) - 0.5),  # > -1, and near 0 too
    unary_with_empty("expm1", mg.expm1, lambda a: a.expm1(), domain=lambda i, x: x / 4),
    unary_with_empty("exp2", mg.exp2, lambda a: a.exp2()),
    unary_with_empty("erf", mg.erf, lambda a: a.erf(), domain=lambda i, x: 2 * x),
    # exp, log and sqrt (their float cases are in test_ops_elementwise.py) on empty inputs.
    unary_with_empty("exp", mg.exp, lambda a: a.exp()),
    unary_with_empty("log", mg.log, lambda a: a.log(), domain=lambda i, x: positive(x)),
    unary_with_empty("sqrt", mg.sqrt, lambda a: a.sqrt(), domain=lambda i, x: positive(x)),
    unary_with_empty("clone", lambda a: a.clone() * 2, lambda a: a.clone() * 2),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


# Integer inputs of each float op, inside its domain (a NaN or inf would warn); exp, log and
# sqrt included: their results are float32, as in PyTorch.
INTEGER_INPUTS = {
    **{name: [-2, 0, 1, 3] for name in ["sin", "cos", "tan", "atan", "sinh", "cosh", "asinh",
                                        "exp", "exp2", "expm1", "erf", "square"]},
    **{name: [1, 2, 9] for name in ["log", "log2", "log10", "sqrt", "rsqrt", "acosh"]},
    "log1p": [0, 1, 5], "asin": [-1, 0, 1], "acos": [-1, 0, 1], "atanh": [0],
    "reciprocal": [-2, 1, 4],
}
BOOL_OPS = ["sin", "cos", "exp", "exp2", "expm1", "sqrt", "erf", "square", "atan"]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_and_bool_inputs_give_torch_values_and_dtypes(dtype, torch_reference):
    names = BOOL_OPS if dtype == np.bool_ else list(INTEGER_INPUTS)
    inputs = {name: np.array([True, False] if dtype == np.bool_ else INTEGER_INPUTS[name],
                             dtype=dtype) for name in names}
    expected = torch_reference(f"integer_inputs/{np.dtype(dtype).name}", lambda torch: {
        name: getattr(torch, name)(torch.tensor(values)) for name, values in inputs.items()})
    for name, values in inputs.items():
        out = getattr(mg, name)(mg.tensor(values))
        assert out.dtype == expected[name].dtype, f"{name} of {dtype.__name__}: {out.dtype}"
        np.testing.assert_allclose(out.numpy(), expected[name], rtol=1e-6, err_msg=name)


ALIASES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
           "arccosh": "acosh", "arctanh": "atanh", "negative": "neg", "absolute": "abs"}


@pytest.mark.parametrize("alias", ALIASES)
def test_aliases_are_the_same_op(alias):
    assert getattr(mg, alias) is getattr(mg, ALIASES[alias])


def test_acosh_gradient_keeps_its_digits_near_one():
    # 1/sqrt(a^2 - 1) would lose half the digits of a - 1 to the rounding of a^2.
    a = 1 + 1e-9
    x = mg.tensor([a], dtype=np.float64, requires_grad=True)
    mg.acosh(x).sum().backward()
    exact = 1 / np.sqrt((a - 1) * (a + 1))
    np.testing.assert_allclose(x.grad.numpy(), [exact], rtol=1e-12)


def test_erf_of_large_inputs_is_plus_or_minus_one_with_a_vanishing_gradient():
    x = mg.tensor([-30.0, 30.0], dtype=np.float64, requires_grad=True)
    out = mg.erf(x)
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), [-1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("name", ["sin", "erf", "square", "log1p"])
def test_a_number_instead_of_a_tensor_is_a_type_error_naming_the_op(name):
    with pytest.raises(TypeError, match=rf"(?i){name}: expected a Tensor among the inputs, "
                                        r"got float"):
        getattr(mg, name)(2.0)


def test_clone_owns_its_memory_and_keeps_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.grad_fn is not None and not np.shares_memory(y.data, x.data)
    with mg.no_grad():
        x += 1
    assert y.tolist() == [1.0, 2.0]
