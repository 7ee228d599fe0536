"""Plots of training runs and of classification results, drawn with matplotlib.

* ``plot_history``: one panel per metric against the epoch; per run, the training curve is
  solid and the validation curve dashed, in the same color.
* ``plot_steps``: the loss at every optimizer step, on a log scale.
* ``plot_confusion_matrix``: the matrix as an image with the count in every cell.

A run is anything with the attributes of ``minigrad.train.History``: ``epochs``, a list of
dicts with "epoch" (1-based), "train_loss", optionally "val_loss", and "train_m" / "val_m"
for each metric m; and ``steps``, a list of dicts with "step", "loss" and "lr". Functions take
one run, or a dict {label: run} to compare several.

Every function returns the Figure (a notebook shows it); with ``path`` it also writes a PNG
there, creating the folder.
"""

import os

import matplotlib

matplotlib.use("Agg")  # write PNG files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minigrad.tensor import Tensor  # noqa: E402

# Above this many classes, numbers in the cells of a confusion matrix are too small to read.
MAX_CLASSES_WITH_CELL_TEXT = 30


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


def _save(figure, path):
    """Write ``figure`` as a PNG at ``path`` (if given), creating the folder."""
    if path is None:
        return figure
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    # Saved figures leave pyplot's list of open figures, so a training loop that plots every
    # epoch does not pile them up; the returned Figure stays usable.
    plt.close(figure)
    return figure


def plot_history(histories, metrics=("loss", "accuracy"), path=None, title=None):
    """One panel per metric (x = epoch): train solid, validation dashed, one color per run.

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
            for split, linestyle in (("train", "-"), ("val", "--")):
                epochs, values = _series(run.epochs, "epoch", f"{split}_{metric}")
                if epochs:
                    axis.plot(epochs, values, linestyle=linestyle, color=f"C{index}",
                              marker="." if len(epochs) < 30 else None,
                              label=split if label is None else f"{label} ({split})")
        axis.set(title=metric, xlabel="epoch", ylabel=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_steps(histories, path=None, title=None):
    """The training loss at every optimizer step (log y), one line per run."""
    runs = _labelled_runs(histories)
    figure, axis = plt.subplots(figsize=(7, 4))
    for index, (label, run) in enumerate(runs):
        steps, losses = _series(run.steps, "step", "loss")
        if steps:
            axis.plot(steps, losses, color=f"C{index}", linewidth=1,
                      label="train" if label is None else label)
    if not axis.lines:
        plt.close(figure)
        raise ValueError("plot_steps: no run has recorded steps")
    axis.set(yscale="log", xlabel="step", ylabel="loss", title=title or "loss per step")
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    figure.tight_layout()
    return _save(figure, path)


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
    axis.set_xticklabels(class_names, rotation=45, ha="right")
    axis.set_yticklabels(class_names)
    if num_classes <= MAX_CLASSES_WITH_CELL_TEXT:
        integers = np.issubdtype(values.dtype, np.integer)
        _write_cell_values(axis, values, "{:d}" if integers else "{:.2f}")
    figure.tight_layout()
    return _save(figure, path)


def _write_cell_values(axis, values, template):
    """Write each value in its cell, white on dark cells so it stays readable."""
    dark = values > (values.max() / 2 if values.size else 0)
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, template.format(value.item()), ha="center", va="center",
                  color="white" if dark[row, column] else "black", fontsize=9)
