"""minigrad.prune: the weight_orig * weight_mask reparametrization (gradients, optimizers,
state_dict, remove), amounts that compound, the methods against torch.nn.utils.prune's masks,
importance scores against hand-computed values, the report, and clear errors."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, prune
from minigrad.data.dataset import TensorDataset
from minigrad.data.loader import DataLoader
from minigrad.nn import functional as F


def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def convnet():
    mg.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def batch(model, n=16):
    rng = np.random.default_rng(1)
    shape = (n, 6) if isinstance(model[0], nn.Linear) else (n, 2, 6, 6)
    return (mg.tensor(rng.standard_normal(shape).astype(np.float32)),
            mg.tensor(rng.integers(0, 3, n)))


def train(model, optimizer, steps):
    x, y = batch(model)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def weights(model):
    return [m for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]


def tie_free(shape, seed=0):
    """Distinct magnitudes, so every method has one right answer."""
    rng = np.random.default_rng(seed)
    size = math.prod(shape)
    values = (rng.permutation(size) + 1) / size * rng.choice([-1, 1], size)
    return values.reshape(shape).astype(np.float32)


def linear_with(weight):
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data[...] = weight
    return layer


def conv_with(weight):
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2])
    layer.weight.data[...] = weight
    return layer


def zeros(module, name="weight"):
    return int(np.sum(getattr(module, name + "_mask").data == 0))


# ----------------------------------------------------------------------------- reparametrization
def test_pruning_renames_the_parameter_and_adds_mask_and_hook():
    layer = nn.Linear(4, 3)
    weight = layer.weight
    prune.l1_unstructured(layer, "weight", 0.5)
    assert layer.weight_orig is weight
    assert [n for n, _ in layer.named_parameters()] == ["weight_orig", "bias"]
    assert list(layer.state_dict()) == ["weight_orig", "bias", "weight_mask"]
    mask = layer.weight_mask.data
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0} and zeros(layer) == 6
    np.testing.assert_array_equal(layer.weight.data, weight.data * mask)  # before any forward
    assert prune.is_pruned(layer) and prune.is_pruned(nn.Sequential(layer))
    assert not prune.is_pruned(nn.Linear(2, 2))


def test_gradient_reaches_only_unpruned_entries():
    layer = nn.Linear(4, 3)
    prune.random_unstructured(layer, "weight", 0.5, seed=0)
    layer(mg.randn(5, 4)).sum().backward()
    grad, mask = layer.weight_orig.grad.data, layer.weight_mask.data
    assert np.all(grad[mask == 0] == 0) and np.all(grad[mask == 1] != 0)


def test_repeated_calls_compound_on_the_remaining_entries():
    layer = nn.Linear(8, 4)  # 32 weights
    prune.l1_unstructured(layer, "weight", 0.5)
    first = layer.weight_mask.data.copy()
    prune.l1_unstructured(layer, "weight", 0.5)
    assert zeros(layer) == 24  # 16 + round(0.5 * 16): 75% sparse
    assert np.all(layer.weight_mask.data <= first)  # nothing pruned came back
    prune.l1_unstructured(layer, "weight", 3)  # an int counts entries
    assert zeros(layer) == 27
    prune.random_unstructured(layer, "weight", 1.0)  # a float 1.0: everything left
    assert zeros(layer) == 32


def test_remove_bakes_the_mask_into_the_same_parameter_and_keeps_outputs():
    model = convnet()
    x, _ = batch(model)
    orig = model[0].weight
    prune.ln_structured(model[0], "weight", 0.5, n=2, dim=0)
    prune.l1_unstructured(model[3], "weight", 0.7)
    before = model(x).numpy()
    prune.remove(model[0], "weight")
    prune.remove(model[3], "weight")
    assert model[0].weight is orig and isinstance(orig, nn.Parameter)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert not prune.is_pruned(model)
    np.testing.assert_array_equal(model(x).numpy(), before)
    prune.l1_unstructured(model[3], "weight", 0.5)  # a removed tensor can be pruned again
    assert zeros(model[3]) == round(0.5 * 192) and prune.is_pruned(model)


def test_custom_from_mask_and_identity():
    layer = nn.Linear(2, 2)
    prune.identity(layer, "weight")
    assert zeros(layer) == 0 and prune.is_pruned(layer)
    prune.custom_from_mask(layer, "weight", np.array([[1, 0], [1, 1]]))
    prune.custom_from_mask(layer, "weight", np.array([[1, 1], [0, 1]]))
    np.testing.assert_array_equal(layer.weight_mask.data, [[1, 0], [0, 1]])


# ----------------------------------------------------------------------------- optimizers
OPTIMIZERS = {
    "sgd_momentum_wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    "adamw_amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
}


@pytest.mark.parametrize("make_model", [mlp, convnet])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_pruned_weights_stay_zero_through_training(make_model, make_optimizer):
    model = make_model()
    optimizer = make_optimizer(model.parameters())
    train(model, optimizer, 3)  # so the optimizer has state to clean
    prune.global_unstructured([(m, "weight") for m in weights(model)], 0.6, optimizer=optimizer)
    train(model, optimizer, 20)
    for layer in weights(model):
        pruned = layer.weight_mask.data == 0
        assert np.all(layer.weight.data[pruned] == 0)  # the effective weight, after forwards
        assert np.all(layer.weight_orig.data[pruned] == 0)  # nothing to regrow from
        for value in optimizer.state[layer.weight_orig].values():
            if np.shape(value) == pruned.shape:
                assert np.all(value[pruned] == 0)


def test_without_the_optimizer_only_the_effective_weight_is_zero():
    model = mlp()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    train(model, optimizer, 3)
    prune.l1_unstructured(model[0], "weight", 0.5)
    train(model, optimizer, 5)
    pruned = model[0].weight_mask.data == 0
    assert np.all(model[0].weight.data[pruned] == 0)
    assert np.all(model[0].weight_orig.data[pruned] != 0)  # weight decay and momentum moved it
    prune.mask_optimizer_state(optimizer, model[0], "weight")
    assert np.all(model[0].weight_orig.data[pruned] == 0)
    assert np.all(optimizer.state[model[0].weight_orig]["momentum_buffer"][pruned] == 0)


def test_after_remove_only_the_gradient_moves_the_former_zeros():
    model = mlp()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    train(model, optimizer, 3)
    prune.l1_unstructured(model[0], "weight", 0.5, optimizer=optimizer)
    pruned = model[0].weight_mask.data == 0
    train(model, optimizer, 5)
    prune.remove(model[0], "weight")
    assert np.all(model[0].weight.data[pruned] == 0)
    optimizer.zero_grad()
    x, y = batch(model)
    F.cross_entropy(model(x), y).backward()
    g = model[0].weight.grad.data.copy()
    optimizer.step()  # buffer = 0.9 * 0 + (g + wd * 0): the step is lr * g exactly
    np.testing.assert_array_equal(model[0].weight.data[pruned], -0.1 * g[pruned])


# ----------------------------------------------------------------------------- amounts, global
@pytest.mark.parametrize("amount", [0.0, 0.13, 0.5, 0.77, 1.0])
def test_global_pruning_zeroes_exactly_round_amount_times_remaining(amount):
    model = convnet()
    pairs = [(m, "weight") for m in weights(model)]
    n = sum(m.weight.numel() for m, _ in pairs)  # 72 + 192
    prune.global_unstructured(pairs, amount)
    assert sum(zeros(m) for m, _ in pairs) == round(amount * n)
    prune.global_unstructured(pairs, 0.5)
    left = n - round(amount * n)
    assert sum(zeros(m) for m, _ in pairs) == n - left + round(0.5 * left)


def test_global_pruning_ranks_all_tensors_together():
    small, large = linear_with(np.full((2, 2), 0.1, np.float32)), linear_with(np.ones((2, 2)))
    prune.global_unstructured([(small, "weight"), (large, "weight")], 4)
    assert zeros(small) == 4 and zeros(large) == 0


def test_ties_are_broken_by_position():
    layer = linear_with(np.ones((2, 3), np.float32))
    prune.l1_unstructured(layer, "weight", 2)
    np.testing.assert_array_equal(layer.weight_mask.data, [[0, 0, 1], [1, 1, 1]])


def test_threshold_prunes_small_magnitudes():
    layer = linear_with(np.array([[0.1, -0.5], [-0.05, 2.0]], np.float32))
    prune.threshold(layer, "weight", 0.3)
    np.testing.assert_array_equal(layer.weight_mask.data, [[0, 1], [0, 1]])


# ----------------------------------------------------------------------------- state_dict
def pruned_convnet():
    model = convnet()
    prune.ln_structured(model[0], "weight", 2, n=1, dim=0)
    prune.l1_unstructured(model[3], "weight", 0.8)
    return model


def test_masks_survive_save_and_load(tmp_path):
    model = pruned_convnet()
    x, _ = batch(model)
    expected = model(x).numpy()
    mg.save(model.state_dict(), tmp_path / "pruned.npz")
    state = mg.load(tmp_path / "pruned.npz")

    same_way = pruned_convnet()
    same_way[3].weight_mask.data[...] = 1  # make sure the load is what restores it
    mg.manual_seed(5)
    same_way.load_state_dict(state)
    np.testing.assert_array_equal(same_way[3].weight_mask.data, model[3].weight_mask.data)
    np.testing.assert_array_equal(same_way(x).numpy(), expected)

    mg.manual_seed(5)
    fresh = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    prune.load_pruned_state_dict(fresh, state)
    assert prune.is_pruned(fresh) and list(fresh.state_dict()) == list(model.state_dict())
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)  # no forward yet
    np.testing.assert_array_equal(fresh(x).numpy(), expected)


def test_load_pruned_state_dict_changes_nothing_when_it_fails():
    state = pruned_convnet().state_dict()
    wrong = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))
    before = {k: v.data.copy() for k, v in wrong.state_dict().items()}
    with pytest.raises(ValueError, match="shape mismatch for 3.weight_orig"):
        prune.load_pruned_state_dict(wrong, state)
    assert not prune.is_pruned(wrong)
    after = wrong.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key].data, value)


# ----------------------------------------------------------------------------- against PyTorch
def torch_masks(weights, prune_step, amounts):
    """``compute(torch)`` for ``torch_reference``: PyTorch layers with ``weights`` (a Linear for a
    2-d weight, a Conv2d for a 4-d one), pruned by ``prune_step(torch_prune, layers, amount)``
    for each amount in turn, and their masks after each step (``mask<step>-<layer>``)."""
    def compute(torch):
        from torch.nn.utils import prune as torch_prune
        layers = [torch.nn.Linear(w.shape[1], w.shape[0]) if w.ndim == 2
                  else torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:]) for w in weights]
        for layer, w in zip(layers, weights):
            layer.weight.data = torch.tensor(w)
        masks = {}
        for step, amount in enumerate(amounts):
            prune_step(torch_prune, layers, amount)
            masks.update({f"mask{step}-{i}": layer.weight_mask.clone()
                          for i, layer in enumerate(layers)})
        return masks
    return compute


def test_unstructured_masks_match_torch(torch_reference):
    weight, amounts = tie_free((6, 5)), (0.3, 4, 0.5)
    expected = torch_reference("l1_unstructured", torch_masks(
        [weight], lambda torch_prune, layers, amount: torch_prune.l1_unstructured(
            layers[0], "weight", amount), amounts))
    ours = linear_with(weight)
    for step, amount in enumerate(amounts):
        prune.l1_unstructured(ours, "weight", amount)
        np.testing.assert_array_equal(ours.weight_mask.data, expected[f"mask{step}-0"])


def test_global_masks_match_torch(torch_reference):
    w1, w2 = tie_free((4, 3, 3, 3), seed=1), tie_free((5, 10), seed=2) * 0.7
    amounts = (0.4, 0.25, 10)
    expected = torch_reference("global_unstructured", torch_masks(
        [w1, w2], lambda torch_prune, layers, amount: torch_prune.global_unstructured(
            [(m, "weight") for m in layers], torch_prune.L1Unstructured, amount=amount),
        amounts))
    ours = [conv_with(w1), linear_with(w2)]
    for step, amount in enumerate(amounts):
        prune.global_unstructured([(m, "weight") for m in ours], amount)
        for i, mine in enumerate(ours):
            np.testing.assert_array_equal(mine.weight_mask.data, expected[f"mask{step}-{i}"])


@pytest.mark.parametrize("n", [1, 2, math.inf])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_ln_structured_matches_torch_and_zeroes_whole_slices(n, dim, torch_reference):
    weight, amounts = tie_free((6, 4, 3, 3), seed=3), (0.34, 1)
    expected = torch_reference(f"ln_structured-n={n}-dim={dim}", torch_masks(
        [weight], lambda torch_prune, layers, amount: torch_prune.ln_structured(
            layers[0], "weight", amount, n=n, dim=dim), amounts))
    ours = conv_with(weight)
    for step, amount in enumerate(amounts):
        prune.ln_structured(ours, "weight", amount, n=n, dim=dim)
        mask = ours.weight_mask.data
        np.testing.assert_array_equal(mask, expected[f"mask{step}-0"])
        per_slice = np.moveaxis(mask, dim, 0).reshape(mask.shape[dim], -1)
        assert all(len(set(row)) == 1 for row in per_slice)  # each slice all 0 or all 1
    assert np.sum(per_slice[:, 0] == 0) == round(0.34 * weight.shape[dim]) + 1


# ----------------------------------------------------------------------------- importance
def test_importance_scores_by_hand():
    layer = linear_with(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32))
    model = nn.Sequential(layer)
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 4.0]], np.float32)
    loader = DataLoader(TensorDataset(x, np.zeros(3, np.float32)), batch_size=2)
    stats = prune.accumulate_gradients(model, loader, lambda out, y: out.sum())
    # L = sum of outputs: dL/dW[i, j] = sum over the batch of x[:, j], the same for each i.
    g1, g2 = np.array([4.0, 1.0]), np.array([0.0, 4.0])
    entry = stats[layer.weight]
    assert entry.count == 2 and layer.weight.grad is None
    np.testing.assert_allclose(entry.sum, [g1 + g2] * 2)
    mean_g = np.array([[2.0, 2.5], [2.0, 2.5]])
    np.testing.assert_allclose(prune.gradient(layer, "weight", stats), mean_g)
    np.testing.assert_allclose(prune.squared_gradient(layer, "weight", stats),
                               [g1**2 + g2**2] * 2)
    np.testing.assert_allclose(prune.taylor(layer, "weight", stats),
                               [[2.0, 5.0], [1.0, 7.5]])
    np.testing.assert_array_equal(prune.magnitude(layer, "weight"), [[1, 2], [0.5, 3]])

    prune.l1_unstructured(layer, "weight", 1, importance=prune.taylor(layer, "weight", stats))
    np.testing.assert_array_equal(layer.weight_mask.data, [[1, 1], [0, 1]])
    # After pruning, w is the effective weight; the stats are found through weight_orig.
    np.testing.assert_allclose(prune.taylor(layer, "weight", stats), [[2.0, 5.0], [0.0, 7.5]])
    assert prune.accumulate_gradients(model, loader, lambda out, y: out.sum(),
                                      batches=1)[layer.weight_orig].count == 1


def test_ln_norm_by_hand():
    w = np.array([[3.0, -4.0], [1.0, 1.0]])
    np.testing.assert_allclose(prune.ln_norm(w, 2, 0), [[5, 5], [math.sqrt(2)] * 2])
    np.testing.assert_allclose(prune.ln_norm(w, 1, 1), [[4, 5], [4, 5]])
    np.testing.assert_allclose(prune.ln_norm(w, math.inf, 0), [[4, 4], [1, 1]])


def test_random_scores_are_seeded():
    layer = nn.Linear(5, 4)
    a, b = prune.random(layer, "weight", seed=3), prune.random(layer, "weight", seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 5) and not np.array_equal(a, prune.random(layer, "weight", seed=4))


def test_taylor_drives_structured_and_global_pruning():
    model = mlp()
    x, y = batch(model)
    stats = prune.accumulate_gradients(model, [(x, y)], F.cross_entropy)
    score = lambda m, n: prune.taylor(m, n, stats)  # noqa: E731
    prune.ln_structured(model[0], "weight", 3, n=1, dim=0, importance=score)
    expected = np.argsort(prune.taylor(model[2], "weight", stats).ravel(), kind="stable")[:5]
    prune.global_unstructured([(model[2], "weight")], 5,
                              importance={(model[2], "weight"): score(model[2], "weight")})
    assert np.all(model[2].weight_mask.data.ravel()[expected] == 0) and zeros(model[2]) == 5
    assert np.sum(np.all(model[0].weight_mask.data == 0, axis=1)) == 3


# ----------------------------------------------------------------------------- report
def test_report_counts_and_bytes():
    model = pruned_convnet()  # conv: 2 of 4 filters (72 -> 36); linear: 192 -> 38
    result = prune.report(model)
    assert [(r["layer"], r["shape"], r["total"], r["nonzeros"]) for r in result.rows] == [
        ("0", (4, 2, 3, 3), 72, 36), ("3", (3, 64), 192, 38)]
    conv = result.rows[0]
    assert conv["sparsity"] == 0.5 and conv["dense_bytes"] == 288
    assert conv["csr_bytes"] == 36 * (4 + 4) + (4 + 1) * 4
    assert result.totals == {"total": 264, "nonzeros": 74, "dense_bytes": 1056,
                             "csr_bytes": 36 * 8 + 20 + 38 * 8 + 16,
                             "sparsity": pytest.approx(1 - 74 / 264)}
    table = result.table()
    assert table.splitlines()[0].split() == ["layer", "param", "shape", "total", "nonzeros",
                                             "sparsity", "dense", "bytes", "CSR", "bytes"]
    assert "4x2x3x3" in table and table.splitlines()[-1].startswith("total")


# ----------------------------------------------------------------------------- errors
def test_clear_errors():
    layer = nn.Linear(3, 2, bias=False)
    with pytest.raises(ValueError, match=r"Linear has no parameter 'wieght' \(its parameters: "
                                         r"weight\)"):
        prune.l1_unstructured(layer, "wieght", 0.5)
    with pytest.raises(ValueError, match="no parameter 'bias'"):
        prune.l1_unstructured(layer, "bias", 0.5)
    for amount in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="must be a fraction in"):
            prune.l1_unstructured(layer, "weight", amount)
    with pytest.raises(ValueError, match="amount=-1 entries"):
        prune.l1_unstructured(layer, "weight", -1)
    with pytest.raises(ValueError, match="amount=7 entries to prune, but 6 entries remain"):
        prune.random_unstructured(layer, "weight", 7)
    with pytest.raises(ValueError, match="must be an int or a float"):
        prune.l1_unstructured(layer, "weight", True)
    with pytest.raises(ValueError, match="'weight' of Linear is not pruned"):
        prune.remove(layer, "weight")
    prune.l1_unstructured(layer, "weight", 4)
    with pytest.raises(ValueError, match="amount=3 entries to prune, but 2 entries remain"):
        prune.l1_unstructured(layer, "weight", 3)
    with pytest.raises(ValueError, match="'weight_orig' of Linear is the original"):
        prune.l1_unstructured(layer, "weight_orig", 0.5)
    prune.remove(layer, "weight")
    with pytest.raises(ValueError, match="is not pruned"):
        prune.remove(layer, "weight")


def test_clear_errors_of_methods_and_scores():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"importance scores of shape \(3,\) for 'weight'"):
        prune.l1_unstructured(layer, "weight", 0.5, importance=np.ones(3))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        prune.ln_structured(layer, "bias", 1, n=1, dim=0)
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        prune.ln_structured(layer, "weight", 1, n=1, dim=2)
    with pytest.raises(ValueError, match="n must be a number > 0"):
        prune.ln_structured(layer, "weight", 1, n=0, dim=0)
    with pytest.raises(ValueError, match="amount=3 slices to prune, but 2 slices remain"):
        prune.ln_structured(layer, "weight", 3, n=1, dim=0)
    with pytest.raises(ValueError, match="threshold must be a number >= 0"):
        prune.threshold(layer, "weight", -1.0)
    with pytest.raises(ValueError, match="listed twice"):
        prune.global_unstructured([(layer, "weight"), (layer, "weight")], 0.5)
    with pytest.raises(ValueError, match="no scores for Linear.bias"):
        prune.global_unstructured([(layer, "weight"), (layer, "bias")], 0.5,
                                  importance={(layer, "weight"): np.ones((2, 3))})
    with pytest.raises(ValueError, match="no gradient statistics for 'weight' of Linear"):
        prune.taylor(layer, "weight", {})
    with pytest.raises(ValueError, match=r"mask of shape \(3, 2\)"):
        prune.custom_from_mask(layer, "weight", np.ones((3, 2)))
    other = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="SGD does not hold the parameter 'weight' of Linear"):
        prune.l1_unstructured(layer, "weight", 0.5, optimizer=other)
    with pytest.raises(ValueError, match="SGD does not hold"):
        prune.global_unstructured([(layer, "bias"), (layer, "weight")], 0.5, optimizer=other)
    assert not prune.is_pruned(layer)  # checked before anything changed
