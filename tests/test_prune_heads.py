"""prune.heads: a model with heads cut out computes what the model with those heads masked
computes, with exactly 4*d*E + 3*d fewer parameters per head; head_importance is |dL/dm_h|
summed over batches (checked against central finite differences in float64) and leaves no
hooks, gradients or mode changes behind; bad inputs name the numbers."""

import copy

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune
from minigrad.models import ViT
from minigrad.nn import functional as F

RNG = np.random.default_rng(0)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def normal(*shape):
    return mg.tensor(RNG.standard_normal(shape).astype(np.float32))


def masked_copy(model, removed):
    """``model`` with each removed head's out_proj weight columns zeroed: its output is then
    the same as with head_mask zero at those heads."""
    masked = copy.deepcopy(model)
    for path, heads in removed.items():
        attention = masked.get_submodule(path)
        d = attention.head_dim
        for h in heads:
            attention.out_proj.weight.data[:, h * d:(h + 1) * d] = 0
    return masked


def vit_batches(count, dtype=np.float32):
    return [(mg.tensor(RNG.standard_normal((3, 1, 28, 28)).astype(dtype)),
             mg.tensor(RNG.integers(0, 10, 3))) for _ in range(count)]


def test_pruned_attention_equals_head_mask_with_zeros_at_the_pruned_heads():
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(16, 4)
    nn.init.normal_(attention.in_proj_bias)
    nn.init.normal_(attention.out_proj.bias)
    x = normal(5, 2, 16)
    masked, _ = attention(x, x, x, head_mask=mg.tensor([1.0, 0.0, 1.0, 0.0]))
    assert not np.allclose(masked.numpy(), attention(x, x, x)[0].numpy(), atol=1e-3)
    before = parameter_count(attention)
    assert prune.prune_heads(attention, [3, 1]) is attention
    assert (attention.num_heads, attention.head_dim, attention.embed_dim) == (2, 4, 16)
    assert attention.in_proj_weight.shape == (24, 16) and attention.in_proj_bias.shape == (24,)
    assert attention.out_proj.weight.shape == (16, 8) and attention.out_proj.in_features == 8
    assert attention.in_proj_weight.dtype == np.float32
    pruned, weights = attention(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(pruned.numpy(), masked.numpy(), rtol=1e-5, atol=1e-6)
    assert weights.shape == (2, 2, 5, 5)
    assert before - parameter_count(attention) == 2 * (4 * 4 * 16 + 3 * 4) == 536
    assert prune.parameters_per_head(attention) == 268


def test_pruned_rows_are_the_kept_heads_of_each_q_k_v_block():
    attention = nn.MultiheadAttention(4, 2, bias=False)
    weight = np.arange(48, dtype=np.float32).reshape(12, 4)
    attention.in_proj_weight.data[...] = weight
    old = attention.in_proj_weight
    prune.prune_heads(attention, [0])
    np.testing.assert_array_equal(attention.in_proj_weight.numpy(), weight[[2, 3, 6, 7, 10, 11]])
    assert attention.in_proj_weight is not old and attention.in_proj_bias is None
    assert prune.parameters_per_head(attention) == 4 * 2 * 4 == 32
    assert parameter_count(attention) == 6 * 4 + 4 * 2  # in_proj, out_proj (no biases)


def test_pruned_encoder_and_vit_equal_the_masked_models_and_shrink_by_exact_counts():
    mg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0)
    encoder = nn.TransformerEncoder(layer, 2).eval()
    x = normal(6, 2, 16)
    removed = {"layers.0.self_attn": [0, 2], "layers.1.self_attn": [3]}
    expected = masked_copy(encoder, removed)(x).numpy()
    assert not np.allclose(expected, encoder(x).numpy(), atol=1e-3)
    before = parameter_count(encoder)
    for path, heads in removed.items():
        prune.prune_heads(encoder.get_submodule(path), heads)
    np.testing.assert_allclose(encoder(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert before - parameter_count(encoder) == 3 * (4 * 4 * 16 + 3 * 4) == 804

    model = ViT(depth=2, dim=32, heads=4, mlp_dim=64).eval()
    images = vit_batches(1)[0][0]
    scores = {"encoder.layers.0.self_attn": np.array([0.5, 0.1, 0.9, 0.2]),
              "encoder.layers.1.self_attn": np.array([0.05, 0.8, 0.7, 0.6])}
    masked = masked_copy(model, {"encoder.layers.0.self_attn": [1, 3],
                                 "encoder.layers.1.self_attn": [0]})
    assert not np.allclose(masked(images).numpy(), model(images).numpy(), atol=1e-4)
    removed, report = prune.prune_heads_by_importance(model, scores, 3, return_report=True)
    assert removed == {"encoder.layers.0.self_attn": [1, 3], "encoder.layers.1.self_attn": [0]}
    np.testing.assert_allclose(model(images).numpy(), masked(images).numpy(), rtol=1e-5,
                               atol=1e-5)
    assert (report.parameters_before, report.parameters_after) == (19658, 19658 - 3 * 1048)
    assert parameter_count(model) == 16514
    assert "parameters: 19658 -> 16514" in str(report)


def test_global_ranking_keeps_one_head_per_layer_and_layer_scope_prunes_each_layer():
    mg.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 4, 16, 0.0), 2)
    scores = {"layers.0.self_attn": [0.1, 0.2, 0.3, 0.4], "layers.1.self_attn": [0.9, 1, 2, 3]}
    assert prune.prune_heads_by_importance(copy.deepcopy(model), scores, 4) == {
        "layers.0.self_attn": [0, 1, 2], "layers.1.self_attn": [0]}
    assert prune.prune_heads_by_importance(copy.deepcopy(model), scores, 0.5, scope="layer") == {
        "layers.0.self_attn": [0, 1], "layers.1.self_attn": [0, 1]}
    assert [m.num_heads for m in (model.layers[0].self_attn, model.layers[1].self_attn)] == [4, 4]
    with pytest.raises(ValueError, match=r"cannot remove 7 of 8 heads; at most 6 \(one head "
                                         r"stays in each of 2 layers\)"):
        prune.prune_heads_by_importance(model, scores, 7)
    with pytest.raises(ValueError, match=r"amount 1.5 as a fraction must be in \[0, 1\]"):
        prune.prune_heads_by_importance(model, scores, 1.5)
    with pytest.raises(ValueError, match=r"scores for 'layers.1.self_attn' have shape \(3,\), "
                                         r"the module has 4 heads"):
        prune.prune_heads_by_importance(model, {**scores, "layers.1.self_attn": [1, 2, 3]}, 1)
    with pytest.raises(ValueError, match=r"importance has scores for \['layers.0.self_attn'\]"):
        prune.prune_heads_by_importance(model, {"layers.0.self_attn": [1, 2, 3, 4]}, 1)
    with pytest.raises(ValueError, match="scope should be 'global' or 'layer', got 'all'"):
        prune.prune_heads_by_importance(model, scores, 1, scope="all")


