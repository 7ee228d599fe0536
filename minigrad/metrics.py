"""Classification metrics: accuracy, confusion matrix, precision / recall / F1, prediction entropy.

Every function takes minigrad Tensors or NumPy arrays and returns NumPy values (nothing here
tracks gradients). ``targets`` are class indices of shape (n,). ``predictions`` are either
class indices of shape (n,) or scores of shape (n, C) (logits or probabilities), whose
predicted class is the argmax over the last axis.

With the confusion matrix M, M[i, j] = number of samples of true class i predicted as class j
(rows = truth, columns = prediction, as in scikit-learn):

    accuracy    = sum_k M[k, k] / sum_ij M[i, j]
    precision_k = M[k, k] / sum_i M[i, k]     (of the samples predicted k, the share that are k)
    recall_k    = M[k, k] / sum_j M[k, j]     (of the samples of class k, the share found)
    f1_k        = 2 precision_k recall_k / (precision_k + recall_k)

A ratio whose denominator is 0 counts as 0 (scikit-learn's ``zero_division=0``). The macro
average is the unweighted mean over the classes that occur in the targets or the predictions
(scikit-learn's default label set), so a class absent from both does not pull it down.

The entropy of a prediction p = softmax(z) is H = -sum_k p_k log p_k (nats). It is computed as
H = logsumexp(z) - sum_k p_k z_k with the max subtracted first, so no exp overflows and no
log(0) is taken.
"""

import numpy as np

from minigrad.tensor import Tensor

AVERAGES = ("macro", None)


def _as_numpy(value):
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _predicted_and_true_classes(predictions, targets, name):
    """Both as 1-D integer arrays of equal length (argmax taken for (n, C) scores)."""
    predictions, targets = _as_numpy(predictions), _as_numpy(targets)
    if targets.ndim != 1 or predictions.ndim not in (1, 2) or len(predictions) != len(targets):
        raise ValueError(f"{name}: predictions of shape {predictions.shape} do not match targets "
                         f"of shape {targets.shape}; expected (n,) or (n, C) against (n,)")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"{name}: targets must be integer class indices, got dtype "
                        f"{targets.dtype}")
    if predictions.ndim == 2:
        return predictions.argmax(axis=-1), targets
    if not np.issubdtype(predictions.dtype, np.integer):
        raise TypeError(f"{name}: predictions of shape {predictions.shape} must be integer class "
                        f"indices, got dtype {predictions.dtype}; pass (n, C) scores to take "
                        f"the argmax")
    return predictions, targets


def _check_num_classes(predicted, true, num_classes, name):
    """``num_classes``, inferred as the largest class index + 1 when None; labels in range."""
    labels = np.concatenate([predicted, true])
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: class indices must lie in [0, {num_classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return num_classes


def accuracy(predictions, targets):
    """The fraction of samples whose predicted class equals the target, as a float."""
    predicted, true = _predicted_and_true_classes(predictions, targets, "accuracy")
    if true.size == 0:
        raise ValueError("accuracy: no samples (targets of shape (0,))")
    return float(np.mean(predicted == true))


def confusion_matrix(predictions, targets, num_classes=None):
    """The (C, C) int64 matrix M with M[i, j] = number of samples of true class i predicted j.

    ``num_classes`` defaults to C for (n, C) scores, else to the largest class index + 1.
    """
    predictions = _as_numpy(predictions)
    if num_classes is None and predictions.ndim == 2:
        num_classes = predictions.shape[-1]
    predicted, true = _predicted_and_true_classes(predictions, targets, "confusion_matrix")
    num_classes = _check_num_classes(predicted, true, num_classes, "confusion_matrix")
    # Each (true, predicted) pair gets one flat index, so a single bincount counts them all.
    counts = np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _ratio_or_zero(numerator, denominator):
    """numerator / denominator, with 0 where the denominator is 0 (no division warning)."""
    numerator = numerator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator != 0)


def precision_recall_f1(predictions, targets, num_classes=None, average="macro"):
    """Precision, recall and F1 per class (``average=None``) or macro-averaged (the default).

    Returns ``{"precision": ..., "recall": ..., "f1": ...}``: floats for ``"macro"``, float64
    arrays of length C for ``None`` (0 for a class never predicted / never true).
    """
    if average not in AVERAGES:
        raise ValueError(f"precision_recall_f1: average must be one of {AVERAGES}, "
                         f"got {average!r}")
    matrix = confusion_matrix(predictions, targets, num_classes)
    hits = np.diag(matrix)
    predicted_per_class, true_per_class = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = _ratio_or_zero(hits, predicted_per_class)
    recall = _ratio_or_zero(hits, true_per_class)
    f1 = _ratio_or_zero(2 * precision * recall, precision + recall)
    scores = {"precision": precision, "recall": recall, "f1": f1}
    if average is None:
        return scores
    occurring = (predicted_per_class + true_per_class) > 0
    if not occurring.any():
        raise ValueError("precision_recall_f1: no samples to average over")
    return {name: float(per_class[occurring].mean()) for name, per_class in scores.items()}


def prediction_entropy(logits):
    """Mean entropy (nats) of softmax(logits) over the last axis: H = -sum_k p_k log p_k.

    0 for a confident prediction, log C for a uniform one over C classes. ``logits`` has
    shape (..., C); the mean is taken over all the leading axes.
    """
    logits = _as_numpy(logits).astype(np.float64)
    if logits.ndim == 0 or logits.size == 0:
        raise ValueError(f"prediction_entropy: logits must have shape (..., C) with C >= 1 and "
                         f"at least one sample, got shape {logits.shape}")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    probabilities = exp / total
    # H = logsumexp(z) - sum_k p_k z_k; with the max subtracted, logsumexp = log(total) >= 0.
    # The product is skipped where p_k = 0, so a logit of -inf contributes 0, not nan.
    weighted = np.multiply(probabilities, shifted, out=np.zeros_like(shifted),
                           where=probabilities > 0)
    entropy = np.log(total[..., 0]) - weighted.sum(axis=-1)
    return float(entropy.mean())
