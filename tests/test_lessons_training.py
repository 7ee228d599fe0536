"""Lessons 01-06 (autograd to choosing an optimizer) run end to end and reach the numbers
they teach."""

import numpy as np
import pytest

from minigrad.data import DataLoader
from minigrad.train import evaluate

from lesson_runs import assert_pngs, load_lesson, run_quick


def test_lesson_01_gradient_descent_reaches_the_least_squares_line(tmp_path, capsys):
    result = run_quick("01_autograd_and_gradient_descent.py", tmp_path, capsys,
                       ["== autograd:", "== least squares:", "== gradient descent:",
                        "least squares: w ="])

    assert result["autograd"] == pytest.approx(result["by_hand"], rel=1e-5)
    exact_w, exact_b = result["exact"]
    assert exact_w == pytest.approx(1.5, abs=0.1) and exact_b == pytest.approx(4.0, abs=0.2)
    rows = {lr: (steps, loss, w, b) for lr, steps, loss, w, b in result["rows"]}
    learning_rates = sorted(rows)
    stable_fast = rows[learning_rates[2]]  # 0.95 x the stability limit
    assert stable_fast[2] == pytest.approx(exact_w, abs=1e-4)
    assert stable_fast[3] == pytest.approx(exact_b, abs=1e-4)
    assert stable_fast[1] == pytest.approx(result["best_loss"], rel=1e-5)
    diverging = rows[learning_rates[3]]  # 1.05 x the stability limit
    assert diverging[0] < 600 and diverging[1] > 1e6 * result["best_loss"]

    # the post-accumulate hooks recorded each parameter's gradient norm once per step
    for lr, (steps, *_) in rows.items():
        for name in ("w", "b"):
            norms = np.array(result["grad_norms"][lr][name])
            assert len(norms) == steps and np.all(np.isfinite(norms)) and np.all(norms > 0)
    converging, diverging_norms = (result["grad_norms"][learning_rates[i]]["w"] for i in (2, 3))
    assert converging[-1] < 1e-4 * converging[0] and diverging_norms[-1] > 1e3 * diverging_norms[0]
    assert result["plots"][3].endswith("grad_norms.png")
    assert_pngs(result["plots"])


def test_lesson_01_seed_draws_other_points(tmp_path):
    main = load_lesson("01_autograd_and_gradient_descent.py")["main"]
    runs = [main(["--quick", "--seed", seed, "--out", str(tmp_path / seed)]) for seed in ("0", "1")]
    assert runs[0]["exact"] != runs[1]["exact"]
    for result in runs:  # other noise, the same line underneath
        assert result["exact"][0] == pytest.approx(1.5, abs=0.15)


@pytest.mark.slow
def test_lesson_02_quick_run_trains_and_saves_its_plots(tmp_path, capsys):
    result = run_quick("02_lenet5_mnist.py", tmp_path, capsys,
                       ["== training: LeNet-5", "(3,000 images, 2 epochs)", "== confusion matrix:",
                        "test accuracy"], "--no-progress")
    history = result["history"]
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    assert history.epochs[1]["train_loss"] < history.epochs[0]["train_loss"]
    assert result["test_accuracy"] >= 0.8  # 2 epochs on 3,000 images
    assert result["confusion"].sum() == 2000
    assert_pngs(result["plots"])


@pytest.mark.slow
def test_lesson_02_lenet5_reaches_97_percent_on_the_bundled_subset(tmp_path):
    lesson = load_lesson("02_lenet5_mnist.py")
    result = lesson["main"](["--epochs", "5", "--no-progress", "--out", str(tmp_path)])
    assert result["test_accuracy"] >= 0.97


