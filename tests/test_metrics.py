"""Metrics: hand-computed examples, argmax of scores, zero-division rules, a brute-force check
of macro F1, stable entropy, and errors for mismatched shapes."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.metrics import accuracy, confusion_matrix, precision_recall_f1, prediction_entropy

# 6 samples, 3 classes; hand counts (rows = true, columns = predicted):
#   true 0: predicted 0, 0, 1   true 1: predicted 1, 2   true 2: predicted 2
TARGETS = np.array([0, 0, 0, 1, 1, 2])
PREDICTED = np.array([0, 0, 1, 1, 2, 2])
MATRIX = np.array([[2, 1, 0],
                   [0, 1, 1],
                   [0, 0, 1]])


def test_accuracy_by_hand():
    assert accuracy(PREDICTED, TARGETS) == pytest.approx(4 / 6)
    assert isinstance(accuracy(PREDICTED, TARGETS), float)


def test_scores_are_turned_into_classes_by_argmax_and_tensors_are_accepted():
    logits = np.eye(3, dtype=np.float32)[PREDICTED] * 5.0 - 1.0
    assert accuracy(mg.tensor(logits), mg.tensor(TARGETS)) == pytest.approx(4 / 6)
    assert np.array_equal(confusion_matrix(logits, TARGETS), MATRIX)


def test_confusion_matrix_by_hand():
    matrix = confusion_matrix(PREDICTED, TARGETS)
    assert matrix.dtype == np.int64 and np.array_equal(matrix, MATRIX)
    wider = confusion_matrix(PREDICTED, TARGETS, num_classes=4)
    assert wider.shape == (4, 4) and np.array_equal(wider[:3, :3], MATRIX) and wider[3].sum() == 0


def test_precision_recall_f1_by_hand():
    # precision = diag / column sums = (2/2, 1/2, 1/2); recall = diag / row sums = (2/3, 1/2, 1)
    scores = precision_recall_f1(PREDICTED, TARGETS, average=None)
    f1 = [2 * p * r / (p + r) for p, r in [(1, 2 / 3), (1 / 2, 1 / 2), (1 / 2, 1)]]
    np.testing.assert_allclose(scores["precision"], [1, 0.5, 0.5])
    np.testing.assert_allclose(scores["recall"], [2 / 3, 0.5, 1])
    np.testing.assert_allclose(scores["f1"], f1)
    macro = precision_recall_f1(PREDICTED, TARGETS)
    assert macro == pytest.approx({"precision": 2 / 3, "recall": 13 / 18, "f1": np.mean(f1)})
    assert all(isinstance(value, float) for value in macro.values())


def test_a_class_never_predicted_or_never_true_scores_zero():
    # class 1 is true once and never predicted; class 2 is predicted once and never true
    scores = precision_recall_f1([0, 0, 2], [0, 0, 1], average=None)
    np.testing.assert_array_equal(scores["precision"], [1, 0, 0])
    np.testing.assert_array_equal(scores["recall"], [1, 0, 0])
    np.testing.assert_array_equal(scores["f1"], [1, 0, 0])


def test_macro_average_skips_classes_absent_from_targets_and_predictions():
    per_class = precision_recall_f1([0, 1, 1], [0, 1, 0], num_classes=5, average=None)
    assert len(per_class["f1"]) == 5
    macro = precision_recall_f1([0, 1, 1], [0, 1, 0], num_classes=5)
    assert macro["f1"] == pytest.approx(per_class["f1"][:2].mean())


def brute_force_macro_f1(predicted, true):
    f1s = []
    for k in sorted(set(predicted) | set(true)):
        hits = sum(p == k and t == k for p, t in zip(predicted, true))
        precision = hits / sum(p == k for p in predicted) if k in predicted else 0.0
        recall = hits / sum(t == k for t in true) if k in true else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 6, size=50)
    predicted = np.where(rng.random(50) < 0.5, true, rng.integers(0, 7, size=50))
    expected = brute_force_macro_f1(predicted.tolist(), true.tolist())
    assert precision_recall_f1(predicted, true)["f1"] == pytest.approx(expected)


def test_prediction_entropy():
    assert prediction_entropy(np.zeros((4, 5))) == pytest.approx(math.log(5))  # uniform
    assert prediction_entropy([[0.0, 0.0, -np.inf]]) == pytest.approx(math.log(2))
    # p = (1/2, 1/4, 1/4): H = (1/2) log 2 + 2 (1/4) log 4 = 1.5 log 2; averaged with log 2
    logits = mg.tensor([[math.log(2), 0.0, 0.0], [0.0, 0.0, -np.inf]])
    assert prediction_entropy(logits) == pytest.approx((1.5 * math.log(2) + math.log(2)) / 2)


def test_prediction_entropy_is_stable_for_huge_logits():
    confident = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    assert prediction_entropy(confident) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([[1000.0, 1000.0]])  # exp(1000) overflows without the max subtracted
    assert prediction_entropy(shifted) == pytest.approx(math.log(2))


def test_shape_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"predictions of shape \(3,\) .* targets of shape \(4,\)"):
        accuracy(np.array([0, 1, 2]), np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"shape \(3,\) .* shape \(3, 1\)"):
        confusion_matrix(np.array([0, 1, 2]), np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) .* shape \(3,\)"):
        precision_recall_f1(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        accuracy(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="average must be one of"):
        precision_recall_f1([0], [0], average="micro")
    with pytest.raises(ValueError, match=r"shape \(\)"):
        prediction_entropy(np.float32(1.0))
