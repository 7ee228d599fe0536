"""Grouped and depthwise convolution (``groups=``): each CPU kernel set, and the Numba set with
its JIT disabled, equal the plain definition (the ungrouped reference on each group's slice of
channels, concatenated); F.conv1d/conv2d/conv_transpose2d and the layers equal PyTorch,
forward and backward; gradcheck in float64; bad groups are refused, naming the numbers; the
quantization and pruning paths that cannot take groups say so."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend, nn, prune, quant
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.nn import functional as F
from minigrad.testing import gradcheck

from kernel_cases import DTYPES, EXAMPLES, assert_same, random, windows


def torch_F():
    import torch.nn.functional
    return torch.nn.functional


# ------------------------------------------------------------------------ kernels
def plain_grouped(x, weight, grad, groups, geometry):
    """(out, dL/dx, dL/dw) by the definition: the ungrouped reference kernels on group g's
    input channels and weight rows (and grad channels), concatenated along channels."""
    xs, ws, gs = (np.split(a, groups, axis) for a, axis in ((x, 1), (weight, 0), (grad, 1)))
    out = np.concatenate([numpy_ref.conv2d_forward(x_g, w_g, *geometry)
                          for x_g, w_g in zip(xs, ws)], axis=1)
    grad_x = np.concatenate([numpy_ref.conv2d_backward_input(g_g, w_g, x_g.shape, *geometry)
                             for g_g, w_g, x_g in zip(gs, ws, xs)], axis=1)
    grad_w = np.concatenate([numpy_ref.conv2d_backward_weight(g_g, x_g, w_g.shape, *geometry)
                             for g_g, x_g, w_g in zip(gs, xs, ws)])
    return out, grad_x, grad_w


def kernel_results(kernels, x, weight, grad, groups, geometry):
    return (kernels.conv2d_forward(x, weight, *geometry, groups),
            kernels.conv2d_backward_input(grad, weight, x.shape, *geometry, groups),
            kernels.conv2d_backward_weight(grad, x, weight.shape, *geometry, groups))


def case_arrays(shape, groups, out_channels, kernel, geometry, dtype, seed):
    x = random(shape, dtype, seed)
    weight = random((out_channels, shape[1] // groups) + kernel, dtype, seed + 1)
    out_hw = backend.geometry.output_hw(shape, kernel, *geometry)
    grad = random((shape[0], out_channels) + out_hw, dtype, seed + 2)
    return x, weight, grad


# (N, C, H, W), groups, O, kernel, (stride, padding, dilation)
CASES = [
    ((2, 4, 7, 6), 2, 6, (3, 2), ((1, 1), (0, 0), (1, 1))),      # groups 2, odd sizes
    ((1, 6, 9, 8), 3, 3, (3, 3), ((2, 2), (2, 2), (1, 1))),      # batch 1, stride 2, padding 2
    ((2, 4, 11, 9), 4, 4, (3, 3), ((1, 1), (1, 1), (2, 2))),     # depthwise, dilation 2
    ((3, 5, 8, 7), 5, 10, (2, 3), ((2, 1), (1, 2), (1, 2))),     # depthwise, multiplier 2
    ((1, 3, 5, 5), 3, 6, (3, 3), ((2, 3), (2, 0), (2, 1))),      # depthwise, strides 2 and 3
    ((2, 3, 6, 5), 1, 4, (3, 3), ((1, 2), (1, 0), (1, 1))),      # groups 1
    ((2, 8, 6, 6), 8, 8, (1, 1), ((1, 1), (0, 0), (1, 1))),      # depthwise 1x1
]


@pytest.mark.parametrize("name", ["numpy", "numba"])
@pytest.mark.parametrize("i", range(len(CASES)))
def test_grouped_kernels_equal_the_plain_definition(name, i):
    shape, groups, out_channels, kernel, geometry = CASES[i]
    for dtype in (np.float32, np.float64):
        arrays = case_arrays(shape, groups, out_channels, kernel, geometry, dtype, i)
        expected = plain_grouped(*arrays, groups, geometry)
        for ours, reference in zip(kernel_results(backend.kernel_set(name), *arrays, groups,
                                                  geometry), expected):
            assert_same(ours, reference)


@st.composite
def grouped_windows(draw):
    """A window from ``kernel_cases.windows`` with its channels in groups: C/G in 1..3 (1 is
    depthwise) and O/G in 1..2 (a depthwise multiplier of 2)."""
    shape, kernel, stride, padding, dilation = draw(windows())
    groups, per_group, out_per_group = (draw(st.integers(1, 4)), draw(st.integers(1, 3)),
                                        draw(st.integers(1, 2)))
    shape = (shape[0], groups * per_group) + shape[2:]
    return shape, groups, groups * out_per_group, kernel, (stride, padding, dilation)


@EXAMPLES
@given(grouped_windows(), DTYPES, st.integers(0, 2**16))
def test_numba_grouped_kernels_equal_the_plain_definition_on_drawn_shapes(case, dtype, seed):
    shape, groups, out_channels, kernel, geometry = case
    arrays = case_arrays(shape, groups, out_channels, kernel, geometry, dtype, seed)
    expected = plain_grouped(*arrays, groups, geometry)
    for ours, reference in zip(kernel_results(numba_cpu, *arrays, groups, geometry), expected):
        assert_same(ours, reference)


PLAIN_PYTHON = """
import inspect, sys
import numpy as np
from minigrad.backend import numba_cpu
from minigrad.backend.numba_cpu import grouped
assert inspect.isfunction(grouped._depthwise_forward)  # the loops run as Python
rng = np.random.default_rng(0)
results = {}
for name, (c, groups, o) in {"depthwise": (3, 3, 6), "grouped": (4, 2, 2)}.items():
    x, w = rng.standard_normal((2, c, 6, 5)), rng.standard_normal((o, c // groups, 3, 2))
    geometry = ((2, 1), (1, 2), (1, 2))
    out = numba_cpu.conv2d_forward(x, w, *geometry, groups)
    grad = rng.standard_normal(out.shape)
    results.update({name + "_x": x, name + "_w": w, name + "_grad": grad, name + "_out": out,
                    name + "_grad_x": numba_cpu.conv2d_backward_input(grad, w, x.shape,
                                                                      *geometry, groups),
                    name + "_grad_w": numba_cpu.conv2d_backward_weight(grad, x, w.shape,
                                                                       *geometry, groups)})
np.savez(sys.argv[1], **results)
"""


def test_the_grouped_kernels_run_as_plain_python_with_the_jit_disabled(tmp_path):
    path = tmp_path / "plain.npz"
    subprocess.run([sys.executable, "-c", PLAIN_PYTHON, str(path)], check=True,
                   env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    assert not inspect.isfunction(numba_cpu.grouped._depthwise_forward)  # here: compiled
    plain = np.load(path)
    for name, groups in (("depthwise", 3), ("grouped", 2)):
        expected = plain_grouped(plain[name + "_x"], plain[name + "_w"], plain[name + "_grad"],
                                 groups, ((2, 1), (1, 2), (1, 2)))
        for key, reference in zip(("_out", "_grad_x", "_grad_w"), expected):
            np.testing.assert_allclose(plain[name + key], reference, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ ops and layers
def run_both(fn, torch_fn, shapes, seed, torch_reference, name):
    """Forward and the gradients of every input of ``fn`` (minigrad) equal ``torch_fn``'s
    (PyTorch, float64) for inputs of ``shapes`` and a random cotangent."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for shape in shapes]

    def compute(torch):
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        out = torch_fn(*tensors)
        cotangent = torch.tensor(np.random.default_rng(seed + 1).standard_normal(out.shape))
        grads = torch.autograd.grad(out, tensors, cotangent)
        return {"out": out, "cotangent": cotangent,
                **{f"grad_{i}": g for i, g in enumerate(grads)}}

    expected = torch_reference(name, compute)
    tensors = [mg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(mg.tensor(expected["cotangent"]))
    np.testing.assert_allclose(out.numpy(), expected["out"], rtol=1e-10, atol=1e-10)
    for i, t in enumerate(tensors):
        np.testing.assert_allclose(t.grad.numpy(), expected[f"grad_{i}"], rtol=1e-10,
                                   atol=1e-10)


# name: (op, (input, weight, bias) shapes, keyword arguments)
TORCH_CASES = {
    "conv2d_groups_2": ("conv2d", [(2, 4, 7, 6), (6, 2, 3, 2), (6,)],
                        dict(stride=(2, 1), padding=1, groups=2)),
    "conv2d_depthwise": ("conv2d", [(2, 3, 8, 7), (3, 1, 3, 3), (3,)],
                         dict(padding=2, dilation=2, groups=3)),
    "conv2d_depthwise_multiplier_2": ("conv2d", [(1, 4, 9, 8), (8, 1, 3, 3), (8,)],
                                      dict(stride=2, padding=1, groups=4)),
    "conv1d_groups_3": ("conv1d", [(2, 6, 11), (9, 2, 3), (9,)],
                        dict(stride=2, padding=1, groups=3)),
    "conv1d_depthwise": ("conv1d", [(2, 4, 10), (4, 1, 5), (4,)], dict(padding=2, groups=4)),
    "conv_transpose2d_groups_2": ("conv_transpose2d", [(2, 4, 5, 4), (4, 3, 3, 2), (6,)],
                                  dict(stride=2, padding=1, output_padding=1, groups=2)),
    "conv_transpose2d_depthwise_multiplier_2": (
        "conv_transpose2d", [(2, 3, 4, 5), (3, 2, 3, 3), (6,)],
        dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=3)),
    "conv_transpose1d_groups_2": ("conv_transpose1d", [(2, 4, 6), (4, 2, 3), (4,)],
                                  dict(stride=3, output_padding=1, groups=2)),
}


@pytest.mark.parametrize("name", TORCH_CASES)
@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_grouped_ops_match_torch(name, kernels, torch_reference, monkeypatch):
    monkeypatch.setattr(backend, "_cpu_kernels", backend.kernel_set(kernels))
    op, shapes, kwargs = TORCH_CASES[name]
    run_both(lambda x, w, b: getattr(F, op)(x, w, b, **kwargs),
             lambda x, w, b: getattr(torch_F(), op)(x, w, b, **kwargs),
             shapes, list(TORCH_CASES).index(name), torch_reference, name)


LAYER_CASES = {"Conv2d": ((2, 4, 6, 6), (4, 8, 3), dict(padding=1, groups=4)),
               "Conv1d": ((2, 6, 9), (6, 4, 3), dict(stride=2, groups=2)),
               "ConvTranspose2d": ((2, 4, 5, 5), (4, 6, 3), dict(stride=2, groups=2)),
               "ConvTranspose1d": ((2, 3, 7), (3, 6, 2), dict(groups=3, bias=False))}


@pytest.mark.parametrize("layer", LAYER_CASES)
def test_grouped_layers_match_torch(layer, torch_reference):
    """PyTorch's weight shape and repr, and its output and gradients with the same
    parameters."""
    x_shape, args, kwargs = LAYER_CASES[layer]
    mg.manual_seed(0)
    ours = getattr(nn, layer)(*args, **kwargs).double()
    x = np.random.default_rng(0).standard_normal(x_shape)
    params = {name: p.numpy() for name, p in ours.named_parameters()}

    def compute(torch):
        theirs = getattr(torch.nn, layer)(*args, **kwargs).double()
        with torch.no_grad():
            for name, p in theirs.named_parameters():
                p.copy_(torch.tensor(params[name]))
        x_t = torch.tensor(x, requires_grad=True)
        out = theirs(x_t)
        out.backward(torch.ones_like(out))
        return {"repr": repr(theirs), "weight_shape": theirs.weight.shape, "out": out,
                "grad_x": x_t.grad, "grad_weight": theirs.weight.grad}

    expected = torch_reference(f"layer_{layer}", compute)
    assert repr(ours) == str(expected["repr"])
    assert ours.weight.shape == tuple(expected["weight_shape"])
    x_m = mg.tensor(x, requires_grad=True)
    out = ours(x_m)
    out.backward(mg.ones(out.shape, dtype=np.float64))
    for ours_array, key in ((out, "out"), (x_m.grad, "grad_x"), (ours.weight.grad, "grad_weight")):
        np.testing.assert_allclose(ours_array.numpy(), expected[key], rtol=1e-10, atol=1e-10)


def test_grouped_layers_draw_the_weight_with_fan_in_of_one_group():
    """kaiming-uniform(a=sqrt(5)): U(-b, b), b = 1/sqrt(fan_in), fan_in = weight.shape[1] KH KW
    (C/groups KH KW; a transposed layer's C_out/groups KH KW), as PyTorch."""
    mg.manual_seed(0)
    for layer, fan_in in ((nn.Conv2d(16, 32, 3, groups=16), 9),
                          (nn.Conv2d(8, 8, 3, groups=2), 36),
                          (nn.ConvTranspose2d(8, 8, 3, groups=4), 18)):
        bound = 1 / np.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert np.abs(p.numpy()).max() <= bound
            assert np.abs(p.numpy()).max() > 0.8 * bound  # not a smaller, ungrouped bound


def test_conv2d_takes_pytorchs_argument_order():
    layer = nn.Conv2d(4, 8, 3, 2, 1, 1, 4, False)
    assert (layer.stride, layer.padding, layer.dilation, layer.groups) == ((2, 2), (1, 1),
                                                                           (1, 1), 4)
    assert layer.bias is None and layer.weight.shape == (8, 1, 3, 3)


@pytest.mark.parametrize("fn, shapes", [
    (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, groups=2), [(2, 4, 5, 4), (4, 2, 3, 2)]),
    (lambda x, w: F.conv2d(x, w, padding=1, dilation=2, groups=3), [(1, 3, 5, 6), (6, 1, 3, 3)]),
    (lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1, groups=2),
     [(2, 4, 3, 3), (4, 1, 3, 2)]),
    (lambda x, w: F.conv_transpose2d(x, w, padding=1, groups=3), [(1, 3, 4, 4), (3, 2, 3, 3)]),
])
def test_grouped_and_depthwise_gradcheck(fn, shapes):
    rng = np.random.default_rng(0)
    assert gradcheck(fn, [mg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes])


