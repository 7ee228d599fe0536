"""Hyperparameter search: choose the optimizer and its hyperparameters by validation results.

Which optimizer, which learning rate, how much momentum: no formula answers this for a new
problem, so we try candidates and keep the one that does best on data the model was not
trained on. Each candidate is a *config*, a dict such as ``{"optimizer": "SGD", "lr": 0.1}``;
a *trial* trains a fresh model with it for a fixed budget and scores it by a validation
metric; the search returns the trials ranked by that score.

Search spaces. A dict maps each name to

* a list: the values to try (every one in a grid, one at random per trial in random search);
* a distribution, for random search: ``choice(values)``, ``uniform(low, high)`` (x = low +
  (high - low) u), ``loguniform(low, high)`` (x = exp(uniform(log low, log high)): every decade
  equally likely, the right prior for learning rates), ``randint(low, high)`` (an int in
  [low, high));
* anything else (a number, a string, a tuple): a fixed value.

The optimizer is an ordinary key, resolved by ``optimizer_from_config`` as
``getattr(minigrad.optim, name)``. A *conditional* space is a list of dicts, e.g. momentum
only for SGD: ``[{"optimizer": ["SGD"], "momentum": [0, 0.9]}, {"optimizer": ["Adam"]}]``.

    grid_search    all combinations: the product of the lists (of each dict, in turn). Its
                   size multiplies with each key.
    random_search  n_trials configs drawn at random. With the same budget it tries n distinct
                   values of *every* key, where a grid tries only n^(1/k) of each of k keys;
                   when few keys matter, that finds better values (Bergstra & Bengio 2012,
                   "Random Search for Hyper-Parameter Optimization").

Trials are fair comparisons. Before each trial ``minigrad.manual_seed(seed)`` runs, then
``build(config)``, and the training DataLoader shuffles with that same seed: every trial of
one architecture starts from the same initial weights and sees the same batches in the same
order, so score differences come from the config, not from luck (common random numbers).
A trial whose training loss becomes inf or nan is stopped and recorded as *diverged*: score
nan, ranked last, never the best.

    from minigrad import nn, tune
    from minigrad.data import TensorDataset, random_split
    from minigrad.data.synthetic import make_moons
    from minigrad.nn import functional as F

    train, val = random_split(TensorDataset(*make_moons(n=400, seed=0)), [0.75, 0.25], seed=0)

    def build(config):        # -> model, or (model, optimizer), or (model, optimizer, scheduler)
        return nn.Sequential(nn.Linear(2, config["hidden"]), nn.ReLU(),
                             nn.Linear(config["hidden"], 2))

    space = [{"optimizer": "SGD", "lr": tune.loguniform(1e-3, 1.0), "momentum": [0.0, 0.9],
              "hidden": [16, 64]},
             {"optimizer": "Adam", "lr": tune.loguniform(1e-4, 1e-1), "hidden": [16, 64]}]
    result = tune.random_search(space, build, train, val, n_trials=20, seed=0,
                                loss_fn=F.cross_entropy, epochs=10, batch_size=32)
    print(result.table())             # one row per trial, best first
    result.plot("runs/tune.png")      # validation curves, the best one highlighted
    result.best_config                # e.g. {"optimizer": "SGD", "lr": 0.2, ...}

The best validation score is an optimistic estimate of the chosen config (it was picked for
being high): report the final model on a test set that the search never saw.
"""

import inspect
import itertools
import math
import time

import numpy as np
from tqdm import tqdm

from minigrad import optim
from minigrad import random as mg_random
from minigrad.data.loader import DataLoader
from minigrad.nn.module import Module
from minigrad.plot import plot_trials
from minigrad.report import format_table
from minigrad.train import NonFiniteLoss, _prints_lines, _progress_disabled, fit


# ----------------------------------------------------------------------------- distributions
class Distribution:
    """Something random search draws a value from: ``sample(rng)`` with a numpy Generator."""

    def sample(self, rng):
        raise NotImplementedError


class Choice(Distribution):
    """One of ``values``, each with probability 1 / len(values). In a grid, all of them."""

    def __init__(self, values):
        self.values = list(values)
        if not self.values:
            raise ValueError("choice: needs at least one value")

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def __repr__(self):
        return f"choice({self.values!r})"


