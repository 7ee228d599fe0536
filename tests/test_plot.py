"""Plots: the figures have the panels, curves and labels expected, metrics no run recorded are
skipped, and PNG files are written (folders created)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import minigrad as mg
from minigrad.plot import (plot_confusion_matrix, plot_histograms, plot_history, plot_lr_curves,
                           plot_steps, plot_tradeoff, plot_trajectories)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class StandInHistory:
    """The attributes of minigrad.train.History that the plots read."""

    def __init__(self, num_epochs=3, validation=True, metric="accuracy", steps_per_epoch=4):
        self.epochs, self.steps = [], []
        for epoch in range(1, num_epochs + 1):
            record = {"epoch": epoch, "seconds": 0.1, "train_loss": 1 / epoch,
                      f"train_{metric}": 1 - 1 / (epoch + 1)}
            if validation:
                record.update({"val_loss": 1.2 / epoch, f"val_{metric}": 1 - 1.2 / (epoch + 1)})
            self.epochs.append(record)
        for step in range(num_epochs * steps_per_epoch):
            self.steps.append({"step": step, "loss": 2.0 / (step + 1), "lr": 0.1})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line_labels(axis):
    return [line.get_label() for line in axis.lines]


def test_single_history_has_train_solid_and_validation_dashed():
    figure = plot_history(StandInHistory(), title="run 1")
    loss, accuracy = figure.axes
    assert loss.get_title() == "loss" and accuracy.get_title() == "accuracy"
    assert line_labels(loss) == ["train", "val"] and loss.get_xlabel() == "epoch"
    train, val = loss.lines
    assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
    assert train.get_color() == val.get_color()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    assert figure.texts[0].get_text() == "run 1"  # suptitle


def test_labelled_runs_get_one_color_each():
    runs = {"sgd": StandInHistory(), "adam": StandInHistory(validation=False)}
    figure = plot_history(runs, metrics=("loss",))
    (axis,) = figure.axes
    assert line_labels(axis) == ["sgd (train)", "sgd (val)", "adam (train)"]
    colors = [line.get_color() for line in axis.lines]
    assert colors[0] == colors[1] != colors[2]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == line_labels(axis)


def test_the_dashed_curves_can_be_named_test_and_epoch_ticks_are_whole():
    runs = {"sgd": StandInHistory(num_epochs=7)}
    (axis,) = plot_history(runs, metrics=("loss",), val_label="test").axes
    assert line_labels(axis) == ["sgd (train)", "sgd (test)"]
    ticks = [t for t in axis.get_xticks() if 1 <= t <= 7]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_metrics_no_run_recorded_are_skipped():
    runs = {"a": StandInHistory(metric="accuracy"), "b": StandInHistory(metric="f1")}
    figure = plot_history(runs, metrics=("loss", "top5", "f1"))
    assert [axis.get_title() for axis in figure.axes] == ["loss", "f1"]
    assert line_labels(figure.axes[1]) == ["b (train)", "b (val)"]
    with pytest.raises(ValueError, match=r"none of the metrics \['top5'\] was recorded"):
        plot_history(StandInHistory(), metrics=("top5",))


def test_plot_history_writes_a_png_creating_the_folder(tmp_path):
    path = tmp_path / "runs" / "deep" / "history.png"
    figure = plot_history(StandInHistory(), path=path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert len(figure.axes) == 2  # still usable after saving


def test_plot_steps_uses_a_log_scale_and_one_line_per_run(tmp_path):
    figure = plot_steps({"a": StandInHistory(), "b": StandInHistory(steps_per_epoch=2)},
                        path=tmp_path / "steps.png")
    (axis,) = figure.axes
    assert axis.get_yscale() == "log" and axis.get_xlabel() == "step"
    assert line_labels(axis) == ["a", "b"] and len(axis.lines[1].get_xdata()) == 6
    assert (tmp_path / "steps.png").read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="no run has recorded the loss of its steps"):
        plot_steps(StandInHistory(num_epochs=0))


def test_confusion_matrix_writes_counts_in_cells(tmp_path):
    matrix = np.array([[5, 1], [0, 3]])
    figure = plot_confusion_matrix(mg.tensor(matrix), class_names=["cat", "dog"],
                                   path=tmp_path / "matrix.png")
    axis = figure.axes[0]
    assert [text.get_text() for text in axis.texts] == ["5", "1", "0", "3"]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["cat", "dog"]
    assert axis.get_xlabel() == "predicted" and axis.get_ylabel() == "true"
    assert (tmp_path / "matrix.png").read_bytes().startswith(PNG_SIGNATURE)


def test_normalized_confusion_matrix_shows_row_fractions():
    figure = plot_confusion_matrix([[3, 1], [0, 0]], normalize=True)
    assert [text.get_text() for text in figure.axes[0].texts] == ["0.75", "0.25", "0.00", "0.00"]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"square \(C, C\) matrix, got shape \(2, 3\)"):
        plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 class names for a matrix of shape \\(2, 2\\)"):
        plot_confusion_matrix(np.eye(2), class_names=["a", "b", "c"])
    with pytest.raises(TypeError, match="expected a History"):
        plot_history([1, 2])


def test_plot_steps_smooths_the_loss_and_adds_the_learning_rate():
    figure = plot_steps(StandInHistory(), with_lr=True, smooth=4)
    loss_axis, lr_axis = figure.axes
    steps, losses = loss_axis.lines[0].get_xdata(), loss_axis.lines[0].get_ydata()
    raw = 2.0 / (np.arange(12) + 1)
    np.testing.assert_allclose(losses, np.convolve(raw, np.ones(4) / 4, mode="valid"))
    assert list(steps) == list(range(3, 12))  # each mean drawn at its window's last step
    assert lr_axis.get_ylabel() == "lr" and list(lr_axis.lines[0].get_ydata()) == [0.1] * 12


def test_plot_lr_curves_draws_one_panel_per_schedule_and_hides_the_rest(tmp_path):
    curves = {"constant": np.full(10, 0.1), "halving": 0.1 * 0.5 ** np.arange(10),
              "linear": np.linspace(0.1, 0, 10)}
    figure = plot_lr_curves(curves, path=tmp_path / "lr.png", columns=2)
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == list(curves)
    assert len(figure.axes) == 4 and not figure.axes[3].get_visible()
    np.testing.assert_allclose(visible[1].lines[0].get_ydata(), curves["halving"])
    assert (tmp_path / "lr.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_trajectories_draws_paths_over_contours_and_clips_a_diverging_one():
    def bowl(points):
        return (points ** 2).sum(axis=-1)
    paths = {"converging": np.array([[2.0, 1.0], [1.0, 0.5], [0.0, 0.0]]),
             "diverging": np.array([[2.0, 1.0], [5.0, 3.0], [np.inf, np.nan]])}
    figure = plot_trajectories([("bowl", bowl, paths, np.zeros(2))])
    (axis,) = figure.axes
    assert axis.get_title() == "bowl"
    assert line_labels(axis) == ["converging", "diverging", "minimum"]
    low, high = axis.get_xlim()
    assert low < 0 < 2 < high and np.isfinite(high)


def test_plot_histograms_share_bins_on_a_log_axis():
    rng = np.random.default_rng(0)
    figure = plot_histograms({"wide": rng.normal(0, 1, 1000), "narrow": rng.normal(0, 0.1, 1000)},
                             bins=30)
    (axis,) = figure.axes
    assert axis.get_yscale() == "log"
    wide, narrow = axis.patches
    assert wide.get_label() == "wide" and narrow.get_label() == "narrow"
    # the same 31 edges for both outlines: identical x extents
    np.testing.assert_allclose(wide.get_xy()[:, 0].min(), narrow.get_xy()[:, 0].min())
    np.testing.assert_allclose(wide.get_xy()[:, 0].max(), narrow.get_xy()[:, 0].max())


def test_plot_tradeoff_draws_one_line_per_method_on_a_linear_or_log_x_axis():
    curves = {"a": [(1, 0.9), (4, 0.95), (20, 0.93)], "b": [(1, 0.8), (20, 0.85)]}
    (axis,) = plot_tradeoff(curves, "T", "accuracy").axes
    assert axis.get_xscale() == "linear" and line_labels(axis) == ["a", "b"]
    (axis,) = plot_tradeoff(curves, "T", "accuracy", log_x=True).axes
    assert axis.get_xscale() == "log"


def test_plot_tradeoff_names_the_points_given_a_name_and_labels_the_chosen_ticks():
    curves = {"stages": [(246824, 0.98, "dense"), (6307, 0.97, "Huffman")],
              "sweep": [(0.5, 0.9), (0.9, 0.8)]}
    (axis,) = plot_tradeoff({"stages": curves["stages"]}, "bytes", "accuracy", log_x=True).axes
    assert [(text.get_text(), text.xy) for text in axis.texts] == [
        ("dense", (246824, 0.98)), ("Huffman", (6307, 0.97))]
    (axis,) = plot_tradeoff({"sweep": curves["sweep"]}, "kept", "accuracy", percent_x=True,
                            xticks=(0.5, 0.9)).axes
    assert len(axis.texts) == 0 and list(axis.get_xticks()) == [50, 90]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["50", "90"]
