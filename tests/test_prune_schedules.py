"""Pruning schedules (prune_to, gradual pruning in fit, iterative prune-retrain) and the
per-layer sensitivity analysis."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.prune.schedules import (GradualPruning, agp_sparsity, iterative_pruning,
                                      prune_to, sparsity)
from minigrad.prune.sensitivity import sensitivity_analysis
from minigrad.train import evaluate, fit


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, size=(4, 8))
    y = rng.integers(0, 4, size=n)
    x = centers[y] + 0.7 * rng.standard_normal((n, 8))
    return TensorDataset(x.astype(np.float32), y.astype(np.int64))


def model_and_pairs():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    return model, [(model[0], "weight"), (model[2], "weight"), (model[4], "weight")]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prune_to_reaches_the_target_and_never_unprunes(scope):
    model, pairs = model_and_pairs()
    prune_to(pairs, 0.6, scope=scope)
    n = 8 * 32 + 32 * 16 + 16 * 4
    assert sparsity(pairs) == pytest.approx(round(0.6 * n) / n if scope == "global" else
                                            1 - sum(round(0.4 * m.weight.numpy().size)
                                                    for m, _ in pairs) / n)
    before = [prune.reparam.current_mask(m, name) for m, name in pairs]
    prune_to(pairs, 0.3, scope=scope)  # a lower target prunes nothing more, restores nothing
    for mask, (m, name) in zip(before, pairs):
        np.testing.assert_array_equal(prune.reparam.current_mask(m, name), mask)
    if scope == "layer":
        for m, name in pairs:
            assert sparsity([(m, name)]) == pytest.approx(0.6, abs=0.5 / m.weight.numpy().size)


def test_agp_follows_the_cubic_schedule():
    assert agp_sparsity(0, 0.9, 10, 110) == 0.0
    assert agp_sparsity(10, 0.9, 10, 110) == 0.0
    assert agp_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 - 0.9 * 0.5 ** 3)
    assert agp_sparsity(110, 0.9, 10, 110) == 0.9 and agp_sparsity(500, 0.9, 10, 110) == 0.9
    assert agp_sparsity(35, 0.8, 10, 110, initial_sparsity=0.2) == pytest.approx(
        0.8 + (0.2 - 0.8) * 0.75 ** 3)


def test_gradual_pruning_in_fit_reaches_the_final_sparsity_and_keeps_learning():
    model, pairs = model_and_pairs()
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(blobs(), batch_size=30, shuffle=True)  # 10 steps per epoch
    callback = GradualPruning(pairs, final_sparsity=0.9, start_step=10, end_step=50,
                              frequency=10)
    history = fit(model, loader, optimizer, F.cross_entropy, epochs=8, callbacks=[callback],
                  progress=False)
    assert [step for step, _, _ in callback.history] == [10, 20, 30, 40, 50]
    targets = [target for _, target, _ in callback.history]
    assert targets == pytest.approx([agp_sparsity(s, 0.9, 10, 50) for s in (10, 20, 30, 40, 50)])
    for _, target, reached in callback.history:
        assert reached == pytest.approx(target, abs=1e-3)
    assert sparsity(pairs) == pytest.approx(0.9, abs=1e-3)
    for module, name in pairs:  # the weights the model uses are zero where the mask is
        mask = prune.reparam.current_mask(module, name)
        assert not np.any(getattr(module, name).numpy()[mask == 0])
    assert history.epochs[-1]["train_accuracy"] > 0.9  # 10% of the weights still learn


def test_iterative_pruning_prunes_then_retrains_each_round():
    model, pairs = model_and_pairs()
    data = DataLoader(blobs(), batch_size=30, shuffle=True)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, data, optimizer, F.cross_entropy, epochs=5, progress=False)
    seen = []

    def retrain(index, target):
        seen.append((index, target, sparsity(pairs)))  # pruned before retraining
        fit(model, data, SGD(model.parameters(), lr=0.01, momentum=0.9), F.cross_entropy,
            epochs=2, progress=False)
        return evaluate(model, data)["accuracy"]

    rounds = iterative_pruning(pairs, [0.5, 0.75, 0.9], retrain)
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert [index for index, _, _ in seen] == [0, 1, 2]
    for (_, target, reached), record in zip(seen, rounds):
        assert reached == pytest.approx(target, abs=1e-3) == record["sparsity"]
    assert rounds[-1]["result"] > 0.9


def test_sensitivity_prunes_one_layer_at_a_time_in_a_copy():
    model, pairs = model_and_pairs()
    data = DataLoader(blobs(), batch_size=300)
    fit(model, DataLoader(blobs(), batch_size=30, shuffle=True),
        SGD(model.parameters(), lr=0.05, momentum=0.9), F.cross_entropy, epochs=5,
        progress=False)
    seen = []

    def score(trial):
        seen.append(sparsity([(trial[0], "weight"), (trial[2], "weight"), (trial[4], "weight")]))
        return evaluate(trial, data)["accuracy"]

    curves = sensitivity_analysis(model, score, [0.0, 0.5, 0.99])
    assert list(curves) == ["0", "2", "4"]
    assert not prune.is_pruned(model)
    sizes = np.array([8 * 32, 32 * 16, 16 * 4])
    for i, size in enumerate(sizes):  # each layer alone at each sparsity
        for j, target in enumerate([0.0, 0.5, 0.99]):
            assert seen[3 * i + j] == pytest.approx(round(target * size) / sizes.sum())
    for layer, points in curves.items():
        assert points[0][1] > 0.9  # unpruned
        assert points[-1][1] < points[0][1]  # 99% of one layer gone hurts
    with pytest.raises(ValueError, match=r"no modules named \['fc9'\]"):
        sensitivity_analysis(model, score, [0.5], layers=["fc9"])


def test_bad_schedules_are_refused():
    _, pairs = model_and_pairs()
    with pytest.raises(ValueError, match="target sparsity must be in"):
        prune_to(pairs, 1.5)
    with pytest.raises(ValueError, match="scope must be"):
        prune_to(pairs, 0.5, scope="row")
    with pytest.raises(ValueError, match="initial_sparsity <= final_sparsity"):
        GradualPruning(pairs, 0.5, 0, 10, initial_sparsity=0.8)
    with pytest.raises(ValueError, match="start_step < end_step"):
        GradualPruning(pairs, 0.5, 10, 10)