class Range(Distribution):
    """A distribution on [low, high): checks the bounds and prints as ``name(low, high)``."""

    name, number = "range", float

    def __init__(self, low, high):
        if not low < high:
            raise ValueError(f"{self.name}: needs low < high, got low={low}, high={high}")
        self.low, self.high = self.number(low), self.number(high)

    def __repr__(self):
        return f"{self.name}({self.low}, {self.high})"


class Uniform(Range):
    """x = low + (high - low) u,  u ~ U[0, 1): every interval of equal length equally likely."""

    name = "uniform"

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))


class LogUniform(Range):
    """x = exp(log low + (log high - log low) u): log x is uniform, so each factor of 10
    between low and high is equally likely (1e-4..1e-3 as often as 1e-2..1e-1)."""

    name = "loguniform"

    def __init__(self, low, high):
        if low <= 0:
            raise ValueError(f"loguniform: needs 0 < low, got low={low}")
        super().__init__(low, high)

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


class RandInt(Range):
    """An integer in [low, high) (high excluded, as in NumPy), each equally likely."""

    name, number = "randint", int

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))


def choice(values):
    """Random search draws one of ``values`` uniformly; a grid tries each."""
    return Choice(values)


def uniform(low, high):
    """A float drawn uniformly from [low, high)."""
    return Uniform(low, high)


def loguniform(low, high):
    """A float in [low, high) whose logarithm is uniform (0 < low): for learning rates and
    weight decays, whose useful values span several powers of ten."""
    return LogUniform(low, high)


def randint(low, high):
    """An int drawn uniformly from [low, high)."""
    return RandInt(low, high)


# ----------------------------------------------------------------------------- spaces -> configs
def _subspaces(space):
    """A space as a list of dicts (a single dict is a list of one)."""
    subspaces = [space] if isinstance(space, dict) else list(space)
    if not subspaces or not all(isinstance(s, dict) for s in subspaces):
        raise TypeError(f"search space: expected a dict or a non-empty list of dicts, got "
                        f"{space!r}")
    return subspaces


def _grid_values(name, value):
    """The values a grid tries for one key."""
    if isinstance(value, list):
        return value
    if isinstance(value, Choice):
        return value.values
    if isinstance(value, Distribution):
        raise TypeError(f"grid_configs: {name!r} is {value!r}, which has no finite list of "
                        "values; give a list, or use random_search")
    return [value]


def grid_configs(space):
    """Every config of a grid: the Cartesian product of each dict's lists (its size is the
    product of their lengths), dict after dict for a list of dicts, in order (the last key
    varies fastest, like nested for loops)."""
    configs = []
    for subspace in _subspaces(space):
        names = list(subspace)
        options = [_grid_values(name, subspace[name]) for name in names]
        configs += [dict(zip(names, values)) for values in itertools.product(*options)]
    return configs


def _sample_value(value, rng):
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if isinstance(value, Distribution):
        return value.sample(rng)
    return value


def random_configs(space, n_trials, seed=None):
    """``n_trials`` configs drawn independently: for each, one dict of a list of dicts is
    picked uniformly, then each key is drawn (a list as ``choice``). ``seed``: an int gives
    the same configs every time; None draws from minigrad's generator."""
    if n_trials < 1:
        raise ValueError(f"random_configs: n_trials must be at least 1, got {n_trials}")
    subspaces = _subspaces(space)
    rng = mg_random.generator() if seed is None else np.random.default_rng(seed)
    configs = []
    for _ in range(n_trials):
        subspace = subspaces[int(rng.integers(len(subspaces)))]
        configs.append({name: _sample_value(value, rng) for name, value in subspace.items()})
    return configs


