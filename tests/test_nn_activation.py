"""Activation modules (minigrad.nn.activation): each one's output and input gradient equal
its function's and PyTorch's module's, and its repr reads as PyTorch's."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import activation as act
from minigrad.ops import activation as functions

# test id: (module name, constructor arguments, the function and its extra arguments)
MODULES = {
    "SiLU": ("SiLU", (), functions.silu, ()),
    "Mish": ("Mish", (), functions.mish, ()),
    "Hardtanh": ("Hardtanh", (), functions.hardtanh, ()),
    "Hardtanh_bounds": ("Hardtanh", (-0.5, 2.0), functions.hardtanh, (-0.5, 2.0)),
    "ReLU6": ("ReLU6", (), functions.relu6, ()),
    "Hardsigmoid": ("Hardsigmoid", (), functions.hardsigmoid, ()),
    "Hardswish": ("Hardswish", (), functions.hardswish, ()),
    "ELU": ("ELU", (), functions.elu, ()),
    "ELU_alpha": ("ELU", (0.5,), functions.elu, (0.5,)),
    "SELU": ("SELU", (), functions.selu, ()),
    "CELU": ("CELU", (2.0,), functions.celu, (2.0,)),
    "Softsign": ("Softsign", (), functions.softsign, ()),
    "LogSigmoid": ("LogSigmoid", (), functions.logsigmoid, ()),
    "Tanhshrink": ("Tanhshrink", (), functions.tanhshrink, ()),
    "Softshrink": ("Softshrink", (0.3,), functions.softshrink, (0.3,)),
    "Hardshrink": ("Hardshrink", (), functions.hardshrink, ()),
    "Threshold": ("Threshold", (0.1, -2.0), functions.threshold, (0.1, -2.0)),
    "Softplus": ("Softplus", (2.0, 3.0), functions.softplus, (2.0, 3.0)),
    "LogSoftmax": ("LogSoftmax", (1,), functions.log_softmax, (1,)),
    "LogSoftmax_last": ("LogSoftmax", (-1,), functions.log_softmax, (-1,)),
}


def inputs():
    return 3 * np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("name", MODULES)
def test_module_matches_its_function_and_torch(name, torch_reference):
    module_name, args, function, function_args = MODULES[name]
    x = inputs()
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)

    def torch_step(torch):
        x_theirs = torch.tensor(x, requires_grad=True)
        out = getattr(torch.nn, module_name)(*args)(x_theirs)
        out.backward(torch.tensor(upstream))
        return {"out": out, "grad": x_theirs.grad}

    expected = torch_reference(name, torch_step)
    x_ours = mg.tensor(x, requires_grad=True)
    out = getattr(act, module_name)(*args)(x_ours)
    out.backward(mg.tensor(upstream))
    np.testing.assert_array_equal(out.numpy(), function(mg.tensor(x), *function_args).numpy())
    np.testing.assert_allclose(out.numpy(), expected["out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x_ours.grad.numpy(), expected["grad"], rtol=1e-5, atol=1e-6)


# The reprs PyTorch 2.13 prints for these modules.
REPRS = {
    "SiLU()": act.SiLU(), "Mish()": act.Mish(), "ReLU6()": act.ReLU6(),
    "Hardtanh(min_val=-1.0, max_val=1.0)": act.Hardtanh(),
    "Hardtanh(min_val=-2, max_val=3)": act.Hardtanh(-2, 3),
    "Hardsigmoid()": act.Hardsigmoid(), "Hardswish()": act.Hardswish(),
    "ELU(alpha=1.0)": act.ELU(), "ELU(alpha=0.5)": act.ELU(0.5), "SELU()": act.SELU(),
    "CELU(alpha=1.0)": act.CELU(), "Softsign()": act.Softsign(),
    "LogSigmoid()": act.LogSigmoid(), "Tanhshrink()": act.Tanhshrink(),
    "Softshrink(0.5)": act.Softshrink(), "Hardshrink(0.3)": act.Hardshrink(0.3),
    "Threshold(threshold=0.5, value=-2.0)": act.Threshold(0.5, -2.0),
    "Softplus(beta=1.0, threshold=20.0)": act.Softplus(),
    "Softplus(beta=2, threshold=10)": act.Softplus(2, 10),
    "LogSoftmax(dim=None)": act.LogSoftmax(), "LogSoftmax(dim=1)": act.LogSoftmax(dim=1),
}


@pytest.mark.parametrize("text", REPRS)
def test_repr_shows_the_arguments_as_torch_does(text):
    assert repr(REPRS[text]) == text


@pytest.mark.parametrize("shape, dim", [((5,), 0), ((2, 5), 1), ((2, 3, 4), 0),
                                        ((2, 3, 4, 5), 1)])
def test_log_softmax_without_dim_takes_torchs_implicit_dim_and_warns(shape, dim):
    x = mg.tensor(np.random.default_rng(0).standard_normal(shape))
    with pytest.warns(UserWarning, match=rf"implicit dimension choice \(dim={dim}"):
        out = act.LogSoftmax()(x)
    np.testing.assert_array_equal(out.numpy(), functions.log_softmax(x, dim).numpy())


def test_hardtanh_with_crossed_bounds_is_refused():
    with pytest.raises(ValueError, match="hardtanh: min_val"):
        act.Hardtanh(1.0, -1.0)(mg.ones(2))
