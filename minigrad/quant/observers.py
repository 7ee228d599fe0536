"""Observers: modules that watch tensors go by and choose the range [a, b] to quantize them to.

An observer is placed where a tensor will be quantized (a layer's input, output or weight).
Calling it records statistics of the tensor and returns the tensor unchanged; after a few
calibration batches ``calculate_qparams()`` turns the chosen range into ``QParams``
(``qparams.calculate_qparams``: the range is widened to contain 0, then
s = (b - a) / (qmax - qmin) and z = qmin - round(a / s) for the affine scheme). The statistics
are buffers, so they are in ``state_dict``.

How the range is chosen:

* ``MinMaxObserver``: [min, max] of everything seen (PyTorch's, same numbers).
* ``MovingAverageMinMaxObserver``: the first batch sets [min, max], then each batch moves them
  by min <- min + c (min_batch - min) with c = 0.01 (PyTorch's, same numbers). Forgets early
  batches: used for activations during quantization-aware training.
* ``PerChannelMinMaxObserver``: one [min, max] per slice along ``ch_axis`` (PyTorch's).
* ``HistogramObserver``: keeps a histogram of all values seen and picks the [a, b] that
  minimises the expected squared error of quantizing them (see ``expected_quantization_error``).
  A wider range means coarser steps; a narrower one clips the outliers.
* ``PercentileObserver``: the same histogram, with [a, b] = the (100 - p)th and pth
  percentiles of x (p = 99.99 by default): discards the rarest 0.01% on each side.

Each observer takes the quantizer's ``bits`` (2..16), ``symmetric``, ``signed`` and
``restricted`` settings, as ``calculate_qparams`` does.
"""

import numpy as np

from minigrad.backend import array_module
from minigrad.nn.module import Module
from minigrad.quant.qparams import EPS, calculate_qparams, check_finite, qrange
from minigrad.tensor import Tensor


class Observer(Module):
    """Base class: ``forward`` checks the data and hands its array to ``observe``; subclasses
    define ``observe(array)``, ``has_data()``, ``observed_range() -> (a, b)`` and
    ``reset_min_max_vals()``, and a per-channel one ``allocate(shape)`` and ``channels()``."""

    axis = None  # the channel axis of per-channel observers

    def __init__(self, bits=8, symmetric=False, signed=True, restricted=False, eps=EPS):
        super().__init__()
        self.qmin, self.qmax = qrange(bits, signed, restricted)
        self.bits, self.symmetric = bits, symmetric
        self.signed, self.restricted = signed, restricted
        self.eps = eps

    def forward(self, x):
        array = x.data if isinstance(x, Tensor) else x
        xp = array_module(array)
        array = xp.asarray(array)
        if array.size == 0:
            return x
        check_finite(array, "the observed data", type(self).__name__,
                     "quantization ranges need finite values")
        self.observe(array.astype(np.float32, copy=False))
        return x

    def observe(self, array):
        raise NotImplementedError(f"{type(self).__name__} must define observe(array)")

    def reset_min_max_vals(self):
        raise NotImplementedError(f"{type(self).__name__} must define reset_min_max_vals()")

    def allocate(self, shape):
        """Size the statistics for tensors of ``shape`` before any is observed, so a saved
        ``state_dict`` loads into this observer; per tensor there is nothing to size.
        Returns ``self``."""
        return self

    def channels(self):
        """How many channels the statistics hold (per channel), None per tensor."""
        return None

    def has_data(self):
        raise NotImplementedError(f"{type(self).__name__} must define has_data()")

    def observed_range(self):
        raise NotImplementedError(f"{type(self).__name__} must define observed_range()")

    def calculate_qparams(self):
        """The QParams for the range chosen from everything observed so far."""
        if not self.has_data():
            raise ValueError(f"{type(self).__name__}: no statistics yet; observe calibration "
                             "data first (call the observer on some batches)")
        low, high = self.observed_range()
        return calculate_qparams(low, high, bits=self.bits, symmetric=self.symmetric,
                                 signed=self.signed, restricted=self.restricted, axis=self.axis,
                                 eps=self.eps)

    def extra_repr(self):
        scheme = "symmetric" if self.symmetric else "affine"
        return f"bits={self.bits}, {scheme}, qmin={self.qmin}, qmax={self.qmax}"