# ------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(mg.zeros(1, 6, 5, 5), mg.zeros(8, 3, 3, 3), groups=4),
     r"conv2d: input channels 6 not divisible by groups 4"),
    (lambda: F.conv2d(mg.zeros(1, 5, 5, 5), mg.zeros(8, 3, 3, 3), groups=5),
     r"conv2d: output channels 8 not divisible by groups 5"),
    (lambda: F.conv2d(mg.zeros(1, 4, 5, 5), mg.zeros(8, 3, 3, 3), groups=2),
     r"conv2d: input \(1, 4, 5, 5\) and weight \(8, 3, 3, 3\) \(O, C/groups, KH, KW\): "
     r"groups 2 needs input channels 3\*groups = 6, got 4"),
    (lambda: F.conv1d(mg.zeros(1, 6, 5), mg.zeros(4, 2, 3), groups=2),
     r"conv1d: .*\(O, C/groups, K\): groups 2 needs input channels 2\*groups = 4, got 6"),
    (lambda: F.conv2d(mg.zeros(1, 2, 5, 5), mg.zeros(2, 1, 3, 3), groups=0),
     r"conv2d: groups must be a positive int, got 0"),
    (lambda: F.conv2d(mg.zeros(1, 2, 5, 5), mg.zeros(2, 1, 3, 3), groups=2.0),
     r"conv2d: groups must be a positive int, got 2.0"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 6, 5, 5), mg.zeros(6, 3, 3, 3), groups=4),
     r"conv_transpose2d: input channels 6 not divisible by groups 4"),
    (lambda: F.conv_transpose1d(mg.zeros(1, 2, 5), mg.zeros(2, 1, 3), groups=-1),
     r"conv_transpose1d: groups must be a positive int, got -1"),
    (lambda: nn.Conv2d(6, 4, 3, groups=4), r"Conv2d: in_channels 6 not divisible by groups 4"),
    (lambda: nn.ConvTranspose2d(4, 6, 3, groups=4),
     r"ConvTranspose2d: out_channels 6 not divisible by groups 4"),
    (lambda: nn.Conv1d(4, 4, 3, groups=0), r"Conv1d: groups must be a positive int, got 0"),
])
def test_bad_groups_are_refused_naming_the_numbers(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_conv2d_op_checks_groups_itself():
    from minigrad.ops.nn import Conv2d
    with pytest.raises(ValueError, match=r"conv2d: input channels 6 not divisible by groups 4"):
        Conv2d.apply(mg.zeros(1, 6, 5, 5), mg.zeros(8, 1, 3, 3), groups=4)


def depthwise_model():
    return nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def test_quantization_refuses_a_grouped_conv():
    with pytest.raises(ValueError, match=r"quantization: layer '0' \(Conv2d\) has groups=2"):
        quant.prepare(depthwise_model())


def test_shrink_and_sparse_layers_refuse_a_grouped_conv():
    model = depthwise_model()
    with pytest.raises(ValueError, match=r"shrink: layer '0' \(Conv2d\) has groups=2"):
        prune.shrink(model, mg.zeros(1, 2, 6, 6))
    with pytest.raises(ValueError, match=r"SparseConv2d: the Conv2d has groups=2"):
        prune.SparseConv2d(model[0])
