"""Fake quantization for quantization-aware training (QAT): quantize and dequantize in one step,
so the float model sees exactly the values an integer model would, while gradients still flow.

    y = s (clamp(round(x / s) + z, qmin, qmax) - z)

Rounding has zero derivative almost everywhere, so the true gradient would stop training. The
straight-through estimator (Bengio et al. 2013; Jacob et al. 2018) pretends round() is the
identity: dy/dx = 1 where the code round(x / s) + z lies inside [qmin, qmax] (both ends
included) and 0 where it was clamped, exactly PyTorch's
``fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine``. The scale and zero
point are constants here (no gradient; LSQ-style learned scales are a different op).

``FakeQuantize`` is the module form: it owns an observer that, in training mode and while
enabled, watches every input and refreshes the quantization parameters (buffers ``scale`` and
``zero_point``, in ``state_dict``). ``disable_observer()`` freezes them for the last epochs of
QAT; ``disable_fake_quant()`` makes the module the identity.
"""

import numpy as np

from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.nn.module import Module
from minigrad.quant.observers import MovingAverageMinMaxObserver
from minigrad.quant.qparams import NO_CODE, QParams, check_finite, dequantize, unclamped_codes
from minigrad.tensor import Tensor


class FakeQuantizeSTE(Function):
    """y = dequantize(quantize(x));  dy/dx = 1 where qmin <= round(x / s) + z <= qmax, else 0."""

    @staticmethod
    def forward(ctx, x, qp):
        xp = array_module(x)
        codes = unclamped_codes(x, qp)
        ctx.save_for_backward((codes >= qp.qmin) & (codes <= qp.qmax))
        return dequantize(xp.clip(codes, qp.qmin, qp.qmax), qp).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return (grad * inside,)


def fake_quantize(x, qp):
    """Quantize-dequantize ``x`` (a Tensor) with ``qp``; gradients by the straight-through
    estimator. A float input keeps its dtype; NaN or inf in it raise ValueError."""
    if not isinstance(qp, QParams):
        raise TypeError(f"fake_quantize: qp must be QParams, got {type(qp).__name__}")
    check_finite(x.data, "the input", "fake_quantize", NO_CODE)
    return FakeQuantizeSTE.apply(x, qp=qp)


class FakeQuantize(Module):
    """Observe (in training), then fake-quantize. ``observer`` defaults to an 8-bit affine
    ``MovingAverageMinMaxObserver``; a ``PerChannelMinMaxObserver`` makes it per-channel.

    Unlike PyTorch's, the observer only runs in training mode: ``model.eval()`` alone freezes
    the ranges, and ``disable_observer()`` freezes them while training.

    Per-channel buffers start empty, shape (0,); ``allocate(shape)`` sizes them for the
    tensors to come, so a saved ``state_dict`` loads before any data has been seen.
    """

    def __init__(self, observer=None):
        super().__init__()
        self.observer = MovingAverageMinMaxObserver() if observer is None else observer
        shape = () if self.observer.axis is None else (0,)
        self.register_buffer("scale", Tensor(np.ones(shape, dtype=np.float32)))
        self.register_buffer("zero_point", Tensor(np.zeros(shape, dtype=np.int32)))
        self.register_buffer("observer_enabled", Tensor(np.ones(1, dtype=np.uint8)))
        self.register_buffer("fake_quant_enabled", Tensor(np.ones(1, dtype=np.uint8)))

    def allocate(self, shape):
        """Size the observer's statistics and ``scale``/``zero_point`` for tensors of
        ``shape`` (C = shape[ch_axis] channels per channel; per tensor: unchanged), with no
        data recorded. Returns ``self``."""
        channels = self.observer.allocate(shape).channels()
        if channels is not None:
            self.scale.data = np.ones(channels, dtype=np.float32)
            self.zero_point.data = np.zeros(channels, dtype=np.int32)
        return self

    def enable_observer(self, enabled=True):
        self.observer_enabled.data[...] = int(enabled)
        return self

    def disable_observer(self):
        return self.enable_observer(False)

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled.data[...] = int(enabled)
        return self

    def disable_fake_quant(self):
        return self.enable_fake_quant(False)

    def qparams(self):
        """The current QParams (from the buffers)."""
        if not self.observer.has_data():
            raise ValueError("FakeQuantize: no quantization parameters yet; observe calibration "
                             "data first (call it in training mode with the observer enabled)")
        return QParams(self.scale.data, self.zero_point.data, self.observer.qmin,
                       self.observer.qmax, self.observer.axis)

    def forward(self, x):
        if self.training and bool(self.observer_enabled.data[0]):
            self.observer(x.detach())
            qp = self.observer.calculate_qparams()
            self.scale.data, self.zero_point.data = qp.scale, qp.zero_point
        if not bool(self.fake_quant_enabled.data[0]):
            return x
        return fake_quantize(x, self.qparams())

    def extra_repr(self):
        return (f"observer_enabled={bool(self.observer_enabled.data[0])}, "
                f"fake_quant_enabled={bool(self.fake_quant_enabled.data[0])}")
