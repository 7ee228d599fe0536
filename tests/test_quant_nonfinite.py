"""Every quantizer refuses NaN and inf the same way, through ``qparams.check_finite``: a
ValueError "<caller>: <what> contains <n> NaN or inf value(s) (of <size>); <why>", naming the
parameter where there is one, and nothing changed. (quantize, fake_quantize, dequantize,
calculate_qparams, the observers and the workflow are checked in their own test files.)"""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune, quant
from minigrad.nn.utils.parametrize import is_parametrized
from minigrad.quant import (DynamicQuantizedLinear, FakeQuantize, Quantize, binarize,
                            fake_quantize_weight, kmeans_1d, kmeans_share, power_of_two_quantize,
                            power_of_two_weights, ternarize, to_float16)
from minigrad.quant.qparams import check_finite

FINITE = "quantization needs finite values"


def linear_with_bad_weights(*bad):
    """Linear(4, 3) whose first weights are ``bad`` (12 weights in all)."""
    mg.manual_seed(0)
    layer = nn.Linear(4, 3)
    layer.weight.data.reshape(-1)[:len(bad)] = bad
    return layer


def message(caller, what, bad, size, why=FINITE):
    values = "value" if bad == 1 else "values"
    return re.escape(f"{caller}: {what} contains {bad} NaN or inf {values} (of {size}); {why}")


def test_check_finite_counts_and_passes_finite_arrays_through():
    values = np.array([1.0, np.nan, -np.inf, np.inf, 2.0])
    with pytest.raises(ValueError, match=message("op", "the thing", 3, 5, "why")):
        check_finite(values, "the thing", "op", "why")
    finite = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(check_finite(finite, "x", "op"), finite)
    codes = np.array([0, 255], dtype=np.uint8)
    assert check_finite(codes, "x", "op") is codes


@pytest.mark.parametrize("store, caller", [
    (lambda m: kmeans_share(m, bits=2), "kmeans_share"),
    (binarize, "binarize"),
    (ternarize, "ternarize"),
    (lambda m: power_of_two_weights(m, bits=3), "power_of_two_weights"),
    (to_float16, "to_float16"),
], ids=["kmeans_share", "binarize", "ternarize", "power_of_two_weights", "to_float16"])
def test_a_weight_format_refuses_a_non_finite_weight_and_changes_nothing(store, caller):
    layer = linear_with_bad_weights(np.nan, np.inf, np.nan)
    before = {name: value.numpy().copy() for name, value in layer.state_dict().items()}
    with pytest.raises(ValueError, match=message(caller, "'weight' of Linear", 3, 12)):
        store(layer)
    assert not is_parametrized(layer)
    assert list(layer.state_dict()) == list(before)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name])


def test_kmeans_share_of_a_pruned_weight_with_nan_keeps_the_pruning():
    layer = linear_with_bad_weights(np.nan, 0.0)
    layer.weight.data.reshape(-1)[1:] = np.linspace(-1, 1, 11)
    prune.l1_unstructured(layer, "weight", amount=0.25)
    with pytest.raises(ValueError, match=message("kmeans_share", "'weight' of Linear", 1, 12)):
        kmeans_share(layer, bits=2)
    assert sorted(layer.state_dict()) == ["bias", "weight_mask", "weight_orig"]


def test_kmeans_1d_refuses_nan_and_inf():
    with pytest.raises(ValueError, match=message("kmeans_1d", "the input", 2, 5)):
        kmeans_1d(np.array([0.1, np.nan, 0.3, -np.inf, 0.5]), 2)


@pytest.mark.parametrize("store, kind", [
    (binarize, "BinaryWeight"), (ternarize, "TernaryWeight"),
    (lambda m: power_of_two_weights(m, bits=3), "PowerOfTwoWeight"),
], ids=["binary", "ternary", "power_of_two"])
def test_a_low_bit_weight_that_became_nan_in_training_is_refused_at_the_forward(store, kind):
    layer = store(linear_with_bad_weights())
    layer.weight_orig.data[0, 0] = np.nan
    with pytest.raises(ValueError, match=message(kind, "the real-valued weight", 1, 12)):
        layer(mg.ones(2, 4))


@pytest.mark.parametrize("as_tensor", [False, True], ids=["array", "tensor"])
def test_power_of_two_quantize_refuses_nan_and_inf(as_tensor):
    w = np.float32([0.5, np.inf, -0.25, np.nan])
    with pytest.raises(ValueError, match=message("power_of_two_quantize", "the weights", 2, 4)):
        power_of_two_quantize(mg.tensor(w) if as_tensor else w, 3)


def test_fake_quantize_weight_names_the_parameter():
    layer = linear_with_bad_weights(np.inf)
    with pytest.raises(ValueError, match=message("fake_quantize_weight", "'weight' of Linear",
                                                 1, 12)):
        fake_quantize_weight(layer, 4)


def test_the_integer_layers_refuse_non_finite_inputs():
    with pytest.raises(ValueError, match=message("Quantize", "the model input", 1, 3)):
        Quantize(0.1, 0, 0, 255)(np.float32([0.0, np.nan, 1.0]))
    layer = linear_with_bad_weights()
    dynamic = DynamicQuantizedLinear.from_float(
        layer, quant.default_qconfig().weight_qparams(layer.weight.numpy()))
    x = np.ones((2, 4), dtype=np.float32)
    x[1, 3] = -np.inf
    with pytest.raises(ValueError, match=message("DynamicQuantizedLinear", "the input", 1, 8)):
        dynamic(mg.tensor(x))


def test_a_fake_quantize_module_refuses_through_its_observer():
    with pytest.raises(ValueError, match=message(
            "MovingAverageMinMaxObserver", "the observed data", 1, 2,
            "quantization ranges need finite values")):
        FakeQuantize()(mg.tensor([1.0, np.nan]))
