"""Learning-rate schedulers: for every scheduler PyTorch has, the lr sequence (and the cycled
momentum) over 60 steps equals torch.optim.lr_scheduler's; chained schedulers compose as in
PyTorch; InverseTimeLR is its closed form; a state_dict round trip (through a saved file)
continues the identical sequence; bad arguments are refused with a ValueError that names them.

Each case is a function ``make(schedulers, optimizer)`` called with minigrad's module and with
PyTorch's, so one helper, ``schedule``, runs both sides the same way.
"""

import numpy as np
import pytest

from minigrad import nn
from minigrad.optim import SGD, Optimizer, lr_scheduler
from minigrad.serialization import load, save
from helpers import import_torch

STEPS = 60
TWO_GROUPS = (0.1, 0.02)


class StillOptimizer(Optimizer):
    """An optimizer that never moves, with the hyperparameters it is given: Adam-shaped with
    ``betas`` (CyclicLR and OneCycleLR then cycle beta1), or with ``lr`` alone."""

    def __init__(self, params, **defaults):
        super().__init__(params, defaults)

    def step(self):
        pass


def make_optimizer(lib, lrs, kind):
    """One dummy parameter per group, group i with lr ``lrs[i]``; SGD with momentum ("sgd") or
    Adam-shaped ("adam")."""
    if lib == "torch":
        torch = import_torch()
        params = [torch.zeros(1, requires_grad=True) for _ in lrs]
        optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[kind]
    else:
        params = [nn.Parameter(np.zeros(1)) for _ in lrs]
        optimizer = {"sgd": SGD, "adam": StillOptimizer}[kind]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    extra = {"momentum": 0.9} if kind == "sgd" else {"betas": (0.9, 0.999)}
    return optimizer(groups, lr=lrs[0], **extra)


def schedulers_of(lib):
    return import_torch().optim.lr_scheduler if lib == "torch" else lr_scheduler


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def schedule(lib, make, lrs=(0.1,), kind="sgd", step_args=None, steps=STEPS, resume_at=None,
             path=None):
    """Build the optimizer and ``make``'s scheduler, then step both ``steps`` times (the
    scheduler with ``step_args[i]``). Returns the lrs and the momenta after construction and
    after each step, as two (steps + 1, groups) arrays. With ``resume_at``, both states go
    through ``save``/``load`` at ``path`` at that step and a fresh pair continues."""
    optimizer = make_optimizer(lib, lrs, kind)
    scheduler = make(schedulers_of(lib), optimizer)
    history = [(scheduler.get_last_lr(), momenta(optimizer))]
    for i in range(steps):
        if i == resume_at:
            save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, path)
            state = load(path)
            optimizer = make_optimizer(lib, lrs, kind)
            scheduler = make(schedulers_of(lib), optimizer)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        optimizer.step()  # the real order, and torch warns when the scheduler steps first
        scheduler.step(*(step_args[i] if step_args else ()))
        assert scheduler.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
        history.append((scheduler.get_last_lr(), momenta(optimizer)))
    return np.array([h[0] for h in history]), np.array([h[1] for h in history])


def plateau_losses():
    """60 losses falling in steps, with plateaus of 1 to 6 epochs whose values still creep
    down by less than the default relative threshold (1e-4), and a relapse in each."""
    losses, level = [], 10.0
    for length in [1, 4, 2, 6, 3, 5, 2, 6, 4, 3, 6, 2, 5, 6, 5]:
        plateau = [level * (1 - 1e-5 * k) for k in range(length)]
        if length > 3:
            plateau[2] = level * 1.5
        losses += plateau
        level *= 0.8
    return losses


LOSSES = [(value,) for value in plateau_losses()]
FRACTIONAL_EPOCHS = [(0.37 * (i + 1),) for i in range(STEPS)]
# step(epoch) now and then, step() in between: T_cur goes on from the fractional epoch.
INTERLEAVED_EPOCHS = [(0.7 * i,) if i % 3 == 0 else () for i in range(STEPS)]


def case(name, make, marks=(), **options):
    return pytest.param(make, options, id=name, marks=marks)


# step(epoch) jumps to t = epoch by the closed form (deprecated in PyTorch, which warns).
JUMPS = [(t,) for t in [3, 4, 4, 10, 2, 30, 31] + list(range(7, 60))]
JUMPING = pytest.mark.filterwarnings("ignore:The epoch parameter")


