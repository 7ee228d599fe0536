"""minigrad.quant.low_bit: binary and ternary weights (values on their grid, thresholds worked
by hand, straight-through gradients to the real-valued weight), power-of-two weights (grid,
exponent range, log-domain rounding), power-of-two scales, float16 storage (round trip within
2^-11), and clear errors."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, prune
from minigrad.nn import functional as F
from minigrad.nn.utils.parametrize import is_parametrized
from minigrad.quant import (QParams, binarize, calculate_qparams, kmeans_share,
                            power_of_two_quantize, power_of_two_scale, power_of_two_weights,
                            remove_low_bit, ternarize, to_float16)
from minigrad.quant.low_bit import (binary_weights, exponent_range, ternary_threshold,
                                    ternary_weights)

TERNARY_HAND = np.array([0.1, -0.5, 0.9, -1.2, 0.05, 0.3], dtype=np.float32)


def linear_with(weight, seed=0):
    mg.manual_seed(seed)
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data[...] = weight
    return layer


def random_weight(shape=(4, 6), seed=0, scale=0.8):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def backward_through(layer, seed=1):
    """Run L = sum(upstream * layer(x)); return dL/dW by hand (upstream^T x)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, layer.in_features)).astype(np.float32)
    upstream = rng.standard_normal((5, layer.out_features)).astype(np.float32)
    (layer(mg.tensor(x)) * mg.tensor(upstream)).sum().backward()
    return upstream.T @ x


def is_power_of_two(values):
    fraction, _ = np.frexp(np.asarray(values, np.float64))
    return np.all(np.abs(fraction) == 0.5)


# --------------------------------------------------------------------------- binary
def test_binary_weights_are_plus_minus_alpha_with_sign_of_zero_positive():
    w = np.array([0.5, -0.25, 0.0, -1.25], dtype=np.float32)
    np.testing.assert_array_equal(binary_weights(w), [0.5, -0.5, 0.5, -0.5])  # alpha=mean|w|
    np.testing.assert_array_equal(binary_weights(w, scaled=False), [1, -1, 1, -1])


def test_binarize_forward_uses_the_binary_weight_and_keeps_the_real_one():
    weight = random_weight()
    layer = linear_with(weight)
    parameter = layer.weight
    binarize(layer)
    assert layer.weight_orig is parameter  # renamed in place: an optimizer keeps it
    assert [name for name, _ in layer.named_parameters()] == ["weight_orig", "bias"]
    alpha = np.abs(weight).mean()
    np.testing.assert_allclose(np.abs(layer.weight.data), alpha, rtol=1e-6)
    np.testing.assert_array_equal(np.sign(layer.weight.data), np.where(weight >= 0, 1, -1))
    x = mg.randn(3, 6)
    np.testing.assert_array_equal(layer(x).numpy(),
                                  F.linear(x, mg.tensor(layer.weight.data), layer.bias).numpy())


def test_binary_gradient_passes_straight_through_and_stops_where_w_is_beyond_one():
    weight = random_weight(scale=1.0)
    weight[0, :3] = [1.5, -2.0, 1.0]  # beyond the clip, beyond, exactly at it (passes)
    layer = binarize(linear_with(weight), scaled=False)
    by_hand = backward_through(layer)
    expected = by_hand * (np.abs(weight) <= 1)
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.all(layer.weight_orig.grad.numpy()[0, :2] == 0) and expected[0, 2] != 0


def test_optimizer_built_before_binarize_trains_the_real_weight():
    layer = linear_with(random_weight())
    optimizer = optim.SGD(layer.parameters(), lr=0.1)
    binarize(layer)
    before = layer.weight_orig.data.copy()
    optimizer.zero_grad()
    backward_through(layer)
    optimizer.step()
    assert not np.array_equal(layer.weight_orig.data, before)
    layer(mg.randn(2, 6))
    assert len(np.unique(np.abs(layer.weight.data))) == 1


# --------------------------------------------------------------------------- ternary
def test_ternary_threshold_and_scale_by_hand():
    delta, alpha = ternary_threshold(TERNARY_HAND)
    mean_magnitude = (0.1 + 0.5 + 0.9 + 1.2 + 0.05 + 0.3) / 6
    np.testing.assert_allclose(delta, 0.7 * mean_magnitude, rtol=1e-6)
    np.testing.assert_allclose(alpha, (0.5 + 0.9 + 1.2) / 3, rtol=1e-6)  # |w| > delta = 0.356
    np.testing.assert_allclose(ternary_weights(TERNARY_HAND),
                               [0, -alpha, alpha, -alpha, 0, 0], rtol=1e-6)
    # A larger threshold keeps fewer weights: delta = 1.5 * 0.508 = 0.7625 keeps 0.9 and -1.2.
    np.testing.assert_allclose(ternary_weights(TERNARY_HAND, 1.5), [0, 0, 1.05, -1.05, 0, 0],
                               rtol=1e-6)


