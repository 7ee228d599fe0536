"""Plots of training runs and of classification results, drawn with matplotlib.

* ``plot_history``: one panel per metric against the epoch; per run, the training curve is
  solid and the validation curve dashed, in the same color.
* ``plot_steps``: the loss (and the learning rate) at every optimizer step, on a log scale.
* ``plot_lr_curves``: learning-rate schedules, one small panel each.
* ``plot_trials``: one validation metric against the epoch for many runs (the trials of a
  hyperparameter search, ``minigrad.tune``), the best one drawn thick and on top.
* ``plot_confusion_matrix``: the matrix as an image with the count in every cell.
* ``plot_trajectories``: optimizer paths over the contour lines of 2-D functions.
* ``plot_histograms``: the distributions of several arrays (weights, activations) overlaid.
* ``plot_tradeoff``: y against x for several methods (accuracy vs sparsity, vs bits, vs
  temperature...), optionally on a log x axis.

A run is anything with the attributes of ``minigrad.train.History``: ``epochs``, a list of
dicts with "epoch" (1-based), "train_loss", optionally "val_loss", and "train_m" / "val_m"
for each metric m; and ``steps``, a list of dicts with "step", "loss" and "lr". Functions take
one run, or a dict {label: run} to compare several.

Every function returns the Figure (a notebook shows it); with ``path`` it also writes a PNG
there, creating the folder (``save_png``, which a figure drawn by hand can use too).
"""

import os

import matplotlib

matplotlib.use("Agg")  # write PNG files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullLocator  # noqa: E402

from minigrad.tensor import Tensor  # noqa: E402

# Above this many classes, numbers in the cells of a confusion matrix are too small to read.
MAX_CLASSES_WITH_CELL_TEXT = 30
# Above this many runs, plot_trials names only the best one: the legend would hide the plot.
MAX_TRIALS_IN_LEGEND = 12


def _labelled_runs(histories):
    """[(label, run)]: label None for a single run, the dict key for each run of a dict."""
    if isinstance(histories, dict):
        if not histories:
            raise ValueError("plot: the dict of histories is empty")
        return list(histories.items())
    if not hasattr(histories, "epochs") or not hasattr(histories, "steps"):
        raise TypeError(f"plot: expected a History (with .epochs and .steps) or a dict "
                        f"{{label: History}}, got {type(histories).__name__}")
    return [(None, histories)]


def _series(records, x_key, y_key):
    """The points (x, y) of the records that have a value for ``y_key``."""
    points = [(record[x_key], record[y_key]) for record in records
              if record.get(y_key) is not None]
    return [x for x, _ in points], [y for _, y in points]


def save_png(figure, path):
    """Write ``figure`` as a PNG at ``path`` (if given), creating the folder, and close it;
    returns the Figure. The plots below end with it, and so can a lesson's own figure."""
    if path is None:
        return figure
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    # Saved figures leave pyplot's list of open figures, so a training loop that plots every
    # epoch does not pile them up; the returned Figure stays usable.
    plt.close(figure)
    return figure


def plot_history(histories, metrics=("loss", "accuracy"), path=None, title=None,
                 val_label="val"):
    """One panel per metric (x = epoch): train solid, validation dashed, one color per run.
    ``val_label`` names the dashed curves in the legend ("test" when the validation loader
    held the test set).

    Metrics that no run recorded are skipped; ValueError if none is left.
    """
    runs = _labelled_runs(histories)
    recorded = {key for _, run in runs for record in run.epochs for key in record}
    present = [metric for metric in metrics
               if f"train_{metric}" in recorded or f"val_{metric}" in recorded]
    if not present:
        raise ValueError(f"plot_history: none of the metrics {list(metrics)} was recorded; "
                         f"the epochs have the keys {sorted(recorded)}")

    figure, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 4), squeeze=False)
    for axis, metric in zip(axes[0], present):
        for index, (label, run) in enumerate(runs):
            for split, name, linestyle in (("train", "train", "-"), ("val", val_label, "--")):
                epochs, values = _series(run.epochs, "epoch", f"{split}_{metric}")
                if epochs:
                    axis.plot(epochs, values, linestyle=linestyle, color=f"C{index}",
                              marker="." if len(epochs) < 30 else None,
                              label=name if label is None else f"{label} ({name})")
        axis.set(title=metric, xlabel="epoch", ylabel=metric)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        axis.grid(alpha=0.3)
    # One legend, beside the last panel, where it cannot cover a curve.
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return save_png(figure, path)


