"""Training and evaluation loops: ``fit``, ``evaluate``, ``History`` and callbacks.

One training step is the same five lines in every framework:

    outputs = model(x)                 # forward: build the graph
    loss = loss_fn(outputs, y)         # a scalar
    optimizer.zero_grad()              # backward accumulates, so clear old gradients
    loss.backward()                    # dL/dw for every parameter
    optimizer.step()                   # w <- update(w, dL/dw)

``fit`` repeats it over the batches of a DataLoader for some epochs, evaluates on a validation
loader after each epoch, records everything in a ``History``, and calls ``Callback`` methods at
fixed points so other features (early stopping, checkpoints, pruning schedules, distillation
logging) plug in without touching the loop.

The first two lines are a ``TrainStep``: ``outputs, loss = step(model, x, y)``. A method whose
loss needs more than the outputs and the targets subclasses it (PyTorch Lightning's
``training_step``): distillation's step also runs the teacher and hands its logits to the loss
(``minigrad.distill.DistillationStep``).

A checkpoint (``Checkpoint`` callback) holds the model, the optimizer (momentum buffers
included), the loader's shuffling state, minigrad's random generator and the History, so
``fit(..., resume=path)`` continues exactly where the interrupted run would have been.
"""

import copy
import itertools
import math
import sys
import time
import warnings

import numpy as np
from tqdm import tqdm

from minigrad import random as mg_random
from minigrad.autograd import no_grad
from minigrad.backend import all_finite
from minigrad.metrics import accuracy
from minigrad.optim.lr_scheduler import ReduceLROnPlateau
from minigrad.serialization import load, save

CHECKPOINT_FORMAT = "minigrad-fit-checkpoint"


class History:
    """What happened during ``fit``.

    ``steps``: one dict per optimizer step: step, epoch, loss, lr.
    ``epochs``: one dict per epoch: epoch (from 1), seconds, train_loss, train_<metric>, and
    val_loss, val_<metric> when there is a validation loader.
    """

    def __init__(self):
        self.steps, self.epochs = [], []

    def series(self, key):
        """One epoch-level quantity over all epochs, e.g. ``history.series("val_accuracy")``."""
        return [record.get(key) for record in self.epochs]

    def state_dict(self):
        return {"steps": list(self.steps), "epochs": list(self.epochs)}

    def load_state_dict(self, state):
        self.steps, self.epochs = list(state["steps"]), list(state["epochs"])


class TrainState:
    """What callbacks see: the objects being trained and where the loop is."""

    def __init__(self, model, optimizer, train_loader, history, scheduler=None, callbacks=(),
                 val_loader=None):
        self.model, self.optimizer, self.train_loader = model, optimizer, train_loader
        self.val_loader = val_loader
        self.history, self.scheduler, self.callbacks = history, scheduler, list(callbacks)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.inputs = self.targets = self.outputs = self.loss = None
        self.stop = False  # a callback sets this to end training after the current epoch
        # False on the other ranks of a distributed run: only the main rank prints, shows
        # progress and writes checkpoints (minigrad.parallel.DistributedCallback sets it).
        self.is_main = True


class TrainStep:
    """One batch's forward pass and loss, ``outputs, loss = step(model, inputs, targets)``:
    ``fit`` calls it once per training batch (then backward and the optimizer step), and
    ``evaluate`` once per batch under ``no_grad``. This one is the plain step

        outputs = model(inputs);  loss = loss_fn(outputs, targets)

    A subclass overrides ``__call__`` when its loss needs more (distillation also runs the
    teacher). ``outputs`` are what the metrics and callbacks see (``TrainState.outputs``)."""

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn

    def __call__(self, model, inputs, targets):
        outputs = model(inputs)
        return outputs, self.loss_fn(outputs, targets)


