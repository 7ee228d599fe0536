"""Lessons run end to end and reach the numbers they teach."""

import os
import runpy

import pytest

LESSONS = os.path.join(os.path.dirname(__file__), os.pardir, "lessons")


def load_lesson(filename):
    """A lesson's globals (its file name starts with a digit, so it cannot be imported)."""
    return runpy.run_path(os.path.join(LESSONS, filename), run_name="lesson")


def test_lesson_01_gradient_descent_reaches_the_least_squares_line(tmp_path, capsys):
    lesson = load_lesson("01_autograd_and_gradient_descent.py")
    result = lesson["main"](["--quick", "--out", str(tmp_path)])

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

    for path in result["plots"]:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "least squares" in capsys.readouterr().out


def test_lesson_02_quick_run_trains_and_saves_its_plots(tmp_path, capsys):
    lesson = load_lesson("02_lenet5_mnist.py")
    result = lesson["main"](["--quick", "--no-progress", "--out", str(tmp_path)])
    history = result["history"]
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    assert history.epochs[1]["train_loss"] < history.epochs[0]["train_loss"]
    assert result["test_accuracy"] >= 0.8  # 2 epochs on 3,000 images
    assert result["confusion"].sum() == 2000
    for path in result["plots"]:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "test acc" in capsys.readouterr().out


@pytest.mark.slow
def test_lesson_02_lenet5_reaches_97_percent_on_the_bundled_subset(tmp_path):
    lesson = load_lesson("02_lenet5_mnist.py")
    result = lesson["main"](["--epochs", "5", "--no-progress", "--out", str(tmp_path)])
    assert result["test_accuracy"] >= 0.97