def plot_steps(histories, path=None, title=None, with_lr=False, smooth=1):
    """The training loss at every optimizer step (log y), one line per run; ``with_lr`` adds a
    second panel with the learning rate each step used. ``smooth`` > 1 draws the loss as a
    moving average over that many steps (mini-batch losses are noisy)."""
    runs = _labelled_runs(histories)
    keys = ("loss", "lr") if with_lr else ("loss",)
    figure, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for index, (label, run) in enumerate(runs):
            steps, values = _series(run.steps, "step", key)
            if key == "loss" and smooth > 1 and len(values) >= smooth:
                values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
                steps = steps[smooth - 1:]
            if steps:
                axis.plot(steps, values, color=f"C{index}", linewidth=1,
                          label="train" if label is None else label)
        if not axis.lines:
            plt.close(figure)
            raise ValueError(f"plot_steps: no run has recorded the {key} of its steps")
        axis.set(yscale="log", xlabel="step", ylabel=key)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    axes[0][0].set_title(title or "loss per step")
    figure.tight_layout()
    return save_png(figure, path)


def plot_lr_curves(curves, path=None, title=None, columns=4):
    """One small panel per schedule: {name: learning rates at steps 0, 1, ...}."""
    rows = -(-len(curves) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows),
                                squeeze=False, sharex=True)
    for index, (axis, (name, lrs)) in enumerate(zip(axes.flat, curves.items())):
        axis.plot(np.arange(len(lrs)), lrs, color=f"C{index % 10}", linewidth=1.3)
        axis.set_title(name, fontsize=9)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.tick_params(labelbottom=True)  # sharex would label only the bottom row
        axis.set_xlabel("step", fontsize=8)
    for axis in axes.flat[len(curves):]:
        axis.set_visible(False)
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return save_png(figure, path)


def plot_trials(histories, metric="val_accuracy", best=None, path=None, title=None):
    """``metric`` (an epoch key such as "val_accuracy" or "val_loss") against the epoch, one
    thin line per run; the run labelled ``best`` is drawn thick, in black, on top. Non-finite
    values (a diverged run) are left out. With more than ``MAX_TRIALS_IN_LEGEND`` runs only the
    best one is named in the legend."""
    runs = _labelled_runs(histories)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    named = len(runs) <= MAX_TRIALS_IN_LEGEND
    for index, (label, run) in enumerate(runs):
        epochs, values = _series(run.epochs, "epoch", metric)
        points = [(x, y) for x, y in zip(epochs, values) if np.isfinite(y)]
        if not points:
            continue
        is_best = best is not None and label == best
        axis.plot(*zip(*points), color="black" if is_best else f"C{index % 10}",
                  linewidth=2.5 if is_best else 1.0, alpha=1.0 if is_best else 0.6,
                  zorder=3 if is_best else 2, marker="." if len(points) < 30 else None,
                  label=f"best: {label}" if is_best else (label if named else None))
    if not axis.lines:
        plt.close(figure)
        raise ValueError(f"plot_trials: no run has a finite {metric!r} to plot")
    axis.set(xlabel="epoch", ylabel=metric, title=title or f"{metric} of each trial")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    if any(line.get_label() and not line.get_label().startswith("_") for line in axis.lines):
        axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    figure.tight_layout()
    return save_png(figure, path)


