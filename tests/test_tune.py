"""tune: search spaces (grid product, conditional lists of dicts, random draws within bounds
and reproducible), fair trials (same seed, same initial weights and batches), scoring and
ranking, diverged trials, the results table and the plot of all trials."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from minigrad import nn, tune
from minigrad.data import TensorDataset, random_split
from minigrad.data.synthetic import make_linear_regression, make_moons
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.train import EarlyStopping


@pytest.fixture(scope="module")
def moons():
    """(train, val) of 200 noisy two-moon points, 150 / 50."""
    return random_split(TensorDataset(*make_moons(n=200, noise=0.1, seed=0)), [0.75, 0.25],
                        seed=0)


def mlp(hidden=16):
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def search(space, data, build=mlp, **options):
    """A grid search on the moons with a small budget (options override it)."""
    settings = dict(loss_fn=F.cross_entropy, epochs=3, batch_size=32, progress=False)
    settings.update(options)
    return tune.grid_search(space, lambda config: build(), *data, **settings)


# ----------------------------------------------------------------------------- spaces
def test_grid_is_exactly_the_product_with_fixed_values_and_choices():
    space = {"optimizer": "SGD", "lr": [0.1, 0.01, 0.001], "momentum": tune.choice([0.0, 0.9]),
             "sizes": (2, 8, 2)}
    configs = tune.grid_configs(space)
    assert len(configs) == 3 * 2
    expected = [{"optimizer": "SGD", "lr": lr, "momentum": m, "sizes": (2, 8, 2)}
                for lr in [0.1, 0.01, 0.001] for m in [0.0, 0.9]]
    assert configs == expected  # the last key varies fastest
    with pytest.raises(TypeError, match=r"'lr' is loguniform\(0.001, 0.1\).*use random_search"):
        tune.grid_configs({"lr": tune.loguniform(1e-3, 1e-1)})


def test_conditional_space_is_a_list_of_dicts():
    space = [{"optimizer": ["SGD"], "lr": [0.1, 0.01], "momentum": [0.0, 0.9]},
             {"optimizer": ["Adam"], "lr": [1e-3]}]
    configs = tune.grid_configs(space)
    assert len(configs) == 2 * 2 + 1
    assert configs[-1] == {"optimizer": "Adam", "lr": 1e-3}  # no momentum for Adam
    assert all("momentum" in c for c in configs if c["optimizer"] == "SGD")
    with pytest.raises(TypeError, match="a dict or a non-empty list of dicts"):
        tune.grid_configs([])


def test_random_configs_are_reproducible_and_within_bounds():
    space = {"optimizer": ["SGD", "Adam"], "lr": tune.loguniform(1e-4, 1.0),
             "momentum": tune.uniform(0.5, 0.99), "hidden": tune.randint(4, 8), "epochs": 3}
    configs = tune.random_configs(space, 2000, seed=0)
    assert configs == tune.random_configs(space, 2000, seed=0)
    assert configs != tune.random_configs(space, 2000, seed=1)
    lr = np.array([c["lr"] for c in configs])
    momentum = np.array([c["momentum"] for c in configs])
    assert lr.min() >= 1e-4 and lr.max() < 1.0 and momentum.min() >= 0.5 and momentum.max() < 0.99
    # loguniform: each of the four decades gets a quarter (uniform would put 90% in the last)
    decades = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0] / len(lr)
    np.testing.assert_allclose(decades, 0.25, atol=0.04)
    assert {c["hidden"] for c in configs} == {4, 5, 6, 7}  # high excluded
    assert {c["optimizer"] for c in configs} == {"SGD", "Adam"}
    assert all(c["epochs"] == 3 and isinstance(c["lr"], float) for c in configs)


def test_random_configs_pick_each_dict_of_a_conditional_space():
    space = [{"optimizer": "SGD", "momentum": [0.9]}, {"optimizer": "Adam"}]
    configs = tune.random_configs(space, 100, seed=0)
    assert 30 < sum(c["optimizer"] == "SGD" for c in configs) < 70
    assert all(("momentum" in c) == (c["optimizer"] == "SGD") for c in configs)


@pytest.mark.parametrize("make, message", [
    (lambda: tune.uniform(1.0, 1.0), "uniform: needs low < high, got low=1.0, high=1.0"),
    (lambda: tune.loguniform(0.0, 1.0), "loguniform: needs 0 < low, got low=0.0"),
    (lambda: tune.randint(5, 2), "randint: needs low < high, got low=5, high=2"),
    (lambda: tune.choice([]), "choice: needs at least one value"),
    (lambda: tune.random_configs({"lr": [0.1]}, 0), "n_trials must be at least 1, got 0"),
])
def test_bad_distributions_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------------------- trials
def test_every_trial_starts_from_the_same_weights_and_repeats_exactly(moons):
    initial = []

    def build(config):
        model = mlp()
        initial.append([p.numpy().copy() for p in model.parameters()])
        return model, SGD(model.parameters(), lr=config["lr"])

    result = tune.grid_search({"lr": [0.3, 0.05, 0.3]}, build, *moons, loss_fn=F.cross_entropy,
                              epochs=3, batch_size=32, progress=False)
    for weights in initial[1:]:
        for a, b in zip(initial[0], weights):
            np.testing.assert_array_equal(a, b)
    first, _, again = result.trials
    assert first["score"] == again["score"]
    assert first["history"].series("train_loss") == again["history"].series("train_loss")
    assert [s["loss"] for s in first["history"].steps] == \
        [s["loss"] for s in again["history"].steps]  # the same batches, in the same order


def test_best_config_is_the_best_recorded_score_and_a_useless_lr_loses(moons):
    result = search({"optimizer": "SGD", "lr": [0.0, 0.5, 0.05], "momentum": 0.9}, moons,
                    build=lambda: mlp())
    scores = [t["score"] for t in result.trials]
    assert result.best_score == max(scores)
    assert result.best_config == result.trials[int(np.argmax(scores))]["config"]
    assert result.best_config["lr"] != 0.0 and result.best_score > 0.8
    zero = result.trials[0]
    assert zero["score"] < result.best_score and not zero["diverged"]
    history = zero["history"]
    assert zero["score"] == max(history.series("val_accuracy"))
    assert zero["best_epoch"] == int(np.argmax(history.series("val_accuracy"))) + 1

    by_loss = search({"optimizer": "SGD", "lr": [0.0, 0.5]}, moons, metric="val_loss",
                     mode="min")
    losses = [t["score"] for t in by_loss.trials]
    assert by_loss.best_score == min(losses) and by_loss.best_config["lr"] == 0.5
    assert by_loss.trials[0]["score"] == min(by_loss.trials[0]["history"].series("val_loss"))


def test_off_a_terminal_each_trial_prints_one_line_with_its_score(moons, capsys):
    result = search({"optimizer": "SGD", "lr": [0.0, 0.5]}, moons, progress=True)
    lines = capsys.readouterr().out.splitlines()  # under capsys stdout is not a terminal
    assert lines == [f"trial {t['trial']}/2 {t['config']}: val_accuracy {t['score']:.4f}, "
                     f"{t['seconds']:.1f} s" for t in result.trials]
    search({"optimizer": "SGD", "lr": [0.0]}, moons, progress=False)
    assert capsys.readouterr().out == ""


def test_a_diverging_trial_is_recorded_not_raised():
    x, y, _, _ = make_linear_regression(n=120, n_features=3, noise=0.1, seed=0)
    train, val = random_split(TensorDataset(x.numpy(), y.numpy()), [100, 20], seed=0)

    def build(config):
        return nn.Linear(3, 1)  # the optimizer comes from the config

    def mse(out, target):
        return F.mse_loss(out.reshape(-1), target)

    result = tune.grid_search({"optimizer": "SGD", "lr": [1e3, 0.05]}, build, train, val,
                              loss_fn=mse, epochs=4, batch_size=20, metric="val_loss",
                              mode="min", metrics={}, progress=False)
    diverged, good = result.trials
    assert diverged["diverged"] and math.isnan(diverged["score"])
    assert diverged["best_epoch"] is None and diverged["epochs"] < 4
    assert not good["diverged"] and math.isfinite(good["score"])
    assert result.best_config == {"optimizer": "SGD", "lr": 0.05}
    assert result.ranked() == [good, diverged]
    assert "diverged" in result.table().splitlines()[-1]


def test_all_diverged_has_no_best():
    result = tune.TuneResult([{"trial": 1, "config": {"lr": 1.0}, "score": math.nan,
                               "best_epoch": None, "epochs": 0, "seconds": 0.1,
                               "diverged": True, "history": None}], "val_loss", "min")
    assert result.best_trial is None and result.best_config is None
    assert math.isnan(result.best_score)


def test_build_may_return_a_model_and_the_config_chooses_the_optimizer():
    model = mlp()
    optimizer = tune.optimizer_from_config(
        model.parameters(), {"optimizer": "SGD", "lr": 0.2, "momentum": 0.9, "hidden": 16})
    assert isinstance(optimizer, SGD)
    assert optimizer.param_groups[0]["lr"] == 0.2 and optimizer.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match=r"names no optimizer of minigrad.optim \(it has .*'SGD'"):
        tune.optimizer_from_config(model.parameters(), {"optimizer": "Sgd", "lr": 0.1})


def test_wrong_build_result_metric_and_mode_are_refused(moons):
    with pytest.raises(TypeError, match="build must return a model, .* returned list"):
        search({"lr": [0.1]}, moons, build=lambda: [mlp()])
    with pytest.raises(KeyError, match="the history has no 'val_acc'"):
        search({"optimizer": "SGD", "lr": [0.1]}, moons, metric="val_acc", epochs=1)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'best'"):
        search({"lr": [0.1]}, moons, mode="best")


def test_callbacks_are_made_fresh_for_each_trial(moons):
    made = []

    def callbacks(config):
        made.append(EarlyStopping(monitor="val_loss", patience=1))
        return [made[-1]]

    result = search({"optimizer": "SGD", "lr": [0.0, 0.0]}, moons, epochs=5, callbacks=callbacks)
    assert len(made) == 2 and made[0] is not made[1]
    assert [t["epochs"] for t in result.trials] == [2, 2]  # lr 0: val_loss never improves


# ----------------------------------------------------------------------------- results
def test_table_has_one_row_per_trial_best_first(moons):
    result = search([{"optimizer": "SGD", "lr": [0.0, 0.5], "momentum": [0.9]},
                     {"optimizer": "SGD", "lr": [0.05]}], moons)
    lines = result.table().splitlines()
    assert lines[0].split() == ["trial", "optimizer", "lr", "momentum", "val_accuracy", "best",
                                "epoch", "epochs", "seconds"]
    assert len(lines) == 1 + len(result.trials)
    rows = [line.split() for line in lines[1:]]
    assert [int(row[0]) for row in rows] == [t["trial"] for t in result.ranked()]
    scores = [float(row[4]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[[int(r[0]) for r in rows].index(3)][3] == "-"  # trial 3 has no momentum
    assert str(result) == result.table()


def test_plot_writes_a_png_with_the_best_trial_highlighted(moons, tmp_path):
    result = search({"optimizer": "SGD", "lr": [0.0, 0.5]}, moons)
    path = tmp_path / "plots" / "tune.png"
    figure = result.plot(path)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = figure.axes[0].lines
    assert len(lines) == 2
    thickest = max(lines, key=lambda line: line.get_linewidth())
    assert thickest.get_label() == "best: #2 optimizer=SGD, lr=0.5"
    np.testing.assert_allclose(thickest.get_ydata(), result.trials[1]["history"].series(
        "val_accuracy"))
    plt.close("all")


def test_plot_trials_leaves_out_non_finite_values_and_needs_one_finite_run():
    from minigrad.plot import plot_trials
    from minigrad.train import History

    def run(values):
        history = History()
        history.epochs = [{"epoch": k + 1, "val_loss": v} for k, v in enumerate(values)]
        return history

    figure = plot_trials({"a": run([1.0, 0.5]), "b": run([2.0, math.inf, math.nan])},
                         "val_loss", best="a")
    (a, b) = figure.axes[0].lines
    assert a.get_label() == "best: a" and list(a.get_ydata()) == [1.0, 0.5]
    assert list(b.get_xdata()) == [1] and b.get_linewidth() < a.get_linewidth()
    with pytest.raises(ValueError, match="no run has a finite 'val_loss'"):
        plot_trials({"b": run([math.nan])}, "val_loss")
    plt.close("all")
