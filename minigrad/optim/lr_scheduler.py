"""Learning-rate schedulers: change every param group's ``lr`` as training goes on, with the
semantics (and the numbers) of ``torch.optim.lr_scheduler`` in PyTorch 2.13.

The protocol every scheduler follows:

    optimizer = SGD(model.parameters(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)   # sets the lr for t = 0
    for epoch in range(epochs):
        train_one_epoch(model, optimizer)                     # optimizer.step() per batch
        scheduler.step()                                      # t <- t + 1, sets the new lrs

* Constructing a scheduler records each group's starting lr eta_0 as ``group["initial_lr"]``
  (with ``setdefault``: a second scheduler on the same optimizer keeps the first one's), keeps
  them as ``base_lrs`` and sets the lr for t = 0.
* ``last_epoch`` is t, the number of ``step()`` calls so far. ``step()`` adds one and sets every
  group's lr; ``get_last_lr()`` returns those lrs. CyclicLR and OneCycleLR are meant to be
  stepped after every batch, the others usually once per epoch.
* ``state_dict()`` holds every attribute except the optimizer and functions (LambdaLR's
  lambdas, CyclicLR's ``scale_fn``: pass the same ones again). To resume, build the optimizer
  and the scheduler as before, then load the optimizer's state, then the scheduler's, as
  ``minigrad.train.fit`` does.
* ``last_epoch=k`` builds a scheduler that continues a run: the groups must already hold
  ``initial_lr`` (from the optimizer's state), and like PyTorch the constructor then takes one
  step, to t = k + 1, whose lr comes from the closed form.

Closed form and chainable form. Most schedules are eta_t = eta_min + (eta_0 - eta_min) * f(t)
for a factor f with f(0) = 1 (eta_min is 0 except in cosine annealing). ``FactorScheduler``
needs only f, and steps the way PyTorch does: it multiplies the *current* lr by f(t) / f(t-1)
rather than overwriting it with eta_0 * f(t). Alone, the two are the same numbers up to
rounding; but with two schedulers on one optimizer (a warmup and a decay, both stepped) the
factors compose, and an lr changed by hand stays changed, as in PyTorch. LambdaLR, CyclicLR,
OneCycleLR and CosineAnnealingWarmRestarts set the lr from their formula at every step, as in
PyTorch; SequentialLR and ReduceLROnPlateau have steps of their own.

InverseTimeLR (eta_0 / (1 + alpha * t)) is ours; every other class is PyTorch's.
"""

import copy
import math
from bisect import bisect_right
from collections import namedtuple

from minigrad.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "FactorScheduler", "LambdaLR", "StepLR", "MultiStepLR",
           "ExponentialLR", "LinearLR", "PolynomialLR", "InverseTimeLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "SequentialLR",
           "ReduceLROnPlateau"]


