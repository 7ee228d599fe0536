"""Attention against PyTorch: ``F.scaled_dot_product_attention`` (masks, causal, scale, dropout),
``nn.MultiheadAttention`` with PyTorch's weights (its state_dict loaded strictly), its head
mask, and ``nn.TransformerEncoderLayer`` / ``nn.TransformerEncoder``; forward values and the
gradients of inputs and parameters, a float64 gradcheck, and the errors for bad input."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.testing import gradcheck

TOL = dict(rtol=1e-5, atol=1e-5)


def lib_tensors(lib, arrays, differentiable):
    """``arrays`` as ``lib``'s tensors (``lib`` is minigrad or torch), with requires_grad for
    the names in ``differentiable``."""
    return {name: lib.tensor(a, requires_grad=name in differentiable)
            for name, a in arrays.items()}


def run_step(lib, module, arrays, differentiable, forward, upstreams=None):
    """``forward(module, tensors)`` (a tuple of outputs, None for one not returned), then
    backward of sum_i (out_i * upstream_i).sum(); the upstreams are random (seed 1) unless
    given. Returns the outputs, the upstreams, and the tensors (their .grad filled)."""
    tensors = lib_tensors(lib, arrays, differentiable)
    outs = [out for out in forward(module, tensors) if out is not None]
    if upstreams is None:
        rng = np.random.default_rng(1)
        upstreams = [rng.standard_normal(tuple(out.shape)).astype(np.float32) for out in outs]
    loss = sum((out * lib.tensor(u)).sum() for out, u in zip(outs, upstreams))
    loss.backward()
    return outs, upstreams, tensors


def torch_module_step(torch, make, arrays, differentiable, forward, train=True):
    """PyTorch's side: module ``make(torch.nn)`` made after torch.manual_seed(0), its
    state_dict (``state.*``), the inputs (``input.*``), outputs (``out<i>``), upstream
    gradients (``upstream<i>``) and the gradients (``grad.input.*``, ``grad.<param>``)."""
    torch.manual_seed(0)
    theirs = make(torch.nn).train(train)
    results = {f"state.{k}": v.clone() for k, v in theirs.state_dict().items()}
    outs, upstreams, tensors = run_step(torch, theirs, arrays, differentiable, forward)
    results |= {f"input.{name}": a for name, a in arrays.items()}
    results |= {f"out{i}": out for i, out in enumerate(outs)}
    results |= {f"upstream{i}": u for i, u in enumerate(upstreams)}
    results |= {f"grad.input.{name}": tensors[name].grad for name in differentiable}
    return results | {f"grad.{k}": p.grad for k, p in theirs.named_parameters()}


def assert_same_module_step(make, expected, differentiable, forward, train=True, tol=TOL):
    """PyTorch's state_dict loads strictly into ``make(nn)``; outputs and every gradient
    agree."""
    ours = make(nn).train(train)
    ours.load_state_dict({k[len("state."):]: v for k, v in expected.items()
                          if k.startswith("state.")})
    arrays = {k[len("input."):]: v for k, v in expected.items() if k.startswith("input.")}
    upstreams = [expected[f"upstream{i}"] for i in range(sum(k.startswith("upstream")
                                                             for k in expected))]
    outs, _, tensors = run_step(mg, ours, arrays, differentiable, forward, upstreams)
    assert len(outs) == len(upstreams)
    for i, out in enumerate(outs):
        np.testing.assert_allclose(out.numpy(), expected[f"out{i}"], **tol, err_msg=f"out{i}")
    for name in differentiable:
        np.testing.assert_allclose(tensors[name].grad.numpy(), expected[f"grad.input.{name}"],
                                   **tol, err_msg=f"gradient of {name}")
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), expected[f"grad.{name}"], **tol,
                                   err_msg=f"gradient of {name}")


def normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def some_false(seed, shape, keep_column=0):
    """A random bool mask with column ``keep_column`` all True, so no row is all False."""
    mask = np.random.default_rng(seed).random(shape) > 0.4
    mask[..., keep_column] = True
    return mask


def some_true(seed, shape):
    """A random bool mask with column 0 all False (what "ignore" masks need)."""
    return ~some_false(seed, shape)


# --------------------------------------------------------------------------- SDPA
QKV = {"query": normal(0, 2, 3, 4, 5), "key": normal(1, 2, 3, 6, 5),
       "value": normal(2, 2, 3, 6, 7)}
SDPA_CASES = [
    ("plain", {}, {}),
    ("bool_mask", {"attn_mask": some_false(3, (4, 6))}, {}),
    ("bool_mask_per_batch", {"attn_mask": some_false(3, (2, 1, 4, 6))}, {}),
    ("float_mask", {"attn_mask": normal(4, 3, 1, 6)}, {}),
    ("causal", {}, {"is_causal": True}),
    ("scale", {}, {"scale": 0.3}),
]


def sdpa_forward(options):
    return lambda _, t: (F.scaled_dot_product_attention(**t, **options),)


def torch_sdpa(torch, tensors, **options):
    return (torch.nn.functional.scaled_dot_product_attention(**tensors, **options),)


@pytest.mark.parametrize("name, masks, options", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_scaled_dot_product_attention_matches_torch(name, masks, options, torch_reference):
    arrays = QKV | masks

    def compute(torch):
        results = torch_module_step(torch, lambda _: torch.nn.Identity(), arrays, list(QKV),
                                    lambda _, t: torch_sdpa(torch, t, **options))
        return {k: v for k, v in results.items() if not k.startswith("state.")}

    expected = torch_reference(f"sdpa_{name}", compute)
    assert_same_module_step(lambda m: m.Identity(), expected, list(QKV), sdpa_forward(options))


def test_scaled_dot_product_attention_gradcheck():
    tensors = {name: mg.tensor(a[:1, :2].astype(np.float64), requires_grad=True)
               for name, a in QKV.items()}
    mask = mg.tensor(some_false(3, (4, 6)))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                     list(tensors.values()))


def test_sdpa_dropout_scales_kept_weights_and_follows_the_seed():
    """With value = I the output is the attention weights themselves: after dropout each one
    is 0 or weight / (1 - p), about p of them 0; the same seed drops the same ones."""
    query, key = mg.tensor(normal(0, 64, 8)), mg.tensor(normal(1, 64, 8))
    value = mg.eye(64)
    weights = F.scaled_dot_product_attention(query, key, value).numpy()
    mg.manual_seed(5)
    dropped = F.scaled_dot_product_attention(query, key, value, dropout_p=0.5).numpy()
    kept = dropped != 0
    assert 0.45 < 1 - kept.mean() < 0.55
    np.testing.assert_allclose(dropped[kept], 2 * weights[kept], rtol=1e-6)
    mg.manual_seed(5)
    again = F.scaled_dot_product_attention(query, key, value, dropout_p=0.5).numpy()
    np.testing.assert_array_equal(again, dropped)
    everything = F.scaled_dot_product_attention(query, key, value, dropout_p=1.0).numpy()
    np.testing.assert_array_equal(everything, np.zeros((64, 64), dtype=np.float32))


def test_sdpa_refuses_a_mask_that_does_not_broadcast():
    q, k, v = (mg.tensor(a) for a in QKV.values())
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 5\) does not broadcast to "
                                         r"the attention weights' shape \(2, 3, 4, 6\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mg.ones(4, 5, dtype=bool))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mg.ones(4, 6, dtype=bool),
                                       is_causal=True)


# --------------------------------------------------------------------------- MultiheadAttention
E, H, L, S, N = 8, 2, 3, 5, 4
MHA_CASES = [
    # name, batch_first, inputs (before the masks), masks, forward options
    ("cross_seq_first", False, {"query": normal(0, L, N, E), "key": normal(1, S, N, E),
                                "value": normal(2, S, N, E)}, {}, {}),
    ("self_batch_first_bool_masks", True, {"x": normal(0, N, L, E)},
     {"key_padding_mask": some_true(3, (N, L)), "attn_mask": some_true(4, (L, L))},
     {"average_attn_weights": False}),
    ("cross_seq_first_float_masks", False, {"query": normal(0, L, N, E),
                                            "key": normal(1, S, N, E),
                                            "value": normal(2, S, N, E)},
     {"key_padding_mask": normal(3, N, S), "attn_mask": normal(4, N * H, L, S)}, {}),
    ("self_causal_no_weights", True, {"x": normal(0, N, L, E)},
     {"attn_mask": np.triu(np.ones((L, L), dtype=bool), 1)},
     {"need_weights": False, "is_causal": True}),
    ("unbatched", False, {"query": normal(0, L, E), "key": normal(1, S, E),
                          "value": normal(2, S, E)},
     {"key_padding_mask": some_true(3, (S,))}, {}),
]


def mha_forward(options):
    def forward(module, t):
        query, key, value = (t["x"],) * 3 if "x" in t else (t["query"], t["key"], t["value"])
        masks = {k: v for k, v in t.items() if k.endswith("mask")}
        return module(query, key, value, **masks, **options)
    return forward


@pytest.mark.parametrize("name, batch_first, inputs, masks, options", MHA_CASES,
                         ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(name, batch_first, inputs, masks, options,
                                           torch_reference):
    def make(m):
        return m.MultiheadAttention(E, H, batch_first=batch_first)

    expected = torch_reference(f"mha_{name}", lambda torch: torch_module_step(
        torch, make, inputs | masks, list(inputs), mha_forward(options)))
    assert_same_module_step(make, expected, list(inputs), mha_forward(options))


def test_multihead_attention_gradcheck_in_float64():
    """Query, key, value and head_mask, with both kinds of mask."""
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(4, 2).double()
    inputs = [mg.tensor(np.random.default_rng(i).standard_normal(shape), requires_grad=True)
              for i, shape in enumerate([(3, 2, 4), (2, 2, 4), (2, 2, 4), (2,)])]
    padding = mg.tensor(np.array([[False, False], [False, True]]))
    causal = mg.tensor(np.array([[False, True], [False, False], [False, False]]))
    assert gradcheck(lambda q, k, v, m: attention(q, k, v, key_padding_mask=padding,
                                                  attn_mask=causal, head_mask=m)[0], inputs)


def test_head_mask_of_ones_changes_nothing_and_a_zero_removes_the_head():
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(E, H)
    x = mg.tensor(normal(0, L, N, E))
    out, weights = attention(x, x, x)
    out_ones, weights_ones = attention(x, x, x, head_mask=mg.ones(H))
    np.testing.assert_array_equal(out_ones.numpy(), out.numpy())
    np.testing.assert_array_equal(weights_ones.numpy(), weights.numpy())
    without_head_1, _ = attention(x, x, x, head_mask=mg.tensor([1.0, 0.0]))
    head_dim = attention.head_dim
    attention.out_proj.weight.data[:, head_dim:2 * head_dim] = 0
    np.testing.assert_allclose(without_head_1.numpy(), attention(x, x, x)[0].numpy(),
                               rtol=1e-6, atol=1e-7)
    assert not np.allclose(without_head_1.numpy(), out.numpy())


def test_head_mask_gradient_is_the_loss_change_when_a_head_is_removed_to_first_order():
    """L is linear in each m_h: L(m = 1 with m_h = 0) = L(1) - dL/dm_h exactly."""
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(E, H).double()
    x = mg.tensor(normal(0, L, N, E).astype(np.float64))
    head_mask = mg.ones(H, dtype=mg.float64, requires_grad=True)
    loss = attention(x, x, x, head_mask=head_mask)[0].sum()
    loss.backward()
    for h in range(H):
        removed = np.ones(H)
        removed[h] = 0
        loss_without = attention(x, x, x, head_mask=mg.tensor(removed))[0].sum().item()
        assert loss_without == pytest.approx(loss.item() - head_mask.grad.numpy()[h], abs=1e-9)


def test_multihead_attention_initialization_and_attributes():
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(64, 4, dropout=0.1, batch_first=True)
    assert (attention.embed_dim, attention.num_heads, attention.head_dim) == (64, 4, 16)
    assert (attention.dropout, attention.batch_first) == (0.1, True)
    assert attention.in_proj_weight.shape == (192, 64)
    weights = attention.in_proj_weight.numpy()
    assert weights.std() == pytest.approx(math.sqrt(2 / (64 + 192)), rel=0.05)  # xavier
    assert np.abs(weights).max() <= math.sqrt(6 / (64 + 192))
    assert (attention.in_proj_bias.numpy() == 0).all()
    assert (attention.out_proj.bias.numpy() == 0).all()
    assert sorted(attention.state_dict()) == ["in_proj_bias", "in_proj_weight",
                                              "out_proj.bias", "out_proj.weight"]
    assert sorted(nn.MultiheadAttention(8, 2, bias=False).state_dict()) == [
        "in_proj_weight", "out_proj.weight"]


def test_multihead_attention_dropout_acts_in_training_only():
    mg.manual_seed(0)
    attention = nn.MultiheadAttention(E, H, dropout=0.5)
    x = mg.tensor(normal(0, L, N, E))
    mg.manual_seed(1)
    trained, weights = attention(x, x, x, average_attn_weights=False)
    assert (weights.numpy() == 0).any()
    mg.manual_seed(1)
    np.testing.assert_array_equal(attention(x, x, x)[0].numpy(), trained.numpy())
    attention.eval()
    evaluated, weights = attention(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1, rtol=1e-6)
    assert not np.allclose(evaluated.numpy(), trained.numpy())
    np.testing.assert_array_equal(attention(x, x, x)[0].numpy(), evaluated.numpy())


def test_multihead_attention_refuses_bad_sizes_and_masks():
    with pytest.raises(ValueError, match="embed_dim 10 must be divisible by num_heads 4"):
        nn.MultiheadAttention(10, 4)
    with pytest.raises(NotImplementedError, match="kdim=6 and vdim=None"):
        nn.MultiheadAttention(8, 2, kdim=6)
    attention = nn.MultiheadAttention(E, H)
    x = mg.tensor(normal(0, L, N, E))
    with pytest.raises(ValueError, match=r"key_padding_mask should have shape \(4, 3\), got "
                                         r"\(3, 4\)"):
        attention(x, x, x, key_padding_mask=mg.zeros(L, N, dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask should have shape \(3, 3\) or "
                                         r"\(8, 3, 3\), got \(4, 3, 3\)"):
        attention(x, x, x, attn_mask=mg.zeros(N, L, L, dtype=bool))
    with pytest.raises(ValueError, match=r"head_mask must have shape \(2,\) \(num_heads\), got "
                                         r"\(3,\)"):
        attention(x, x, x, head_mask=mg.ones(3))
    with pytest.raises(ValueError, match=r"embed_dim 8 as its last dim.*\(3, 4, 6\)"):
        attention(*(mg.zeros(L, N, 6),) * 3)


# --------------------------------------------------------------------------- Transformer
D, FF = 8, 16
SRC = normal(0, 5, 3, D)  # (S, N, E)
PADDING = np.zeros((3, 5), dtype=bool)
PADDING[1, -2:] = True
LAYER_CASES = [(norm_first, activation) for norm_first in (False, True)
               for activation in ("relu", "gelu")]


def encoder_forward(module, t):
    return (module(t["src"], src_key_padding_mask=t["padding"]),)


@pytest.mark.parametrize("norm_first, activation", LAYER_CASES,
                         ids=[f"{'pre' if n else 'post'}_norm_{a}" for n, a in LAYER_CASES])
def test_encoder_layer_matches_torch(norm_first, activation, torch_reference):
    """Training mode with dropout 0, so PyTorch runs its composite path, with gradients."""
    def make(m):
        return m.TransformerEncoderLayer(D, 2, FF, dropout=0.0, activation=activation,
                                         norm_first=norm_first)

    arrays = {"src": SRC, "padding": PADDING}
    expected = torch_reference(
        f"encoder_layer_{'pre' if norm_first else 'post'}_{activation}",
        lambda torch: torch_module_step(torch, make, arrays, ["src"], encoder_forward))
    assert_same_module_step(make, expected, ["src"], encoder_forward)


def torch_eval_forward(torch, make, src, mask):
    torch.manual_seed(0)
    theirs = make(torch.nn).eval()
    with torch.no_grad():  # PyTorch's fast path (native kernels) in eval
        out = theirs(torch.tensor(src), src_mask=torch.tensor(mask))
    return {f"state.{k}": v for k, v in theirs.state_dict().items()} | {"out": out}


def test_encoder_layer_in_eval_drops_nothing_and_matches_torch(torch_reference):
    def make(m):
        return m.TransformerEncoderLayer(D, 2, FF, dropout=0.5, batch_first=True)

    src, mask = SRC.swapaxes(0, 1).copy(), np.triu(np.ones((5, 5), dtype=bool), 1)
    expected = torch_reference("encoder_layer_eval",
                               lambda torch: torch_eval_forward(torch, make, src, mask))
    ours = make(nn).eval()
    ours.load_state_dict({k[6:]: v for k, v in expected.items() if k.startswith("state.")})
    out = ours(mg.tensor(src), src_mask=mg.tensor(mask))
    np.testing.assert_allclose(out.numpy(), expected["out"], **TOL)
    np.testing.assert_array_equal(
        ours(mg.tensor(src), is_causal=True).numpy(), out.numpy())  # the mask it stands for


def test_encoder_with_final_norm_matches_torch(torch_reference):
    def make(m):
        layer = m.TransformerEncoderLayer(D, 2, FF, dropout=0.0, activation="gelu")
        extra = {"enable_nested_tensor": False} if m is not nn else {}
        return m.TransformerEncoder(layer, 2, norm=m.LayerNorm(D), **extra)

    arrays = {"src": SRC, "padding": PADDING}

    def forward(module, t):
        return (module(t["src"], src_key_padding_mask=t["padding"]),)

    expected = torch_reference("encoder", lambda torch: torch_module_step(
        torch, make, arrays, ["src"], forward))
    assert_same_module_step(make, expected, ["src"], forward)


def test_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(D, 2, FF)
    encoder = nn.TransformerEncoder(layer, 3)
    assert len(encoder.layers) == 3 and encoder.num_layers == 3
    encoder.layers[0].linear1.weight.data[...] = 0
    assert (encoder.layers[1].linear1.weight.numpy() != 0).any()
    assert (layer.linear1.weight.numpy() != 0).any()


def test_encoder_layer_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="relu or gelu.*'tanh'"):
        nn.TransformerEncoderLayer(D, 2, activation="tanh")
    with pytest.raises(ValueError, match="embed_dim 8 must be divisible by num_heads 3"):
        nn.TransformerEncoderLayer(D, 3)
