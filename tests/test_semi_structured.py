"""minigrad.prune.semi_structured: N:M masks (counts, the largest magnitudes, torch's
WeightNormSparsifier), the pattern kept through fine-tuning and ``remove``, the report, the
compressed size, and clear errors."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, prune
from minigrad.nn import functional as F


def normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def brute_force_mask(weight, n, m):
    """Group by group: the n entries of largest |w| (lower index first on ties)."""
    groups = weight.reshape(-1, m)
    mask = np.zeros_like(groups)
    for row, group in zip(mask, groups):
        row[sorted(range(m), key=lambda i: (-abs(group[i]), i))[:n]] = 1
    return mask.reshape(weight.shape)


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (3, 4), (1, 2), (4, 8)])
@pytest.mark.parametrize("shape", [(6, 16), (4, 2, 2, 4)])
def test_nm_mask_keeps_exactly_n_largest_of_every_m(n, m, shape):
    weight = normal(shape, seed=n + m)
    mask = prune.nm_mask(weight, n, m)
    assert mask.shape == shape and mask.dtype == np.float32
    counts = mask.reshape(-1, m).sum(axis=1)
    assert counts.shape == (weight.size // m,) and np.all(counts == n)
    np.testing.assert_array_equal(mask, brute_force_mask(weight, n, m))
    assert prune.check_nm(weight * mask, n, m) and not prune.check_nm(weight, n, m)


def test_nm_mask_breaks_ties_by_position_and_reads_tensors():
    weight = np.array([[1.0, -1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(prune.nm_mask(mg.tensor(weight)),
                                  [[1, 1, 0, 0, 1, 1, 0, 0]])


@pytest.mark.parametrize("n, m, message", [
    (2, 4, "weight of shape (3, 6) has 6 entries, not a multiple of m=4"),
    (4, 4, "need integers 1 <= n < m, got n=4, m=4"),
    (5, 4, "got n=5, m=4"),
    (0, 4, "got n=0, m=4")])
def test_bad_sizes_name_the_numbers(n, m, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        prune.nm_mask(np.ones((3, 6), np.float32), n, m)


def test_mask_and_masked_layer_match_torch(torch_reference):
    weight, bias, x = normal((6, 16), 1), normal(6, 2), normal((5, 16), 3)

    def compute(torch):
        from torch.ao.pruning import WeightNormSparsifier
        model = torch.nn.Sequential(torch.nn.Linear(16, 6))
        model[0].weight.data, model[0].bias.data = torch.tensor(weight), torch.tensor(bias)
        sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4),
                                          zeros_per_block=2)
        sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}])
        sparsifier.step()
        inputs = torch.tensor(x, requires_grad=True)
        out = model(inputs)
        (out ** 2).sum().backward()
        original = model[0].parametrizations.weight.original
        return {"mask": model[0].parametrizations.weight[0].mask.float(), "out": out,
                "grad_weight": original.grad, "grad_input": inputs.grad}

    expected = torch_reference("weight_norm_sparsifier_2_4", compute)
    layer = nn.Linear(16, 6)
    layer.weight.data[...], layer.bias.data[...] = weight, bias
    prune.semi_structured(layer)
    np.testing.assert_array_equal(layer.weight_mask.data, expected["mask"])
    inputs = mg.tensor(x, requires_grad=True)
    out = layer(inputs)
    (out ** 2).sum().backward()
    np.testing.assert_allclose(out.numpy(), expected["out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), expected["grad_weight"],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inputs.grad.numpy(), expected["grad_input"], rtol=1e-5,
                               atol=1e-5)


def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(),
                         nn.Linear(8, 3))


def test_fine_tuning_keeps_the_2_4_pattern_and_lowers_the_loss():
    model = mlp()
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((64, 16)).astype(np.float32)
    x, y = mg.tensor(inputs), mg.tensor(np.argmax(inputs @ normal((16, 3), 5), axis=1))
    prune.apply_semi_structured(model)
    masks = [layer.weight_mask.numpy().copy() for layer in (model[0], model[2], model[4])]
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    for layer, mask in zip((model[0], model[2], model[4]), masks):
        np.testing.assert_array_equal(layer.weight_mask.numpy(), mask)  # the mask is fixed
        assert prune.check_nm(layer.weight, 2, 4)
        assert np.all(layer.weight_orig.grad.numpy()[mask == 0] == 0)  # none where pruned
    rows = prune.semi_structured_report(model).rows
    assert [(r["layer"], r["groups"], r["exact"], r["over"]) for r in rows] == [
        ("0", 128, 128, 0), ("2", 64, 64, 0), ("4", 6, 6, 0)]
    before = model(x).numpy()
    for layer in (model[0], model[2], model[4]):
        prune.remove(layer, "weight")
        assert not prune.is_pruned(layer) and prune.check_nm(layer.weight, 2, 4)
    np.testing.assert_array_equal(model(x).numpy(), before)


def test_apply_skips_named_layers_and_names_a_layer_that_does_not_fit():
    model = mlp()
    prune.apply_semi_structured(model, skip=["4"])
    assert prune.is_pruned(model[0]) and prune.is_pruned(model[2])
    assert not prune.is_pruned(model[4])
    odd = nn.Sequential(nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3))
    with pytest.raises(ValueError, match=re.escape(
            "has 6 entries, not a multiple of m=4 (groups of 4 consecutive weights); layer "
            "'2' (pass skip=['2'] to keep it dense)")):
        prune.apply_semi_structured(odd)
    assert not prune.is_pruned(odd)  # nothing pruned when one layer does not fit
    with pytest.raises(ValueError, match=re.escape("skip names ['fc'] are not modules")):
        prune.apply_semi_structured(odd, skip=["fc"])


def test_conv_groups_run_along_the_flattened_filter():
    conv = nn.Conv2d(3, 4, 2)  # (4, 3, 2, 2): 12 entries a filter, 3 groups of 4
    prune.apply_semi_structured(nn.Sequential(conv), layers=nn.Conv2d)
    weight = conv.weight.numpy()
    assert np.all(np.count_nonzero(weight.reshape(4, 3, 4), axis=2) == 2)


def test_pruning_an_unstructured_pruned_layer_keeps_both_masks():
    layer = nn.Linear(16, 4)
    prune.l1_unstructured(layer, "weight", amount=0.75)
    old = layer.weight_mask.numpy().copy()
    prune.semi_structured(layer)
    new = layer.weight_mask.numpy()
    assert np.all(new <= old) and np.all(new.reshape(-1, 4).sum(axis=1) <= 2)
    assert not prune.check_nm(layer.weight, 2, 4)  # groups with fewer than 2 left
    row = prune.semi_structured_report(nn.Sequential(layer)).rows[0]
    assert row["over"] == 0 and row["exact"] == int(np.sum(new.reshape(-1, 4).sum(1) == 2))


def test_compressed_size_counts_values_and_2_bit_indices():
    # 2048 weights, 1024 kept: 2 bits of index each = 256 bytes of metadata.
    assert prune.semi_structured_bytes(np.zeros((32, 64), np.float16)) == 1024 * 2 + 256
    assert prune.semi_structured_bytes(np.zeros((32, 64), np.float16)) / (2048 * 2) == 9 / 16
    assert prune.semi_structured_bytes(np.zeros((32, 64), np.float32)) == 1024 * 4 + 256
    assert prune.semi_structured_bytes(np.zeros((32, 64), np.float32)) / (2048 * 4) == 17 / 32
    # 1:8 keeps 256 values with 3-bit indices: 96 bytes.
    assert prune.semi_structured_bytes(np.zeros((32, 64), np.float32), 1, 8) == 256 * 4 + 96
    model = nn.Sequential(nn.Linear(64, 32))
    prune.apply_semi_structured(model)
    row = prune.semi_structured_report(model).rows[0]
    assert (row["dense_bytes"], row["compressed_bytes"]) == (8192, 4352)
    assert "4,352" in prune.semi_structured_report(model).table()