def _row_normalized(matrix):
    """Each row divided by its sum (the share of each true class given each prediction)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals != 0)


def plot_confusion_matrix(matrix, class_names=None, path=None, normalize=False):
    """The confusion matrix (rows = true class, columns = predicted) as an image.

    Cells show the counts, or with ``normalize=True`` each row as fractions of its sum (so the
    diagonal holds the recall of each class).
    """
    matrix = matrix.numpy() if isinstance(matrix, Tensor) else np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (C, C) matrix, got shape "
                         f"{matrix.shape}")
    num_classes = matrix.shape[0]
    if class_names is None:
        class_names = [str(k) for k in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"plot_confusion_matrix: {len(class_names)} class names for a matrix "
                         f"of shape {matrix.shape}")
    values = _row_normalized(matrix) if normalize else matrix

    size = 2 + 0.5 * min(num_classes, MAX_CLASSES_WITH_CELL_TEXT)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    figure.colorbar(image, ax=axis)
    axis.set(xticks=range(num_classes), yticks=range(num_classes), xlabel="predicted",
             ylabel="true", title="confusion matrix" + (" (row-normalized)" if normalize else ""))
    axis.set_xticklabels(class_names, rotation=90 if max(map(len, class_names)) > 3 else 0)
    axis.set_yticklabels(class_names)
    if num_classes <= MAX_CLASSES_WITH_CELL_TEXT:
        integers = np.issubdtype(values.dtype, np.integer)
        _write_cell_values(axis, values, "{:d}" if integers else "{:.2f}")
    figure.tight_layout()
    return save_png(figure, path)


def _write_cell_values(axis, values, template):
    """Write each value in its cell, white on dark cells so it stays readable."""
    dark = values > (values.max() / 2 if values.size else 0)
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, template.format(value.item()), ha="center", va="center",
                  color="white" if dark[row, column] else "black", fontsize=9)


def plot_trajectories(panels, path=None):
    """Optimizer paths over the contour lines of 2-D functions, one panel per function.

    ``panels``: a list of (title, f, paths, minimum) where ``f(points)`` maps an array of
    points (..., 2) to the values (...), ``paths`` is {label: array (steps + 1, 2)} and
    ``minimum`` the point to mark. The view covers the paths' starts, the minimum and most of
    every path (a diverging path is clipped); contour levels are spaced logarithmically, so the
    valley floor stays visible.
    """
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    for axis, (title, f, paths, minimum) in zip(axes[0], panels):
        points = np.concatenate([p[np.isfinite(p).all(axis=1)] for p in paths.values()] +
                                [np.asarray(minimum)[None]])
        low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
        margin = 0.15 * (high - low) + 0.1
        x, y = np.meshgrid(np.linspace(low[0] - margin[0], high[0] + margin[0], 200),
                           np.linspace(low[1] - margin[1], high[1] + margin[1], 200))
        values = f(np.stack([x, y], axis=-1))
        levels = np.geomspace(max(values.min(), 1e-3 * values.max()) + 1e-12, values.max(), 20)
        axis.contour(x, y, values, levels=levels, colors="0.75", linewidths=0.7)
        for index, (label, trail) in enumerate(paths.items()):
            axis.plot(trail[:, 0], trail[:, 1], color=f"C{index}", linewidth=1.2,
                      marker="." if len(trail) < 60 else None, markersize=3, label=label)
        axis.plot(*minimum, marker="*", color="k", markersize=12, linestyle="none",
                  label="minimum")
        axis.set(title=title, xlabel="$w_1$", ylabel="$w_2$", xlim=(x.min(), x.max()),
                 ylim=(y.min(), y.max()))
        axis.legend(fontsize=8, framealpha=0.8)
    figure.tight_layout()
    return save_png(figure, path)


def plot_histograms(arrays, path=None, xlabel="value", title=None, bins=120, log=True):
    """Histograms of {label: array} on shared bins (covering 99.9% of every array's
    magnitudes), drawn as outlines so they can overlap; a log count axis by default, where a
    spike at 0 and long tails both show."""
    arrays = {label: np.ravel(np.asarray(values)) for label, values in arrays.items()}
    limit = max(np.percentile(np.abs(values), 99.9) for values in arrays.values())
    edges = np.linspace(-limit, limit, bins + 1)
    figure, axis = plt.subplots(figsize=(7, 4))
    for index, (label, values) in enumerate(arrays.items()):
        axis.hist(values, bins=edges, histtype="step", color=f"C{index}", linewidth=1.2,
                  label=label)
    axis.set(yscale="log" if log else "linear", xlabel=xlabel, ylabel="count", title=title)
    axis.legend()
    figure.tight_layout()
    return save_png(figure, path)


def plot_tradeoff(curves, xlabel, ylabel, path=None, title=None, percent_x=False,
                  log_x=False, xticks=None):
    """Trade-off curves, {label: [(x, y), ...]}, one line with markers each: accuracy against
    sparsity, against bits, against model size, against temperature... A point given as
    (x, y, name) has its name written beside it (a stage, a bit width). ``percent_x`` labels
    x as percentages; ``log_x`` uses a logarithmic x axis; ``xticks``: the x values to label
    (say the temperatures tried), written as plain numbers even on a log axis."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    scale = 100 if percent_x else 1
    for index, (label, points) in enumerate(curves.items()):
        x, y = np.asarray([p[0] for p in points]) * scale, [p[1] for p in points]
        color = f"C{index % 10}"
        axis.plot(x, y, marker="o", markersize=4, color=color, label=label)
        for position, (px, py, point) in enumerate(zip(x, y, points)):
            if len(point) > 2:  # names alternate above and below, so neighbours do not collide
                above = (index + position) % 2 == 0
                axis.annotate(str(point[2]), (px, py), textcoords="offset points",
                              xytext=(4, 5 if above else -11), fontsize=7, color=color,
                              bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                                    "alpha": 0.8})
    axis.set(xlabel=xlabel + (" (%)" if percent_x else ""), ylabel=ylabel, title=title)
    if log_x:
        axis.set_xscale("log")
    if xticks is not None:
        axis.set_xticks([t * scale for t in xticks], [f"{t * scale:g}" for t in xticks])
        axis.xaxis.set_minor_locator(NullLocator())
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_png(figure, path)


def plot_quantization_levels(values, levels, path=None, title=None, bins=200, log=True):
    """The histogram of ``values`` (a layer's weights) once per panel, with the levels of one
    quantizer drawn on it as vertical lines: {label: levels}. Shows where each grid spends its
    codes: evenly spaced, crowded near zero (powers of two), or where the weights are
    (k-means)."""
    values = np.ravel(np.asarray(values))
    figure, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 3.8), squeeze=False,
                                sharey=True)
    for index, (axis, (label, grid)) in enumerate(zip(axes[0], levels.items())):
        axis.hist(values, bins=bins, color="0.6")
        for level in np.ravel(np.asarray(grid)):
            axis.axvline(level, color=f"C{index}", linewidth=0.8)
        axis.set(title=f"{label}: {np.size(grid)} levels", xlabel="value",
                 yscale="log" if log else "linear")
    axes[0][0].set_ylabel("count")
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return save_png(figure, path)
