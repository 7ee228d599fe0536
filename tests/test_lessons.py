"""Lessons run end to end and reach the numbers they teach."""

import os
import runpy

import numpy as np
import pytest

from minigrad.data import DataLoader
from minigrad.train import evaluate

LESSONS = os.path.join(os.path.dirname(__file__), os.pardir, "lessons")


def load_lesson(filename):
    """A lesson's globals (its file name starts with a digit, so it cannot be imported)."""
    return runpy.run_path(os.path.join(LESSONS, filename), run_name="lesson")


def run_quick(filename, tmp_path, capsys, headers, *options):
    """A lesson's ``main(["--quick", *options])``, after checking that its printed output
    holds each of ``headers`` (its tables' column names); returns what main returned."""
    result = load_lesson(filename)["main"](["--quick", *options, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    for header in headers:
        assert header in printed, header
    return result


def assert_pngs(paths):
    for path in paths:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n", path


def test_lesson_01_gradient_descent_reaches_the_least_squares_line(tmp_path, capsys):
    result = run_quick("01_autograd_and_gradient_descent.py", tmp_path, capsys, ["least squares"])

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

    assert_pngs(result["plots"])


def test_lesson_02_quick_run_trains_and_saves_its_plots(tmp_path, capsys):
    result = run_quick("02_lenet5_mnist.py", tmp_path, capsys, ["test acc"], "--no-progress")
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


def test_lesson_03_each_update_rule_reaches_the_minima_it_should(tmp_path, capsys):
    result = run_quick("03_gradient_descent_family.py", tmp_path, capsys,
                       ["steps to 0.05"], "--no-progress")
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


def test_lesson_05_regularizers_change_the_weights_and_batchnorm_speeds_training(tmp_path, capsys):
    result = run_quick("05_regularization_and_batchnorm.py", tmp_path, capsys,
                       ["regularizer", "steps to loss 0.3"], "--no-progress")
    rows = {name: (train_acc, test_acc, gap, zeros, norm)
            for name, train_acc, test_acc, gap, zeros, norm in result["part_a"]}
    assert rows["none"][0] == 1.0 and rows["none"][2] > 0.05  # memorized: a real gap
    assert result["l2_vs_weight_decay"] < 1e-6  # the same update, so the same weights
    assert rows["L2"][4] < 0.95 * rows["none"][4]  # smaller weights
    assert rows["L1"][3] > 5 * rows["none"][3] and rows["L1"][3] > 0.2  # sparse weights
    assert rows["dropout 0.5"][2] < rows["none"][2] / 2  # a smaller train-test gap
    for _, test_acc, *_ in rows.values():
        assert test_acc > 0.85
    part_b = {name: (loss, accuracy) for name, loss, _, accuracy, _ in result["part_b"]}
    for lr in (0.01, 0.2):
        assert part_b[f"batch norm, lr {lr}"][0] < part_b[f"plain, lr {lr}"][0]
    assert part_b["batch norm, lr 0.01"][1] > part_b["plain, lr 0.01"][1] + 0.2
    assert_pngs(result["plots"])


def test_lesson_04_schedules_follow_their_formulas_and_decay_beats_a_constant_rate(
        tmp_path, capsys):
    result = run_quick("04_learning_rate_schedules.py", tmp_path, capsys,
                       ["scheduler", "last lr"], "--no-progress")
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
        assert rows[name][1] < 0.8 * rows["constant"][1], name  # a lower training loss
        assert rows[name][2] >= rows["constant"][2], name
    assert_pngs(result["plots"])


def test_lesson_06_search_ranks_trials_by_validation_and_reports_the_winner_on_test(
        tmp_path, capsys):
    result = run_quick("06_choosing_an_optimizer.py", tmp_path, capsys,
                       ["search:", "best of both"], "--no-progress")
    grid, random = result["grid"], result["random"]
    assert len(grid.trials) == 6 and len(random.trials) == 6
    scores = {(t["config"]["optimizer"], t["config"]["lr"]): t["score"] for t in grid.trials}
    assert grid.best_score == max(scores.values())
    assert scores["Adam", 1e-5] < grid.best_score - 0.3  # a far too small rate barely learns
    winner = result["winner"]
    assert winner["score"] == max(grid.best_score, random.best_score)
    # One epoch: the score is the returned, trained model's accuracy on the validation split.
    validation = evaluate(winner["model"], DataLoader(result["val"], batch_size=500))
    assert validation["accuracy"] == pytest.approx(winner["score"])
    assert result["test_accuracy"] > 0.85
    assert_pngs(result["plots"])


def test_lesson_07_pruning_criteria_schedules_shrink_and_csr(tmp_path, capsys):
    result = run_quick("07_pruning.py", tmp_path, capsys,
                       ["error pruned", "inference us (batch 1)"])
    part_a = {name: (sparsity, pruned, tuned) for name, sparsity, pruned, tuned in
              result["part_a"]}
    for sparsity, _, _ in part_a.values():
        assert sparsity == pytest.approx(0.9, abs=1e-3)
    magnitude, random = part_a["magnitude |w|"], part_a["random"]
    assert magnitude[1] < random[1] - 0.3 and magnitude[2] < random[2] - 0.3
    assert part_a["Taylor |w g|"][1] < random[1] - 0.3

    dense = result["dense_error"]
    for name, sparsity, error in result["part_b"]:
        assert sparsity == pytest.approx(0.92, abs=1e-3), name
        assert error < dense["mlp"] + 0.05, name  # 3,000 images: within 5 points
    no_retraining = dict(result["part_c"]["one shot, no retraining"])
    fine_tuned = dict(result["part_c"]["one shot + 1 epoch fine-tune"])
    assert no_retraining[0.5] < dense["mlp"] + 0.01 < no_retraining[0.99]
    for sparsity in (0.9, 0.95, 0.98, 0.99):
        assert fine_tuned[sparsity] < no_retraining[sparsity]

    assert len(result["part_d"]) == 5
    for points in result["part_d"].values():
        assert points[0] == (0.0, pytest.approx(dense["lenet"]))
    assert result["lenet_pruned_error"] < dense["lenet"] + 0.05
    structured = result["structured"]
    assert structured["params"] == (61706, 35820)
    assert structured["error"] == pytest.approx(structured["error_before_shrink"], abs=1e-3)
    assert result["csr"]["difference"] < 1e-4 and result["csr"]["compression"] > 5
    assert_pngs(result["plots"])


def test_lesson_09_distillation_tables_temperatures_and_the_missing_class(tmp_path, capsys):
    result = run_quick("09_distillation.py", tmp_path, capsys,
                       ["T=20", "loss terms", "predicted 3s"])
    size, teacher = result["test_size"], result["teacher_errors"]
    rows = {name: (params, *errors) for name, params, *errors in result["part_a"]}
    assert rows["teacher CNN (dropout, jitter)"][0] == 220874
    assert rows["800-800 alone"][0] == rows["800-800 distilled (T=20)"][0] == 1276810
    assert rows["30 alone"][0] == rows["30 distilled (T=4)"][0] == 23860
    assert teacher < 0.85 * min(result["errors"]["800-800", "alone"])  # worth copying
    assert np.isfinite(result["gap_closed"])
    for kind, points in result["temperature"].items():
        assert [T for T, _ in points] == [1, 2, 4, 8, 20], kind
        assert all(errors < 0.2 * size for _, errors in points), kind  # all of them learned

    logged = {(kind, method): terms for kind, method, _, terms in result["part_c"]}
    assert len(logged) == 9
    assert logged["800-800", "KD + hint (FitNets)"].startswith("kd_ce")
    assert "hint" in logged["800-800", "KD + hint (FitNets)"]
    assert "similarity" in logged["800-800", "KD + similarity-preserving"]
    assert "attention" in logged["LeNet-5", "KD + attention transfer"]
    assert "logit_mse" in logged["800-800", "logit MSE (Ba & Caruana)"]
    for _, _, errors, _ in result["part_c"]:
        assert errors < 0.2 * size

    removed = result["class_removed"]
    (_, _, errors, on_threes, says_three), (_, shift, fixed_errors, fixed_on_threes, _), _ = \
        removed["rows"]
    # Never shown a 3, the student says "3" too rarely (106 times for 202 3s in the quick
    # run), and misses many of them...
    assert says_three < 0.6 * removed["threes"] and on_threes > 0.4 * removed["threes"]
    # ...until its bias is raised (then 62 misses: the quick run's teacher is weak).
    assert shift > 0 and fixed_on_threes < 0.7 * on_threes and fixed_errors < errors
    assert_pngs(result["plots"])


def test_lesson_08_quantization_ptq_qat_grids_sizes_and_int8_export(tmp_path, capsys):
    result = run_quick("08_quantization.py", tmp_path, capsys,
                       ["activation observer", "distinct values"])
    fp32 = result["fp32"]
    assert fp32 > 0.8  # 1 epoch on 3,000 images
    part_a = {(weights, observer): (int8, act4) for weights, observer, int8, _, act4 in
              result["part_a"][1:]}
    for int8, act4 in part_a.values():
        assert int8 == pytest.approx(fp32, abs=0.015)  # 8 bits cost about nothing
        assert act4 < fp32 + 0.005  # 4-bit activations do
    assert part_a["per channel", "MinMax"][0] == pytest.approx(fp32, abs=0.01)

    curves = {label: dict(points) for label, points in result["part_b"].items()}
    weights_only, both = curves["weights only (8-bit activations)"], curves[
        "weights and activations"]
    assert both[8] == pytest.approx(fp32, abs=0.01)
    assert both[2] < both[8] - 0.2 and weights_only[2] < weights_only[8] - 0.1
    assert weights_only[3] > both[3] and weights_only[2] > both[2]

    part_c = {scheme: (values, error) for scheme, values, error in result["part_c"]}
    assert part_c["uniform, per tensor"][0] <= 15 and part_c["k-means"][0] <= 16
    assert part_c["k-means"][1] < part_c["uniform, per tensor"][1]
    assert part_c["uniform, per channel"][1] < part_c["uniform, per tensor"][1]

    for name, ptq, _, qat, _ in result["part_d"]:
        assert qat > ptq, name
    ptq2, qat2 = next((ptq, qat) for name, ptq, _, qat, _ in result["part_d"]
                      if name.startswith("2-bit"))
    assert qat2 > ptq2 + 0.1  # fake-quantized fine-tuning recovers what 2-bit PTQ lost

    part_e = {(name, bits): (before, tuned) for name, bits, before, tuned in result["part_e"]}
    assert part_e["k-means", 2][0] > part_e["power of two", 2][0]
    assert part_e["k-means", 2][1] > part_e["k-means", 2][0]
    assert part_e["ternary (TWN)", 2][1] > part_e["ternary (TWN)", 2][0]

    sizes = {name: (size, ratio) for name, size, ratio, _ in result["part_f"]}
    assert sizes["fp32"][0] == 61706 * 4
    assert sizes["int8 per channel (PTQ)"][1] <= 0.26
    assert sizes["4-bit weights and activations (PTQ)"][1] < 0.14
    assert sizes["k-means 4-bit weights (fine-tuned)"][1] < 0.14
    assert sizes["float16 weights"][1] == pytest.approx(0.5)
    latency = result["latency"]
    assert latency["identical"] and latency["ratios"]["minigrad"] > 0
    assert_pngs(result["plots"])


def test_lesson_11_deep_compression_counts_every_byte_and_reloads_exactly(tmp_path, capsys):
    result = run_quick("11_deep_compression.py", tmp_path, capsys, ["x smaller"], "--no-progress")
    rows = {name.split(",")[0].split(":")[0]: row for name, *row in result["rows"]}
    dense, pruned = rows["dense"], rows["pruned 92% + fine-tuned"]
    shared = next(row for name, row in rows.items() if name.startswith("+ k-means"))
    reloaded = rows["+ Huffman"]
    # errors, nonzeros, bytes, x smaller, ms batch 1, ms batch 256
    assert dense[1] == 61470 and dense[2] == 61706 * 4
    assert pruned[1] == pytest.approx(0.08 * 61470, abs=2)
    assert dense[0] < 0.1 * result["test_size"]  # 3 epochs on 3,000 images: >= 90%
    assert pruned[0] <= dense[0] + 0.02 * result["test_size"]
    # The reloaded file: the shared model's weights exactly, so the same errors.
    assert reloaded[0] == shared[0] and reloaded[1] == shared[1]
    assert reloaded[2] == os.path.getsize(result["files"]["compressed"])
    assert reloaded[2] < shared[2] < pruned[2] < dense[2]
    assert reloaded[3] > 20
    parts = result["compressed"].nbytes()
    assert sum(parts.values()) == reloaded[2]
    assert parts["plain tensors"] == 4 * (6 + 16 + 120 + 84 + 10)
    for label, points in result["sweep"].items():
        sizes = [size for size, _, _ in points]
        assert sizes == sorted(sizes), label  # more bits, more bytes
    assert_pngs([result["files"]["tradeoff"]])


def test_lesson_12_kernels_match_the_reference_the_profile_and_the_roofline(tmp_path, capsys):
    result = run_quick("12_kernels_and_hardware.py", tmp_path, capsys, [
        "max abs diff", "im2col ms", "% of total", "dominant ops", "roof GFLOP/s"])
    rows = result["part_a"]
    assert {"numpy (reference)", "numba", "numba, own loops"} <= {row[2] for row in rows}
    assert len(rows) >= 3 * 2 * 2 + 2  # 3 convs x 2 passes x 2 sets, + Numba's own loops
    for conv, direction, kernels, ms, gflops, diff, relative in rows:
        assert ms > 0 and gflops > 0, (conv, direction, kernels)
        assert relative < 1e-5, (conv, direction, kernels, diff)  # float32, another order

    for kernels, stats in result["part_b"]["profiles"].items():
        ops = {record.op: record for record in stats}
        assert all(record.calls > 0 for record in stats), kernels
        assert (ops["Conv2d"].calls, ops["Conv2d"].backward_calls) == (2, 2), kernels
        assert (ops["Linear"].calls, ops["ReLU"].calls, ops["MaxPool2d"].calls) == (3, 4, 2)
        assert ops["Conv2d"].total_s > 0, kernels

    roofline = result["part_c"]
    peak, bandwidth = roofline["peak_gflops"], roofline["bandwidth_gbs"]
    assert peak > 0 and bandwidth == max(roofline["copy_gbs"], roofline["add_gbs"]) > 0
    for n, gflops in roofline["matmul_gflops"]:
        assert 0 < gflops <= peak, n  # a median rate never beats the best one
    assert_pngs(result["plots"])
