"""Optimizers: the same parameter trajectory as torch.optim for every optimizer and option; a
state_dict round trip resumes the identical trajectory; full-batch gradient descent is the
textbook formula; parameters without a gradient are skipped, frozen ones (requires_grad=False)
among them, as in PyTorch, until they are unfrozen; bad hyperparameters, groups and states are
refused."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.data.synthetic import make_linear_regression
from minigrad.serialization import load, save

# Learning rates that move the weights well within 50 steps (adaptive optimizers move each
# coordinate by about lr a step, so they get smaller ones).
LR = {"SGD": 0.05, "Adagrad": 0.05, "RMSprop": 0.002, "Adam": 0.01, "AdamW": 0.01,
      "NAdam": 0.01}

CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"weight_decay": 0.01}),
    ("SGD", {"momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.05}),
    ("Adagrad", {"weight_decay": 0.1}),
    ("Adagrad", {"initial_accumulator_value": 0.5}),
    ("Adagrad", {"eps": 0.1}),  # eps after the square root, not inside it
    ("Adagrad", {"maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"weight_decay": 0.1}),
    ("RMSprop", {"centered": True, "momentum": 0.9}),
    ("Adam", {}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"amsgrad": True, "betas": (0.9, 0.9)}),  # a short memory: v falls below v_max
    ("Adam", {"maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"amsgrad": True, "betas": (0.9, 0.9)}),
    ("NAdam", {}),
    ("NAdam", {"weight_decay": 0.1}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
]
# The stateful cases: restarting them without their state would change the trajectory.
STATEFUL = [case for case in CASES if case[0] != "SGD" or "momentum" in case[1]]


def case_id(case):
    name, options = case
    return "-".join([name, *options])


def trajectory(lib, name, options, steps=50, resume_at=None, carry_state=lambda s: s,
               frozen_until=0):
    """Train a 3-4-2 MLP on fixed data with optimizer ``name`` (from ``lib.optim``); returns
    the weights after every step. At step ``resume_at`` a fresh optimizer takes over, loading
    ``carry_state(old.state_dict())`` (None: loading nothing). The first layer is frozen
    (``requires_grad=False``, yet given to the optimizer) until step ``frozen_until``."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    make = (lambda a, g=False: lib.tensor(a.astype(np.float32), requires_grad=g))
    params = [make(w1), make(w2, True)]
    make_optimizer = getattr(optim if lib is mg else lib.optim, name)
    opt = make_optimizer(params, lr=LR[name], **options)
    history = []
    for step in range(steps):
        if step == frozen_until:
            params[0].requires_grad = True
        if resume_at == step:
            state = carry_state(opt.state_dict())
            opt = make_optimizer(params, lr=LR[name], **options)
            if state is not None:
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


def assert_same_trajectory(ours, theirs, exact=False):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for p_ours, p_theirs in zip(a, b):
            if exact:
                np.testing.assert_array_equal(p_ours, p_theirs, err_msg=f"step {step}")
            else:
                assert np.abs(p_ours - p_theirs).max() < 1e-5, f"step {step}"


def torch_trajectory(torch, name, options):
    """PyTorch's weights after each step, as arrays ``w<i>``: (steps, *shape of weight i)."""
    history = trajectory(torch, name, options)
    return {f"w{i}": np.stack([step[i] for step in history]) for i in range(len(history[0]))}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_follows_torch_for_50_steps(case, torch_reference):
    expected = torch_reference(case_id(case), lambda torch: torch_trajectory(torch, *case))
    ours = trajectory(mg, *case)
    theirs = [[expected[f"w{i}"][step] for i in range(len(ours[0]))] for step in range(len(ours))]
    assert_same_trajectory(ours, theirs)
    start = trajectory(mg, *case, steps=1)[0]
    moved = max(np.abs(a - b).max() for a, b in zip(ours[-1], start))
    assert moved > 0.1, f"the weights moved only {moved}: a test too weak to fail"


def through_a_file(tmp_path):
    """What a checkpoint does to a state_dict: save it to disk and load it back."""
    def carry(state):
        save(state, tmp_path / "optimizer.npz")
        return load(tmp_path / "optimizer.npz")
    return carry