def test_ternarize_forward_is_ternary_and_gradient_is_the_identity():
    weight = random_weight()
    layer = ternarize(linear_with(weight))
    np.testing.assert_allclose(layer.weight.data, ternary_weights(weight))
    assert len(np.unique(layer.weight.data)) == 3
    by_hand = backward_through(layer)
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), by_hand, rtol=1e-5, atol=1e-6)


def test_remove_low_bit_keeps_the_quantized_values_in_the_same_parameter():
    layer = ternarize(linear_with(random_weight()))
    parameter, values = layer.weight_orig, layer.weight.data.copy()
    remove_low_bit(layer)
    assert layer.weight is parameter
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.data, values)
    assert not is_parametrized(layer)


# --------------------------------------------------------------------------- powers of two
def test_power_of_two_hand_example_and_log_domain_rounding():
    w = np.array([0.3, -0.01, 0.0, 1.2, 3.0, 1e-4, -1.45], dtype=np.float32)
    # bits=3: p_max = round(log2 3) = 2, 3 exponents {0, 1, 2}; below 2^-1 -> 0.
    np.testing.assert_array_equal(power_of_two_quantize(w, 3), [0, 0, 0, 1, 4, 0, -2])
    # bits=4: 7 exponents -4..2: 0.3 -> 2^round(-1.74) = 0.25; 0.01 < 2^-5 -> 0.
    np.testing.assert_array_equal(power_of_two_quantize(w, 4), [0.25, 0, 0, 1, 4, 0, -2])
    # log-domain rounding: log2(1.45) = 0.536 rounds to 1 (2.0), although 1.0 is nearer.
    assert power_of_two_quantize(np.float32([1.45]), 8)[0] == 2


@pytest.mark.parametrize("bits", [2, 3, 4, 6])
def test_power_of_two_values_lie_on_the_grid_and_in_range(bits):
    w = random_weight((20, 30), seed=bits, scale=0.3)
    w[0, :3] = 0
    q = power_of_two_quantize(w, bits)
    p_max = int(np.rint(np.log2(np.abs(w).max())))
    p_min, top = exponent_range(bits, p_max)
    assert top == p_max and p_max - p_min + 1 == 2 ** (bits - 1) - 1
    nonzero = q[q != 0]
    assert is_power_of_two(nonzero)
    exponents = np.log2(np.abs(nonzero))
    assert exponents.min() >= p_min and exponents.max() <= p_max
    assert np.all(q[0, :3] == 0) and np.all(np.sign(q[q != 0]) == np.sign(w[q != 0]))
    assert q.dtype == np.float32
    if bits == 2:
        assert len(np.unique(q)) <= 3  # 0 and +-2^p_max: ternary


def test_power_of_two_with_a_given_max_exponent_clamps():
    q = power_of_two_quantize(np.float32([8.0, 0.5, 0.2, 0.1]), 3, max_exponent=0)
    np.testing.assert_array_equal(q, [1, 0.5, 0.25, 0])  # exponents -2..0; 0.1 < 2^-3


def test_power_of_two_tensor_gradient_passes_straight_through():
    w = mg.tensor(random_weight(), requires_grad=True)
    q = power_of_two_quantize(w, 4)
    np.testing.assert_array_equal(q.numpy(), power_of_two_quantize(w.numpy(), 4))
    upstream = np.random.default_rng(3).standard_normal(w.shape).astype(np.float32)
    (q * mg.tensor(upstream)).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), upstream)


def test_power_of_two_weights_train_the_real_weight_straight_through():
    weight = random_weight()
    layer = linear_with(weight)
    parameter = layer.weight
    power_of_two_weights(layer, bits=3)
    assert layer.weight_orig is parameter
    np.testing.assert_array_equal(layer.weight.data, power_of_two_quantize(weight, 3))
    by_hand = backward_through(layer)
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), by_hand, rtol=1e-5, atol=1e-6)
    values = layer.weight.data.copy()
    remove_low_bit(layer)
    assert layer.weight is parameter and not is_parametrized(layer)
    np.testing.assert_array_equal(layer.weight.data, values)


