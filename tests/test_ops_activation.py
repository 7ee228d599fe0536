"""Activations and (log-)softmax: gradcheck, PyTorch parity, and stability at extreme inputs."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import (OpCase, away_from_zero, gradients_of_sum, import_torch, op_tests, shapes,
                     unary)


def functional():
    return import_torch().nn.functional


def softmax_case(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    return [shape], {"axis": data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")}


SOFTMAX_EXAMPLES = [([(5,)], {"axis": 0}), ([(2, 3)], {"axis": -1}), ([(2, 3)], {"axis": 0}),
                    ([(2, 1, 4)], {"axis": 1}), ([(2, 3, 4)], {"axis": -2})]


def off_softplus_threshold(i, x):
    """Keep beta*x away from the threshold (2.0 in these cases), where softplus switches."""
    return np.where(np.abs(x - 1.0) < 0.1, x + 0.3, x) * 1.5


def off_kinks(*kinks, scale=1.0, gap=0.05):
    """A domain: standard normal values times ``scale``, moved at least ``gap`` away from
    each of ``kinks``, where the op's derivative jumps."""
    def domain(i, x):
        x = scale * x
        for kink in kinks:
            near = np.abs(x - kink) < gap
            x = np.where(near, kink + np.where(x >= kink, gap, -gap), x)
        return x
    return domain


CASES = [
    unary("relu", mg.relu, lambda x: x.relu(), domain=lambda i, x: away_from_zero(x)),
    unary("leaky_relu", lambda x, slope: mg.leaky_relu(x, slope),
          lambda x, slope: functional().leaky_relu(x, slope),
          domain=lambda i, x: away_from_zero(x),
          kwargs=[{"slope": 0.01}, {"slope": 0.2}]),
    unary("sigmoid", mg.sigmoid, lambda x: x.sigmoid(), domain=lambda i, x: 4 * x),
    unary("tanh", mg.tanh, lambda x: x.tanh()),
    unary("gelu", lambda x, approximate: mg.gelu(x, approximate),
          lambda x, approximate: functional().gelu(x, approximate=approximate),
          domain=lambda i, x: 2 * x,
          kwargs=[{"approximate": "none"}, {"approximate": "tanh"}]),
    unary("softplus", lambda x, beta: mg.softplus(x, beta, threshold=2.0),
          lambda x, beta: functional().softplus(x, beta, threshold=2.0),
          domain=off_softplus_threshold,
          kwargs=[{"beta": 1.0}]),
    unary("silu", mg.silu, lambda x: functional().silu(x), domain=lambda i, x: 3 * x),
    unary("mish", mg.mish, lambda x: functional().mish(x), domain=lambda i, x: 3 * x),
    unary("hardtanh", lambda x, lo, hi: mg.hardtanh(x, lo, hi),
          lambda x, lo, hi: functional().hardtanh(x, lo, hi), domain=off_kinks(-1, 1, -0.5, 2),
          kwargs=[{"lo": -1.0, "hi": 1.0}, {"lo": -0.5, "hi": 2.0}]),
    unary("relu6", mg.relu6, lambda x: functional().relu6(x), domain=off_kinks(0, 6, scale=4)),
    # PyTorch's own float64 hardsigmoid has a float32 1/6 in its backward (0.1666666716...),
    # so the oracle is PyTorch's formula for it: relu6(x + 3) / 6, the same off the kinks.
    unary("hardsigmoid", mg.hardsigmoid, lambda x: functional().relu6(x + 3) / 6,
          domain=off_kinks(-3, 3, scale=3)),
    unary("hardswish", mg.hardswish, lambda x: functional().hardswish(x),
          domain=off_kinks(-3, 3, scale=3)),
    unary("elu", lambda x, alpha: mg.elu(x, alpha), lambda x, alpha: functional().elu(x, alpha),
          domain=off_kinks(0, scale=2), kwargs=[{"alpha": 1.0}, {"alpha": 0.5}]),
    unary("selu", mg.selu, lambda x: functional().selu(x), domain=off_kinks(0, scale=2)),
    unary("celu", lambda x, alpha: mg.celu(x, alpha),
          lambda x, alpha: functional().celu(x, alpha), domain=off_kinks(0, scale=2),
          kwargs=[{"alpha": 1.0}, {"alpha": 2.0}]),
    unary("softsign", mg.softsign, lambda x: functional().softsign(x),
          domain=off_kinks(0, scale=3)),
    unary("logsigmoid", mg.logsigmoid, lambda x: functional().logsigmoid(x),
          domain=lambda i, x: 4 * x),
    unary("tanhshrink", mg.tanhshrink, lambda x: functional().tanhshrink(x),
          domain=lambda i, x: 2 * x),
    unary("softshrink", lambda x, lambd: mg.softshrink(x, lambd),
          lambda x, lambd: functional().softshrink(x, lambd), domain=off_kinks(-1, -0.5, 0.5, 1),
          kwargs=[{"lambd": 0.5}, {"lambd": 1.0}]),
    unary("hardshrink", lambda x, lambd: mg.hardshrink(x, lambd),
          lambda x, lambd: functional().hardshrink(x, lambd), domain=off_kinks(-0.5, 0.5),
          kwargs=[{"lambd": 0.5}]),
    unary("threshold", lambda x: mg.threshold(x, 0.5, -2.0),
          lambda x: functional().threshold(x, 0.5, -2.0), domain=off_kinks(0.5)),
    OpCase("softmax", softmax_case, lambda x, axis: x.softmax(axis),
           lambda x, axis: x.softmax(axis), examples=SOFTMAX_EXAMPLES),
    OpCase("log_softmax", softmax_case, lambda x, axis: x.log_softmax(axis),
           lambda x, axis: x.log_softmax(axis), examples=SOFTMAX_EXAMPLES),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "log_softmax", "tanh",
                                  "silu", "mish", "logsigmoid", "elu", "selu", "celu",
                                  "softsign", "hardswish"])
