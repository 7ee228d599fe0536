"""SGD: the same parameter trajectory as torch.optim.SGD for every option; state round trip;
bad hyperparameters and parameter groups are refused."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.optim import SGD
from helpers import import_torch

OPTIONS = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.5},
    {"momentum": 0.9, "nesterov": True},
    {"weight_decay": 0.01},
    {"momentum": 0.5, "weight_decay": 0.1, "maximize": True},
]


def trajectory(lib, options, steps=50, resume_at=None):
    """Train a 3-4-2 MLP on fixed data with SGD; returns the weights after every step."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    make = (lambda a, g=False: lib.tensor(a.astype(np.float32), requires_grad=g))
    params = [make(w1, True), make(w2, True)]
    opt = (lib.optim.SGD if lib is not mg else SGD)(params, lr=0.05, **options)
    history = []
    for step in range(steps):
        if resume_at == step:  # a fresh optimizer continues from the saved state
            state = opt.state_dict()
            opt = SGD(params, lr=0.05, **options)
            opt.load_state_dict(state)
        hidden = (make(x) @ params[0].T).tanh()
        loss = ((hidden @ params[1].T - make(y)) ** 2).mean()
        if options.get("maximize"):  # maximizing -MSE: a bounded problem, same minimum
            loss = -loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


@pytest.mark.torch
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_sgd_follows_torch_for_50_steps(options):
    torch = import_torch()
    ours, theirs = trajectory(mg, options), trajectory(torch, options)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for p_ours, p_theirs in zip(a, b):
            assert np.abs(p_ours - p_theirs).max() < 1e-5, f"step {step}"


@pytest.mark.parametrize("options", OPTIONS[1:4], ids=["momentum", "dampening", "nesterov"])
def test_state_dict_round_trip_resumes_the_identical_trajectory(options):
    uninterrupted = trajectory(mg, options, steps=20)
    resumed = trajectory(mg, options, steps=20, resume_at=10)
    for a, b in zip(uninterrupted, resumed):
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.ones(2, dtype=np.float32)), nn.Parameter(np.ones(2, dtype=np.float32))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = mg.ones(2), mg.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.5)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD([p], lr=-1), "learning rate must be >= 0"),
    (lambda p: SGD([p], lr=0.1, nesterov=True), "nesterov momentum needs momentum > 0"),
    (lambda p: SGD([p], lr=0.1, momentum=-0.5), "momentum and weight_decay must be >= 0"),
    (lambda p: SGD([{"params": [p]}, {"params": [p]}], lr=0.1), "more than one group"),
    (lambda p: SGD([], lr=0.1), "empty parameter list"),
    (lambda p: SGD([mg.ones(2)], lr=0.1), "only optimize tensors that require grad"),
])
def test_bad_hyperparameters_and_groups_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make(nn.Parameter(np.ones(2, dtype=np.float32)))


def test_state_dict_from_another_shape_or_type_is_refused():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    state = SGD([p], lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="parameter groups of sizes"):
        SGD([p, nn.Parameter(np.ones(1, dtype=np.float32))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="this is a SGD, the state is from 'Adam'"):
        SGD([p], lr=0.1).load_state_dict({**state, "type": "Adam"})


def test_a_refused_state_dict_changes_nothing():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    state = SGD([p], lr=99.0, momentum=0.9).state_dict()
    state["state"] = {"0": {"momentum_buffer": np.zeros(5, dtype=np.float32)}}
    with pytest.raises(ValueError, match=r"momentum_buffer of parameter 0 has shape \(5,\)"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.state == {}