def test_power_of_two_of_all_zeros_is_all_zeros():
    np.testing.assert_array_equal(power_of_two_quantize(np.zeros(4, np.float32), 3), 0)


@pytest.mark.parametrize("round_up", [False, True])
def test_power_of_two_scale_rounds_each_scale(round_up):
    per_tensor = calculate_qparams(-1.3, 2.9, bits=8)
    per_channel = calculate_qparams(np.float32([-1, -0.01, -7]), np.float32([3, 0.2, 5]),
                                    bits=8, symmetric=True, axis=0)
    for qp in (per_tensor, per_channel):
        rounded = power_of_two_scale(qp, round_up=round_up)
        assert is_power_of_two(rounded.scale)
        ratio = rounded.scale / qp.scale
        if round_up:
            assert np.all(ratio >= 1) and np.all(ratio < 2)
        else:
            assert np.all(ratio >= 2**-0.5) and np.all(ratio <= 2**0.5)
        np.testing.assert_array_equal(rounded.zero_point, qp.zero_point)
        assert (rounded.qmin, rounded.qmax, rounded.axis) == (qp.qmin, qp.qmax, qp.axis)
    np.testing.assert_array_equal(
        power_of_two_scale(QParams(np.float32(0.3), 0, -128, 127), round_up).scale,
        0.5 if round_up else 0.25)  # log2(0.3) = -1.74


# --------------------------------------------------------------------------- float16
def test_to_float16_stores_half_and_computes_in_single():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    originals = {name: p.data.copy() for name, p in model.named_parameters()}
    to_float16(model)
    assert list(model.parameters()) == []
    state = model.state_dict()
    assert sorted(state) == sorted(name + "_fp16" for name in originals)
    assert all(tensor.dtype == np.float16 for tensor in state.values())
    x = mg.randn(4, 6)
    out = model(x)
    assert out.dtype == np.float32
    for name, original in originals.items():
        layer, attribute = name.split(".")
        value = getattr(model[int(layer)], attribute).data
        assert value.dtype == np.float32
        assert np.all(np.abs(value - original) <= 2.0**-11 * np.abs(original))
        np.testing.assert_array_equal(value, original.astype(np.float16).astype(np.float32))


def test_float16_round_trip_error_is_at_most_2_to_minus_11_relative():
    rng = np.random.default_rng(0)
    w = (rng.choice([-1, 1], 2000) * 2.0 ** rng.uniform(-14, 15.9, 2000)).astype(np.float32)
    layer = to_float16(linear_with(w.reshape(40, 50)))
    error = np.abs(layer.weight.data - w.reshape(40, 50))
    assert np.all(error <= 2.0**-11 * np.abs(w.reshape(40, 50)))
    remove_low_bit(layer, "weight")
    assert layer.weight.dtype == np.float32 and "weight" in dict(layer.named_parameters())


def test_float16_bakes_pruning_and_leaves_other_formats_alone():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 3))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    kmeans_share(model[1], bits=1)
    binarize(model[2])
    to_float16(model)
    assert sorted(model.state_dict()) == [
        "0.bias_fp16", "0.weight_fp16", "1.bias_fp16", "1.weight_centroids", "1.weight_indices",
        "2.bias_fp16", "2.weight_orig"]
    assert np.count_nonzero(model[0].weight.data) == 15
    assert model(mg.randn(2, 6)).dtype == np.float32


def test_float16_refuses_values_it_cannot_hold():
    with pytest.raises(ValueError, match="outside float16's range"):
        to_float16(linear_with(np.float32([[1e5, 1.0]])))


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bits", [1, 9, 2.5, True])
def test_power_of_two_refuses_bad_bits(bits):
    with pytest.raises(ValueError, match="bits must be an integer in 2..8"):
        power_of_two_quantize(np.float32([0.5]), bits)


def test_clear_errors():
    layer = binarize(linear_with(random_weight()))
    with pytest.raises(ValueError, match="already stored as binary"):
        ternarize(layer)
    with pytest.raises(ValueError, match="is a plain tensor, not binary"):
        remove_low_bit(linear_with(random_weight()))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        ternarize(linear_with(random_weight()), threshold=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        power_of_two_quantize(np.float32([np.nan]), 3)
    with pytest.raises(TypeError, match="expected QParams"):
        power_of_two_scale(0.1)