@pytest.mark.parametrize("case", STATEFUL, ids=case_id)
def test_state_dict_round_trip_resumes_the_identical_trajectory(case, tmp_path):
    uninterrupted = trajectory(mg, *case, steps=20)
    resumed = trajectory(mg, *case, steps=20, resume_at=10, carry_state=through_a_file(tmp_path))
    assert_same_trajectory(uninterrupted, resumed, exact=True)
    restarted = trajectory(mg, *case, steps=20, resume_at=10, carry_state=lambda s: None)
    assert not np.array_equal(uninterrupted[-1][0], restarted[-1][0]), \
        "forgetting the state changes nothing: the round trip is not tested"


def test_adam_state_holds_the_step_counter_and_the_amsgrad_maximum():
    p = nn.Parameter(np.array([1.0, -2.0], dtype=np.float32))
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    for _ in range(3):
        p.grad = mg.tensor([0.5, -1.0])
        opt.step()
    state = optim.Adam([p], lr=0.1, amsgrad=True)
    state.load_state_dict(opt.state_dict())
    saved = state.state[p]
    assert saved["step"] == 3 and saved["step"].shape == ()
    np.testing.assert_array_equal(saved["max_exp_avg_sq"], opt.state[p]["max_exp_avg_sq"])
    assert saved["max_exp_avg_sq"] is not opt.state[p]["max_exp_avg_sq"]  # a copy


def test_full_batch_gradient_descent_is_sgd_over_a_one_batch_loader():
    x, y, true_w, true_b = make_linear_regression(n=64, n_features=3, noise=0.1, seed=0)
    loader = DataLoader(TensorDataset(x, y), batch_size=len(y))
    model, lr = nn.Linear(3, 1), 0.1
    opt = optim.SGD(model.parameters(), lr=lr)
    xs, ys = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    for epoch in range(30):
        for xb, yb in loader:  # one batch: the whole data set
            w, b = model.weight.numpy()[0].astype(np.float64), float(model.bias.numpy()[0])
            residual = xs @ w + b - ys  # L = mean(residual^2)
            grad_w, grad_b = 2 * xs.T @ residual / len(ys), 2 * residual.mean()
            loss = nn.functional.mse_loss(model(xb)[:, 0], yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            np.testing.assert_allclose(model.weight.numpy()[0], w - lr * grad_w, rtol=1e-5,
                                       atol=1e-6, err_msg=f"epoch {epoch}")
            np.testing.assert_allclose(model.bias.numpy()[0], b - lr * grad_b, rtol=1e-5,
                                       atol=1e-6, err_msg=f"epoch {epoch}")
    np.testing.assert_allclose(model.weight.numpy()[0], true_w.numpy(), atol=0.1)
    assert abs(float(model.bias.numpy()[0]) - true_b) < 0.1


@pytest.mark.parametrize("name", sorted(LR))
def test_a_parameter_without_gradient_is_skipped_and_gets_no_state(name):
    used, unused = (nn.Parameter(np.ones(2, dtype=np.float32)) for _ in range(2))
    # weight decay would move `unused` if it were stepped; with momentum SGD keeps state
    options = {"momentum": 0.9} if name == "SGD" else {}
    opt = getattr(optim, name)([used, unused], lr=0.1, weight_decay=0.1, **options)
    used.grad = mg.ones(2)
    opt.step()
    opt.step()
    np.testing.assert_array_equal(unused.numpy(), 1.0)
    assert unused.grad is None and unused not in opt.state
    assert used in opt.state and not np.allclose(used.numpy(), 1.0)


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.ones(2, dtype=np.float32)), nn.Parameter(np.ones(2, dtype=np.float32))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = mg.ones(2), mg.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.5)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD([p], lr=-1), "SGD: lr must be >= 0, got -1"),
    (lambda p: optim.Adam([p], lr=-0.1), "Adam: lr must be >= 0, got -0.1"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "nesterov momentum needs momentum > 0"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "SGD: momentum must be >= 0, got -0.5"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), r"Adam: betas\[1\] must be in \[0, 1\), got 1.0"),
    (lambda p: optim.AdamW([p], betas=(-0.1, 0.999)), r"AdamW: betas\[0\] must be in \[0, 1\)"),
    (lambda p: optim.NAdam([p], betas=(1.5, 0.999)), r"NAdam: betas\[0\] must be in \[0, 1\)"),
    (lambda p: optim.Adam([{"params": [p], "betas": [0.9, 1.2]}]),
     r"Adam: betas\[1\] must be in \[0, 1\), got 1.2"),
    (lambda p: optim.RMSprop([p], alpha=1.0), r"RMSprop: alpha must be in \[0, 1\), got 1.0"),
    (lambda p: optim.Adam([p], eps=-1e-8), "Adam: eps must be >= 0, got -1e-08"),
    (lambda p: optim.Adagrad([p], eps=float("nan")), "Adagrad: eps must be >= 0, got nan"),
    (lambda p: optim.Adagrad([p], lr_decay=-1), "Adagrad: lr_decay must be >= 0"),
    (lambda p: optim.Adagrad([p], initial_accumulator_value=-1),
     "Adagrad: initial_accumulator_value must be >= 0"),
    (lambda p: optim.RMSprop([p], momentum=-0.9), "RMSprop: momentum must be >= 0"),
    (lambda p: optim.AdamW([p], weight_decay=-0.01), "AdamW: weight_decay must be >= 0"),
    (lambda p: optim.NAdam([p], momentum_decay=-4e-3), "NAdam: momentum_decay must be >= 0"),
    (lambda p: optim.Adam([{"params": [p]}, {"params": [p], "lr": 0.1}]),
     "Adam: a parameter appears in more than one group"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_bad_hyperparameters_and_groups_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make(nn.Parameter(np.ones(2, dtype=np.float32)))


@pytest.mark.parametrize("name", sorted(LR))
def test_a_frozen_layer_stays_put_and_trains_once_unfrozen_as_in_torch(name, torch_reference):
    """The first layer is frozen for 10 of 20 steps; AdamW's default weight decay would move it
    if a frozen parameter were stepped."""
    expected = torch_reference(f"frozen-{name}", lambda torch: {
        f"w{i}": np.stack([step[i] for step in trajectory(torch, name, {}, 20, frozen_until=10)])
        for i in range(2)})
    ours = trajectory(mg, name, {}, 20, frozen_until=10)
    theirs = [[expected["w0"][step], expected["w1"][step]] for step in range(20)]
    assert_same_trajectory(ours, theirs)
    initial = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)  # as trajectory's
    first, second = (np.stack([step[i] for step in ours]) for i in range(2))
    np.testing.assert_array_equal(first[:10], np.broadcast_to(initial, first[:10].shape))
    assert np.abs(first[-1] - initial).max() > 1e-3, "unfrozen, the first layer must train"
    assert np.abs(second[9] - second[0]).max() > 1e-3, "the second layer trains while it waits"