def gated_loss(model, batch, path, head, value):
    """The loss with head ``head`` of module ``path`` scaled by ``value`` (out_proj input)."""
    attention = model.get_submodule(path)
    gate = np.ones(attention.num_heads * attention.head_dim)
    gate[head * attention.head_dim:(head + 1) * attention.head_dim] = value
    handle = attention.out_proj.register_forward_pre_hook(
        lambda module, args: (args[0] * mg.tensor(gate),))
    try:
        with mg.no_grad():
            return F.cross_entropy(model(batch[0]), batch[1]).item()
    finally:
        handle.remove()


def test_head_importance_is_the_summed_absolute_gradient_of_the_head_gates():
    mg.manual_seed(0)
    model = ViT(depth=2, dim=16, heads=2, mlp_dim=16).double()
    batches = vit_batches(2, np.float64)
    model.train()
    F.cross_entropy(model(batches[0][0]), batches[0][1]).backward()
    grads = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    scores = prune.head_importance(model, batches, F.cross_entropy, normalize=False)
    eps = 1e-6
    for path, score in scores.items():
        expected = [sum(abs(gated_loss(model, b, path, h, 1 + eps)
                            - gated_loss(model, b, path, h, 1 - eps)) / (2 * eps)
                        for b in batches) for h in range(2)]
        np.testing.assert_allclose(score, expected, rtol=1e-6)
        assert score.dtype == np.float64 and score.min() > 0
    normalized = prune.head_importance(model, batches, F.cross_entropy)
    for path, score in normalized.items():
        np.testing.assert_allclose(score, scores[path] / np.linalg.norm(scores[path]),
                                   rtol=1e-12)
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.data, grads[name])


def test_bad_inputs_name_the_numbers():
    attention = nn.MultiheadAttention(8, 4)
    with pytest.raises(ValueError, match=r"heads \[4, -1\] out of range for 4 heads \(0..3\)"):
        prune.prune_heads(attention, [1, 4, -1])
    with pytest.raises(ValueError, match=r"heads \[2\] given more than once in \[2, 0, 2\]"):
        prune.prune_heads(attention, [2, 0, 2])
    with pytest.raises(ValueError, match=r"cannot remove all 4 heads \[0, 1, 2, 3\]; at least "
                                         "one head must stay"):
        prune.prune_heads(attention, [3, 2, 1, 0])
    assert attention.num_heads == 4 and attention.in_proj_weight.shape == (24, 8)
    with pytest.raises(ValueError, match="Linear has no MultiheadAttention"):
        prune.head_importance(nn.Linear(2, 2), [], F.mse_loss)
    with pytest.raises(ValueError, match="batches gave no"):
        prune.head_importance(ViT(depth=1, dim=8, heads=2, mlp_dim=8), [], F.cross_entropy)
