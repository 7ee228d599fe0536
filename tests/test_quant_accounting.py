"""minigrad.quant.accounting: model_size in every storage form against sizes computed by hand,
the storage_bytes protocol and the integer-layer attributes, what is left out (masks,
observers, switches), SQNR of known signals, per-layer SQNR by name, fake_quantize_weight's
grid, and a bit-width sensitivity sweep on a small trained model."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, prune
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.quant import (FakeQuantize, binarize, bit_width_sensitivity, fake_quantize_weight,
                            kmeans_share, layer_sqnr, model_size, sqnr, ternarize, to_float16)
from minigrad.tensor import Tensor

FLOAT32_BYTES = (60 + 6 + 18 + 3) * 4  # Linear(10, 6) and Linear(6, 3): 348


def mlp(seed=0):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 3))


def row(size, name):
    return next(r for r in size.rows if r.name == name)


def only(**counts):
    """A full category dict: the given counts, 0 elsewhere."""
    full = dict.fromkeys(("weight", "codebook", "scale", "zero_point", "bias", "other"), 0)
    full.update(counts)
    return full


# --------------------------------------------------------------------------- model_size
def test_float32_model_counts_four_bytes_a_parameter():
    size = model_size(mlp())
    assert size.total == FLOAT32_BYTES
    assert [r.name for r in size.rows] == ["0", "2"]  # ReLU and the container store nothing
    first = row(size, "0")
    assert first.bytes == only(weight=240, bias=24)
    assert (first.module_type, first.weight_format, first.weight_bits) == ("Linear", "float32",
                                                                           32)
    table = size.table()
    assert "total" in table and "348" in table and "float32" in table


def test_kmeans_counts_packed_indices_and_the_codebook():
    model = mlp()
    kmeans_share(model[0], bits=2)
    first = row(model_size(model), "0")
    # 60 indices of 2 bits = 15 bytes, 4 centroids of 4 bytes.
    assert first.bytes == only(weight=15, codebook=16, bias=24)
    assert (first.weight_format, first.weight_bits) == ("kmeans", 2)
    assert model_size(model).total == FLOAT32_BYTES - 240 + 15 + 16


def test_kmeans_of_a_pruned_weight_adds_a_bitmap():
    model = mlp()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    kmeans_share(model[0], bits=3)
    # ceil(60 * 3 / 8) = 23 index bytes, 8 centroids, ceil(60 / 8) = 8 bitmap bytes.
    assert row(model_size(model), "0").bytes == only(weight=23, codebook=32, other=8, bias=24)


def test_binary_and_ternary_count_bits_and_one_scale():
    model = mlp()
    binarize(model[0])
    ternarize(model[2])
    size = model_size(model)
    assert row(size, "0").bytes == only(weight=8, scale=4, bias=24)  # ceil(60 / 8)
    assert row(size, "2").bytes == only(weight=5, scale=4, bias=12)  # ceil(18 * 2 / 8)
    assert [row(size, n).weight_bits for n in ("0", "2")] == pytest.approx([64 / 60, 40 / 18])
    unscaled = binarize(mlp()[0], scaled=False)
    assert model_size(unscaled).total == 8 + 24


def test_float16_halves_every_parameter():
    model = to_float16(mlp())
    size = model_size(model)
    assert size.total == FLOAT32_BYTES // 2
    assert row(size, "0").weight_format == "float16" and row(size, "0").weight_bits == 16


def test_pruned_dense_weight_counts_once_and_its_mask_not_at_all():
    model = mlp()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    size = model_size(model)
    assert size.total == FLOAT32_BYTES
    assert row(size, "0").weight_format == "float32 pruned"


def test_csr_layers_count_their_three_arrays():
    model = mlp()
    prune.l1_unstructured(model[0], "weight", amount=0.75)
    sparse = prune.to_sparse(model, min_sparsity=0.5)
    # 15 nonzeros: 15 float32 values + 15 int32 column indices + 7 int32 row pointers.
    assert row(model_size(sparse), "0").bytes == only(weight=15 * 8 + 7 * 4, bias=24)
    assert row(model_size(sparse), "0").weight_format == "csr"


def test_conv_and_batch_norm_count_what_inference_reads():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    size = model_size(model)
    assert row(size, "0").bytes == only(weight=72 * 4, bias=16)
    # gamma, beta, running mean and variance; num_batches_tracked is training bookkeeping.
    assert row(size, "1").bytes == only(weight=16, bias=16, other=32)


class IntegerLinear(Module):
    """Stands in for an int8 layer: plain-attribute arrays, no Parameters."""

    def __init__(self):
        super().__init__()
        self.weight_q = np.zeros((3, 10), np.int8)
        self.weight_scale = np.ones(3, np.float32)
        self.weight_zero_point = np.zeros(3, np.int32)
        self.bias_q = np.zeros(3, np.int32)
        self.stride = 1  # settings are not storage


class ReportsItself(Module):
    def storage_bytes(self):
        return {"weight": 100, "scale": 4}


def test_integer_layer_attributes_and_the_storage_bytes_protocol():
    size = model_size(nn.Sequential(IntegerLinear(), ReportsItself()))
    first = row(size, "0")
    assert first.bytes == only(weight=30, scale=12, zero_point=12, bias=12)
    assert first.weight_bits == 8
    assert row(size, "1").bytes == only(weight=100, scale=4)
    assert size.total == 66 + 104
    assert size.by_category()["scale"] == 16


def test_storage_bytes_with_unknown_keys_is_refused():
    class Wrong(Module):
        def storage_bytes(self):
            return {"weights": 1}

    with pytest.raises(ValueError, match="unknown keys \\['weights'\\]"):
        model_size(Wrong())


def test_fake_quantize_counts_its_qparams_but_not_the_observer_or_switches():
    fq = FakeQuantize()
    fq(mg.randn(10))
    size = model_size(nn.Sequential(fq))
    assert size.total == 4 + 4  # float32 scale and int32 zero point
    assert row(size, "0").bytes == only(scale=4, zero_point=4)


# --------------------------------------------------------------------------- SQNR
def test_sqnr_of_a_known_signal_and_noise():
    assert sqnr([3.0, 4.0], [3.5, 4.0]) == pytest.approx(20.0)  # 25 / 0.25 = 100
    assert sqnr(mg.tensor([1.0, -1.0]), mg.tensor([1.1, -0.9])) == pytest.approx(
        10 * np.log10(2 / 0.02))
    assert sqnr(np.ones(3), np.ones(3)) == np.inf


def test_sqnr_of_uniform_quantization_gains_six_db_a_bit():
    x = np.random.default_rng(0).uniform(-1, 1, 200_000)
    for bits in (4, 6, 8):
        step = 2 / 2**bits
        quantized = (np.floor(x / step) + 0.5) * step  # mid-rise: error uniform in +-step/2
        assert sqnr(x, quantized) == pytest.approx(6.0206 * bits, abs=0.1)


def test_sqnr_refuses_different_shapes():
    with pytest.raises(ValueError, match="differ"):
        sqnr(np.ones(3), np.ones(4))


def test_layer_sqnr_matches_layers_by_name():
    model = mlp()
    x = mg.randn(32, 10)
    four, eight = mlp(), mlp()
    fake_quantize_weight(four[2], 4)
    fake_quantize_weight(eight[2], 8)
    low, high = layer_sqnr(model, four, x), layer_sqnr(model, eight, x)
    assert list(low) == ["0", "2"]
    assert low["0"] == np.inf and high["0"] == np.inf  # the first layer is unchanged
    assert 10 < low["2"] < high["2"] < np.inf
    assert not model[0]._forward_hooks  # the hooks are taken off again
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        layer_sqnr(model, nn.Identity(), x)


# --------------------------------------------------------------------------- sensitivity
def test_fake_quantize_weight_puts_each_row_on_its_symmetric_grid():
    model = mlp()
    weight = model[0].weight.data.copy()
    fake_quantize_weight(model[0], 3)
    scale = np.abs(weight).max(axis=1, keepdims=True) / 3  # codes -3..3
    codes = model[0].weight.data / scale
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-4)
    assert np.abs(codes).max() <= 3 + 1e-4
    fake_quantize_weight(model[2], 2)
    assert all(len(np.unique(r)) <= 3 for r in model[2].weight.data)  # 2 bits is ternary


def test_fake_quantize_weight_refuses_a_weight_stored_otherwise():
    with pytest.raises(ValueError, match="stored as binary already"):
        fake_quantize_weight(binarize(mlp()[0]), 4)


def test_fake_quantize_weight_keeps_pruned_zeros():
    layer = prune.l1_unstructured(mlp()[0], "weight", amount=0.5)
    fake_quantize_weight(layer, 4)
    mask = layer.weight_mask.data
    assert np.all(layer.weight.data[mask == 0] == 0)


def trained_model():
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
    model = mlp()
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
        optimizer.step()
    return model, mg.tensor(x), mg.tensor(y)


def test_bit_width_sensitivity_scores_each_layer_alone():
    model, x, y = trained_model()
    before = {name: p.data.copy() for name, p in model.named_parameters()}

    def score(trial):
        with mg.no_grad():
            return -F.cross_entropy(trial(x), y).item()

    curves = bit_width_sensitivity(model, score, [2, 4, 8])
    assert list(curves) == ["0", "2"]
    for layer, curve in curves.items():
        assert [bits for bits, _ in curve] == [2, 4, 8]
        scores = dict(curve)
        assert scores[2] < scores[8], (layer, curve)
        assert scores[8] == pytest.approx(score(model), abs=0.01)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before[name])
    with pytest.raises(ValueError, match="no modules named \\['fc'\\]"):
        bit_width_sensitivity(model, score, [2], layers=["fc"])


def test_bit_width_sensitivity_takes_a_custom_quantizer():
    calls = []
    model = mlp()
    curves = bit_width_sensitivity(model, lambda trial: 0.0, [1], layers=["2"],
                                   quantize_layer=lambda layer, bits: calls.append(
                                       (type(layer).__name__, bits)))
    assert curves == {"2": [(1, 0.0)]} and calls == [("Linear", 1)]


def test_tensor_buffers_and_attributes_count_once():
    module = Module()
    module.register_buffer("weight_q", Tensor(np.zeros(8, np.int8)))
    assert model_size(module).total == 8