def test_extreme_inputs_give_finite_values_and_gradients(name):
    x = mg.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    out = getattr(mg, name)(x)
    out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()


def test_extreme_inputs_match_torch(torch_reference):
    values = np.array([-100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0], dtype=np.float32)
    expected = torch_reference("extreme_inputs", lambda torch: {
        "sigmoid": torch.sigmoid(torch.tensor(values)),
        "softplus": functional().softplus(torch.tensor(values)),
        "log_softmax": torch.tensor(values).log_softmax(-1),
        "logsigmoid": functional().logsigmoid(torch.tensor(values)),
        "silu": functional().silu(torch.tensor(values)),
        "mish": functional().mish(torch.tensor(values))})
    for name in ["sigmoid", "softplus", "log_softmax", "logsigmoid", "silu", "mish"]:
        np.testing.assert_allclose(getattr(mg, name)(mg.tensor(values)).numpy(), expected[name],
                                   rtol=1e-6, atol=1e-30, err_msg=name)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        mg.gelu(mg.ones(2), approximate="fast")


# test id: (the function's name in minigrad and in torch.nn.functional, keyword arguments)
ACTIVATIONS = {name: (name, {}) for name in [
    "silu", "mish", "hardtanh", "relu6", "hardsigmoid", "hardswish", "elu", "selu", "celu",
    "softsign", "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "relu", "leaky_relu"]}
ACTIVATIONS |= {
    "hardtanh_bounds": ("hardtanh", {"min_val": -0.5, "max_val": 3.0}),
    "elu_alpha": ("elu", {"alpha": 2.0}),
    "celu_alpha": ("celu", {"alpha": 0.5}),
    "threshold": ("threshold", {"threshold": 0.5, "value": -2.0}),
}
# The kinks of all of them (±0.5: the shrinks' lambd and threshold's), and values between.
KINK_POINTS = np.array([-6, -3, -1, -0.5, 0, 0.5, 1, 3, 6, -4, -2, -0.25, 0.25, 2, 4],
                       dtype=np.float32)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_and_gradients_at_the_kinks_follow_torch(name, torch_reference):
    function, kwargs = ACTIVATIONS[name]
    expected = torch_reference(f"kinks/{name}", lambda torch: {
        "out": getattr(functional(), function)(torch.tensor(KINK_POINTS), **kwargs),
        "grad": gradients_of_sum(torch, lambda t: getattr(functional(), function)(t, **kwargs),
                                 KINK_POINTS)[0]})
    ours = getattr(mg, function)
    # atol=0: where PyTorch's value or gradient is 0, ours must be exactly 0 too.
    np.testing.assert_allclose(ours(mg.tensor(KINK_POINTS), **kwargs).numpy(), expected["out"],
                               rtol=1e-6, atol=0, err_msg=f"{name} values")
    grad, = gradients_of_sum(mg, lambda t: ours(t, **kwargs), KINK_POINTS)
    np.testing.assert_allclose(grad, expected["grad"], rtol=1e-6, atol=0,
                               err_msg=f"{name} gradients")


def test_integer_inputs_of_hardtanh_relu6_and_threshold_stay_integers(torch_reference):
    values = np.array([-7, -1, 0, 2, 6, 9], dtype=np.int64)
    calls = {"hardtanh": {"min_val": -2, "max_val": 3}, "relu6": {},
             "threshold": {"threshold": 1, "value": 5}}
    expected = torch_reference("integer_inputs", lambda torch: {
        name: getattr(functional(), name)(torch.tensor(values), **kwargs)
        for name, kwargs in calls.items()})
    for name, kwargs in calls.items():
        out = getattr(mg, name)(mg.tensor(values), **kwargs)
        assert out.dtype == expected[name].dtype, f"{name}: {out.dtype}"
        np.testing.assert_array_equal(out.numpy(), expected[name], err_msg=name)


@pytest.mark.parametrize("name", ["silu", "mish", "hardsigmoid", "hardswish", "elu", "selu",
                                  "celu", "softsign", "logsigmoid", "tanhshrink", "softshrink",
                                  "hardshrink"])
def test_integer_inputs_of_float_activations_compute_in_float32(name):
    out = getattr(mg, name)(mg.tensor([-2, 0, 3]))
    assert out.dtype == np.float32
    floats = getattr(mg, name)(mg.tensor([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(out.numpy(), floats.numpy())


def test_swish_is_silu():
    assert mg.swish is mg.silu


@pytest.mark.parametrize("call, message", [
    (lambda x: mg.hardtanh(x, 2.0, 1.0), r"hardtanh: min_val \(2.0\) cannot be greater than "
                                         r"max_val \(1.0\)"),
    (lambda x: mg.softshrink(x, -0.5), "softshrink: lambd must be >= 0, got -0.5"),
    (lambda x: mg.celu(x, 0.0), "celu: alpha cannot be 0"),
])
def test_bad_arguments_are_refused_with_their_values(call, message):
    with pytest.raises(ValueError, match=message):
        call(mg.ones(3))


@pytest.mark.parametrize("shape, dim", [((2, 0), -1), ((0, 3), -1), ((2, 0), 0)])
def test_softmax_of_empty_tensors_is_empty_as_in_pytorch(shape, dim):
    for op in (mg.softmax, mg.log_softmax):
        x = mg.zeros(*shape, requires_grad=True)
        out = op(x, dim)
        assert out.shape == shape
        out.sum().backward()
        assert x.grad.shape == shape


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "softplus", "softmax",
                                  "log_softmax", "silu", "mish", "elu", "logsigmoid"])
def test_integer_and_bool_inputs_compute_in_float32(name):
    op = getattr(mg, name)
    for values in ([0, 1, 2], [True, False]):
        out = op(mg.tensor(values))
        assert out.dtype == np.float32, name
        np.testing.assert_allclose(out.numpy(), op(mg.tensor(values).float()).numpy(), err_msg=name)