# ------------------------------------------------------------------ checking arguments
def _check(ok, owner, message):
    """Raise ``ValueError("<owner>: <message>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{owner}: {message}")


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_increasing(values):
    return all(a < b for a, b in zip(values, values[1:]))


def _checked_optimizer(owner, optimizer):
    _check(isinstance(optimizer, Optimizer), owner,
           f"expected a minigrad Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _per_group(owner, name, value, optimizer):
    """One value per param group: a list or tuple with one per group, or one value for all."""
    count = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        _check(len(value) == count, owner,
               f"{name} has {len(value)} values for {count} param groups")
        return list(value)
    return [value] * count


def _cosine_factor(t, period):
    """(1 + cos(pi * t / period)) / 2: from 1 at t = 0 down to 0 at t = period."""
    return (1 + math.cos(math.pi * t / period)) / 2


# ------------------------------------------------------------------ the protocol
class LRScheduler:
    """Base class: a subclass defines ``lr_at(t)``, the lr of each group at step t in closed
    form. ``step()`` sets the lrs from ``_next_lrs()``, which is ``lr_at(t)`` unless a subclass
    steps in another form; ``step(epoch)`` jumps to t = epoch and uses the closed form.

    ``base_lrs``: what the schedule starts from (default: every group's ``initial_lr``).
    """

    _not_saved = ("optimizer",)  # attributes that state_dict leaves out

    def __init__(self, optimizer, last_epoch=-1, base_lrs=None):
        name = type(self).__name__
        self.optimizer = _checked_optimizer(name, optimizer)
        _check(isinstance(last_epoch, int) and last_epoch >= -1, name,
               f"last_epoch must be an integer >= -1, got {last_epoch!r}")
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        missing = [i for i, group in enumerate(groups) if "initial_lr" not in group]
        _check(not missing, name, f"last_epoch={last_epoch} continues a run, so every param "
               f"group needs 'initial_lr' (load the optimizer's state first); groups {missing} "
               "have none")
        if base_lrs is None:
            base_lrs = [group["initial_lr"] for group in groups]
        self.base_lrs = list(base_lrs)
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Set the lrs for t = 0, or for t = last_epoch + 1 when continuing a run."""
        if self.last_epoch == -1:
            self.step()
        else:
            self.step(self.last_epoch + 1)

    def lr_at(self, t):
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(t)")

    def _next_lrs(self):
        return self.lr_at(self.last_epoch)

    def step(self, epoch=None):
        """Advance to t + 1 (or jump to t = ``epoch``) and set every group's lr."""
        if epoch is None:
            self.last_epoch += 1
            lrs = self._next_lrs()
        else:
            self.last_epoch = epoch
            lrs = self.lr_at(epoch)
        self._set_lrs(lrs)

    def _set_lrs(self, lrs):
        groups = self.optimizer.param_groups
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self):
        """The lr of each param group as this scheduler last set it."""
        return list(self._last_lr)

    def _rewind(self):
        """Undo the constructor's step count (SequentialLR restarts its schedulers)."""
        self.last_epoch -= 1

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """Every attribute but the optimizer (and the functions), copied."""
        return copy.deepcopy({key: value for key, value in vars(self).items()
                              if key not in self._not_saved})

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned; refuses a state with other attributes (from
        another kind of scheduler, or other options), changing nothing."""
        expected = {key for key in vars(self) if key not in self._not_saved}
        missing, unknown = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        _check(not missing and not unknown, f"{type(self).__name__}.load_state_dict",
               f"the state lacks {missing} and has unknown {unknown}: it is from another "
               "kind of scheduler, or one built with other options")
        self.__dict__.update(copy.deepcopy(state_dict))


class LambdaLR(LRScheduler):
    """eta_t = eta_0 * lr_lambda(t): any schedule as a function of the step t, one function
    for all groups or a list with one per group. Not chainable: every step overwrites the lr."""

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _checked_optimizer("LambdaLR", optimizer)
        lambdas = _per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        _check(all(callable(f) for f in lambdas), "LambdaLR",
               f"lr_lambda must be a function of the step, got {lr_lambda!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t):
        return [base * f(t) for f, base in zip(self.lr_lambdas, self.base_lrs)]


# ------------------------------------------------------------------ eta_0 times a factor
class FactorScheduler(LRScheduler):
    """Base class of the schedules eta_t = eta_min + (eta_0 - eta_min) * f(t), f(0) = 1.

    A subclass defines ``factor(t)``; ``eta_min`` is 0 unless it sets one. ``step()`` uses
    PyTorch's chainable form, lr <- eta_min + (lr - eta_min) * f(t) / f(t-1), so the factors of
    several schedulers on one optimizer multiply. Where f(t-1) = 0 (cosine annealing past
    T_max), the ratio is undefined and the lr climbs by (eta_0 - eta_min) * f(t) instead.
    """

    eta_min = 0.0

    def factor(self, t):
        raise NotImplementedError(f"{type(self).__name__} must define factor(t)")

    def lr_at(self, t):
        return [self.eta_min + (base - self.eta_min) * self.factor(t) for base in self.base_lrs]

    def _next_lrs(self):
        t, floor = self.last_epoch, self.eta_min
        now = self.factor(t)
        before = self.factor(t - 1) if t > 0 else 1.0  # before the first step: eta_0 itself
        lrs = []
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if now == before:
                lrs.append(group["lr"])
            elif before == 0:
                lrs.append(group["lr"] + (base - floor) * now)
            else:
                lrs.append(floor + now / before * (group["lr"] - floor))
        return lrs


class StepLR(FactorScheduler):
    """Step decay: eta_t = eta_0 * gamma^floor(t / step_size), the lr times gamma every
    ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check(_is_positive_int(step_size), "StepLR",
               f"step_size must be a positive integer, got {step_size!r}")
        _check(gamma > 0, "StepLR", f"gamma must be > 0, got {gamma}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


class MultiStepLR(FactorScheduler):
    """eta_t = eta_0 * gamma^(number of milestones <= t): the lr times gamma at each
    milestone epoch."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        _check(all(isinstance(m, int) for m in milestones) and _is_increasing(milestones),
               "MultiStepLR", f"milestones must be increasing integers, got {milestones}")
        _check(gamma > 0, "MultiStepLR", f"gamma must be > 0, got {gamma}")
        self.milestones, self.gamma = milestones, gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return self.gamma ** bisect_right(self.milestones, t)


class ExponentialLR(FactorScheduler):
    """Exponential decay: eta_t = eta_0 * gamma^t."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        _check(gamma > 0, "ExponentialLR", f"gamma must be > 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return self.gamma ** t


class LinearLR(FactorScheduler):
    """eta_t = eta_0 * (s + (e - s) * min(t, T) / T) with s = start_factor, e = end_factor,
    T = total_iters: a straight line from eta_0 * s to eta_0 * e, then constant. A linear
    warmup (s < 1, e = 1), or the linear decay eta_0 * (1 - t/T) with s = 1, e = 0."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        _check(0 < start_factor <= 1, "LinearLR",
               f"start_factor must be in (0, 1], got {start_factor}")
        _check(0 <= end_factor <= 1, "LinearLR",
               f"end_factor must be in [0, 1], got {end_factor}")
        _check(_is_positive_int(total_iters), "LinearLR",
               f"total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        change = (self.end_factor - self.start_factor) * min(self.total_iters, t)
        return self.start_factor + change / self.total_iters


class PolynomialLR(FactorScheduler):
    """Polynomial decay to 0: eta_t = eta_0 * (1 - min(t, T) / T)^power, T = total_iters.
    With power 1 it is the linear decay eta_0 * (1 - t/T)."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        _check(_is_positive_int(total_iters), "PolynomialLR",
               f"total_iters must be a positive integer, got {total_iters!r}")
        _check(power >= 0, "PolynomialLR", f"power must be >= 0, got {power}")
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return (1.0 - min(self.total_iters, t) / self.total_iters) ** self.power


