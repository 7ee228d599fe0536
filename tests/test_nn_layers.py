"""Layers against PyTorch with the same weights (PyTorch's initial state_dict, stored with its
results), batch norm's running statistics, initialisation statistics, and LeNet-5 end to
end."""

import math
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import LeNet5
from minigrad.nn import layers


def with_prefix(arrays, prefix):
    """The entries of ``arrays`` whose key starts with ``prefix``, with the prefix dropped."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def torch_step(torch, theirs, x, upstream=None):
    """One forward and backward of PyTorch module ``theirs``: its state before (``state.*``),
    the input, upstream gradient, output and the gradients (``grad.x``, ``grad.<param>``).
    The upstream gradient is random (seed 1) unless given."""
    results = {f"state.{k}": v.clone() for k, v in theirs.state_dict().items()}
    x_theirs = torch.tensor(x, requires_grad=True)
    out = theirs(x_theirs)
    if upstream is None:
        upstream = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(torch.tensor(upstream))
    results |= {"x": x, "upstream": upstream, "out": out, "grad.x": x_theirs.grad}
    return results | {f"grad.{k}": p.grad for k, p in theirs.named_parameters()}


def assert_same_step(ours, expected, rtol=1e-5, atol=1e-5):
    """PyTorch's weights, input and upstream gradient into ``ours``: outputs, input gradient
    and parameter gradients agree with PyTorch's."""
    ours.load_state_dict(with_prefix(expected, "state."))
    x_ours = mg.tensor(expected["x"], requires_grad=True)
    out_ours = ours(x_ours)
    np.testing.assert_allclose(out_ours.numpy(), expected["out"], rtol=rtol, atol=atol)
    out_ours.backward(mg.tensor(expected["upstream"]))
    np.testing.assert_allclose(x_ours.grad.numpy(), expected["grad.x"], rtol=rtol, atol=atol)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), expected[f"grad.{name}"], rtol=rtol,
                                   atol=atol, err_msg=name)


LAYERS = [
    ("Linear", lambda m: m.Linear(5, 3), (4, 5)),
    ("Linear_no_bias", lambda m: m.Linear(5, 3, bias=False), (2, 7, 5)),
    ("Conv2d", lambda m: m.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 9)),
    ("Conv2d_dilated", lambda m: m.Conv2d(2, 3, (3, 2), padding=(2, 1), dilation=(2, 1),
                                          bias=False), (1, 2, 8, 7)),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7)),
    ("AvgPool2d", lambda m: m.AvgPool2d(2), (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    ("BatchNorm1d", lambda m: m.BatchNorm1d(4), (6, 4)),
    ("BatchNorm1d_3d", lambda m: m.BatchNorm1d(3), (4, 3, 5)),
    ("BatchNorm2d", lambda m: m.BatchNorm2d(3), (4, 3, 5, 5)),
    ("Flatten", lambda m: m.Flatten(), (2, 3, 4)),
    ("Identity", lambda m: m.Identity(), (2, 3)),
    ("ReLU", lambda m: m.ReLU(), (3, 4)),
    ("LeakyReLU", lambda m: m.LeakyReLU(0.2), (3, 4)),
    ("Sigmoid", lambda m: m.Sigmoid(), (3, 4)),
    ("Tanh", lambda m: m.Tanh(), (3, 4)),
    ("GELU", lambda m: m.GELU(), (3, 4)),
    ("Softmax", lambda m: m.Softmax(dim=1), (3, 4)),
    ("Conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    ("Conv1d_same", lambda m: m.Conv1d(2, 3, 4, padding="same", bias=False), (1, 2, 7)),
    ("Conv2d_same", lambda m: m.Conv2d(2, 3, (3, 2), padding="same"), (1, 2, 5, 6)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                    output_padding=1), (2, 3, 4, 4)),
    ("ConvTranspose2d_dilated", lambda m: m.ConvTranspose2d(2, 3, (2, 3), stride=(1, 2),
                                                            dilation=(2, 1), bias=False),
     (1, 2, 3, 4)),
    ("ConvTranspose1d", lambda m: m.ConvTranspose1d(3, 2, 4, stride=2, padding=1), (2, 3, 5)),
    ("MaxPool2d_ceil_mode", lambda m: m.MaxPool2d(3, stride=2, ceil_mode=True), (2, 3, 6, 6)),
    ("MaxPool1d", lambda m: m.MaxPool1d(2, padding=1, ceil_mode=True), (2, 3, 7)),
    ("AvgPool2d_options", lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True,
                                                count_include_pad=False), (2, 3, 6, 6)),
    ("AvgPool2d_divisor_override", lambda m: m.AvgPool2d(2, divisor_override=3), (1, 2, 4, 5)),
    ("AvgPool1d", lambda m: m.AvgPool1d(3, stride=2, padding=1), (2, 3, 8)),
    ("AdaptiveAvgPool2d_sizes", lambda m: m.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    ("Upsample_nearest", lambda m: m.Upsample(scale_factor=2), (1, 2, 3, 4)),
    ("Upsample_bilinear", lambda m: m.Upsample(size=(5, 3), mode="bilinear",
                                               align_corners=True), (1, 2, 3, 4)),
]


def torch_layer_step(torch, make, shape):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return torch_step(torch, make(torch.nn), x)


# PyTorch warns that padding="same" with an even kernel copies the input.
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[name for name, _, _ in LAYERS])
def test_layer_matches_torch_with_the_same_weights(name, make, shape, torch_reference):
    """PyTorch's state_dict loads (strictly: same names and shapes), then one step agrees."""
    expected = torch_reference(name, lambda torch: torch_layer_step(torch, make, shape))
    assert_same_step(make(layers), expected)


