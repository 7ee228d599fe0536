"""fit/evaluate: learning on a small problem, History, callbacks (early stopping, checkpoints),
the training step (``TrainStep``: the default and a custom one, by hand), a resumed run that
ends bit-identical to an uninterrupted one, and fit's progress output (a bar labelled ``desc``
on a terminal, one plain line per epoch elsewhere)."""

import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad import train as train_module
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F
from minigrad.optim import SGD, lr_scheduler
from minigrad.train import (Callback, Checkpoint, EarlyStopping, PrintEpochs, TrainStep,
                            evaluate, fit)


def blobs(n=240, seed=0):
    """Three Gaussian blobs in 2-D, one per class: easy to separate, hard to fake."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    y = rng.integers(0, 3, size=n)
    x = centers[y] + 0.5 * rng.standard_normal((n, 2))
    return TensorDataset(x.astype(np.float32), y.astype(np.int64))


def small_model(dropout=0.0):
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def test_fit_learns_and_records_history():
    mg.manual_seed(0)
    train, val = DataLoader(blobs(), batch_size=32, shuffle=True), DataLoader(blobs(seed=1), 64)
    model = small_model()
    history = fit(model, train, SGD(model.parameters(), lr=0.1, momentum=0.9),
                  F.cross_entropy, epochs=5, val_loader=val, progress=False)
    assert len(history.epochs) == 5 and len(history.steps) == 5 * len(train)
    last = history.epochs[-1]
    assert set(last) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                         "seconds"}
    assert last["val_accuracy"] >= 0.97
    assert last["train_loss"] < history.epochs[0]["train_loss"] / 2
    assert history.series("epoch") == [1, 2, 3, 4, 5]
    assert history.steps[-1]["lr"] == 0.1 and history.steps[-1]["step"] == 5 * len(train)


def test_evaluate_matches_a_hand_computation_and_restores_the_mode():
    mg.manual_seed(0)
    model, data = small_model(), blobs(50)
    loader = DataLoader(data, batch_size=16)
    results = evaluate(model, loader, F.cross_entropy)
    x, y = data.get_batch(np.arange(50))
    with mg.no_grad():
        logits = model.eval()(mg.tensor(x))
    model.train()
    assert results["loss"] == pytest.approx(F.cross_entropy(logits, mg.tensor(y)).item(),
                                            rel=1e-5)
    assert results["accuracy"] == pytest.approx((logits.numpy().argmax(1) == y).mean())
    assert model.training


def test_callbacks_run_at_their_points():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, state):
            events.append("begin")

        def on_after_backward(self, state):
            assert all(p.grad is not None for p in state.model.parameters())
            events.append("backward")

        def on_epoch_end(self, state):
            events.append(f"epoch {state.epoch}")

        def on_train_end(self, state):
            events.append("end")

    model = small_model()
    loader = DataLoader(blobs(64), batch_size=32)
    fit(model, loader, SGD(model.parameters(), lr=0.1), F.cross_entropy, 2,
        callbacks=[Recorder()], progress=False)
    assert events == ["begin", "backward", "backward", "epoch 1", "backward", "backward",
                      "epoch 2", "end"]


# ----------------------------------------------------------------------------- the training step
def weights(model):
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


def test_the_default_step_is_the_five_lines_written_out():
    """fit with a loss function, or with TrainStep around it, trains exactly as the loop by
    hand: outputs = model(x), loss = loss_fn(outputs, y), zero_grad, backward, step."""
    data = blobs(96)
    trained = []
    for loss_fn in (F.cross_entropy, TrainStep(F.cross_entropy)):
        mg.manual_seed(0)
        model = small_model()
        fit(model, DataLoader(data, batch_size=32), SGD(model.parameters(), lr=0.1,
                                                        momentum=0.9), loss_fn, 1, progress=False)
        trained.append(weights(model))
    mg.manual_seed(0)
    model = small_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in DataLoader(data, batch_size=32):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, value in weights(model).items():
        for other in trained:
            np.testing.assert_array_equal(other[name], value, err_msg=name)


def test_the_loss_of_a_custom_step_is_the_one_fit_optimizes_and_evaluate_reports():
    """A step that adds an L2 term, CE + 0.05 sum ||w||^2: one step of fit on one batch equals
    that step by hand, and differs from plain cross-entropy."""
    class L2Step(TrainStep):
        def __call__(self, model, inputs, targets):
            outputs = model(inputs)
            penalty = sum((p * p).sum() for p in model.parameters())
            return outputs, self.loss_fn(outputs, targets) + 0.05 * penalty

    data = blobs(64)

    def one_step_of_fit(loss_fn):  # the whole set is one batch
        mg.manual_seed(0)
        model = small_model()
        history = fit(model, DataLoader(data, batch_size=64), SGD(model.parameters(), lr=0.1),
                      loss_fn, 1, progress=False)
        return weights(model), history.steps[0]["loss"]

    (l2_weights, l2_loss), (plain_weights, _) = (one_step_of_fit(L2Step(F.cross_entropy)),
                                                 one_step_of_fit(F.cross_entropy))
    mg.manual_seed(0)
    model = small_model()
    x, y = (mg.tensor(a) for a in data.get_batch(np.arange(64)))
    optimizer = SGD(model.parameters(), lr=0.1)
    loss = (F.cross_entropy(model(x), y)
            + 0.05 * sum((p * p).sum() for p in model.parameters()))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert l2_loss == loss.item()
    for name, value in weights(model).items():
        np.testing.assert_array_equal(l2_weights[name], value, err_msg=name)
        assert not np.array_equal(plain_weights[name], value), name
    with mg.no_grad():
        expected = (F.cross_entropy(model.eval()(x), y)
                    + 0.05 * sum((p * p).sum() for p in model.parameters())).item()
    model.train()
    assert evaluate(model, DataLoader(data, 64), L2Step(F.cross_entropy))["loss"] == (
        pytest.approx(expected, rel=1e-6))


def test_early_stopping_stops_and_restores_the_best_weights():
    mg.manual_seed(0)
    model = small_model()
    rng = np.random.default_rng(0)
    # Random labels: the model can only memorise them, so the validation loss soon rises.
    noise = TensorDataset(rng.standard_normal((64, 2)).astype(np.float32),
                          rng.integers(0, 3, size=64))
    train, val = DataLoader(noise, batch_size=16), DataLoader(blobs(seed=1), batch_size=64)
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = fit(model, train, SGD(model.parameters(), lr=0.2, momentum=0.9), F.cross_entropy,
                  30, val_loader=val, callbacks=[stopper], progress=False)
    losses = history.series("val_loss")
    best_epoch = int(np.argmin(losses))
    assert len(losses) == best_epoch + 1 + 2 < 30  # two epochs without improvement, then stop
    # The restored weights through the same evaluate over the same batches: bit-exact.
    assert evaluate(model, val, F.cross_entropy)["loss"] == min(losses)


def run(epochs, checkpoint=None, resume=None, seed=0):
    """Train a model with dropout (so the random generator matters) and return its weights."""
    mg.manual_seed(seed)
    model = small_model(dropout=0.2)
    loader = DataLoader(blobs(), batch_size=32, shuffle=True)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    callbacks = [Checkpoint(checkpoint)] if checkpoint else []
    history = fit(model, loader, optimizer, F.cross_entropy, epochs, callbacks=callbacks,
                  resume=resume, progress=False)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}, history


def test_resumed_training_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    path = str(tmp_path / "run.npz")
    uninterrupted, full_history = run(4)
    run(2, checkpoint=path)  # "interrupted" after epoch 2
    resumed, resumed_history = run(4, resume=path, seed=123)  # another seed: all from the file
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert [r["train_loss"] for r in resumed_history.epochs] == [
        r["train_loss"] for r in full_history.epochs]


def test_resume_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / "weights.npz")
    mg.save({"weights": np.zeros(3)}, path)
    with pytest.raises(ValueError, match="is not a fit checkpoint"):
        run(1, resume=path)


def test_resume_restores_early_stopping_memory(tmp_path):
    path = str(tmp_path / "run.npz")
    mg.manual_seed(0)
    model = small_model()
    loader = DataLoader(blobs(), batch_size=32, shuffle=True)
    val = DataLoader(blobs(seed=1), batch_size=64)
    first = EarlyStopping(patience=5)
    fit(model, loader, SGD(model.parameters(), lr=0.05), F.cross_entropy, 2, val_loader=val,
        callbacks=[first, Checkpoint(path)], progress=False)
    second, resumed = EarlyStopping(patience=5), small_model()
    fit(resumed, DataLoader(blobs(), batch_size=32, shuffle=True),
        SGD(resumed.parameters(), lr=0.05), F.cross_entropy, 2, val_loader=val,
        callbacks=[second], resume=path, progress=False)  # nothing left to train: 2 of 2 done
    assert second.best == first.best is not None and second.bad_epochs == first.bad_epochs


def test_early_stopping_never_clears_a_stop_asked_by_another_callback():
    class StopAfterOne(Callback):
        def on_epoch_end(self, state):
            state.stop = True

    model = small_model()
    loader = DataLoader(blobs(64), batch_size=32)
    history = fit(model, loader, SGD(model.parameters(), lr=0.1), F.cross_entropy, 5,
                  val_loader=loader, callbacks=[StopAfterOne(), EarlyStopping(patience=3)],
                  progress=False)
    assert len(history.epochs) == 1


def scheduled_run(make_scheduler, interval="epoch", epochs=3, val=True):
    """fit on the blobs with SGD(lr=0.1) and the scheduler ``make_scheduler(optimizer)``."""
    mg.manual_seed(0)
    model = small_model()
    optimizer = SGD(model.parameters(), lr=0.1)
    scheduler = make_scheduler(optimizer)
    train = DataLoader(blobs(), batch_size=48, shuffle=True)  # 5 steps per epoch
    history = fit(model, train, optimizer, F.cross_entropy, epochs,
                  val_loader=DataLoader(blobs(seed=1), 64) if val else None,
                  scheduler=scheduler, scheduler_interval=interval, progress=False)
    return history, scheduler


def test_fit_steps_an_epoch_scheduler_after_each_epoch_and_records_the_lr_used():
    history, scheduler = scheduled_run(lambda opt: lr_scheduler.StepLR(opt, 1, gamma=0.5))
    lrs = [s["lr"] for s in history.steps]
    assert lrs == pytest.approx([0.1] * 5 + [0.05] * 5 + [0.025] * 5)
    assert scheduler.get_last_lr() == pytest.approx([0.0125])


def test_fit_steps_a_cyclic_scheduler_after_each_batch():
    make = (lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=15,
                                                   pct_start=0.4))  # peak at step 5
    history, _ = scheduled_run(make, interval="step")
    mg.manual_seed(0)
    reference = make(SGD(small_model().parameters(), lr=0.1, momentum=0.9))
    expected = []
    for _ in range(15):  # the same schedule, stepped by hand
        expected.append(reference.get_last_lr()[0])
        if len(expected) < 15:
            reference.step()
    assert [s["lr"] for s in history.steps] == pytest.approx(expected)
    assert max(expected) == pytest.approx(0.5) and expected[-1] < 0.5 / 1000


@pytest.mark.parametrize("val", [True, False])
def test_fit_steps_reduce_on_plateau_with_the_loss_it_watches(val, monkeypatch):
    watched = []
    original = lr_scheduler.ReduceLROnPlateau.step
    monkeypatch.setattr(lr_scheduler.ReduceLROnPlateau, "step",
                        lambda self, metric: watched.append(metric) or original(self, metric))
    history, _ = scheduled_run(lambda opt: lr_scheduler.ReduceLROnPlateau(opt), val=val)
    key = "val_loss" if val else "train_loss"
    assert watched == history.series(key)


def test_fit_refuses_an_unknown_interval_and_a_per_step_plateau_scheduler():
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'step'"):
        scheduled_run(lambda opt: lr_scheduler.StepLR(opt, 1), interval="batch")
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches a per-epoch metric"):
        scheduled_run(lambda opt: lr_scheduler.ReduceLROnPlateau(opt), interval="step")


def test_a_resumed_run_continues_the_schedule(tmp_path):
    def run(epochs, **kwargs):
        mg.manual_seed(0)
        model = small_model()
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=20)
        history = fit(model, DataLoader(blobs(), batch_size=48, shuffle=True), optimizer,
                      F.cross_entropy, epochs, scheduler=scheduler, scheduler_interval="step",
                      progress=False, **kwargs)
        return history, model

    path = str(tmp_path / "run.npz")
    uninterrupted, model = run(4)
    run(2, callbacks=[Checkpoint(path)])
    resumed, resumed_model = run(4, resume=path)
    assert [s["lr"] for s in resumed.steps] == [s["lr"] for s in uninterrupted.steps]
    for (name, value), other in zip(model.state_dict().items(),
                                    resumed_model.state_dict().values()):
        np.testing.assert_array_equal(other, value, err_msg=name)


# ----------------------------------------------------------------------------- progress output
def progress_run(epochs=3, **kwargs):
    mg.manual_seed(0)
    model = small_model()
    return fit(model, DataLoader(blobs(96), batch_size=32, shuffle=True),
               SGD(model.parameters(), lr=0.1), F.cross_entropy, epochs,
               val_loader=DataLoader(blobs(48, seed=1), 48), **kwargs)


def epoch_line(record, epochs, prefix):
    return (f"{prefix}epoch {record['epoch']}/{epochs}: train_loss {record['train_loss']:.4f}, "
            f"train_accuracy {record['train_accuracy']:.4f}, val_loss {record['val_loss']:.4f}, "
            f"val_accuracy {record['val_accuracy']:.4f}, {record['seconds']:.1f} s")


@pytest.mark.parametrize("desc, prefix", [("blobs", "blobs: "), (None, "")])
def test_off_a_terminal_fit_prints_one_plain_line_per_epoch(capsys, desc, prefix):
    history = progress_run(desc=desc)  # under capsys stdout and stderr are not terminals
    out, err = capsys.readouterr()
    assert out.splitlines() == [epoch_line(r, 3, prefix) for r in history.epochs]
    assert err == ""  # and no bar: tqdm hides it off a terminal


def test_progress_false_prints_nothing(capsys):
    progress_run(progress=False, desc="blobs")
    assert capsys.readouterr() == ("", "")


def test_with_print_epochs_the_plain_lines_are_not_printed_twice(capsys):
    history = progress_run(desc="blobs", callbacks=[PrintEpochs(columns=("train_loss",))])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{'epoch':>5} {'train_loss':>14}"] + [
        f"{r['epoch']:5d} {r['train_loss']:14.4f}" for r in history.epochs]


def test_on_a_terminal_the_bar_is_labelled_with_desc_and_no_lines_are_printed(capsys,
                                                                              monkeypatch):
    bars = []

    class Bar:  # records how fit makes its bars
        def __init__(self, iterable, **kwargs):
            self.iterable, self.kwargs = iterable, kwargs
            bars.append(self)

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, **kwargs):
            self.postfix = kwargs

    monkeypatch.setattr(train_module, "tqdm", Bar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    history = progress_run(epochs=2, desc="pruning")
    assert [bar.kwargs["desc"] for bar in bars] == ["pruning: epoch 1/2", "pruning: epoch 2/2"]
    assert all(bar.kwargs["disable"] is None for bar in bars)  # tqdm decides by its stream
    assert bars[-1].postfix == {"loss": f"{history.steps[-1]['loss']:.4f}"}
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- non-finite losses
def poisoned(sample, n=96):
    """The blobs with a NaN in one sample's input; batches of 32 hold samples 0-31, 32-63,
    64-95, so sample 40 poisons batch 2."""
    data = blobs(n)
    data.arrays[0][sample, 0] = np.nan
    return data


class WeightsAfterEachStep(Callback):
    def __init__(self):
        self.after = []

    def on_batch_end(self, state):
        self.after.append(weights(state.model))


def test_a_nan_loss_stops_fit_naming_epoch_and_batch_before_that_step():
    mg.manual_seed(0)
    data, model = blobs(96), small_model()
    recorder = WeightsAfterEachStep()

    class PoisonInEpochTwo(Callback):  # the NaN appears in sample 70 (batch 3) from epoch 2
        def on_epoch_begin(self, state):
            if state.epoch == 1:
                data.arrays[0][70, 1] = np.nan

    with pytest.raises(FloatingPointError) as error:
        fit(model, DataLoader(data, batch_size=32), SGD(model.parameters(), lr=0.1,
                                                         momentum=0.9),
            F.cross_entropy, 3, callbacks=[PoisonInEpochTwo(), recorder], progress=False)
    assert str(error.value) == (
        "fit: the loss of epoch 2, batch 3 of 3 is nan; training stopped before that batch's "
        "backward and optimizer step, so the model holds the weights from after the step "
        "before it (on_nonfinite='skip' skips such batches; minigrad.anomaly.detect_anomaly() "
        "names the op that made the NaN or inf)")
    assert len(recorder.after) == 5  # epoch 1's three steps and epoch 2's first two
    assert (error.value.epoch, error.value.batch, len(error.value.history.epochs)) == (2, 3, 1)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, recorder.after[-1][name], err_msg=name)
        assert np.isfinite(value).all(), name


def test_skip_leaves_out_the_bad_batch_and_warns_once_per_epoch_with_the_count():
    def train(data, **kwargs):
        mg.manual_seed(0)
        model = small_model()
        history = fit(model, DataLoader(data, batch_size=32), SGD(model.parameters(), lr=0.1,
                                                                   momentum=0.9),
                      F.cross_entropy, 2, progress=False, **kwargs)
        return weights(model), history

    with pytest.warns(UserWarning) as warned:
        skipped, history = train(poisoned(40), on_nonfinite="skip")
    assert [str(w.message) for w in warned] == [
        f"fit: epoch {epoch}: the loss was not finite in 1 of 3 batches (batch 2); their "
        "optimizer steps were skipped" for epoch in (1, 2)]
    assert warned[0].filename == __file__  # the warning points at the call of fit
    # The same as training on batches 1 and 3 alone: samples 0-31 and 64-95.
    kept = blobs(96)
    without, clean_history = train(TensorDataset(*(np.delete(a, np.s_[32:64], axis=0)
                                                   for a in kept.arrays)))
    for name, value in without.items():
        np.testing.assert_array_equal(skipped[name], value, err_msg=name)
    assert len(history.steps) == 4
    assert history.series("train_loss") == clean_history.series("train_loss")
    assert history.series("train_accuracy") == clean_history.series("train_accuracy")


def test_skip_refuses_an_epoch_where_every_batch_is_skipped():
    data = blobs(64)
    data.arrays[0][:, 0] = np.nan
    model = small_model()
    with pytest.warns(UserWarning, match="not finite in 2 of 2 batches"), pytest.raises(
            FloatingPointError, match="the loss was not finite in every one of its 2 batches"):
        fit(model, DataLoader(data, batch_size=32), SGD(model.parameters(), lr=0.1),
            F.cross_entropy, 1, on_nonfinite="skip", progress=False)


def test_fit_refuses_an_unknown_on_nonfinite():
    model = small_model()
    with pytest.raises(ValueError, match="on_nonfinite must be one of 'raise', 'skip', 'warn', "
                                         "got 'ignore'"):
        fit(model, DataLoader(blobs(32), 32), SGD(model.parameters(), lr=0.1), F.cross_entropy,
            1, on_nonfinite="ignore", progress=False)


def test_warn_trains_on_and_the_checkpoint_keeps_the_last_finite_weights(tmp_path):
    """on_nonfinite="warn": the NaN batch of epoch 2 is stepped, so the weights become NaN
    (and the next batch's loss too); the checkpoint file still holds epoch 1's weights."""
    path = str(tmp_path / "run.npz")
    mg.manual_seed(0)
    data, model = blobs(96), small_model()

    class PoisonInEpochTwo(Callback):
        def on_epoch_begin(self, state):
            if state.epoch == 1:
                data.arrays[0][40, 0] = np.nan

        def on_epoch_end(self, state):
            if state.epoch == 1:
                self.epoch_one = weights(state.model)

    poison = PoisonInEpochTwo()
    with pytest.warns(UserWarning) as warned:
        history = fit(model, DataLoader(data, batch_size=32), SGD(model.parameters(), lr=0.1),
                      F.cross_entropy, 2, callbacks=[poison, Checkpoint(path)],
                      on_nonfinite="warn", progress=False)
    assert [str(w.message) for w in warned] == [
        "fit: epoch 2: the loss was not finite in 2 of 3 batches (batch 2, 3); their optimizer "
        "steps were taken all the same (on_nonfinite='warn')",
        "Checkpoint: epoch 2: the model holds NaN or inf values (in 0.weight, 0.bias, 3.weight, "
        f"3.bias); {path} was not overwritten"]
    assert np.isnan(history.epochs[1]["train_loss"]) and len(history.steps) == 6
    assert np.isnan(weights(model)["0.weight"]).all()
    saved = mg.load(path)
    assert saved["epoch"] == 1
    for name, value in poison.epoch_one.items():
        np.testing.assert_array_equal(saved["model"][name].numpy(), value, err_msg=name)


def test_a_nan_value_is_never_the_best():
    assert not train_module._is_better(float("nan"), None, "min", 0.0)
    assert not train_module._is_better(float("nan"), 1.0, "max", 0.0)
    assert not train_module._is_better(float("-inf"), 1.0, "min", 0.0)
    assert train_module._is_better(0.5, None, "min", 0.0)


# ----------------------------------------------------------------------------- refused resume
def resume_setup(tmp_path):
    """A checkpoint after one epoch of SGD with momentum, and a fresh run's model, optimizer
    (SGD, with momentum state of its own after one step) and loader."""
    path = str(tmp_path / "run.npz")
    run(1, checkpoint=path)
    mg.manual_seed(5)
    model = small_model(dropout=0.2)
    loader = DataLoader(blobs(), batch_size=32, shuffle=True)
    return path, model, loader


def test_resume_refused_for_another_optimizer_leaves_the_model_untouched(tmp_path):
    path, model, loader = resume_setup(tmp_path)
    before = weights(model)
    optimizer = mg.optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="load_state_dict: this is a Adam, the state is from "
                                         "'SGD'"):
        fit(model, loader, optimizer, F.cross_entropy, 2, resume=path, progress=False)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert optimizer.state == {} and loader.state_dict() == {"seed": loader.seed, "epoch": 0}


def test_resume_refused_late_puts_back_what_it_had_already_loaded(tmp_path):
    """A checkpoint whose last part is missing: the model, optimizer and loader it loaded
    first are put back as they were."""
    path, model, loader = resume_setup(tmp_path)
    checkpoint = mg.load(path)
    del checkpoint["history"]
    mg.save(checkpoint, path)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = (mg.tensor(a) for a in blobs(32).get_batch(np.arange(32)))
    F.cross_entropy(model(x), y).backward()
    optimizer.step()  # momentum buffers of its own
    before, momentum = weights(model), optimizer.state_dict()
    seed = loader.seed
    with pytest.raises(KeyError, match="history"):
        fit(model, loader, optimizer, F.cross_entropy, 2, resume=path, progress=False)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    for index, entries in optimizer.state_dict()["state"].items():
        for key, value in entries.items():
            np.testing.assert_array_equal(value, momentum["state"][index][key])
    assert loader.state_dict() == {"seed": seed, "epoch": 0}


def test_resume_refuses_a_corrupt_file_and_changes_nothing(tmp_path):
    path, model, loader = resume_setup(tmp_path)
    with open(path, "r+b") as file:
        file.truncate(200)
    before = weights(model)
    with pytest.raises(ValueError, match="is truncated or corrupt"):
        fit(model, loader, SGD(model.parameters(), lr=0.05), F.cross_entropy, 2, resume=path,
            progress=False)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# ----------------------------------------------------------------------------- empty loaders
def test_evaluate_on_an_empty_loader_is_an_error_not_a_zero_loss():
    empty = DataLoader(TensorDataset(np.zeros((0, 2), np.float32), np.zeros(0, np.int64)), 8)
    with pytest.raises(ValueError) as error:
        evaluate(small_model(), empty, F.cross_entropy)
    assert str(error.value) == (
        "evaluate: the loader gave no samples (an empty dataset, or drop_last=True with fewer "
        "samples than batch_size), so there is no mean loss or metric")


@pytest.mark.parametrize("which", ["train_loader", "val_loader"])
def test_fit_on_a_loader_without_batches_is_a_value_error(which):
    model = small_model()
    loaders = {"train_loader": DataLoader(blobs(64), 32), "val_loader": DataLoader(blobs(64), 32)}
    loaders[which] = DataLoader(blobs(20), batch_size=32, drop_last=True)  # 20 < 32: none
    before = weights(model)
    with pytest.raises(ValueError) as error:
        fit(model, loaders["train_loader"], SGD(model.parameters(), lr=0.1), F.cross_entropy, 1,
            val_loader=loaders["val_loader"], progress=False)
    assert str(error.value) == (f"fit: {which} has no batches (an empty dataset, or "
                                "drop_last=True with fewer samples than batch_size)")
    for name, value in weights(model).items():  # refused before training
        np.testing.assert_array_equal(value, before[name], err_msg=name)


@pytest.mark.parametrize("callback, name", [
    (lambda path: Checkpoint(path, save_best_only=True), "Checkpoint(save_best_only=True)"),
    (lambda path: EarlyStopping(monitor="val_accuracy", mode="max"), "EarlyStopping")])
def test_monitoring_a_val_key_without_val_loader_is_refused_before_training(tmp_path, callback,
                                                                           name):
    model = small_model()
    made = callback(str(tmp_path / "best.npz"))
    with pytest.raises(ValueError) as error:
        fit(model, DataLoader(blobs(64), 32), SGD(model.parameters(), lr=0.1), F.cross_entropy,
            1, callbacks=[made], progress=False)
    assert str(error.value) == (
        f"{name}: monitors {made.monitor!r}, which only a run with val_loader records; pass "
        "val_loader to fit, or monitor a train_ key such as 'train_loss'")
    assert not (tmp_path / "best.npz").exists()


def test_a_monitored_key_the_epoch_lacks_names_the_keys_it_has(tmp_path):
    model = small_model()
    with pytest.raises(KeyError, match="Checkpoint: the epoch's record has no 'train_f1'; it "
                                       "has epoch, seconds, train_accuracy, train_loss"):
        fit(model, DataLoader(blobs(64), 32), SGD(model.parameters(), lr=0.1), F.cross_entropy,
            1, callbacks=[Checkpoint(str(tmp_path / "c.npz"), monitor="train_f1",
                                     save_best_only=True)], progress=False)


def test_skipping_nonfinite_batches_is_refused_for_a_model_on_several_ranks():
    model = small_model()
    model.world_size = 2  # what a DistributedDataParallel on 2 ranks reports
    with pytest.raises(ValueError, match="on_nonfinite='skip' cannot be used with a data-par"):
        fit(model, DataLoader(blobs(8), batch_size=4), SGD(model.parameters(), lr=0.1),
            F.cross_entropy, 1, on_nonfinite="skip", progress=False)
