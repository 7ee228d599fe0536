"""minigrad.quant observers and FakeQuantize: the min/max observers give PyTorch's qparams bit
for bit, the histogram search lowers the quantization error, percentiles read off the
histogram, statistics live in state_dict, FakeQuantize observes / freezes / switches off as
PyTorch's does, and bad input (no data, NaN/inf, bad settings) gets a clear error."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, quant
from minigrad.quant import (FakeQuantize, HistogramObserver, MinMaxObserver,
                            MovingAverageMinMaxObserver, PercentileObserver,
                            PerChannelMinMaxObserver, dequantize, quantize)
from minigrad.quant.observers import bin_counts, expected_quantization_error



def batches(seed, n=4, shape=(8, 3, 5)):
    """Batches whose scale and offset drift, so running and moving-average ranges differ."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * rng.uniform(0.05, 8) + rng.uniform(-4, 4))
            .astype(np.float32) for _ in range(n)]


def observe(observer, data):
    for x in data:
        x = mg.Tensor(x)
        assert observer(x) is x  # an observer passes its input through
    return observer.calculate_qparams()


def quantization_mse(x, qp):
    return float(np.mean((dequantize(quantize(x, qp), qp) - x) ** 2))


# ------------------------------------------------------------------ against PyTorch
TORCH_CASES = [  # (ours, torch's class name, kwargs for both)
    (MinMaxObserver, "MinMaxObserver", {}),
    (MovingAverageMinMaxObserver, "MovingAverageMinMaxObserver", {}),
    (MovingAverageMinMaxObserver, "MovingAverageMinMaxObserver", {"averaging_constant": 0.3}),
    (PerChannelMinMaxObserver, "PerChannelMinMaxObserver", {"ch_axis": 0}),
    (PerChannelMinMaxObserver, "PerChannelMinMaxObserver", {"ch_axis": 1}),
]


def torch_observer_qparams(torch, theirs, kwargs, symmetric, signed):
    """The scale and zero point (``scale<seed>``, ``zero_point<seed>``) PyTorch's observer
    ``theirs`` gives after ``batches(seed)``, for seeds 0 to 4."""
    from torch.ao import quantization as tq

    per_channel = theirs == "PerChannelMinMaxObserver"
    qscheme = {(False, False): torch.per_tensor_affine, (False, True): torch.per_tensor_symmetric,
               (True, False): torch.per_channel_affine,
               (True, True): torch.per_channel_symmetric}[per_channel, symmetric]
    results = {}
    for seed in range(5):
        reference = getattr(tq, theirs)(dtype=torch.qint8 if signed else torch.quint8,
                                        qscheme=qscheme, **kwargs)
        for x in batches(seed):
            reference(torch.from_numpy(x))
        results[f"scale{seed}"], results[f"zero_point{seed}"] = reference.calculate_qparams()
    return results


@pytest.mark.parametrize("ours, theirs, kwargs", TORCH_CASES,
                         ids=["minmax", "moving", "moving_0.3", "channel_0", "channel_1"])
@pytest.mark.parametrize("symmetric", [False, True], ids=["affine", "symmetric"])
@pytest.mark.parametrize("signed", [True, False], ids=["qint8", "quint8"])
def test_min_max_observers_give_torchs_qparams(ours, theirs, kwargs, symmetric, signed,
                                               torch_reference):
    name = "-".join([theirs, *(f"{k}={v}" for k, v in kwargs.items()),
                     f"symmetric={symmetric}", f"signed={signed}"])
    expected = torch_reference(name, lambda torch: torch_observer_qparams(
        torch, theirs, kwargs, symmetric, signed))
    for seed in range(5):
        qp = observe(ours(symmetric=symmetric, signed=signed, **kwargs), batches(seed))
        scale = expected[f"scale{seed}"].reshape(qp.scale.shape)
        np.testing.assert_allclose(qp.scale, scale, rtol=1e-7, atol=0)
        np.testing.assert_array_equal(qp.zero_point,
                                      expected[f"zero_point{seed}"].reshape(qp.scale.shape))
        assert qp.axis == kwargs.get("ch_axis")


