"""Layers against PyTorch with the same weights (loaded from torch's state_dict), batch norm's
running statistics, initialisation statistics, and LeNet-5 end to end."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import LeNet5
from helpers import import_torch


def copy_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def assert_same_step(ours, theirs, x, rtol=1e-5, atol=1e-5):
    """Same input and upstream gradient: outputs, input gradient and parameter gradients agree."""
    torch = import_torch()
    x_ours = mg.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(out_ours.numpy(), out_theirs.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(1).standard_normal(out_ours.shape).astype(np.float32)
    out_ours.backward(mg.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), rtol=rtol, atol=atol)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=rtol,
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
]


@pytest.mark.torch
@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in LAYERS],
                         ids=[name for name, _, _ in LAYERS])
def test_layer_matches_torch_with_the_same_weights(make, shape):
    torch = import_torch()
    torch.manual_seed(0)
    theirs = make(torch.nn)
    ours = make(nn)
    copy_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert_same_step(ours, theirs, x)


@pytest.mark.torch
@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (8, 3)), ("BatchNorm2d", (8, 3, 4, 4))])
def test_batch_norm_running_stats_and_eval_match_torch(cls, shape):
    torch = import_torch()
    ours, theirs = getattr(nn, cls)(3, momentum=0.2), getattr(torch.nn, cls)(3, momentum=0.2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = (3 * rng.standard_normal(shape) + 1).astype(np.float32)
        ours(mg.tensor(x))
        theirs(torch.tensor(x))
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name].numpy(), value.numpy(), rtol=1e-5,
                                   err_msg=name)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(mg.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
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


@pytest.mark.torch
def test_lenet5_forward_and_backward_match_torch():
    torch = import_torch()
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2)),
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
                            torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10)))
    def our_name(torch_name):  # "0.3.weight" -> "features.3.weight"
        part, rest = torch_name.split(".", 1)
        return ("features." if part == "0" else "classifier.") + rest

    ours = LeNet5()
    ours.load_state_dict({our_name(k): v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert sum(p.numel() for p in ours.parameters()) == 61_706
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    torch_ours = {our_name(k): p for k, p in theirs.named_parameters()}
    x_ours, x_theirs = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(out_ours.numpy(), out_theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), torch_ours[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