@pytest.mark.slow
def test_lesson_03_each_update_rule_reaches_the_minima_it_should(tmp_path, capsys):
    result = run_quick("03_gradient_descent_family.py", tmp_path, capsys,
                       ["== part A:", "== part B:", "(3,000 images, 1 epoch)", "steps to 0.05"],
                       "--no-progress")
    part_a = {(problem, name): (reached, distance)
              for problem, name, _, reached, distance, _ in result["part_a"]}
    deterministic = ["GD", "momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
    for name in deterministic:  # 150 steps on the quadratic are enough for every rule...
        assert part_a["quadratic", name][0] is not None, name
    # ...but mini-batch noise keeps SGD bouncing around the minimum at a fixed learning rate.
    assert part_a["quadratic", "SGD (batch 8)"][1] > 100 * part_a["quadratic", "GD"][1]
    assert part_a["quadratic", "Nesterov"][0] < part_a["quadratic", "GD"][0]
    # Rosenbrock's valley: GD at its stability limit crawls, momentum and Adam get there.
    assert part_a["rosenbrock", "GD"][0] is None and part_a["rosenbrock", "GD"][1] > 1
    for name in ("momentum", "Nesterov", "Adam"):
        assert part_a["rosenbrock", name][0] is not None, name

    part_b = {name: (steps, loss, accuracy) for name, _, steps, loss, accuracy, _ in
              result["part_b"]}
    assert part_b["GD (full batch)"][0] == 1 and part_b["SGD"][0] == 47  # 3,000 images, 1 epoch
    for name in ("momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"):
        assert part_b[name][1] < part_b["SGD"][1], name  # faster than plain SGD
        assert part_b[name][2] >= 0.8, name
    assert_pngs(result["plots"])


@pytest.mark.slow
def test_lesson_04_schedules_follow_their_formulas_and_decay_beats_a_constant_rate(
        tmp_path, capsys):
    result = run_quick("04_learning_rate_schedules.py", tmp_path, capsys,
                       ["== part A:", "== part B:", "(3,000 images, 4 epochs)", "scheduler",
                        "last lr"], "--no-progress")
    curves, t = result["curves"], np.arange(100)
    assert len(curves) == 14
    np.testing.assert_allclose(curves["ExponentialLR(0.96)"], 0.1 * 0.96 ** t, rtol=1e-6)
    np.testing.assert_allclose(curves["InverseTimeLR(0.1)"], 0.1 / (1 + 0.1 * t), rtol=1e-6)
    np.testing.assert_allclose(curves["CosineAnnealingLR"],
                               0.05 * (1 + np.cos(np.pi * t / 100)), rtol=1e-6, atol=1e-12)
    assert curves["OneCycleLR"].max() == pytest.approx(0.1) and curves["OneCycleLR"][-1] < 1e-5
    plateau = curves["ReduceLROnPlateau"]  # the loss is flat from step 30: 10 bad steps, cut
    assert plateau[41] == pytest.approx(0.1) and plateau[42] == pytest.approx(0.01)
    assert plateau[-1] == pytest.approx(1e-4)  # min_lr

    rows = {name: (last_lr, loss, accuracy) for name, last_lr, loss, accuracy, _ in
            result["part_b"]}
    assert rows["constant"][0] == 0.1
    for name in ("StepLR", "ExponentialLR", "cosine", "warmup + cosine", "OneCycleLR"):
        assert rows[name][0] < 0.002, name
    for name in ("StepLR", "ExponentialLR", "cosine", "warmup + cosine", "OneCycleLR",
                 "ReduceLROnPlateau"):
        assert rows[name][1] < 0.8 * rows["constant"][1], name  # a lower training loss
        assert rows[name][2] >= rows["constant"][2], name
    # The validation loss rises after epoch 3: the plateau scheduler cuts the lr by 5, and the
    # last epoch trains at the lower rate.
    plateau = result["histories"]["ReduceLROnPlateau"]
    assert plateau.epochs[2]["val_loss"] > plateau.epochs[1]["val_loss"]
    assert {s["lr"] for s in plateau.steps if s["epoch"] <= 3} == {0.1}
    last_epoch = [s["lr"] for s in plateau.steps if s["epoch"] == 4]
    assert last_epoch == pytest.approx([0.02] * len(last_epoch))
    assert_pngs(result["plots"])


@pytest.mark.slow
def test_lesson_05_regularizers_change_the_weights_and_batchnorm_speeds_training(tmp_path, capsys):
    result = run_quick("05_regularization_and_batchnorm.py", tmp_path, capsys,
                       ["== part A:", "(1,000 images, 15 epochs)", "== part B:",
                        "(3,000 images, 2 epochs)", "regularizer", "steps to loss 0.8"],
                       "--no-progress")
    rows = {name: (train_acc, test_acc, gap, zeros, norm)
            for name, train_acc, test_acc, gap, zeros, norm in result["part_a"]}
    assert rows["none"][0] == 1.0 and rows["none"][2] > 0.05  # memorized: a real gap
    assert result["l2_vs_weight_decay"] < 1e-6  # the same update, so the same weights
    assert rows["L2"][4] < 0.95 * rows["none"][4]  # smaller weights
    assert rows["L1"][3] > 5 * rows["none"][3] and rows["L1"][3] > 0.2  # sparse weights
    assert rows["dropout 0.5"][2] < rows["none"][2] / 2  # a smaller train-test gap
    for _, test_acc, *_ in rows.values():
        assert test_acc > 0.85
    part_b = {name: (loss, steps, accuracy) for name, loss, steps, accuracy, _ in
              result["part_b"]}
    for lr in (0.01, 0.2):
        plain, normalized = part_b[f"plain, lr {lr}"], part_b[f"batch norm, lr {lr}"]
        assert normalized[0] < plain[0]  # a lower loss at step 40
        # Batch norm reaches the target loss, and in fewer steps (plain: later, or never).
        assert normalized[1] is not None, lr
        assert plain[1] is None or plain[1] > normalized[1], lr
    assert part_b["plain, lr 0.2"][1] > 2 * part_b["batch norm, lr 0.2"][1]
    assert part_b["batch norm, lr 0.01"][2] > part_b["plain, lr 0.01"][2] + 0.2
    assert_pngs(result["plots"])


@pytest.mark.slow
def test_lesson_06_search_ranks_trials_by_validation_and_reports_the_winner_on_test(
        tmp_path, capsys):
    result = run_quick("06_choosing_an_optimizer.py", tmp_path, capsys,
                       ["== grid search: 6 trials", "== random search: 6 trials",
                        "(3,000 images, 2 epochs)", "== test:", "best of both"],
                       "--no-progress")
    grid, random = result["grid"], result["random"]
    assert len(grid.trials) == 6 and len(random.trials) == 6
    scores = {(t["config"]["optimizer"], t["config"]["lr"]): t["score"] for t in grid.trials}
    assert grid.best_score == max(scores.values())
    assert scores["Adam", 1e-5] < grid.best_score - 0.3  # a far too small rate barely learns
    winner = result["winner"]
    assert winner["score"] == max(grid.best_score, random.best_score)
    # The score is the best epoch's validation accuracy; the returned model is the trained one,
    # as its last epoch left it.
    accuracies = winner["history"].series("val_accuracy")
    assert len(accuracies) == 2 and winner["score"] == max(accuracies)
    validation = evaluate(winner["model"], DataLoader(result["val"], batch_size=500))
    assert validation["accuracy"] == pytest.approx(accuracies[-1])
    assert result["test_accuracy"] > 0.85
    assert len(result["plots"]) == 4  # per search: the curves, and the score against the lr
    assert_pngs(result["plots"])