class MinMaxObserver(Observer):
    """Range = [running min, running max] of all observed values (PyTorch's ``MinMaxObserver``).

    Buffers ``min_val`` and ``max_val`` start at +inf and -inf (no data).
    """

    def __init__(self, bits=8, symmetric=False, signed=True, restricted=False, eps=EPS):
        super().__init__(bits, symmetric, signed, restricted, eps)
        self.register_buffer("min_val", Tensor(np.array(np.inf, dtype=np.float32)))
        self.register_buffer("max_val", Tensor(np.array(-np.inf, dtype=np.float32)))

    def batch_range(self, array):
        xp = array_module(array)
        return xp.min(array), xp.max(array)

    def combine(self, low, high):
        """The running range after a batch whose range is [low, high]."""
        xp = array_module(low)
        return xp.minimum(self.min_val.data, low), xp.maximum(self.max_val.data, high)

    def observe(self, array):
        low, high = self.batch_range(array)
        if self.has_data():
            low, high = self.combine(low, high)
        self.set_range(low, high)

    def set_range(self, low, high):
        xp = array_module(low)  # (NumPy reductions return scalars: store float32 arrays)
        self.min_val.data = xp.asarray(low, dtype=np.float32)
        self.max_val.data = xp.asarray(high, dtype=np.float32)

    def has_data(self):
        low, high = self.min_val.data, self.max_val.data
        return low.size > 0 and bool(array_module(low).all(low <= high))

    def reset_min_max_vals(self):
        """Forget everything observed (+inf / -inf: no data); per-channel statistics keep
        their size."""
        xp = array_module(self.min_val.data)
        self.min_val.data = xp.full(self.min_val.shape, np.inf, dtype=np.float32)
        self.max_val.data = xp.full(self.max_val.shape, -np.inf, dtype=np.float32)

    def observed_range(self):
        return self.min_val.data, self.max_val.data


class MovingAverageMinMaxObserver(MinMaxObserver):
    """The first batch sets [min, max]; each later batch moves them toward its own:
    min <- min + c (min_batch - min), the same for max (c = ``averaging_constant``)."""

    def __init__(self, averaging_constant=0.01, bits=8, symmetric=False, signed=True,
                 restricted=False, eps=EPS):
        super().__init__(bits, symmetric, signed, restricted, eps)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"{type(self).__name__}: averaging_constant must be in (0, 1], "
                             f"got {averaging_constant}")
        self.averaging_constant = averaging_constant

    def combine(self, low, high):
        c = np.float32(self.averaging_constant)  # float32 arithmetic, as PyTorch
        return (self.min_val.data + c * (low - self.min_val.data),
                self.max_val.data + c * (high - self.max_val.data))


class PerChannelMinMaxObserver(MinMaxObserver):
    """One running [min, max] per slice along ``ch_axis`` (0: the output channels of Conv2d
    and Linear weights). ``min_val``/``max_val`` have shape (C,) from ``allocate(shape)`` or the
    first batch ((0,) before); after that every batch must have C channels."""

    def __init__(self, ch_axis=0, bits=8, symmetric=False, signed=True, restricted=False,
                 eps=EPS):
        super().__init__(bits, symmetric, signed, restricted, eps)
        self.axis = ch_axis
        self.register_buffer("min_val", Tensor(np.zeros(0, dtype=np.float32)))
        self.register_buffer("max_val", Tensor(np.zeros(0, dtype=np.float32)))

    def channel_count(self, shape):
        """shape[ch_axis]; ValueError when ``shape`` has no such axis."""
        if not -len(shape) <= self.axis < len(shape):
            raise ValueError(f"{type(self).__name__}: ch_axis {self.axis} does not exist in an "
                             f"array of shape {tuple(shape)}")
        return shape[self.axis]

    def allocate(self, shape):
        channels = self.channel_count(shape)
        self.min_val.data = np.full(channels, np.inf, dtype=np.float32)
        self.max_val.data = np.full(channels, -np.inf, dtype=np.float32)
        return self

    def channels(self):
        return self.min_val.shape[0]

    def batch_range(self, array):
        xp = array_module(array)
        channels = self.channel_count(array.shape)
        if self.channels() not in (0, channels):
            raise ValueError(f"{type(self).__name__}: sized for {self.channels()} channels, got "
                             f"{channels} (shape {array.shape}, ch_axis {self.axis})")
        rows = xp.moveaxis(array, self.axis, 0).reshape(channels, -1)
        return rows.min(axis=1), rows.max(axis=1)

    @property
    def ch_axis(self):
        return self.axis

    def extra_repr(self):
        return f"ch_axis={self.axis}, " + super().extra_repr()