def torch_fake_quantize_steps(torch):
    """PyTorch's FakeQuantize over ``batches(7, n=6)``, observing the first 4: the output,
    scale and zero point after each step (``out<step>``, ``scale<step>``, ...)."""
    from torch.ao import quantization as tq

    theirs = tq.FakeQuantize(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                             dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    results = {}
    for step, x in enumerate(batches(7, n=6)):
        if step == 4:
            theirs.disable_observer()
        results[f"out{step}"] = theirs(torch.from_numpy(x))
        results[f"scale{step}"] = theirs.scale[0].clone()
        results[f"zero_point{step}"] = theirs.zero_point[0].clone()
    return results


def test_fake_quantize_module_equals_torchs_over_training_steps(torch_reference):
    expected = torch_reference("FakeQuantize", torch_fake_quantize_steps)
    ours = FakeQuantize(MovingAverageMinMaxObserver(signed=False))
    for step, x in enumerate(batches(7, n=6)):
        if step == 4:
            ours.disable_observer()
        np.testing.assert_array_equal(ours(mg.tensor(x)).numpy(), expected[f"out{step}"])
        np.testing.assert_array_equal(ours.scale.numpy(), expected[f"scale{step}"])
        np.testing.assert_array_equal(ours.zero_point.numpy(), expected[f"zero_point{step}"])


def torch_histogram_qparams(torch, data, symmetric):
    from torch.ao import quantization as tq

    scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    reference = tq.HistogramObserver(dtype=torch.qint8, qscheme=scheme)
    for x in data:
        reference(torch.from_numpy(x))
    return dict(zip(["scale", "zero_point"], reference.calculate_qparams()))


@pytest.mark.parametrize("symmetric", [False, True], ids=["affine", "symmetric"])
def test_histogram_observer_error_is_no_worse_than_torchs(symmetric, torch_reference):
    rng = np.random.default_rng(0)
    data = [rng.laplace(size=4000).astype(np.float32) * (1 + i / 4) for i in range(4)]
    expected = torch_reference(f"HistogramObserver-symmetric={symmetric}",
                               lambda torch: torch_histogram_qparams(torch, data, symmetric))
    theirs = quant.QParams(np.float32(expected["scale"].item()),
                           np.int32(expected["zero_point"].item()), -128, 127)
    ours = observe(HistogramObserver(symmetric=symmetric), data)
    everything = np.concatenate(data)
    assert quantization_mse(everything, ours) <= 1.02 * quantization_mse(everything, theirs)


# ------------------------------------------------------------------ each observer
def test_moving_average_follows_the_formula():
    observer = MovingAverageMinMaxObserver(averaging_constant=0.5)
    observer(np.array([-2.0, 4.0], dtype=np.float32))  # the first batch sets the range
    assert (observer.min_val.item(), observer.max_val.item()) == (-2.0, 4.0)
    observer(np.array([0.0, 10.0], dtype=np.float32))
    assert (observer.min_val.item(), observer.max_val.item()) == (-1.0, 7.0)


def test_min_max_keeps_the_running_extremes():
    observer = MinMaxObserver()
    for x in batches(1):
        observer(x)
    everything = np.concatenate(batches(1))
    assert observer.min_val.item() == everything.min()
    assert observer.max_val.item() == everything.max()


def test_per_channel_observer_gives_one_range_per_channel():
    data = batches(2)
    qp = observe(PerChannelMinMaxObserver(ch_axis=2, symmetric=True), data)
    assert qp.scale.shape == (5,) and qp.axis == 2
    for c in range(5):
        channel = np.concatenate([x[:, :, c] for x in data])
        expected = quant.calculate_qparams(channel.min(), channel.max(), symmetric=True)
        assert qp.scale[c] == expected.scale and qp.zero_point[c] == expected.zero_point


def test_histogram_rebins_without_losing_counts():
    observer = HistogramObserver(bins=64)
    data = batches(3)
    for i, x in enumerate(data):
        observer(x)
        assert observer.histogram.data.sum() == sum(d.size for d in data[:i + 1])
    everything = np.concatenate(data)
    assert (observer.min_val.item(), observer.max_val.item()) == (everything.min(),
                                                                  everything.max())
    # Re-binning moves each count by at most one new bin: compare cumulative counts.
    direct = bin_counts(everything, everything.min(), everything.max(), 64)
    assert np.abs(np.cumsum(direct) - np.cumsum(observer.histogram.data)).max() <= direct.max()


def test_expected_error_equals_brute_force():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 5, 12).astype(np.float64)
    centers = np.linspace(-3, 4, 12)
    for low, high in [(-3.5, 4.5), (-1.0, 2.0), (0.0, 0.5), (-2.2, 0.0)]:
        step = (high - low) / 15
        clipped = np.clip(centers, low, high)
        inside = (centers >= low) & (centers <= high)
        expected = np.sum(counts * ((centers - clipped) ** 2 + inside * step**2 / 12))
        assert np.isclose(expected_quantization_error(counts, centers, low, high, 15), expected)


