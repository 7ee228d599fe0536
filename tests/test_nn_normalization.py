"""LayerNorm, RMSNorm and Embedding: float64 gradchecks of their ops, PyTorch parity of the
functions (op_tests) and of the layers with PyTorch's weights (its state_dict loaded strictly),
initialization, repr, and bad inputs."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import OpCase, away_from_zero, import_torch, op_tests
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.testing import gradcheck
from test_nn_layers import assert_same_step, torch_step


def functional():
    return import_torch().nn.functional


# --------------------------------------------------------------------------- the functions
def normalized_shapes(data):
    """An input shape (0 to 2 leading dims) and its normalized last 1 or 2 dims (sides >= 2:
    a row of one element has no variance to normalize)."""
    leading = data.draw(st.lists(st.integers(1, 3), max_size=2), label="leading")
    normalized = data.draw(st.lists(st.integers(2, 4), min_size=1, max_size=2), label="normalized")
    return tuple(leading) + tuple(normalized), tuple(normalized)


def norm_case(name, fn, torch_fn, n_affine, options=({},), domain=lambda i, x: x):
    """An OpCase for ``fn(x, *affine, normalized_shape=..., **option)``, with ``n_affine``
    tensors of the normalized shape after x (weight, then bias)."""
    def draw(data):
        x_shape, normalized = normalized_shapes(data)
        option = data.draw(st.sampled_from(options), label="options")
        return [x_shape] + [normalized] * n_affine, {"normalized_shape": normalized, **option}

    fixed = [((5,), (5,)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((3, 2, 2), (2, 2))]
    examples = [([x_shape] + [normalized] * n_affine, {"normalized_shape": normalized, **option})
                for option in options for x_shape, normalized in fixed]
    return OpCase(name, draw, fn, torch_fn, examples=examples, domain=domain)


def rms_domain(i, x):
    """x away from 0, so that mean(x^2) is well above eps: float32's eps (minigrad's default
    for float32) and float64's (the float64 oracle's) then give the same output to 1e-6."""
    return away_from_zero(x) if i == 0 else x


CASES = [
    norm_case("layer_norm", lambda x, w, b, normalized_shape: F.layer_norm(x, normalized_shape,
                                                                           w, b),
              lambda x, w, b, normalized_shape: functional().layer_norm(x, normalized_shape,
                                                                        w, b), 2),
    norm_case("layer_norm_eps", lambda x, w, b, normalized_shape, eps: F.layer_norm(
                  x, normalized_shape, w, b, eps),
              lambda x, w, b, normalized_shape, eps: functional().layer_norm(
                  x, normalized_shape, w, b, eps), 2, options=[{"eps": 0.1}]),
    norm_case("layer_norm_weight_only",
              lambda x, w, normalized_shape: F.layer_norm(x, normalized_shape, w),
              lambda x, w, normalized_shape: functional().layer_norm(x, normalized_shape, w), 1),
    norm_case("layer_norm_no_affine", lambda x, normalized_shape: F.layer_norm(x, normalized_shape),
              lambda x, normalized_shape: functional().layer_norm(x, normalized_shape), 0),
    norm_case("rms_norm", lambda x, w, normalized_shape, **eps: F.rms_norm(
                  x, normalized_shape, w, **eps),
              lambda x, w, normalized_shape, **eps: functional().rms_norm(
                  x, normalized_shape, w, **eps), 1, options=[{}, {"eps": 0.5}],
              domain=rms_domain),
    norm_case("rms_norm_no_weight", lambda x, normalized_shape: F.rms_norm(x, normalized_shape),
              lambda x, normalized_shape: functional().rms_norm(x, normalized_shape), 0,
              domain=rms_domain),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


def test_rms_norm_eps_none_is_the_dtype_machine_epsilon():
    """eps=None: torch.finfo(dtype).eps, so one element x gives x / sqrt(x^2 + eps)."""
    for dtype in (np.float32, np.float64):
        x = mg.tensor(np.array([1e-4], dtype=dtype))
        eps = np.finfo(dtype).eps
        expected = 1e-4 / np.sqrt(1e-8 + eps)
        np.testing.assert_allclose(F.rms_norm(x, 1).numpy(), [expected], rtol=1e-6)
        assert F.rms_norm(x, 1).dtype == dtype


def test_layer_norm_output_rows_have_mean_0_and_variance_1():
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3, 5)) * 7 + 3)
    y = F.layer_norm(x, (3, 5), eps=0.0).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, rtol=1e-12)


# --------------------------------------------------------------------------- the layers
LAYERS = [
    ("LayerNorm", lambda m: m.LayerNorm(4), (2, 3, 4)),
    ("LayerNorm_2d", lambda m: m.LayerNorm((3, 4), eps=1e-3), (2, 3, 4)),
    ("LayerNorm_no_affine", lambda m: m.LayerNorm(4, elementwise_affine=False), (5, 4)),
    ("LayerNorm_no_bias", lambda m: m.LayerNorm([2, 3], bias=False), (4, 2, 3)),
    ("RMSNorm", lambda m: m.RMSNorm(4), (2, 3, 4)),
    ("RMSNorm_2d_eps", lambda m: m.RMSNorm((3, 4), eps=1e-3), (2, 3, 4)),
    ("RMSNorm_no_affine", lambda m: m.RMSNorm(4, elementwise_affine=False), (5, 4)),
]


def torch_step_with_random_weights(torch, make, shape):
    """PyTorch's layer with its weights (and bias) redrawn from N(0, 1), so that the weight
    is not all ones, and one step of it (``torch_step``)."""
    torch.manual_seed(0)
    theirs = make(torch.nn)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return torch_step(torch, theirs, x)


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[name for name, _, _ in LAYERS])
def test_layer_matches_torch_with_the_same_weights(name, make, shape, torch_reference):
    expected = torch_reference(name, lambda torch: torch_step_with_random_weights(torch, make,
                                                                                  shape))
    assert_same_step(make(nn), expected)


def test_initial_weights_are_ones_and_zeros():
    layer = nn.LayerNorm((2, 3))
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (2, 3)
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(nn.RMSNorm(3).weight.numpy(), np.ones(3))
    assert [name for name, _ in nn.RMSNorm(3).named_parameters()] == ["weight"]
    assert [name for name, _ in nn.LayerNorm(3, bias=False).named_parameters()] == ["weight"]
    assert list(nn.LayerNorm(3, elementwise_affine=False).named_parameters()) == []


REPRS = [  # str(torch.nn.<the same layer>) in PyTorch 2.13
    (lambda: nn.LayerNorm(4), "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"),
    (lambda: nn.LayerNorm([2, 3], eps=1e-3, bias=False),
     "LayerNorm((2, 3), eps=0.001, elementwise_affine=True, bias=False)"),
    (lambda: nn.RMSNorm(4), "RMSNorm((4,), eps=None, elementwise_affine=True)"),
    (lambda: nn.RMSNorm((2, 3), eps=1e-6, elementwise_affine=False),
     "RMSNorm((2, 3), eps=1e-06, elementwise_affine=False)"),
    (lambda: nn.Embedding(10, 3), "Embedding(10, 3)"),
    (lambda: nn.Embedding(10, 3, padding_idx=-2), "Embedding(10, 3, padding_idx=8)"),
]


@pytest.mark.parametrize("make, expected", REPRS, ids=[text for _, text in REPRS])
def test_repr_is_torch_s(make, expected):
    assert repr(make()) == expected


# --------------------------------------------------------------------------- embedding
# Repeated indices (1 and 2 several times: their weight rows collect several gradients), 2-D.
INDICES = np.array([[1, 2, 1, 9], [2, 2, 0, 1]])


def torch_embedding_step(torch, padding_idx):
    """PyTorch's Embedding(10, 3) state, the index, the upstream gradient, the output and the
    weight gradient of one step on ``INDICES``."""
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(10, 3, padding_idx=padding_idx)
    results = {f"state.{k}": v.clone() for k, v in theirs.state_dict().items()}
    out = theirs(torch.tensor(INDICES))
    upstream = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(torch.tensor(upstream))
    return results | {"upstream": upstream, "out": out, "grad.weight": theirs.weight.grad}


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch_with_the_same_weights(padding_idx, torch_reference):
    expected = torch_reference(f"Embedding/{padding_idx}",
                               lambda torch: torch_embedding_step(torch, padding_idx))
    ours = nn.Embedding(10, 3, padding_idx=padding_idx)
    ours.load_state_dict({"weight": expected["state.weight"]})
    out = ours(mg.tensor(INDICES))
    assert out.shape == (2, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected["out"], rtol=1e-6)
    out.backward(mg.tensor(expected["upstream"]))
    np.testing.assert_allclose(ours.weight.grad.numpy(), expected["grad.weight"], rtol=1e-5,
                               atol=1e-6)
    if padding_idx is not None:
        np.testing.assert_array_equal(ours.weight.grad.numpy()[padding_idx], 0)


def test_embedding_gradcheck_with_repeated_indices():
    weight = mg.tensor(np.random.default_rng(0).standard_normal((10, 3)), requires_grad=True)
    assert gradcheck(lambda w: F.embedding(mg.tensor(INDICES), w), [weight])


def test_embedding_gradcheck_with_padding_idx():
    """The padding row gets no gradient although its values are read: checked against the
    finite differences of a function in which that row's values cannot matter (it is masked
    to 0), so both sides are 0 there and the other rows are checked as usual."""
    weight = mg.tensor(np.random.default_rng(0).standard_normal((10, 3)), requires_grad=True)
    keep = np.ones((10, 1))
    keep[2] = 0
    assert gradcheck(lambda w: F.embedding(mg.tensor(INDICES), w * mg.tensor(keep),
                                           padding_idx=2), [weight])
    np.testing.assert_array_equal(weight.grad.numpy()[2], 0)


def test_embedding_initialization_is_standard_normal_with_a_zero_padding_row():
    mg.manual_seed(0)
    weight = nn.Embedding(2000, 16, padding_idx=-3).weight.numpy()
    assert weight.dtype == np.float32 and weight.shape == (2000, 16)
    np.testing.assert_array_equal(weight[1997], 0)
    others = np.delete(weight, 1997, axis=0)
    assert abs(others.mean()) < 0.02 and abs(others.std() - 1) < 0.02


# --------------------------------------------------------------------------- bad input
def test_embedding_index_out_of_range_names_the_index_and_the_size():
    layer = nn.Embedding(10, 3)
    with pytest.raises(ValueError, match="index 12 is out of range for Embedding with "
                                         "num_embeddings=10"):
        layer(mg.tensor(np.array([[1, 12], [0, 3]])))
    with pytest.raises(ValueError, match="index -1 is out of range .* num_embeddings=10"):
        layer(mg.tensor(np.array([-1])))


def test_embedding_float_indices_name_the_dtype():
    with pytest.raises(TypeError, match="float32"):
        nn.Embedding(10, 3)(mg.tensor(np.array([1.0, 2.0], dtype=np.float32)))


def test_embedding_padding_idx_out_of_range_names_both_numbers():
    with pytest.raises(ValueError, match="padding_idx 10 must be within num_embeddings=10"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(ValueError, match="padding_idx -11 must be within num_embeddings=10"):
        F.embedding(mg.tensor(np.array([1])), mg.randn(10, 3), padding_idx=-11)


@pytest.mark.parametrize("layer", [nn.LayerNorm((3, 4)), nn.RMSNorm((3, 4))],
                         ids=["LayerNorm", "RMSNorm"])
def test_normalized_shape_not_the_input_s_last_dims_names_both_shapes(layer):
    with pytest.raises(ValueError, match=r"normalized_shape \(3, 4\) does not match the last "
                                         r"dims of input of shape \(2, 4, 3\)"):
        layer(mg.randn(2, 4, 3))
    with pytest.raises(ValueError, match=r"\(3, 4\) .* shape \(4,\)"):
        layer(mg.randn(4))


def test_weight_of_another_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not match "
                                         r"normalized_shape \(4,\)"):
        F.layer_norm(mg.randn(2, 4), 4, weight=mg.ones(3))
    with pytest.raises(ValueError, match=r"bias of shape \(2, 2\) does not match "
                                         r"normalized_shape \(4,\)"):
        F.layer_norm(mg.randn(2, 4), 4, bias=mg.zeros(2, 2))


def test_input_of_another_dtype_than_the_weight_names_both_dtypes():
    with pytest.raises(TypeError, match="input float64, weight float32, bias float32"):
        nn.LayerNorm(4)(mg.tensor(np.ones((2, 4))))
    with pytest.raises(TypeError, match="input float64, weight float32"):
        nn.RMSNorm(4)(mg.tensor(np.ones((2, 4))))