def _as_train_step(loss_fn):
    """What fit and evaluate call per batch: ``loss_fn`` if it is a TrainStep, else the plain
    step around it."""
    return loss_fn if isinstance(loss_fn, TrainStep) else TrainStep(loss_fn)


class Callback:
    """Override any of these; each receives the TrainState. A callback with memory (a best
    value, a counter) returns it from ``state_dict`` so checkpoints can restore it."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def on_train_begin(self, state):
        pass

    def on_epoch_begin(self, state):
        pass

    def on_after_backward(self, state):
        """Gradients are computed, the optimizer has not stepped yet."""

    def on_epoch_metrics(self, state, record):
        """The epoch's results are in ``record`` (train, and val with a validation loader);
        the scheduler, the History and ``on_epoch_end`` have not seen them yet, and a callback
        may change them (data-parallel training averages them over the ranks here)."""

    def on_batch_end(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


class PrintEpochs(Callback):
    """Print the results table as training goes: a header, then one row per epoch with the
    History's values for ``columns`` (those the run does not record are skipped)."""

    def __init__(self, columns=("train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                "seconds")):
        self.columns = columns

        self.header_due = True

    def on_train_begin(self, state):
        self.header_due = True

    def on_epoch_end(self, state):
        if not state.is_main:
            return
        record, width = state.history.epochs[-1], 14
        columns = [c for c in self.columns if c in record]
        if self.header_due:
            print(f"{'epoch':>5} " + " ".join(f"{c:>{width}}" for c in columns))
            self.header_due = False
        print(f"{record['epoch']:5d} " + " ".join(f"{record[c]:{width}.4f}" for c in columns),
              flush=True)


def _is_better(value, best, mode, min_delta):
    """Whether ``value`` improves on ``best`` (None: nothing yet) by more than ``min_delta``.
    A NaN or inf is never better: a diverged epoch must not become the best one."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _check_monitor_recorded(name, monitor, state):
    """ValueError at the start of fit when ``monitor`` is a validation key ("val_...") but
    fit has no val_loader, so no epoch would record it."""
    if monitor.startswith("val_") and state.val_loader is None:
        raise ValueError(f"{name}: monitors {monitor!r}, which only a run with val_loader "
                         "records; pass val_loader to fit, or monitor a train_ key such as "
                         "'train_loss'")


def _monitored(name, monitor, record):
    """``record[monitor]``; KeyError naming the keys the epoch has when it lacks it."""
    if monitor not in record:
        raise KeyError(f"{name}: the epoch's record has no {monitor!r}; it has "
                       f"{', '.join(sorted(record))}")
    return record[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` (an epoch key such as "val_loss") has not improved by more than
    ``min_delta`` for ``patience`` epochs; optionally restore the best weights at the end."""

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="min",
                 restore_best=True):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode, self.restore_best = mode, restore_best
        self.best = self.best_state = None
        self.bad_epochs = 0

    def on_train_begin(self, state):
        _check_monitor_recorded("EarlyStopping", self.monitor, state)

    def on_epoch_end(self, state):
        value = _monitored("EarlyStopping", self.monitor, state.history.epochs[-1])
        if _is_better(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_epochs = value, 0
            if self.restore_best:
                self.best_state = {k: v.data.copy() for k, v in state.model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                state.stop = True  # never reset a stop another callback asked for

    def on_train_end(self, state):
        if self.restore_best and self.best_state is not None:
            state.model.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs, "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
        self.best_state = state["best_state"]


class Checkpoint(Callback):
    """Save everything needed to resume (see ``fit(resume=...)``) after every epoch, or only
    when ``monitor`` improves if ``save_best_only``. Writes are atomic.

    A diverged model never overwrites the last good checkpoint: an epoch whose model holds a
    NaN or inf in its parameters or buffers is not saved (a warning says so), and with
    ``save_best_only`` a NaN or inf ``monitor`` value is never the best. ``save_best_only``
    with a validation key (the default "val_loss") needs fit's val_loader: without one, fit
    stops with a ValueError before training."""

    def __init__(self, path, monitor="val_loss", mode="min", save_best_only=False):
        self.path, self.monitor, self.mode = path, monitor, mode
        self.save_best_only, self.best = save_best_only, None

    def on_train_begin(self, state):
        if self.save_best_only:
            _check_monitor_recorded("Checkpoint(save_best_only=True)", self.monitor, state)

    def on_epoch_end(self, state):
        if self.save_best_only:
            value = _monitored("Checkpoint", self.monitor, state.history.epochs[-1])
            if not _is_better(value, self.best, self.mode, 0.0):
                return
        nonfinite = _nonfinite_entries(state.model)
        if nonfinite:
            warnings.warn(f"Checkpoint: epoch {state.epoch}: the model holds NaN or inf values "
                          f"(in {', '.join(nonfinite)}); {self.path} was not overwritten")
            return
        if self.save_best_only:
            self.best = value
        if state.is_main:  # in a distributed run every rank holds the same state
            save(checkpoint_state(state), self.path)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state["best"]


def _nonfinite_entries(model):
    """The names of the model's floating-point parameters and buffers that hold a NaN or inf."""
    return [name for name, tensor in model.state_dict().items()
            if tensor.data.dtype.kind == "f" and not all_finite(tensor.data)]


def checkpoint_state(state):
    """Model, optimizer, scheduler, data order, random generator, callbacks and history after
    ``state.epoch``."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "step": state.step,
        "model": dict(state.model.state_dict()),
        "optimizer": state.optimizer.state_dict(),
        "train_loader": state.train_loader.state_dict(),
        "scheduler": None if state.scheduler is None else state.scheduler.state_dict(),
        "rng": mg_random.generator().bit_generator.state,
        "callbacks": [{"type": type(callback).__name__, "state": callback.state_dict()}
                      for callback in state.callbacks],
        "history": state.history.state_dict(),
    }


def _restore(state, path):
    """Put the checkpoint at ``path`` into ``state``, all or nothing: if any part is refused
    (a corrupt file, another optimizer type, other shapes, a missing entry), everything it had
    already changed is put back as it was and the error is raised."""
    checkpoint = load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"resume: {path} is not a fit checkpoint")
    if (checkpoint.get("scheduler") is None) != (state.scheduler is None):
        raise ValueError(f"resume: {path} was written by a run "
                         f"{'without' if checkpoint.get('scheduler') is None else 'with'} a "
                         "scheduler; pass the same kind of run")
    # A copy of what is there now, in the checkpoint's own layout, to load back on failure.
    before = copy.deepcopy({**checkpoint_state(state), "model": {
        key: tensor.data.copy() for key, tensor in state.model.state_dict().items()}})
    try:
        _load_checkpoint(state, checkpoint)
    except Exception:
        _load_checkpoint(state, before)
        raise


def _load_checkpoint(state, checkpoint):
    """Load a ``checkpoint_state`` dict into ``state``, part after part."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.train_loader.load_state_dict(checkpoint["train_loader"])
    if state.scheduler is not None:
        state.scheduler.load_state_dict(checkpoint["scheduler"])
    # Each callback gets the state of the next saved callback of its class; a callback the
    # interrupted run did not have starts fresh, a saved one this run lacks is dropped.
    saved = list(checkpoint["callbacks"])
    for callback in state.callbacks:
        match = next((s for s in saved if s["type"] == type(callback).__name__), None)
        if match is not None:
            saved.remove(match)
            callback.load_state_dict(match["state"])
    mg_random.generator().bit_generator.state = checkpoint["rng"]
    state.history.load_state_dict(checkpoint["history"])
    state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]


def _model_device(model):
    """Where the model's tensors live: its first parameter's device, else its first buffer's
    (an integer-only QuantizedModel has buffers only), else the CPU."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):  # stops at the first
        return tensor.device
    return "cpu"


def _progress_disabled(progress):
    """tqdm's ``disable``: True when asked; None lets tqdm hide the bar when its stream
    (stderr) is not a terminal, where a bar redrawn in place would be a heap of lines."""
    return True if not progress else None


def _prints_lines(progress):
    """Whether a loop asked to show ``progress`` prints one plain line per step of its outer
    loop (an epoch, a trial): when stdout is not a terminal (a log file, CI), where no bar
    shows."""
    return bool(progress) and not sys.stdout.isatty()


def _epoch_line(record, epochs, label):
    """One plain line for an epoch's record: what ``fit`` prints instead of a bar when stdout is
    not a terminal, e.g. ``pruning: epoch 2/8: train_loss 0.1034, ...`` (``label``: the
    stage's ``"pruning: "``, or empty)."""
    values = ", ".join(f"{key} {value:.4f}" for key, value in record.items()
                       if key not in ("epoch", "seconds"))
    return f"{label}epoch {record['epoch']}/{epochs}: {values}, {record['seconds']:.1f} s"


def _epoch_metrics(prefix, outputs, targets, metrics):
    if not outputs:
        return {}
    outputs, targets = np.concatenate(outputs), np.concatenate(targets)
    return {f"{prefix}_{name}": float(fn(outputs, targets)) for name, fn in metrics.items()}


def evaluate(model, loader, loss_fn=None, metrics=None):
    """Mean loss (weighted by batch size) and metrics over a loader, in eval mode, no graph.

    Returns {"loss": ..., "<metric>": ...}. The model's train/eval mode is restored after.
    ``loss_fn`` as in ``fit``: a function ``loss_fn(outputs, targets)`` or a ``TrainStep``.
    A loader that gives no samples is a ValueError (as in PyTorch Lightning): a mean over
    nothing has no value, and 0.0 would read as a perfect loss.
    """
    metrics = {"accuracy": accuracy} if metrics is None else metrics
    step = None if loss_fn is None else _as_train_step(loss_fn)
    was_training = model.training
    model.eval()
    device = _model_device(model)
    total, count, outputs, targets = 0.0, 0, [], []
    with no_grad():
        for x, y in loader:
            if step is None:
                out = model(x.to(device))
            else:
                out, loss = step(model, x.to(device), y.to(device))
                total += loss.item() * len(y)
            count += len(y)
            outputs.append(out.numpy())
            targets.append(y.numpy())
    model.train(was_training)
    if count == 0:
        raise ValueError(f"evaluate: the loader gave no samples ({_EMPTY_LOADER_CAUSES}), so "
                         "there is no mean loss or metric")
    results = {"loss": total / count} if loss_fn is not None else {}
    results.update({k[len("eval_"):]: v for k, v in
                    _epoch_metrics("eval", outputs, targets, metrics).items()})
    return results


_EMPTY_LOADER_CAUSES = "an empty dataset, or drop_last=True with fewer samples than batch_size"
NONFINITE_ACTIONS = ("raise", "skip", "warn")


def _check_has_batches(name, loader):
    if len(loader) == 0:
        raise ValueError(f"fit: {name} has no batches ({_EMPTY_LOADER_CAUSES})")


class NonFiniteLoss(FloatingPointError):
    """What stops ``fit`` at a NaN or inf loss (``on_nonfinite="raise"``); ``history`` holds
    the epochs trained before it, ``epoch`` and ``batch`` (from 1) say where it happened."""

    def __init__(self, loss, epoch, batch, batches, history):
        super().__init__(
            f"fit: the loss of epoch {epoch}, batch {batch} of {batches} is {loss}; training "
            "stopped before that batch's backward and optimizer step, so the model holds the "
            "weights from after the step before it (on_nonfinite='skip' skips such batches; "
            "minigrad.anomaly.detect_anomaly() names the op that made the NaN or inf)")
        self.epoch, self.batch, self.history = epoch, batch, history


def _check_epoch_stepped(epoch, losses, nonfinite):
    """FloatingPointError when on_nonfinite="skip" skipped every batch of an epoch: no step
    was taken, and the same data will give the same losses again."""
    if nonfinite and not losses:
        raise FloatingPointError(
            f"fit: epoch {epoch}: the loss was not finite in every one of its {len(nonfinite)} "
            "batches, so on_nonfinite='skip' took no step and nothing can be trained "
            "(minigrad.anomaly.detect_anomaly() names the op that makes the NaN or inf)")


def _warn_nonfinite(action, epoch, nonfinite, batches):
    """fit's one warning per epoch for the batches whose loss was not finite."""
    outcome = "skipped" if action == "skip" else "taken all the same (on_nonfinite='warn')"
    warnings.warn(f"fit: epoch {epoch}: the loss was not finite in {len(nonfinite)} of "
                  f"{batches} batches (batch {', '.join(map(str, nonfinite))}); their "
                  f"optimizer steps were {outcome}", stacklevel=3)


def _check_scheduler_interval(scheduler, interval):
    if interval not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {interval!r}")
    if isinstance(scheduler, ReduceLROnPlateau) and interval != "epoch":
        raise ValueError("fit: ReduceLROnPlateau watches a per-epoch metric; use "
                         "scheduler_interval='epoch'")


def _step_per_epoch(scheduler, record):
    """End-of-epoch step; a ReduceLROnPlateau gets the loss it watches."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(record.get("val_loss", record["train_loss"]))
    else:
        scheduler.step()


def fit(model, train_loader, optimizer, loss_fn, epochs, val_loader=None, scheduler=None,
        scheduler_interval="epoch", metrics=None, callbacks=(), progress=True, resume=None,
        desc=None, on_nonfinite="raise"):
    """Train ``model`` for ``epochs`` epochs and return the History.

    ``loss_fn``: a function ``loss_fn(outputs, targets)`` of the model's outputs, or a
    ``TrainStep``, for a method whose loss needs more than those two (a distiller's
    ``distiller.step``). A function is run as ``TrainStep(loss_fn)``, the plain step; the step
    also gives the validation loss (``evaluate``).
    ``metrics``: {name: fn(outputs, targets)} on whole-epoch arrays (default: accuracy).
    ``scheduler``: stepped at the end of every epoch, or after every optimizer step with
    ``scheduler_interval="step"`` (CyclicLR and OneCycleLR count steps). A ReduceLROnPlateau
    is stepped per epoch with the value it watches: ``val_loss`` when there is a
    ``val_loader``, else ``train_loss``. ``resume``: a checkpoint path written by the
    ``Checkpoint`` callback; training continues from the epoch after it. A checkpoint that
    is refused (corrupt, written for another optimizer type or model) changes nothing: the
    model, optimizer and the rest are left as they were.

    ``on_nonfinite``: what a NaN or inf loss does. The loss is checked before backward and
    the optimizer step, so with "raise" (the default) fit stops with ``NonFiniteLoss`` (a
    FloatingPointError) naming the epoch and batch, and the model holds the weights from
    before that batch.
    "skip" takes no step for such a batch and leaves it out of the epoch's loss and metrics;
    "warn" takes the step all the same (under data parallelism on several ranks, "skip" is
    refused: each rank would decide alone). Both warn once per epoch, with the count and the
    batches (from 1); "skip" raises when every batch of an epoch was skipped. A loader with
    no batches is a ValueError before training starts.

    ``progress``: on a terminal, a tqdm bar per epoch, labelled ``desc`` (the stage's name)
    and left on screen when the epoch ends; when stdout is not a terminal (a log file, CI),
    one plain line per epoch instead (``_epoch_line``). ``progress=False`` shows neither.
    """
    _check_scheduler_interval(scheduler, scheduler_interval)
    if on_nonfinite not in NONFINITE_ACTIONS:
        raise ValueError(f"fit: on_nonfinite must be one of "
                         f"{', '.join(map(repr, NONFINITE_ACTIONS))}, got {on_nonfinite!r}")
    if on_nonfinite == "skip" and getattr(model, "world_size", 1) > 1:
        # Each rank checks its own loss: one rank skipping a step its peers take would pair
        # their gradient all-reduces with the wrong batches.
        raise ValueError("fit: on_nonfinite='skip' cannot be used with a data-parallel model "
                         "on several ranks (each rank would decide alone); use 'raise' or "
                         "'warn'")
    _check_has_batches("train_loader", train_loader)
    if val_loader is not None:
        _check_has_batches("val_loader", val_loader)
    step = _as_train_step(loss_fn)
    metrics = {"accuracy": accuracy} if metrics is None else metrics
    history = History()
    state = TrainState(model, optimizer, train_loader, history, scheduler, callbacks,
                       val_loader)
    if resume is not None:
        _restore(state, resume)
    device = _model_device(model)
    show = progress and state.is_main
    label = f"{desc}: " if desc else ""
    # Off a terminal, one line per epoch, unless a PrintEpochs table already prints one.
    log_lines = _prints_lines(show) and not any(
        isinstance(callback, PrintEpochs) for callback in callbacks)
    for callback in callbacks:
        callback.on_train_begin(state)
    while state.epoch < epochs and not state.stop:
        model.train()
        for callback in callbacks:
            callback.on_epoch_begin(state)
        start, losses, sizes, outputs, targets = time.perf_counter(), [], [], [], []
        nonfinite = []  # this epoch's batches (from 1) whose loss was NaN or inf
        bar = tqdm(train_loader, desc=f"{label}epoch {state.epoch + 1}/{epochs}",
                   disable=_progress_disabled(show))
        for batch, (x, y) in enumerate(bar, start=1):
            state.inputs, state.targets = x.to(device), y.to(device)
            state.outputs, state.loss = step(model, state.inputs, state.targets)
            loss = state.loss.item()
            if not math.isfinite(loss):
                if on_nonfinite == "raise":
                    raise NonFiniteLoss(loss, state.epoch + 1, batch, len(train_loader),
                                        state.history)
                nonfinite.append(batch)
                if on_nonfinite == "skip":
                    continue
            optimizer.zero_grad()
            state.loss.backward()
            for callback in callbacks:
                callback.on_after_backward(state)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            state.step += 1
            losses.append(loss)
            sizes.append(len(state.targets))
            outputs.append(state.outputs.numpy())
            targets.append(state.targets.numpy())
            history.steps.append({"step": state.step, "epoch": state.epoch + 1,
                                  "loss": losses[-1], "lr": lr})
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            for callback in callbacks:
                callback.on_batch_end(state)
        if nonfinite:
            _warn_nonfinite(on_nonfinite, state.epoch + 1, nonfinite, len(train_loader))
        _check_epoch_stepped(state.epoch + 1, losses, nonfinite)
        # Weighted by batch size, like evaluate's loss, so a short last batch counts less.
        record = {"epoch": state.epoch + 1,
                  "train_loss": float(np.average(losses, weights=sizes))}
        record.update(_epoch_metrics("train", outputs, targets, metrics))
        if val_loader is not None:
            validation = evaluate(model, val_loader, step, metrics)
            record.update({f"val_{k}": v for k, v in validation.items()})
        for callback in callbacks:
            callback.on_epoch_metrics(state, record)
        if scheduler is not None and scheduler_interval == "epoch":
            _step_per_epoch(scheduler, record)
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        state.epoch += 1
        if log_lines:
            print(_epoch_line(record, epochs, label), flush=True)
        for callback in callbacks:
            callback.on_epoch_end(state)
    for callback in callbacks:
        callback.on_train_end(state)
    return history