class InverseTimeLR(FactorScheduler):
    """Inverse-time decay: eta_t = eta_0 / (1 + alpha * t), the 1/t decay of classical
    stochastic approximation (Robbins and Monro, 1951). Not in PyTorch."""

    def __init__(self, optimizer, alpha, last_epoch=-1):
        _check(alpha >= 0, "InverseTimeLR", f"alpha must be >= 0, got {alpha}")
        self.alpha = alpha
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return 1 / (1 + self.alpha * t)


class CosineAnnealingLR(FactorScheduler):
    """Cosine annealing (Loshchilov and Hutter, SGDR, 2017, without the restarts):
    eta_t = eta_min + (eta_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2, from eta_0 down to
    eta_min at t = T_max. Stepped past T_max it follows the cosine back up, as in PyTorch."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check(T_max > 0, "CosineAnnealingLR", f"T_max must be > 0, got {T_max}")
        _check(eta_min >= 0, "CosineAnnealingLR", f"eta_min must be >= 0, got {eta_min}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def factor(self, t):
        return _cosine_factor(t, self.T_max)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov and Hutter, 2017): cosine annealing restarted every T_i epochs,
    eta = eta_min + (eta_0 - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where T_cur counts the
    epochs since the last restart; T_0 = the first period, T_(i+1) = T_mult * T_i.

    ``step(epoch)`` accepts a fractional epoch (``epoch + batch / batches``) to anneal within an
    epoch; ``step()`` adds 1 to T_cur, also after a fractional ``step(epoch)``, as in PyTorch.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        name = "CosineAnnealingWarmRestarts"
        _check(_is_positive_int(T_0), name, f"T_0 must be a positive integer, got {T_0!r}")
        _check(_is_positive_int(T_mult), name,
               f"T_mult must be an integer >= 1, got {T_mult!r}")
        _check(eta_min >= 0, name, f"eta_min must be >= 0, got {eta_min}")
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _position(self, epoch):
        """(T_cur, T_i) at ``epoch``: walk through the periods T_0, T_0*T_mult, ..."""
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        t_cur, t_i = epoch, self.T_0
        while t_cur >= t_i:
            t_cur, t_i = t_cur - t_i, t_i * self.T_mult
        return t_cur, t_i

    def step(self, epoch=None):
        if epoch is None and self.last_epoch >= 0:
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur - self.T_i, self.T_i * self.T_mult
            self.last_epoch += 1
        else:
            epoch = 0 if epoch is None else epoch
            _check(epoch >= 0, "CosineAnnealingWarmRestarts",
                   f"epoch must be >= 0, got {epoch}")
            self.T_cur, self.T_i = self._position(epoch)
            self.last_epoch = math.floor(epoch)
        factor = _cosine_factor(self.T_cur, self.T_i)
        self._set_lrs([self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs])


# ------------------------------------------------------------------ cycles (per batch)
def _set_momentum(group, momentum, use_beta1):
    """SGD-style groups have ``momentum``; Adam-style ones cycle beta1 in ``betas``."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class _CycleScheduler(LRScheduler):
    """CyclicLR and OneCycleLR: the lr rises and falls, and with ``cycle_momentum`` the
    momentum moves the other way, between each group's ``base_momentum`` and ``max_momentum``
    (kept in the group). A subclass defines ``lr_at(t)`` and ``momentum_at(t)``."""

    def __init__(self, optimizer, last_epoch, cycle_momentum, base_momentum, max_momentum,
                 base_lrs=None):
        name = type(self).__name__
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            defaults = optimizer.defaults
            _check("momentum" in defaults or "betas" in defaults, name,
                   f"cycle_momentum=True needs an optimizer with 'momentum' or 'betas'; "
                   f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in defaults
            lows = _per_group(name, "base_momentum", base_momentum, optimizer)
            highs = _per_group(name, "max_momentum", max_momentum, optimizer)
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, lows, highs):
                    group["base_momentum"], group["max_momentum"] = low, high
                    _set_momentum(group, high, self.use_beta1)
        super().__init__(optimizer, last_epoch, base_lrs)

    def step(self, epoch=None):
        super().step(epoch)
        if self.cycle_momentum:
            for group, momentum in zip(self.optimizer.param_groups,
                                       self.momentum_at(self.last_epoch)):
                _set_momentum(group, momentum, self.use_beta1)