def test_a_frozen_parameter_is_accepted_and_gets_no_state():
    frozen, trained = mg.ones(2), nn.Parameter(np.ones(2, dtype=np.float32))
    opt = optim.Adam([frozen, trained], lr=0.1)
    trained.grad = mg.ones(2)
    opt.step()
    np.testing.assert_array_equal(frozen.numpy(), 1.0)
    assert frozen not in opt.state and trained in opt.state


def test_what_torch_refuses_as_a_parameter_is_refused_naming_it():
    leaf = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"SGD: can't optimize a non-leaf Tensor \(parameter 1 "
                                         r"of group 0, shape \(2, 3\), computed by Mul\)"):
        optim.SGD([leaf, leaf * 2], lr=0.1)
    with pytest.raises(TypeError, match="Adam: can only optimize Tensors, but parameter 0 of "
                                        "group 1 is a ndarray"):
        optim.Adam([{"params": [leaf]}, {"params": [np.ones(2)]}])
    with pytest.raises(TypeError, match=r"got one Tensor of shape \(2, 3\); pass \[tensor\]"):
        optim.SGD(leaf, lr=0.1)


def test_state_dict_from_another_shape_or_type_is_refused():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    state = optim.SGD([p], lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="parameter groups of sizes"):
        optim.SGD([p, nn.Parameter(np.ones(1, dtype=np.float32))], lr=0.1).load_state_dict(state)
    adam = optim.Adam([p])
    p.grad = mg.ones(2)
    adam.step()
    with pytest.raises(ValueError, match="this is a RMSprop, the state is from 'Adam'"):
        optim.RMSprop([p]).load_state_dict(adam.state_dict())


def test_a_refused_state_dict_changes_nothing():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    state = optim.SGD([p], lr=99.0, momentum=0.9).state_dict()
    state["state"] = {"0": {"momentum_buffer": np.zeros(5, dtype=np.float32)}}
    with pytest.raises(ValueError, match=r"momentum_buffer of parameter 0 has shape \(5,\)"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.state == {}