def bin_counts(values, low, high, bins, weights=None):
    """Counts of ``values`` in ``bins`` equal bins over [low, high] (the top edge included;
    everything in bin 0 when low == high). float64 counts, weighted when ``weights`` given."""
    xp = array_module(values)
    width = float(high) - float(low)
    if width > 0:
        position = (values.astype(np.float64) - float(low)) / width * bins
        index = xp.clip(xp.floor(position), 0, bins - 1).astype(np.int64)
    else:
        index = xp.zeros(values.shape, dtype=np.int64)
    return xp.bincount(index.ravel(), weights=weights, minlength=bins).astype(np.float64)


def expected_quantization_error(counts, centers, low, high, levels):
    """Expected squared error of quantizing a histogram to the grid over [low, high] (low <= 0
    <= high; arrays of candidates broadcast).

    Each value is taken to sit at its bin's center x. Inside [low, high] the rounding error is
    uniform on [-D/2, D/2], mean square D^2 / 12, with the step D = (high - low) / levels;
    outside, the value is clipped to the nearest end and the error is its distance to it::

        E(low, high) = N_inside D^2 / 12 + sum_{x < low} n (low - x)^2
                                         + sum_{x > high} n (x - high)^2

    The sums come from prefix sums of n, n x and n x^2, so each candidate costs O(log bins).
    """
    xp = array_module(counts)
    zero = xp.zeros(1)
    prefix_n, prefix_x, prefix_xx = (xp.concatenate([zero, xp.cumsum(w)])
                                  for w in (counts, counts * centers, counts * centers**2))
    below = xp.searchsorted(centers, low, side="left")  # number of centers < low
    upto = xp.searchsorted(centers, high, side="right")  # number of centers <= high
    clipped_low = low**2 * prefix_n[below] - 2 * low * prefix_x[below] + prefix_xx[below]
    n_above = prefix_n[-1] - prefix_n[upto]
    clipped_high = ((prefix_xx[-1] - prefix_xx[upto]) - 2 * high * (prefix_x[-1] - prefix_x[upto])
                    + high**2 * n_above)
    step = (high - low) / levels
    inside = prefix_n[upto] - prefix_n[below]
    return inside * step**2 / 12 + clipped_low + clipped_high