# ----------------------------------------------------------------------------- one trial
def optimizer_from_config(params, config):
    """``getattr(minigrad.optim, config["optimizer"])(params, **hyperparameters)``, where the
    hyperparameters are the config's keys that the optimizer's constructor takes (``lr``,
    ``momentum``, ``weight_decay``, ...); other keys (the model's) are left out."""
    name = config.get("optimizer")
    cls = name if isinstance(name, type) else getattr(optim, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        known = sorted(n for n, v in vars(optim).items()
                       if isinstance(v, type) and issubclass(v, optim.Optimizer)
                       and v is not optim.Optimizer)
        raise ValueError(f"optimizer_from_config: config {config} names no optimizer of "
                         f"minigrad.optim (it has {known})")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    return cls(params, **{k: v for k, v in config.items() if k in accepted})


def _unpack_build(built, config):
    """(model, optimizer, scheduler) from what ``build`` returned."""
    if isinstance(built, Module):
        return built, optimizer_from_config(built.parameters(), config), None
    if isinstance(built, tuple) and len(built) in (2, 3):
        return built if len(built) == 3 else (*built, None)
    raise TypeError(f"build must return a model, (model, optimizer) or (model, optimizer, "
                    f"scheduler); for {config} it returned {type(built).__name__}")


class TrialRunner:
    """What every trial shares: ``build``, the data, the budget and how a trial is scored.

    ``build(config)`` returns a model (its optimizer then comes from ``optimizer_from_config``),
    or ``(model, optimizer)``, or ``(model, optimizer, scheduler)``. ``train_data`` and
    ``val_data`` are datasets. Each trial trains ``epochs`` epochs in batches of
    ``batch_size`` with ``minigrad.train.fit`` (``metrics`` as in fit, default accuracy);
    ``callbacks(config)``, when given, returns fresh callbacks for each trial (e.g. an
    EarlyStopping, which has memory). The score is the best value of ``metric`` over the
    epochs, the largest for ``mode="max"``, the smallest for ``"min"``.
    """

    def __init__(self, build, train_data, val_data, *, loss_fn, epochs, batch_size,
                 metric="val_accuracy", mode="max", seed=0, metrics=None, callbacks=None):
        if mode not in ("min", "max"):
            raise ValueError(f"tune: mode must be 'min' or 'max', got {mode!r}")
        self.build, self.train_data, self.val_data = build, train_data, val_data
        self.loss_fn, self.epochs, self.batch_size = loss_fn, epochs, batch_size
        self.metric, self.mode, self.seed = metric, mode, seed
        self.metrics, self.callbacks = metrics, callbacks

    def run(self, configs, progress=True):
        """Run one trial per config, with an outer progress bar on a terminal, and one line per
        trial when stdout is not one (a log file, CI); returns a TuneResult."""
        configs = list(configs)
        result = TuneResult([], self.metric, self.mode)
        bar = tqdm(configs, desc="trials", disable=_progress_disabled(progress))
        for config in bar:
            trial = {"trial": len(result.trials) + 1, **self.run_trial(config)}
            result.trials.append(trial)
            if result.best_trial is not None:
                bar.set_postfix({f"best {self.metric}": f"{result.best_score:.4g}"})
            if _prints_lines(progress):
                print(f"trial {trial['trial']}/{len(configs)} {trial['config']}: {self.metric} "
                      f"{trial['score']:.4f}, {trial['seconds']:.1f} s", flush=True)
        return result

    def run_trial(self, config):
        """Train one config from the seed; returns {config, score, best_epoch, epochs,
        seconds, diverged, history, model} (the model as training left it)."""
        start = time.perf_counter()
        mg_random.manual_seed(self.seed)
        model, optimizer, scheduler = _unpack_build(self.build(dict(config)), config)
        train_loader = DataLoader(self.train_data, self.batch_size, shuffle=True, seed=self.seed)
        val_loader = DataLoader(self.val_data, self.batch_size)
        callbacks = list(self.callbacks(config)) if self.callbacks else []
        diverged = False
        try:
            # A diverging trial overflows on purpose; its warnings are not errors here.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                history = fit(model, train_loader, optimizer, self.loss_fn, self.epochs,
                              val_loader=val_loader, scheduler=scheduler, metrics=self.metrics,
                              callbacks=callbacks, progress=False)
        except NonFiniteLoss as stopped:  # fit stops at the first inf or nan loss
            history, diverged = stopped.history, True
        score, best_epoch = (math.nan, None) if diverged else self._score(history)
        return {"config": dict(config), "score": score, "best_epoch": best_epoch,
                "epochs": len(history.epochs), "seconds": time.perf_counter() - start,
                "diverged": diverged or math.isnan(score), "history": history, "model": model}

    def _score(self, history):
        """(best value of the metric, its epoch from 1), or (nan, None) if any is not finite."""
        values = history.series(self.metric)
        if history.epochs and any(value is None for value in values):
            raise KeyError(f"tune: the history has no {self.metric!r}; the epochs have the "
                           f"keys {sorted(history.epochs[-1])}")
        if not values or not all(math.isfinite(value) for value in values):
            return math.nan, None
        best = int(np.argmax(values) if self.mode == "max" else np.argmin(values))
        return float(values[best]), best + 1