CASES = [
    case("LambdaLR", lambda m, o: m.LambdaLR(o, lambda t: 0.95 ** t)),
    case("LambdaLR-per-group", lambda m, o: m.LambdaLR(
        o, [lambda t: 1 / (1 + t), lambda t: 0.9 ** (t // 4)]), lrs=TWO_GROUPS),
    case("StepLR", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5)),
    case("StepLR-every-step", lambda m, o: m.StepLR(o, step_size=1, gamma=0.9),
         lrs=TWO_GROUPS),
    case("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[10, 30])),
    case("MultiStepLR-at-0", lambda m, o: m.MultiStepLR(o, [0, 5, 17, 40], gamma=0.3),
         lrs=TWO_GROUPS),
    case("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    case("ExponentialLR-jumps", lambda m, o: m.ExponentialLR(o, gamma=0.9), step_args=JUMPS,
         marks=JUMPING),
    case("ExponentialLR-growing", lambda m, o: m.ExponentialLR(o, gamma=1.02), lrs=TWO_GROUPS),
    case("LinearLR-warmup", lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=10)),
    case("LinearLR-decay-to-0", lambda m, o: m.LinearLR(o, 1.0, 0.0, total_iters=30),
         lrs=TWO_GROUPS),
    case("PolynomialLR-linear", lambda m, o: m.PolynomialLR(o, total_iters=20)),
    case("PolynomialLR-power", lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.5),
         lrs=TWO_GROUPS),
    case("CosineAnnealingLR-past-T_max", lambda m, o: m.CosineAnnealingLR(o, T_max=20)),
    case("CosineAnnealingLR-jumps", lambda m, o: m.CosineAnnealingLR(o, 20, eta_min=0.01),
         step_args=JUMPS, marks=JUMPING),
    case("CosineAnnealingLR-eta_min", lambda m, o: m.CosineAnnealingLR(o, 13, eta_min=0.005),
         lrs=TWO_GROUPS),
    case("WarmRestarts", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10)),
    case("WarmRestarts-T_mult", lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=1e-3), lrs=TWO_GROUPS),
    case("WarmRestarts-fractional", lambda m, o: m.CosineAnnealingWarmRestarts(o, 4, 2),
         step_args=FRACTIONAL_EPOCHS),
    case("WarmRestarts-interleaved", lambda m, o: m.CosineAnnealingWarmRestarts(o, 2, 3),
         step_args=INTERLEAVED_EPOCHS),
    case("WarmRestarts-fractional-T_mult-1", lambda m, o: m.CosineAnnealingWarmRestarts(o, 3),
         step_args=FRACTIONAL_EPOCHS),
    case("CyclicLR-triangular", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=5)),
    case("CyclicLR-triangular2", lambda m, o: m.CyclicLR(
        o, [0.01, 0.001], [0.1, 0.05], 4, 8, mode="triangular2", base_momentum=[0.8, 0.7],
        max_momentum=0.95), lrs=TWO_GROUPS),
    case("CyclicLR-exp_range", lambda m, o: m.CyclicLR(o, 0.01, 0.1, 6, 3, "exp_range",
                                                       gamma=0.97)),
    case("CyclicLR-scale_fn", lambda m, o: m.CyclicLR(
        o, 0.01, 0.1, 5, scale_fn=lambda x: 1 / (1 + 0.05 * x), scale_mode="iterations")),
    case("CyclicLR-no-momentum", lambda m, o: m.CyclicLR(o, 0.01, 0.1, 5,
                                                         cycle_momentum=False)),
    case("CyclicLR-betas", lambda m, o: m.CyclicLR(o, 0.001, 0.01, 7, mode="triangular2"),
         kind="adam"),
    case("OneCycleLR", lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=STEPS)),
    case("OneCycleLR-linear-three-phase", lambda m, o: m.OneCycleLR(
        o, [0.1, 0.05], total_steps=STEPS, anneal_strategy="linear", three_phase=True),
         lrs=TWO_GROUPS),
    case("OneCycleLR-three-phase-cos", lambda m, o: m.OneCycleLR(
        o, 0.1, epochs=6, steps_per_epoch=10, pct_start=0.25, three_phase=True)),
    case("OneCycleLR-options", lambda m, o: m.OneCycleLR(
        o, 0.2, total_steps=80, pct_start=0.1, div_factor=10.0, final_div_factor=100.0,
        base_momentum=0.8, max_momentum=0.9)),
    case("OneCycleLR-no-momentum", lambda m, o: m.OneCycleLR(
        o, 0.1, total_steps=STEPS, cycle_momentum=False)),
    case("OneCycleLR-betas", lambda m, o: m.OneCycleLR(o, 0.01, total_steps=STEPS),
         kind="adam"),
    case("SequentialLR-warmup-cosine", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=30)],
        milestones=[5]), lrs=TWO_GROUPS),
    case("SequentialLR-warmup-exponential", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, 0.2, total_iters=8), m.ExponentialLR(o, 0.93)], milestones=[8])),
    case("SequentialLR-three", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, 0.5, total_iters=4), m.StepLR(o, 5, 0.5), m.ExponentialLR(o, 0.9)],
        milestones=[6, 25])),
    case("ReduceLROnPlateau", lambda m, o: m.ReduceLROnPlateau(o, patience=2),
         step_args=LOSSES),
    case("ReduceLROnPlateau-cooldown", lambda m, o: m.ReduceLROnPlateau(
        o, factor=0.5, patience=1, cooldown=2), step_args=LOSSES),
    case("ReduceLROnPlateau-max-abs", lambda m, o: m.ReduceLROnPlateau(
        o, "max", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs"),
         step_args=[(-loss,) for (loss,) in LOSSES]),
    case("ReduceLROnPlateau-min-abs", lambda m, o: m.ReduceLROnPlateau(
        o, factor=0.5, patience=0, threshold=0.5, threshold_mode="abs", cooldown=1), step_args=LOSSES),
    case("ReduceLROnPlateau-max-rel", lambda m, o: m.ReduceLROnPlateau(
        o, "max", factor=0.5, patience=1, threshold=0.1), step_args=[(1 / loss,) for (loss,) in LOSSES]),
    case("ReduceLROnPlateau-min_lr", lambda m, o: m.ReduceLROnPlateau(
        o, factor=0.5, patience=0, min_lr=[0.02, 0.001]), lrs=TWO_GROUPS, step_args=LOSSES),
    case("ReduceLROnPlateau-eps", lambda m, o: m.ReduceLROnPlateau(
        o, factor=0.5, patience=0, eps=1e-3), step_args=LOSSES),
]