class HistogramObserver(Observer):
    """A histogram of every value seen (``bins`` equal bins over the running [min, max]); the
    range is the [a, b] that minimises ``expected_quantization_error`` of that histogram.

    When a batch widens the range, the old counts are re-binned onto the new bins (each old
    bin's count moves to the new bin holding its center: at most half a new bin of error).

    Range search. Symmetric: every threshold t on a grid of ``bins`` steps up to max|x| is
    tried and [-t, t] with the least error is kept. Affine: coordinate descent over the bin
    edges (a <= 0 <= b, as the grid always contains 0): from the full range, alternately
    take the best b for the current a and the best a for that b, until neither moves.
    This is a simplified cousin of PyTorch's ``HistogramObserver._non_linear_param_search``,
    which shrinks the range by quantiles with a different error model and stops at the first
    increase: ranges are close to PyTorch's, not bit-identical.
    """

    def __init__(self, bins=2048, bits=8, symmetric=False, signed=True, restricted=False,
                 eps=EPS):
        super().__init__(bits, symmetric, signed, restricted, eps)
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"{type(self).__name__}: bins must be an integer >= 2, got {bins!r}")
        self.bins = bins
        self.register_buffer("histogram", Tensor(np.zeros(bins, dtype=np.float64)))
        self.register_buffer("min_val", Tensor(np.array(np.inf, dtype=np.float32)))
        self.register_buffer("max_val", Tensor(np.array(-np.inf, dtype=np.float32)))

    has_data = MinMaxObserver.has_data
    set_range = MinMaxObserver.set_range

    def reset_min_max_vals(self):
        """Forget everything observed: an empty histogram and no range."""
        MinMaxObserver.reset_min_max_vals(self)
        self.histogram.data = array_module(self.histogram.data).zeros(self.bins)

    def edges(self):
        xp = array_module(self.histogram.data)
        return xp.linspace(float(self.min_val.data), float(self.max_val.data), self.bins + 1)

    def observe(self, array):
        xp = array_module(array)
        low, high = xp.min(array), xp.max(array)
        if not self.has_data():
            counts = xp.zeros(self.bins)
        else:
            edges = self.edges()
            low = xp.minimum(low, self.min_val.data)
            high = xp.maximum(high, self.max_val.data)
            centers = (edges[:-1] + edges[1:]) / 2
            counts = bin_counts(centers, low, high, self.bins, weights=self.histogram.data)
        self.histogram.data = counts + bin_counts(array, low, high, self.bins)
        self.set_range(low, high)

    def observed_range(self):
        xp = array_module(self.histogram.data)
        low, high = float(self.min_val.data), float(self.max_val.data)
        if low == high:
            return low, high
        counts, edges = self.histogram.data, self.edges()
        centers = (edges[:-1] + edges[1:]) / 2
        levels = self.qmax - self.qmin
        if self.symmetric:
            limit = max(-low, high)
            thresholds = xp.linspace(0, limit, self.bins + 1)[1:]
            errors = expected_quantization_error(counts, centers, -thresholds, thresholds, levels)
            best = float(thresholds[int(xp.argmin(errors))])
            return -best, best
        lows = xp.concatenate([edges[edges < 0], xp.zeros(1)])
        highs = xp.concatenate([xp.zeros(1), edges[edges > 0]])
        a = 0  # an index into lows: start from the full range
        for _ in range(100):  # the error never increases; it converges in a few rounds
            b = int(xp.argmin(expected_quantization_error(counts, centers, lows[a], highs,
                                                          levels)))
            a_new = int(xp.argmin(expected_quantization_error(counts, centers, lows, highs[b],
                                                              levels)))
            if a_new == a:  # b is best for a and a is best for b
                break
            a = a_new
        return float(lows[a]), float(highs[b])


class PercentileObserver(HistogramObserver):
    """Range = [(100 - p)th percentile, pth percentile] of all observed x, read from the
    histogram (linear within a bin). Symmetric quantization then uses the larger magnitude of
    the two. p = ``percentile`` in [50, 100]; 100 gives [min, max]."""

    def __init__(self, percentile=99.99, bins=2048, bits=8, symmetric=False, signed=True,
                 restricted=False, eps=EPS):
        super().__init__(bins, bits, symmetric, signed, restricted, eps)
        if not 50 <= percentile <= 100:
            raise ValueError(f"{type(self).__name__}: percentile must be in [50, 100], "
                             f"got {percentile}")
        self.percentile = percentile

    def observed_range(self):
        xp = array_module(self.histogram.data)
        counts = self.histogram.data
        cumulative = xp.concatenate([xp.zeros(1), xp.cumsum(counts)])
        # The inverse of the piecewise-linear cumulative count: count -> value.
        targets = xp.asarray([100 - self.percentile, self.percentile]) / 100 * cumulative[-1]
        low, high = xp.interp(targets, cumulative, self.edges())
        return float(low), float(high)
