"""int8 dynamic quantization of attention: DynamicQuantizedMultiheadAttention against a float64
simulation written from the formulas (uint8 inputs per batch, int8 per-channel weights, float
attention), with pruned heads too; quantize_dynamic on a ViT converts every Linear and every
attention, with the exact int8 byte count; int4 weight-only attention against the float layer
with group-fake-quantized weights."""

import copy

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune, quant
from minigrad.models import ViT


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def simulated_linear(x, weight, bias):
    """x (..., in) quantized to uint8 by this batch's range, weight (out, in) to int8 per row
    (symmetric), both back to float64: the layer's arithmetic without its integers."""
    low, high = min(x.min(), 0), max(x.max(), 0)
    s_x = np.float32((high - low) / 255)
    z_x = np.clip(np.rint(-low / s_x), 0, 255)
    x_fq = s_x * (np.clip(np.rint(x / s_x) + z_x, 0, 255) - z_x)
    w = weight.astype(np.float64)
    s_w = (np.abs(w).max(axis=1, keepdims=True) / 127).astype(np.float32)
    w_fq = s_w * np.clip(np.rint(w / s_w), -127, 127)
    return x_fq @ w_fq.T + bias


def simulated_attention(x, attention):
    """Self-attention of x (L, N, E) with each projection a ``simulated_linear``."""
    heads, d = attention.num_heads, attention.head_dim
    x = x.swapaxes(0, 1).astype(np.float64)  # (N, L, E)
    weights = np.split(attention.in_proj_weight.numpy(), 3)
    biases = np.split(attention.in_proj_bias.numpy(), 3)
    q, k, v = (simulated_linear(x, w, b).reshape(*x.shape[:2], heads, d).swapaxes(1, 2)
               for w, b in zip(weights, biases))
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(d)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    concat = (p @ v).swapaxes(1, 2).reshape(*x.shape[:2], heads * d)
    out = simulated_linear(concat.astype(np.float32).astype(np.float64),
                           attention.out_proj.weight.numpy(), attention.out_proj.bias.numpy())
    return out.swapaxes(0, 1)


def randomized_attention(seed):
    mg.manual_seed(seed)
    attention = nn.MultiheadAttention(16, 4)
    nn.init.normal_(attention.in_proj_bias, std=0.1)
    nn.init.normal_(attention.out_proj.bias, std=0.1)
    return attention.eval()


def test_dynamic_attention_equals_its_fake_quantized_simulation():
    attention = randomized_attention(0)
    dynamic = quant.quantize_dynamic(attention, verbose=False)
    assert isinstance(dynamic, quant.QuantizedMultiheadAttention)
    projections = [dynamic.q_proj, dynamic.k_proj, dynamic.v_proj, dynamic.out_proj]
    assert all(isinstance(p, quant.DynamicQuantizedLinear) and p.weight_q.dtype == np.int8
               for p in projections)
    x = normal((7, 3, 16), 1)
    with mg.no_grad():
        out, weights = dynamic(mg.tensor(x), mg.tensor(x), mg.tensor(x))
        reference = attention(mg.tensor(x), mg.tensor(x), mg.tensor(x))[0].numpy()
    expected = simulated_attention(x, attention)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    error = np.abs(out.numpy() - reference).max()
    assert 1e-4 < error < 0.03 * np.abs(reference).max()  # int8 rounding, and small
    assert weights.shape == (3, 7, 7) and out.dtype == np.float32

    prune.prune_heads(attention, [0, 2])
    dynamic = quant.quantize_dynamic(attention, verbose=False)
    assert (dynamic.num_heads, dynamic.q_proj.out_features, dynamic.out_proj.in_features) == (
        2, 8, 8)
    with mg.no_grad():
        out = dynamic(mg.tensor(x), mg.tensor(x), mg.tensor(x), need_weights=False)[0]
    np.testing.assert_allclose(out.numpy(), simulated_attention(x, attention), rtol=1e-5,
                               atol=1e-5)