REPRS = [
    ("Conv1d", lambda m: m.Conv1d(2, 3, 3, stride=2, padding=1, bias=False)),
    ("Conv2d_same", lambda m: m.Conv2d(2, 3, 3, padding="same", dilation=2)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(2, 3, 3, stride=2, padding=1,
                                                    output_padding=1)),
    ("ConvTranspose1d", lambda m: m.ConvTranspose1d(2, 3, 3, dilation=2)),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, 2, ceil_mode=True)),
    ("MaxPool1d", lambda m: m.MaxPool1d(2)),
    ("AvgPool1d", lambda m: m.AvgPool1d(3, padding=1)),
    ("AvgPool2d", lambda m: m.AvgPool2d((2, 3), count_include_pad=False)),
    ("MaxUnpool2d", lambda m: m.MaxUnpool2d(2, padding=1)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d((3, None))),
    ("Upsample_factor", lambda m: m.Upsample(scale_factor=2, mode="bilinear")),
    ("Upsample_size", lambda m: m.Upsample(size=(4, 5))),
]


@pytest.mark.parametrize("name, make", REPRS, ids=[name for name, _ in REPRS])
def test_layer_settings_print_as_in_torch(name, make, torch_reference):
    expected = torch_reference(f"repr_{name}", lambda torch: {
        "extra_repr": np.array(make(torch.nn).extra_repr())})
    assert make(layers).extra_repr() == str(expected["extra_repr"])


def torch_pool_and_unpool(torch, x):
    pool, unpool = torch.nn.MaxPool2d(2, return_indices=True), torch.nn.MaxUnpool2d(2)
    x_theirs = torch.tensor(x, requires_grad=True)
    out, indices = pool(x_theirs)
    unpooled = unpool(out, indices, output_size=x.shape)
    unpooled.backward(torch.ones_like(unpooled))
    return {"indices": indices, "unpooled": unpooled, "grad": x_theirs.grad}


def test_max_pool_indices_feed_max_unpool_as_in_torch(torch_reference):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    expected = torch_reference("MaxPool2d_MaxUnpool2d", lambda torch: torch_pool_and_unpool(
        torch, x))
    x_ours = mg.tensor(x, requires_grad=True)
    out, indices = layers.MaxPool2d(2, return_indices=True)(x_ours)
    unpooled = layers.MaxUnpool2d(2)(out, indices, output_size=x.shape)
    unpooled.backward(mg.ones_like(unpooled))
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), expected["indices"])
    np.testing.assert_array_equal(unpooled.numpy(), expected["unpooled"])
    np.testing.assert_array_equal(x_ours.grad.numpy(), expected["grad"])


def test_conv_layers_refuse_channels_not_divisible_by_groups():
    with pytest.raises(ValueError,
                       match=r"ConvTranspose2d: out_channels 3 not divisible by groups 2"):
        layers.ConvTranspose2d(2, 3, 3, groups=2)


