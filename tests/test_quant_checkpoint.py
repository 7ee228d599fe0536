"""Quantization state that loads before a forward: every observer and FakeQuantize of a
prepared model has its buffers at their final shape from ``prepare`` / ``prepare_qat`` on
(per channel: the weight's output channels), so a checkpoint saved after calibration or QAT
loads into a freshly prepared model, and ``convert`` of that model gives the same integer model
as converting the original one. Standalone per-channel observers and FakeQuantize modules get
the same through ``allocate(shape)``."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.models import LeNet5
from minigrad.quant import (FakeQuantize, HistogramObserver, MinMaxObserver,
                            PerChannelMinMaxObserver, QConfig, convert, default_qconfig, prepare,
                            prepare_qat)


def images(n=8, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal((n, 1, 28, 28))
                     .astype(np.float32))


def lenet(seed):
    mg.manual_seed(seed)
    return LeNet5().eval()


def calibrated_or_trained(qat, qconfig):
    """A prepared LeNet5 after two calibration batches (PTQ) or three SGD steps (QAT)."""
    if not qat:
        prepared = prepare(lenet(0), qconfig)
        for seed in range(2):
            prepared(images(16, seed))
        return prepared
    prepared = prepare_qat(lenet(0), qconfig)
    optimizer = optim.SGD(prepared.parameters(), lr=0.05)
    labels = mg.tensor(np.arange(16) % 10)
    for seed in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(prepared(images(16, seed)), labels).backward()
        optimizer.step()
    return prepared


def layer_states(qmodel):
    return {name: layer.state() for name, layer in qmodel.named_children()
            if hasattr(layer, "state")}


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
@pytest.mark.parametrize("qat", [False, True], ids=["ptq", "qat"])
def test_a_checkpoint_loads_into_a_fresh_prepared_model_and_converts_the_same(
        qat, per_channel, tmp_path):
    qconfig = default_qconfig(per_channel=per_channel)
    source = calibrated_or_trained(qat, qconfig)
    mg.save(source.state_dict(), tmp_path / "prepared.npz")

    # Another float model (seed 1): everything the integer model needs must come from the file.
    fresh = (prepare_qat if qat else prepare)(lenet(1), qconfig)
    sizes = [site.min_val.shape for site in fresh.weight_sites]
    assert sizes == ([(6,), (16,), (120,), (84,), (10,)] if per_channel else [()] * 5)
    assert not any(site.has_data() for site in fresh.weight_sites)
    fresh.load_state_dict(mg.load(tmp_path / "prepared.npz"))

    expected, loaded = convert(source), convert(fresh)
    states, loaded_states = layer_states(expected), layer_states(loaded)
    assert list(loaded_states) == list(states)
    for name, state in states.items():
        assert list(loaded_states[name]) == list(state), name
        for key, value in state.items():
            np.testing.assert_array_equal(loaded_states[name][key], value, err_msg=name + key)
    x = images(4, seed=9)
    np.testing.assert_array_equal(loaded(x).numpy(), expected(x).numpy())


@pytest.mark.parametrize("qat", [False, True], ids=["ptq", "qat"])
def test_the_weight_sites_hold_the_range_of_the_weights_at_the_last_forward(qat):
    prepared = calibrated_or_trained(qat, default_qconfig())
    prepared(images(2, seed=5))
    conv = prepared.model.features[0].weight.numpy().reshape(6, -1)
    site = prepared.weight_sites[0]
    np.testing.assert_array_equal(site.min_val.numpy(), conv.min(axis=1))
    np.testing.assert_array_equal(site.max_val.numpy(), conv.max(axis=1))
    np.testing.assert_array_equal(site.calculate_qparams().scale,
                                  np.abs(conv).max(axis=1).astype(np.float32) / np.float32(127))


def test_a_per_channel_activation_observer_is_refused_at_prepare():
    qconfig = QConfig(activation_observer=PerChannelMinMaxObserver)
    with pytest.raises(ValueError, match=re.escape(
            "QConfig: activation_observer must be per-tensor, got PerChannelMinMaxObserver "
            "(ch_axis=0)")):
        prepare(lenet(0), qconfig)


# ------------------------------------------------------------------ allocate, reset
def test_an_allocated_per_channel_observer_loads_a_state_before_any_data():
    weight = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(np.float32)
    observed = PerChannelMinMaxObserver(ch_axis=1, bits=4)
    observed(weight)
    state = observed.state_dict()
    with pytest.raises(ValueError, match=re.escape(
            "shape mismatch for min_val: checkpoint has (3,), model has (0,)")):
        PerChannelMinMaxObserver(ch_axis=1, bits=4).load_state_dict(state)

    fresh = PerChannelMinMaxObserver(ch_axis=1, bits=4).allocate(weight.shape)
    assert fresh.channels() == 3 and not fresh.has_data()
    np.testing.assert_array_equal(fresh.min_val.numpy(), [np.inf] * 3)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.calculate_qparams().scale,
                                  observed.calculate_qparams().scale)
    np.testing.assert_array_equal(fresh.min_val.numpy(), weight.min(axis=(0, 2)))
    with pytest.raises(ValueError, match=re.escape(
            "PerChannelMinMaxObserver: sized for 3 channels, got 2 (shape (4, 2), ch_axis 1)")):
        fresh(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(
            "PerChannelMinMaxObserver: ch_axis 1 does not exist in an array of shape (5,)")):
        PerChannelMinMaxObserver(ch_axis=1).allocate((5,))


def test_an_allocated_per_channel_fake_quantize_loads_a_state_before_any_data():
    def weight_fake_quantize():
        return FakeQuantize(PerChannelMinMaxObserver(symmetric=True, restricted=True))

    weight = mg.tensor(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    trained = weight_fake_quantize()
    expected = trained(weight).numpy()
    fresh = weight_fake_quantize().allocate(weight.shape)
    assert fresh.scale.shape == (5,) and fresh.zero_point.shape == (5,)
    fresh.load_state_dict(trained.state_dict())
    np.testing.assert_array_equal(fresh.eval()(weight).numpy(), expected)
    np.testing.assert_array_equal(fresh.scale.numpy(),
                                  np.abs(weight.numpy()).max(axis=1) / np.float32(127))


def test_a_per_tensor_fake_quantize_is_sized_from_the_start():
    fq = FakeQuantize()
    assert fq.allocate((7, 3)) is fq and fq.scale.shape == () and fq.observer.channels() is None


@pytest.mark.parametrize("kind", [MinMaxObserver, PerChannelMinMaxObserver, HistogramObserver],
                         ids=lambda kind: kind.__name__)
def test_reset_min_max_vals_forgets_what_was_observed(kind):
    rng = np.random.default_rng(2)
    first, second = (rng.standard_normal((3, 50)).astype(np.float32) * scale
                     for scale in (10, 1))
    observer = kind(bins=64) if kind is HistogramObserver else kind()
    observer(first)
    observer.reset_min_max_vals()
    assert not observer.has_data()
    assert observer.min_val.shape == ((3,) if kind is PerChannelMinMaxObserver else ())
    observer(second)
    alone = kind(bins=64) if kind is HistogramObserver else kind()
    alone(second)
    np.testing.assert_array_equal(observer.calculate_qparams().scale,
                                  alone.calculate_qparams().scale)
    np.testing.assert_array_equal(observer.calculate_qparams().zero_point,
                                  alone.calculate_qparams().zero_point)
