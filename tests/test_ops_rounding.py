"""Rounding: gradcheck and PyTorch parity (zero gradients, frac's gradient 1), rounding to
decimals, half to even, integer inputs and the errors."""

import numpy as np
import pytest

import minigrad as mg
from helpers import gradients_of_sum, op_tests, unary


def away_from_jumps(i, x):
    """Values whose tenths part lies in [0.01, 0.04) or [0.06, 0.09), so at least 0.01 from
    every integer and half, where floor, ceil, trunc, frac and round (to 1, 0 or -1 decimals)
    jump: there the numerical gradient is not the op's."""
    tenths = np.floor(10 * x)
    part = 0.1 + 0.8 * (10 * x - tenths)  # in [0.1, 0.9)
    part = np.where(np.abs(part - 0.5) < 0.1, part + 0.2, part)
    return (tenths + part) / 10


def rounding_case(name, fn, torch_fn, kwargs=({},)):
    case = unary(name, fn, torch_fn, domain=away_from_jumps, kwargs=kwargs)
    case.examples = case.examples + [([(0,)], kwargs[0]), ([(2, 0)], kwargs[0])]
    return case


CASES = [
    rounding_case("floor", mg.floor, lambda a: a.floor()),
    rounding_case("ceil", mg.ceil, lambda a: a.ceil()),
    rounding_case("trunc", mg.trunc, lambda a: a.trunc()),
    rounding_case("frac", mg.frac, lambda a: a.frac()),
    rounding_case("round", lambda a, decimals: mg.round(a, decimals=decimals),
                  lambda a, decimals: a.round(decimals=decimals),
                  kwargs=[{"decimals": 0}, {"decimals": 1}, {"decimals": -1}]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)

# Halves (to even), values on and near the jumps, negative zero, large values.
VALUES = np.array([-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, -1.25, 0.125, 0.135, 1.2345, 3.0,
                   -7.0, 12345.678, 1250.0, -300.5], dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_round_to_decimals_matches_torch(dtype, torch_reference):
    values = VALUES.astype(dtype)
    decimals = [-3, -2, -1, 0, 1, 2, 3]
    expected = torch_reference(f"round_decimals/{np.dtype(dtype).name}", lambda torch: {
        f"decimals={d}": torch.round(torch.tensor(values), decimals=d) for d in decimals})
    for d in decimals:
        out = mg.round(mg.tensor(values), decimals=d)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out.numpy(), expected[f"decimals={d}"],
                                      err_msg=f"decimals={d}")


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "fix", "frac"])
def test_values_on_and_near_the_jumps_match_torch(name, torch_reference):
    values = VALUES.astype(np.float32)
    expected = torch_reference(f"{name}_values", lambda torch: {
        "out": getattr(torch, name)(torch.tensor(values)),
        "grad": gradients_of_sum(torch, getattr(torch, name), values)[0]})
    np.testing.assert_array_equal(getattr(mg, name)(mg.tensor(values)).numpy(), expected["out"])
    # The gradient at a jump too: zeros (ones for frac), never None.
    np.testing.assert_array_equal(gradients_of_sum(mg, getattr(mg, name), values)[0],
                                  expected["grad"])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_tensors_keep_their_values_and_dtype(dtype, torch_reference):
    values = np.array([0, 1, 7, 100], dtype=dtype) if dtype == np.uint8 else \
        np.array([-3, 0, 2, 1001], dtype=dtype)
    names = ["floor", "ceil", "round", "trunc", "fix"]
    expected = torch_reference(f"integers/{np.dtype(dtype).name}", lambda torch: {
        name: getattr(torch, name)(torch.tensor(values)) for name in names})
    for name in names:
        source = mg.tensor(values)
        out = getattr(mg, name)(source)
        assert out.dtype == expected[name].dtype, f"{name}: {out.dtype}"
        np.testing.assert_array_equal(out.numpy(), expected[name], err_msg=name)
        out.data[0] = 9  # a new tensor, as in PyTorch: the input is not changed through it
        assert source.numpy()[0] == values[0]


def test_fix_is_trunc():
    assert mg.fix is mg.trunc


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "frac"])
def test_bool_tensors_are_refused_naming_the_op_and_dtype(name):
    with pytest.raises(TypeError, match=rf"{name}: expected a floating-point.* got dtype bool"):
        getattr(mg, name)(mg.tensor([True, False]))


def test_frac_of_integers_and_round_of_integers_to_decimals_are_refused():
    with pytest.raises(TypeError, match="frac: expected a floating-point tensor, got dtype int64"):
        mg.frac(mg.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"round: expected a floating-point tensor for "
                                        r"decimals != 0, got dtype int64"):
        mg.round(mg.tensor([15, 25]), decimals=-1)