@pytest.mark.parametrize("name, make, options",
                         [pytest.param(p.id, *p.values, id=p.id, marks=p.marks) for p in CASES])
def test_lrs_and_momenta_follow_torch(name, make, options, torch_reference):
    theirs = torch_reference(name, lambda torch: dict(
        zip(["lrs", "momenta"], schedule("torch", make, **options))))
    ours = schedule("minigrad", make, **options)
    np.testing.assert_allclose(ours[0], theirs["lrs"], rtol=1e-12, atol=0, err_msg="lr")
    np.testing.assert_allclose(ours[1], theirs["momenta"], rtol=1e-12, atol=0,
                               err_msg="momentum")
    assert len(np.unique(theirs["lrs"])) > 2, "the case should move the lr"


CHAINS = {
    "warmup-times-exponential": lambda m, o: [m.LinearLR(o, 0.1, total_iters=5),
                                              m.ExponentialLR(o, 0.9)],
    "cosine-times-step": lambda m, o: [m.CosineAnnealingLR(o, 10, eta_min=0.01),
                                       m.StepLR(o, 3, 0.5)],
    "multistep-polynomial-linear": lambda m, o: [m.MultiStepLR(o, [4, 9], 0.5),
                                                 m.PolynomialLR(o, 12, 2.0),
                                                 m.LinearLR(o, 1.0, 0.2, 20)],
}


@pytest.mark.parametrize("name", CHAINS)
def test_chained_schedulers_compose_like_torch(name, torch_reference):
    """Several schedulers on one optimizer, each stepped: their factors multiply."""
    def chained(lib):
        optimizer = make_optimizer(lib, TWO_GROUPS, "sgd")
        schedulers = CHAINS[name](schedulers_of(lib), optimizer)
        history = [[g["lr"] for g in optimizer.param_groups]]
        for _ in range(30):
            optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
            history.append([g["lr"] for g in optimizer.param_groups])
        return np.array(history)

    expected = torch_reference(name, lambda torch: {"lrs": chained("torch")})
    np.testing.assert_allclose(chained("minigrad"), expected["lrs"], rtol=1e-12, atol=0)


def test_inverse_time_decay_is_its_closed_form():
    for alpha in (0.0, 0.1, 2.5):
        lrs, _ = schedule("minigrad", lambda m, o: m.InverseTimeLR(o, alpha), lrs=TWO_GROUPS)
        t = np.arange(STEPS + 1)[:, None]
        np.testing.assert_allclose(lrs, np.array(TWO_GROUPS) / (1 + alpha * t), rtol=1e-13)


