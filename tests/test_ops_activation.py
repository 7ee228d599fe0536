"""Activations and (log-)softmax: gradcheck, PyTorch parity, and stability at extreme inputs."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import OpCase, away_from_zero, import_torch, op_tests, shapes, unary


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
    OpCase("softmax", softmax_case, lambda x, axis: x.softmax(axis),
           lambda x, axis: x.softmax(axis), examples=SOFTMAX_EXAMPLES),
    OpCase("log_softmax", softmax_case, lambda x, axis: x.log_softmax(axis),
           lambda x, axis: x.log_softmax(axis), examples=SOFTMAX_EXAMPLES),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "log_softmax", "tanh"])
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
        "log_softmax": torch.tensor(values).log_softmax(-1)})
    for name in ["sigmoid", "softplus", "log_softmax"]:
        np.testing.assert_allclose(getattr(mg, name)(mg.tensor(values)).numpy(), expected[name],
                                   rtol=1e-6, atol=1e-30, err_msg=name)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        mg.gelu(mg.ones(2), approximate="fast")