# ----------------------------------------------------------------------------- searches
def grid_search(space, build, train_data, val_data, *, loss_fn, epochs, batch_size,
                metric="val_accuracy", mode="max", seed=0, metrics=None, callbacks=None,
                progress=True):
    """One trial for every config of ``grid_configs(space)``; returns a TuneResult. The other
    arguments are ``TrialRunner``'s."""
    runner = TrialRunner(build, train_data, val_data, loss_fn=loss_fn, epochs=epochs,
                         batch_size=batch_size, metric=metric, mode=mode, seed=seed,
                         metrics=metrics, callbacks=callbacks)
    return runner.run(grid_configs(space), progress)


def random_search(space, build, train_data, val_data, *, n_trials, loss_fn, epochs,
                  batch_size, metric="val_accuracy", mode="max", seed=0, metrics=None,
                  callbacks=None, progress=True):
    """One trial for each of ``random_configs(space, n_trials, seed)``; ``seed`` also seeds
    every trial. Returns a TuneResult. The other arguments are ``TrialRunner``'s."""
    runner = TrialRunner(build, train_data, val_data, loss_fn=loss_fn, epochs=epochs,
                         batch_size=batch_size, metric=metric, mode=mode, seed=seed,
                         metrics=metrics, callbacks=callbacks)
    return runner.run(random_configs(space, n_trials, seed), progress)


# ----------------------------------------------------------------------------- results
def _format(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class TuneResult:
    """The trials of a search and the best of them.

    ``trials``: dicts in the order they ran, with "trial" (from 1), "config", "score",
    "best_epoch", "epochs" (epochs trained), "seconds", "diverged", "history" and "model"
    (trained, to evaluate the chosen one on a test set).
    """

    def __init__(self, trials, metric, mode):
        self.trials, self.metric, self.mode = trials, metric, mode

    def ranked(self):
        """The trials best first; diverged trials (score nan) last, in the order they ran."""
        finite = [t for t in self.trials if not math.isnan(t["score"])]
        finite.sort(key=lambda t: -t["score"] if self.mode == "max" else t["score"])
        return finite + [t for t in self.trials if math.isnan(t["score"])]

    @property
    def best_trial(self):
        """The trial with the best score (the first of equals); None if all diverged."""
        ranked = self.ranked()
        return ranked[0] if ranked and not math.isnan(ranked[0]["score"]) else None

    @property
    def best_config(self):
        return None if self.best_trial is None else self.best_trial["config"]

    @property
    def best_score(self):
        return math.nan if self.best_trial is None else self.best_trial["score"]

    def _config_keys(self):
        keys = {}
        for trial in self.trials:
            keys.update(dict.fromkeys(trial["config"]))
        return list(keys)

    def table(self):
        """A text table, one row per trial, best first: trial number, config values ("-"
        where a config lacks the key), score, best epoch, epochs trained, seconds."""
        keys = self._config_keys()
        header = ["trial", *keys, self.metric, "best epoch", "epochs", "seconds"]
        rows = [[t["trial"], *(t["config"].get(k) for k in keys),
                 "diverged" if t["diverged"] else t["score"], t["best_epoch"], t["epochs"],
                 t["seconds"]] for t in self.ranked()]
        formats = [None, *(".4g" if any(isinstance(t["config"].get(k), float)
                                        for t in self.trials) else None for k in keys),
                   ".4g", None, None, ".2f"]
        return format_table(header, rows, formats)

    __str__ = table

    def label(self, trial):
        """How plots name a trial: "#3 optimizer=SGD, lr=0.1"."""
        settings = ", ".join(f"{k}={_format(v)}" for k, v in trial["config"].items())
        return f"#{trial['trial']} {settings}"

    def plot(self, path=None, title=None):
        """Every trial's ``metric`` per epoch, the best highlighted (``plot.plot_trials``);
        writes a PNG at ``path`` when given, returns the Figure."""
        histories = {self.label(t): t["history"] for t in self.trials}
        best = None if self.best_trial is None else self.label(self.best_trial)
        return plot_trials(histories, self.metric, best=best, path=path, title=title)