# One case of each class (CASES index by id), resumed at step 20; ReduceLROnPlateau is then
# in its cooldown (checked below).
ROUND_TRIPS = [p for p in CASES if p.id in {
    "LambdaLR", "StepLR", "MultiStepLR-at-0", "ExponentialLR", "LinearLR-warmup",
    "PolynomialLR-power", "CosineAnnealingLR-eta_min", "WarmRestarts-T_mult",
    "WarmRestarts-fractional", "CyclicLR-triangular2", "CyclicLR-betas",
    "OneCycleLR-linear-three-phase", "SequentialLR-warmup-cosine", "ReduceLROnPlateau-cooldown",
    "ReduceLROnPlateau-min_lr"}] + [
    case("InverseTimeLR", lambda m, o: m.InverseTimeLR(o, alpha=0.3), lrs=TWO_GROUPS)]


@pytest.mark.parametrize("make, options", ROUND_TRIPS)
def test_state_dict_round_trip_continues_the_identical_sequence(make, options, tmp_path):
    uninterrupted = schedule("minigrad", make, steps=40, **options)
    resumed = schedule("minigrad", make, steps=40, resume_at=20, path=tmp_path / "state.npz",
                       **options)
    np.testing.assert_array_equal(uninterrupted[0], resumed[0])
    np.testing.assert_array_equal(uninterrupted[1], resumed[1])


def test_plateau_round_trip_is_taken_in_the_cooldown():
    optimizer = make_optimizer("minigrad", (0.1,), "sgd")
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1, cooldown=2)
    for (loss,) in LOSSES[:20]:
        scheduler.step(loss)
    assert scheduler.cooldown_counter > 0


@pytest.mark.parametrize("make", [
    lambda m, o, k: m.StepLR(o, 3, 0.5, last_epoch=k),
    lambda m, o, k: m.ExponentialLR(o, 0.9, last_epoch=k),
    lambda m, o, k: m.CosineAnnealingLR(o, 10, 0.01, last_epoch=k),
    lambda m, o, k: m.LambdaLR(o, lambda t: 1 / (1 + t), last_epoch=k),
    lambda m, o, k: m.CosineAnnealingWarmRestarts(o, 3, 2, last_epoch=k),
], ids=["StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR", "WarmRestarts"])
def test_last_epoch_continues_at_the_next_step(make):
    """last_epoch=k, like PyTorch, makes the constructor step to t = k + 1."""
    fresh, _ = schedule("minigrad", lambda m, o: make(m, o, -1), lrs=TWO_GROUPS, steps=8)
    optimizer = make_optimizer("minigrad", TWO_GROUPS, "sgd")
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    scheduler = make(lr_scheduler, optimizer, 6)
    assert scheduler.last_epoch == 7
    np.testing.assert_allclose(scheduler.get_last_lr(), fresh[7], rtol=1e-13)


def test_cosine_warm_restarts_fractional_epochs_within_a_period():
    optimizer = make_optimizer("minigrad", (0.1,), "sgd")
    scheduler = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=3)
    scheduler.step(6.5)  # periods [0, 2), [2, 8): 4.5 epochs into the 6-epoch period
    assert (scheduler.T_cur, scheduler.T_i, scheduler.last_epoch) == (4.5, 6, 6)
    np.testing.assert_allclose(scheduler.get_last_lr(), [0.05 * (1 + np.cos(np.pi * 0.75))])


def _optimizer():
    return make_optimizer("minigrad", (0.1,), "sgd")


def _past_total_steps():
    scheduler = lr_scheduler.OneCycleLR(_optimizer(), 0.1, total_steps=3)
    for _ in range(4):
        scheduler.step()


def _sequential(schedulers, milestones):
    optimizer = _optimizer()
    return lr_scheduler.SequentialLR(optimizer, schedulers(optimizer), milestones)


def _load_other_kind():
    lr_scheduler.StepLR(_optimizer(), 3).load_state_dict(
        lr_scheduler.ExponentialLR(_optimizer(), 0.9).state_dict())


S = lr_scheduler


