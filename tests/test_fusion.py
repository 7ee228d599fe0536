"""Fused layer epilogues: the bias add and a following ReLU in the layer's own node.

Conv2d, ConvTranspose2d and Linear add their bias in place on the kernel's fresh output, and
under no_grad ``nn.Sequential`` runs a layer and the ReLU after it as one op
(``ops.nn.add_bias_relu_``). Checked here: the fused ops' gradients (float64 central
differences, ``relu=True`` included, which only no_grad uses but the op supports), equality
with the unfused modules, that the fusion really happens (the profiler sees no ReLU op), and
that hooks turn it off.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import LeNet5
from minigrad.ops.nn import Conv2d, ConvTranspose2d, Linear
from minigrad.profiler import profile
from minigrad.testing import gradcheck


def float64(rng, *shape):
    return mg.tensor(rng.standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("op, shapes, attrs", [
    (Conv2d, [(2, 4, 6, 5), (6, 2, 3, 3), (6,)], {"padding": (1, 0), "groups": 2}),
    (ConvTranspose2d, [(2, 3, 4, 4), (3, 2, 3, 3), (2,)], {"stride": (2, 2)}),
    (Linear, [(3, 2, 5), (4, 5), (4,)], {}),
])
def test_the_fused_ops_gradients_equal_central_differences(op, shapes, attrs, relu):
    rng = np.random.default_rng(0)
    inputs = [float64(rng, *shape) for shape in shapes]
    assert gradcheck(lambda x, w, b: op.apply(x, w, b, relu=relu, **attrs), inputs)


@pytest.mark.parametrize("op, shapes", [
    (Conv2d, [(2, 4, 6, 5), (6, 4, 3, 3)]), (Linear, [(3, 5), (4, 5)])])
def test_without_a_bias_the_op_has_two_inputs_and_two_gradients(op, shapes):
    rng = np.random.default_rng(1)
    assert gradcheck(lambda x, w: op.apply(x, w, relu=True), [float64(rng, *s) for s in shapes])


def test_a_fused_op_equals_the_layer_then_relu():
    rng = np.random.default_rng(2)
    x, w, b = (mg.tensor(rng.standard_normal(s).astype(np.float32))
               for s in [(2, 3, 7, 7), (5, 3, 3, 3), (5,)])
    fused = Conv2d.apply(x, w, b, padding=(1, 1), relu=True)
    composite = mg.nn.functional.relu(mg.nn.functional.conv2d(x, w, b, padding=1))
    np.testing.assert_array_equal(fused.numpy(), composite.numpy())


def _models():
    mg.manual_seed(0)
    return [
        (LeNet5().eval(), (4, 1, 28, 28)),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU()),
         (5, 3, 4)),
        (nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU()), (2, 3, 9)),
        (nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ReLU()), (2, 3, 5, 5)),
        (nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU()), (3, 7, 7)),  # unbatched
    ]


@pytest.mark.parametrize("index", range(5))
def test_sequential_under_no_grad_equals_it_with_grad_and_fuses_every_relu(index):
    model, shape = _models()[index]
    x = mg.tensor(np.random.default_rng(3).standard_normal(shape).astype(np.float32))
    unfused = model(x).numpy()
    with mg.no_grad(), profile() as prof:
        fused = model(x).numpy()
    np.testing.assert_array_equal(fused, unfused)
    ops = {s.op for s in prof.stats}
    assert "ReLU" not in ops


def test_hooks_on_either_module_keep_them_apart():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with mg.no_grad():
        model[0].weight.fill_(1.0)  # so the layer's output on -10s is negative
    seen = []
    model[0].register_forward_hook(lambda module, args, out: seen.append(out.numpy().min()))
    with mg.no_grad(), profile() as prof:
        model(mg.tensor(-np.ones((2, 4), np.float32)) * 10)
    assert {s.op for s in prof.stats} >= {"Linear", "ReLU"}
    assert len(seen) == 1 and seen[0] < 0  # the hook saw the layer's output before the ReLU


def test_a_bias_of_the_wrong_size_names_both_shapes():
    x, w = mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: bias \(3,\) does not match weight "
                                         r"\(4, 3, 3, 3\) \(expected \(4,\)\)"):
        mg.nn.functional.conv2d(x, w, mg.zeros(3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: bias \(4,\) .*expected \(6,\)"):
        mg.nn.functional.conv_transpose2d(mg.zeros(1, 4, 5, 5), mg.zeros(4, 3, 3, 3),
                                          mg.zeros(4), groups=2)


def test_a_subclass_that_overrides_forward_is_not_fused_past_it():
    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    mg.manual_seed(4)
    model = nn.Sequential(Doubled(3, 2), nn.ReLU())
    x = mg.tensor(np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32))
    with_grad = model(x).numpy()
    with mg.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), with_grad)


def test_changing_a_fused_output_in_place_leaves_its_gradient_alone():
    rng = np.random.default_rng(6)
    x, w = float64(rng, 3, 4), float64(rng, 5, 4)
    y = Linear.apply(x, w, relu=True)
    expected = ((y.numpy() > 0) @ w.numpy())  # dL/dx of sum(relu(x W^T))
    z = y + 0.0
    y.detach().sub_(100.0)  # the output's memory, not the mask saved for backward
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected)