@pytest.mark.parametrize("symmetric", [False, True], ids=["affine", "symmetric"])
@pytest.mark.parametrize("bits", [4, 8])
def test_histogram_clips_outliers_and_beats_min_max(symmetric, bits):
    rng = np.random.default_rng(5)
    data = [rng.standard_t(3, size=5000).astype(np.float32) for _ in range(3)]
    everything = np.concatenate(data)
    histogram = observe(HistogramObserver(bits=bits, symmetric=symmetric), data)
    min_max = observe(MinMaxObserver(bits=bits, symmetric=symmetric), data)
    assert histogram.scale < min_max.scale  # a narrower range than [min, max]
    assert quantization_mse(everything, histogram) < quantization_mse(everything, min_max)


def test_histogram_of_constant_data():
    observer = HistogramObserver()
    observer(np.zeros(10, dtype=np.float32))
    assert observer.calculate_qparams().scale == np.finfo(np.float32).eps
    observer(np.full(10, 2.0, dtype=np.float32))  # from a point mass to a range
    low, high = observer.observed_range()
    assert low == 0.0 and abs(high - 2.0) <= 2.0 / observer.bins


def test_percentile_reads_the_histogram():
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 3, 100_000).astype(np.float32)
    observer = PercentileObserver(percentile=99, bins=512)
    observer(x)
    low, high = observer.observed_range()
    bin_width = 4 / 512
    assert abs(low - np.percentile(x, 1)) < bin_width
    assert abs(high - np.percentile(x, 99)) < bin_width
    observer = PercentileObserver(percentile=100)
    observer(x)
    assert observer.observed_range() == (float(x.min()), float(x.max()))


# ------------------------------------------------------------------ state
ALL_OBSERVERS = [MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
                 HistogramObserver, PercentileObserver]


@pytest.mark.parametrize("kind", ALL_OBSERVERS, ids=lambda kind: kind.__name__)
def test_statistics_are_buffers_in_the_state_dict(kind):
    observer = kind(bits=6)
    qp = observe(observer, batches(8))
    state = observer.state_dict()
    assert {"min_val", "max_val"} <= set(state)
    fresh = kind(bits=6)
    if kind is PerChannelMinMaxObserver:  # (C,) buffers exist once the first batch has been seen
        fresh(batches(9)[0])
    fresh.load_state_dict(state)
    again = fresh.calculate_qparams()
    np.testing.assert_array_equal(again.scale, qp.scale)
    np.testing.assert_array_equal(again.zero_point, qp.zero_point)