@pytest.mark.parametrize("build, message", [
    (lambda: S.StepLR([], 3), "StepLR: expected a minigrad Optimizer, got list"),
    (lambda: S.StepLR(_optimizer(), 3, gamma=0), "StepLR: gamma must be > 0, got 0"),
    (lambda: S.StepLR(_optimizer(), 0), "StepLR: step_size must be a positive integer"),
    (lambda: S.StepLR(_optimizer(), 3, last_epoch=-2), "last_epoch must be an integer >= -1"),
    (lambda: S.StepLR(_optimizer(), 3, last_epoch=4), "groups \\[0\\] have none"),
    (lambda: S.MultiStepLR(_optimizer(), [5, 3]), "milestones must be increasing.*\\[5, 3\\]"),
    (lambda: S.ExponentialLR(_optimizer(), -0.5), "ExponentialLR: gamma must be > 0, got -0.5"),
    (lambda: S.LinearLR(_optimizer(), start_factor=0), "start_factor must be in \\(0, 1\\]"),
    (lambda: S.PolynomialLR(_optimizer(), total_iters=0), "total_iters must be a positive"),
    (lambda: S.InverseTimeLR(_optimizer(), -1), "InverseTimeLR: alpha must be >= 0, got -1"),
    (lambda: S.CosineAnnealingLR(_optimizer(), 0), "T_max must be > 0, got 0"),
    (lambda: S.CosineAnnealingWarmRestarts(_optimizer(), 0), "T_0 must be a positive integer"),
    (lambda: S.CosineAnnealingWarmRestarts(_optimizer(), 5, T_mult=0), "T_mult must be"),
    (lambda: S.CosineAnnealingWarmRestarts(_optimizer(), 5).step(-1), "epoch must be >= 0"),
    (lambda: S.LambdaLR(_optimizer(), [abs, abs]), "LambdaLR: lr_lambda has 2 values for 1 param groups"),
    (lambda: S.CyclicLR(_optimizer(), 0.01, 0.1, mode="sawtooth"), "mode must be one of"),
    (lambda: S.CyclicLR(_optimizer(), 0.01, [0.1, 0.2]), "max_lr has 2 values for 1 param"),
    (lambda: S.CyclicLR(_optimizer(), 0.01, 0.1, step_size_up=0), "step_size_up and"),
    (lambda: S.CyclicLR(_optimizer(), 0.01, 0.1, scale_mode="epoch"), "scale_mode must be"),
    (lambda: S.CyclicLR(StillOptimizer([nn.Parameter(np.zeros(1))], lr=0.1), 0.01, 0.1),
     "CyclicLR: cycle_momentum=True needs an optimizer with 'momentum' or 'betas'"),
    (lambda: S.OneCycleLR(_optimizer(), 0.1), "give total_steps, or epochs and steps_per"),
    (lambda: S.OneCycleLR(_optimizer(), 0.1, 10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda: S.OneCycleLR(_optimizer(), 0.1, 10, pct_start=1.5), "pct_start must be in"),
    (lambda: S.OneCycleLR(_optimizer(), 0.1, 10, pct_start=0.1), "makes a phase of 0 steps"),
    (_past_total_steps, "OneCycleLR: stepped to t=4, past total_steps=3"),
    (lambda: _sequential(lambda o: [S.LinearLR(o), S.StepLR(o, 2), S.StepLR(o, 3)], [4, 4]),
     "SequentialLR: milestones must be increasing, got \\[4, 4\\]"),
    (lambda: _sequential(lambda o: [S.LinearLR(o), S.StepLR(o, 2)], []), "need 1 milestones"),
    (lambda: _sequential(lambda o: [S.LinearLR(o), S.ReduceLROnPlateau(o)], [3]),
     "schedulers\\[1\\] is a ReduceLROnPlateau"),
    (lambda: _sequential(lambda o: [S.LinearLR(o), S.StepLR(_optimizer(), 2)], [3]),
     "schedulers\\[1\\] \\(StepLR\\) has another optimizer"),
    (lambda: S.ReduceLROnPlateau(_optimizer(), factor=1.0), "factor must be in \\[0, 1\\)"),
    (lambda: S.ReduceLROnPlateau(_optimizer(), mode="avg"), "mode must be 'min' or 'max'"),
    (lambda: S.ReduceLROnPlateau(_optimizer(), threshold_mode="pct"), "threshold_mode must"),
    (lambda: S.ReduceLROnPlateau(_optimizer(), min_lr=[0, 0]), "min_lr has 2 values"),
    (lambda: S.ReduceLROnPlateau(_optimizer(), patience=-1), "patience must be an integer"),
    (_load_other_kind, "StepLR.load_state_dict: the state lacks \\['step_size'\\]"),
])
def test_bad_arguments_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()