_CYCLIC_SCALE_MODES = {"triangular": "cycle", "triangular2": "cycle", "exp_range": "iterations"}


class CyclicLR(_CycleScheduler):
    """Cyclical learning rates (Smith, 2017), stepped after every batch: the lr climbs from
    base_lr to max_lr in ``step_size_up`` steps and back in ``step_size_down``, over and over:

        cycle = floor(1 + t / (up + down)),  x = 1 + t / (up + down) - cycle   (0 -> 1)
        h = x / r  while rising (x <= r = up / (up + down)),  (1 - x) / (1 - r)  falling
        eta_t = base_lr + (max_lr - base_lr) * h * scale

    scale = 1 ("triangular"), 1 / 2^(cycle - 1) ("triangular2": the height halves every
    cycle), gamma^t ("exp_range"), or ``scale_fn(cycle)`` / ``scale_fn(t)`` with ``scale_mode``
    "cycle" / "iterations". The momentum goes the other way: max_m - (max_m - base_m) * h * scale.
    """

    _not_saved = ("optimizer", "scale_fn")

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _checked_optimizer("CyclicLR", optimizer)
        base_lrs = _per_group("CyclicLR", "base_lr", base_lr, optimizer)
        self.max_lrs = _per_group("CyclicLR", "max_lr", max_lr, optimizer)
        step_size_down = step_size_up if step_size_down is None else step_size_down
        _check(step_size_up > 0 and step_size_down > 0, "CyclicLR", "step_size_up and "
               f"step_size_down must be > 0, got {step_size_up} and {step_size_down}")
        _check(scale_fn is not None or mode in _CYCLIC_SCALE_MODES, "CyclicLR",
               f"mode must be one of {sorted(_CYCLIC_SCALE_MODES)}, got {mode!r}")
        _check(scale_mode in ("cycle", "iterations"), "CyclicLR",
               f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        _check(gamma > 0, "CyclicLR", f"gamma must be > 0, got {gamma}")
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
        self.total_size = float(step_size_up + step_size_down)
        self.step_ratio = step_size_up / self.total_size
        self.mode, self.gamma, self.scale_fn = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else _CYCLIC_SCALE_MODES[mode]
        super().__init__(optimizer, last_epoch, cycle_momentum, base_momentum, max_momentum,
                         base_lrs)

    def _scale(self, cycle, t):
        x = cycle if self.scale_mode == "cycle" else t
        if self.scale_fn is not None:
            return self.scale_fn(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def _height_and_scale(self, t):
        """h, the place in the triangle (0 at base_lr, 1 at max_lr), and the scale."""
        cycle = math.floor(1 + t / self.total_size)
        x = 1.0 + t / self.total_size - cycle
        rising = x <= self.step_ratio
        height = x / self.step_ratio if rising else (x - 1) / (self.step_ratio - 1)
        return height, self._scale(cycle, t)

    def lr_at(self, t):
        height, scale = self._height_and_scale(t)
        return [base + (top - base) * height * scale
                for base, top in zip(self.base_lrs, self.max_lrs)]

    def momentum_at(self, t):
        height, scale = self._height_and_scale(t)
        return [g["max_momentum"] - (g["max_momentum"] - g["base_momentum"]) * height * scale
                for g in self.optimizer.param_groups]


_Phase = namedtuple("_Phase", "end_step start_lr end_lr start_momentum end_momentum")


class OneCycleLR(_CycleScheduler):
    """The 1cycle policy (Smith and Topin, 2018), stepped after every batch, ``total_steps``
    steps in all (or ``epochs * steps_per_epoch``). Each group keeps
    initial_lr = max_lr / div_factor and min_lr = initial_lr / final_div_factor; the lr goes

        initial_lr -> max_lr over the first pct_start * total_steps steps, then
        max_lr -> min_lr over the rest;                              (three_phase=False)
        initial_lr -> max_lr -> initial_lr in two equal phases, then
        initial_lr -> min_lr over the rest.                          (three_phase=True)

    Within a phase from a to b, at the fraction p of it: a + (b - a) * p ("linear") or
    b + (a - b) * (1 + cos(pi * p)) / 2 ("cos"). The momentum goes the other way between
    max_momentum and base_momentum (and stays at max_momentum in the third phase).
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        name = "OneCycleLR"
        _checked_optimizer(name, optimizer)
        if total_steps is None:
            _check(_is_positive_int(epochs) and _is_positive_int(steps_per_epoch), name,
                   "give total_steps, or epochs and steps_per_epoch as positive integers; got "
                   f"total_steps=None, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}")
            total_steps = epochs * steps_per_epoch
        _check(_is_positive_int(total_steps), name,
               f"total_steps must be a positive integer, got {total_steps!r}")
        _check(0 <= pct_start <= 1, name, f"pct_start must be in [0, 1], got {pct_start}")
        _check(anneal_strategy in ("cos", "linear"), name,
               f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        _check(div_factor > 0 and final_div_factor > 0, name, "div_factor and "
               f"final_div_factor must be > 0, got {div_factor} and {final_div_factor}")
        self.total_steps, self.pct_start = total_steps, pct_start
        self.anneal_strategy, self.three_phase = anneal_strategy, three_phase
        starts = [0.0] + [phase.end_step for phase in self._phases()]
        _check(all(a != b for a, b in zip(starts, starts[1:])), name,
               f"pct_start={pct_start} with total_steps={total_steps} makes a phase of 0 steps")
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups,
                                  _per_group(name, "max_lr", max_lr, optimizer)):
                group["initial_lr"], group["max_lr"] = top / div_factor, top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        super().__init__(optimizer, last_epoch, cycle_momentum, base_momentum, max_momentum)

    def _phases(self):
        rise_end = float(self.pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if not self.three_phase:
            return [_Phase(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    _Phase(last, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        fall_end = float(2 * self.pct_start * self.total_steps) - 2
        return [_Phase(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _Phase(fall_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _Phase(last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]

    def _phase_at(self, t):
        """The phase that step t is in, and the fraction of it done."""
        _check(t <= self.total_steps, "OneCycleLR",
               f"stepped to t={t}, past total_steps={self.total_steps}")
        start, phases = 0.0, self._phases()
        for phase in phases:
            if t <= phase.end_step or phase is phases[-1]:
                return phase, (t - start) / (phase.end_step - start)
            start = phase.end_step

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _anneal_groups(self, t, quantity):
        phase, fraction = self._phase_at(t)
        start, end = getattr(phase, "start_" + quantity), getattr(phase, "end_" + quantity)
        return [self._anneal(group[start], group[end], fraction)
                for group in self.optimizer.param_groups]

    def lr_at(self, t):
        return self._anneal_groups(t, "lr")

    def momentum_at(self, t):
        return self._anneal_groups(t, "momentum")


# ------------------------------------------------------------------ schedulers of their own
class SequentialLR(LRScheduler):
    """Several schedules one after the other: ``schedulers[i]`` runs from ``milestones[i-1]``
    on, starting again from its own t = 0 (its closed form) at the milestone. The usual use is
    a warmup then a decay:

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=95)
        scheduler = SequentialLR(opt, [warmup, decay], milestones=[5])

    Building the schedulers moved the lr; SequentialLR puts it back to ``initial_lr`` and lets
    only the first schedule set the lr for t = 0, as in PyTorch.
    """

    _not_saved = ("optimizer", "schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        name = "SequentialLR"
        self.optimizer = _checked_optimizer(name, optimizer)
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        _check(self.schedulers, name, "needs at least one scheduler")
        for i, scheduler in enumerate(self.schedulers):
            _check(isinstance(scheduler, LRScheduler)
                   and not isinstance(scheduler, ReduceLROnPlateau), name,
                   f"schedulers[{i}] is a {type(scheduler).__name__}; each must be an "
                   "LRScheduler stepped without arguments (not ReduceLROnPlateau)")
            _check(scheduler.optimizer is optimizer, name,
                   f"schedulers[{i}] ({type(scheduler).__name__}) has another optimizer")
        _check(len(self.milestones) == len(self.schedulers) - 1, name,
               f"{len(self.schedulers)} schedulers need {len(self.schedulers) - 1} "
               f"milestones, got {self.milestones}")
        _check(_is_increasing(self.milestones), name,
               f"milestones must be increasing, got {self.milestones}")
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._rewind()
        first = self.schedulers[bisect_right(self.milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def _rewind(self):
        for scheduler in self.schedulers:
            scheduler._rewind()

    def step(self):
        self.last_epoch += 1
        i = bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[i]
        if i > 0 and self.milestones[i - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        return {**super().state_dict(),
                "schedulers": [scheduler.state_dict() for scheduler in self.schedulers]}

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        states = state_dict.pop("schedulers", [])
        _check(len(states) == len(self.schedulers), "SequentialLR.load_state_dict",
               f"the state holds {len(states)} schedulers, this one has "
               f"{len(self.schedulers)}")
        super().load_state_dict(state_dict)
        for scheduler, state in zip(self.schedulers, states):
            scheduler.load_state_dict(state)


class ReduceLROnPlateau(LRScheduler):
    """Divide the lr when a metric stops improving: ``step(metric)`` once per epoch (usually
    with the validation loss).

    A value improves on the best so far when it is below best * (1 - threshold) (mode "min",
    threshold_mode "rel"), below best - threshold ("abs"), or above best * (1 + threshold) /
    best + threshold in mode "max". After more than ``patience`` epochs in a row without
    improvement every lr becomes max(lr * factor, min_lr) (unless that changes it by no more
    than ``eps``), and the next ``cooldown`` epochs count no bad epochs. It does not change
    the lr at construction and records no ``initial_lr``, like PyTorch's.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        name = "ReduceLROnPlateau"
        self.optimizer = _checked_optimizer(name, optimizer)
        _check(mode in ("min", "max"), name, f"mode must be 'min' or 'max', got {mode!r}")
        _check(threshold_mode in ("rel", "abs"), name,
               f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        _check(0 <= factor < 1, name, f"factor must be in [0, 1), got {factor}")
        for label, value in (("patience", patience), ("cooldown", cooldown)):
            _check(isinstance(value, int) and value >= 0, name,
                   f"{label} must be an integer >= 0, got {value!r}")
        _check(threshold >= 0 and eps >= 0, name,
               f"threshold and eps must be >= 0, got {threshold} and {eps}")
        self.min_lrs = _per_group(name, "min_lr", min_lr, optimizer)
        self.mode, self.factor, self.patience, self.cooldown = mode, factor, patience, cooldown
        self.threshold, self.threshold_mode, self.eps = threshold, threshold_mode, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def is_better(self, value):
        if self.threshold_mode == "rel":
            bar = self.best * ((1.0 - self.threshold) if self.mode == "min"
                               else (self.threshold + 1.0))
        else:
            bar = self.best - self.threshold if self.mode == "min" else self.best + self.threshold
        return value < bar if self.mode == "min" else value > bar

    def step(self, metrics):
        value = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self.is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