# ------------------------------------------------------------------ FakeQuantize
def test_fake_quantize_observes_in_training_and_freezes():
    fq = FakeQuantize(MinMaxObserver(bits=4))
    assert {"scale", "zero_point", "observer_enabled", "fake_quant_enabled", "observer.min_val",
            "observer.max_val"} <= set(fq.state_dict())
    x = mg.tensor(np.linspace(-1, 1, 9, dtype=np.float32), requires_grad=True)
    y = fq(x)
    qp = fq.qparams()
    assert qp.scale == np.float32(2 / 15)
    np.testing.assert_array_equal(y.numpy(), dequantize(quantize(x.numpy(), qp), qp))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(9))  # inside: the identity

    fq.disable_observer()
    wide = mg.tensor(np.linspace(-4, 4, 9, dtype=np.float32), requires_grad=True)
    fq(wide).sum().backward()
    assert fq.scale.item() == np.float32(2 / 15)  # frozen: the wide batch changed nothing
    assert wide.grad.numpy()[[0, -1]].tolist() == [0.0, 0.0]  # clamped: no gradient

    fq.enable_observer().eval()
    fq(wide)
    assert fq.scale.item() == np.float32(2 / 15)  # eval mode does not observe either
    fq.train()(wide)
    assert fq.scale.item() == np.float32(8 / 15)

    fq.disable_fake_quant()
    assert fq(x) is x


def test_fake_quantize_state_dict_round_trip():
    model = nn.Sequential(nn.Linear(3, 4), FakeQuantize())
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    model(x)
    model[1].disable_observer()
    copy = nn.Sequential(nn.Linear(3, 4), FakeQuantize())
    copy.load_state_dict(model.state_dict())
    copy.eval()
    np.testing.assert_array_equal(copy(x).numpy(), model.eval()(x).numpy())
    assert not copy[1].observer_enabled.item()


def test_per_channel_fake_quantize_of_weights():
    layer = nn.Linear(6, 4)
    # Restricted range: max|w| / s = 127 exactly (full range: 127.5, rounded to 128 and clamped,
    # so the largest weight of each row would get no gradient).
    fq = FakeQuantize(PerChannelMinMaxObserver(ch_axis=0, symmetric=True, restricted=True))
    w = fq(layer.weight)
    assert fq.scale.shape == (4,) and fq.qparams().axis == 0
    for row in range(4):
        assert len(np.unique(np.round(w.numpy()[row] / fq.scale.numpy()[row]))) <= 255
    w.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), np.ones((4, 6)))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kind", ALL_OBSERVERS, ids=lambda kind: kind.__name__)
def test_observers_need_data_first(kind):
    with pytest.raises(ValueError, match=f"{kind.__name__}: .*observe calibration data first"):
        kind().calculate_qparams()


def test_fake_quantize_needs_data_first():
    with pytest.raises(ValueError, match="FakeQuantize: .*observe calibration data first"):
        FakeQuantize().eval()(mg.tensor([1.0]))


@pytest.mark.parametrize("kind", ALL_OBSERVERS, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_observers_refuse_nan_and_inf(kind, bad):
    x = np.ones((2, 3), dtype=np.float32)
    x[1, 2] = bad
    message = (f"{kind.__name__}: the observed data contains 1 NaN or inf value (of 6); "
               "quantization ranges need finite values")
    with pytest.raises(ValueError, match=re.escape(message)):
        kind()(mg.tensor(x))


@pytest.mark.parametrize("kind", ALL_OBSERVERS, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("bits", [1, 17])
def test_observers_refuse_bits_outside_2_to_16(kind, bits):
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        kind(bits=bits)


def test_bad_observer_settings_are_refused():
    with pytest.raises(ValueError, match="averaging_constant must be in"):
        MovingAverageMinMaxObserver(averaging_constant=0)
    with pytest.raises(ValueError, match=r"percentile must be in \[50, 100\]"):
        PercentileObserver(percentile=10)
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        HistogramObserver(bins=1)
    observer = PerChannelMinMaxObserver(ch_axis=1)
    observer(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(
            "PerChannelMinMaxObserver: sized for 3 channels, got 4 (shape (2, 4), ch_axis 1)")):
        observer(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="ch_axis 1 does not exist"):
        PerChannelMinMaxObserver(ch_axis=1)(np.ones(3, dtype=np.float32))


def test_empty_batches_are_ignored():
    observer = MinMaxObserver()
    observer(np.zeros((0, 3), dtype=np.float32))
    assert not observer.has_data()