def torch_batch_norm_statistics(torch, cls, shape):
    """PyTorch's batch norm after 5 training steps (inputs ``train<i>``, then ``state.*``), and
    its output (``eval_out``) for one more input (``eval_x``) in eval mode."""
    theirs = getattr(torch.nn, cls)(3, momentum=0.2)
    rng = np.random.default_rng(0)
    results = {}
    for step in range(5):
        results[f"train{step}"] = (3 * rng.standard_normal(shape) + 1).astype(np.float32)
        theirs(torch.tensor(results[f"train{step}"]))
    results |= {f"state.{k}": v for k, v in theirs.state_dict().items()}
    theirs.eval()
    results["eval_x"] = rng.standard_normal(shape).astype(np.float32)
    return results | {"eval_out": theirs(torch.tensor(results["eval_x"]))}


@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (8, 3)), ("BatchNorm2d", (8, 3, 4, 4))])
def test_batch_norm_running_stats_and_eval_match_torch(cls, shape, torch_reference):
    expected = torch_reference(f"{cls}_statistics",
                               lambda torch: torch_batch_norm_statistics(torch, cls, shape))
    ours = getattr(nn, cls)(3, momentum=0.2)
    for step in range(5):
        ours(mg.tensor(expected[f"train{step}"]))
    for name, value in with_prefix(expected, "state.").items():
        np.testing.assert_allclose(ours.state_dict()[name].numpy(), value, rtol=1e-5,
                                   err_msg=name)
    ours.eval()
    x = expected["eval_x"]
    np.testing.assert_allclose(ours(mg.tensor(x)).numpy(), expected["eval_out"],
                               rtol=1e-5, atol=1e-6)
    before = ours.running_mean.numpy().copy()
    ours(mg.tensor(x))
    np.testing.assert_array_equal(ours.running_mean.numpy(), before)  # eval leaves stats alone


def test_batch_norm_rejects_wrong_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input with 4 dimensions "
                                         r"and 3 channels at axis 1, got shape \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(mg.zeros(2, 4, 5, 5))


def test_dropout_module_follows_train_and_eval():
    layer = nn.Dropout(0.5)
    x = mg.ones(10_000)
    assert 0.45 < (layer(x).numpy() == 0).mean() < 0.55
    layer.eval()
    assert (layer(x).numpy() == 1).all()


def test_default_init_matches_pytorch_bounds():
    mg.manual_seed(0)
    layer = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    for p in (layer.weight, layer.bias):
        values = p.numpy()
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.95 * bound  # really spread over the whole range


@pytest.mark.parametrize("fn, kwargs, expected_std", [
    (nn.init.xavier_uniform_, {}, math.sqrt(2 / (200 + 100))),
    (nn.init.xavier_normal_, {"gain": 2.0}, 2 * math.sqrt(2 / (200 + 100))),
    (nn.init.kaiming_uniform_, {"nonlinearity": "relu"}, math.sqrt(2 / 200)),
    (nn.init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / 100)),
    (nn.init.normal_, {"std": 0.3}, 0.3),
    (nn.init.uniform_, {"a": -1.0, "b": 1.0}, 1 / math.sqrt(3)),
])
def test_init_functions_give_the_formula_std(fn, kwargs, expected_std):
    mg.manual_seed(0)
    weight = mg.zeros(100, 200)
    assert fn(weight, **kwargs) is weight
    assert weight.numpy().std() == pytest.approx(expected_std, rel=0.03)


def test_constant_inits():
    weight = mg.zeros(3, 3)
    assert (nn.init.ones_(weight).numpy() == 1).all()
    assert (nn.init.constant_(weight, 0.5).numpy() == 0.5).all()
    assert (nn.init.zeros_(weight).numpy() == 0).all()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(mg.zeros(3))


def torch_lenet5_step(torch):
    """PyTorch's LeNet-5, laid out as minigrad's (``features`` then ``classifier``), with
    PyTorch's initial weights; one step on a fixed batch with upstream gradient 1 (the sum)."""
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(OrderedDict(
        features=torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(),
                                     torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5),
                                     torch.nn.ReLU(), torch.nn.MaxPool2d(2)),
        classifier=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(400, 120),
                                       torch.nn.ReLU(), torch.nn.Linear(120, 84),
                                       torch.nn.ReLU(), torch.nn.Linear(84, 10))))
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    return torch_step(torch, theirs, x, upstream=np.ones((4, 10), dtype=np.float32))


def test_lenet5_forward_and_backward_match_torch(torch_reference):
    ours = LeNet5()
    assert sum(p.numel() for p in ours.parameters()) == 61_706
    assert_same_step(ours, torch_reference("LeNet5", torch_lenet5_step), rtol=1e-4, atol=1e-5)