def test_quantize_dynamic_converts_every_linear_of_a_vit_and_counts_its_bytes(capsys):
    mg.manual_seed(0)
    model = ViT(depth=2, dim=32, heads=4, mlp_dim=64).eval()
    dynamic = quant.quantize_dynamic(model)
    table = capsys.readouterr().out
    assert "encoder.layers.1.self_attn" in table and "int8 q, k, v and out" in table
    kinds = {name: type(m).__name__ for name, m in dynamic.named_modules()}
    assert not any(isinstance(m, (nn.Linear, nn.MultiheadAttention)) for m in dynamic.modules())
    assert sum(kind == "QuantizedMultiheadAttention" for kind in kinds.values()) == 2
    assert kinds["patch_embed"] == "Conv2d"  # convolutions stay float
    # int8 bytes: per layer 4 E^2 attention + 2 E F MLP weights, and the head's 10 E
    int8_weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 10 * 32
    sizes = quant.model_size(dynamic)
    quantized = [row for row in sizes.rows if row.module_type == "DynamicQuantizedLinear"]
    assert len(quantized) == 2 * 6 + 1
    assert sum(row.bytes["weight"] for row in quantized) == int8_weights == 16704
    assert sum(row.bytes["scale"] for row in quantized) == 4 * (2 * (4 * 32 + 64 + 32) + 10)
    images = mg.tensor(normal((4, 1, 28, 28), 2))
    with mg.no_grad():
        reference, out = model(images).numpy(), dynamic(images).numpy()
    assert np.abs(out - reference).max() < 0.05 * np.abs(reference).max()
    assert sizes.total < 0.45 * quant.model_size(model).total
    assert isinstance(copy.deepcopy(dynamic), ViT)


def fake_quant_groups(weight, group_size):
    """Each group of ``group_size`` inputs: 16 levels over [min(w, 0), max(w, 0)], float64."""
    groups = weight.astype(np.float64).reshape(-1, group_size)
    low = np.minimum(groups.min(axis=1, keepdims=True), 0)
    high = np.maximum(groups.max(axis=1, keepdims=True), 0)
    scale = np.maximum((high - low) / 15, np.finfo(np.float32).eps)
    zero = np.clip(np.rint(-low / scale), 0, 15)
    return (scale * (np.clip(np.rint(groups / scale) + zero, 0, 15) - zero)).reshape(weight.shape)


def test_int4_weight_only_attention_equals_the_float_layer_with_group_fake_quantized_weights():
    attention = randomized_attention(3)
    int4 = quant.quantize_weight_only(attention, group_size=8)
    assert isinstance(int4, quant.QuantizedMultiheadAttention)
    assert all(isinstance(p, quant.WeightOnlyInt4Linear) and p.group_size == 8
               for p in (int4.q_proj, int4.k_proj, int4.v_proj, int4.out_proj))
    simulated = copy.deepcopy(attention)
    simulated.in_proj_weight.data[...] = fake_quant_groups(attention.in_proj_weight.numpy(), 8)
    simulated.out_proj.weight.data[...] = fake_quant_groups(attention.out_proj.weight.numpy(), 8)
    x = mg.tensor(normal((5, 2, 16), 4))
    with mg.no_grad():
        out = int4(x, x, x)[0].numpy()
        np.testing.assert_allclose(out, simulated(x, x, x)[0].numpy(), rtol=1e-5, atol=1e-6)
        assert np.abs(out - attention(x, x, x)[0].numpy()).max() > 1e-3  # 4 bits do change it
    # codes 16 * 64 weights of each projection in 8 bytes a row, a scale and a zero point
    # (packed) per group of 8
    sizes = {row.name: row.bytes for row in quant.model_size(int4).rows}
    assert sizes["q_proj"] == {"weight": 16 * 8, "scale": 4 * 16 * 2, "zero_point": 16,
                               "bias": 64, "codebook": 0, "other": 0}
    with pytest.raises(ValueError, match=r"group_size=32 must be a positive int dividing "
                                         r"in_features=16 .*; layer 'MultiheadAttention'"):
        quant.quantize_weight_only(attention, group_size=32)
