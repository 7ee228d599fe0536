"""``minigrad.quant``: uniform quantization, from the core math to quantization-aware training.

    from minigrad import quant
    qp = quant.calculate_qparams(-1.0, 3.0, bits=8)          # affine, signed int8
    q = quant.quantize(x, qp)                                # int8 codes, clamped to [qmin, qmax]
    x_hat = quant.dequantize(q, qp)                          # float32, |x - x_hat| <= s/2 in range

    observer = quant.HistogramObserver(bits=8)
    for batch in calibration: observer(batch)
    qp = observer.calculate_qparams()

    fq = quant.FakeQuantize(quant.MovingAverageMinMaxObserver())   # QAT: y = fake-quantized x
    fq.disable_observer()                                          # freeze the ranges

The math: x_q = clamp(round(x / s) + z, qmin, qmax) with round half to even, and
x ~= s (x_q - z); see ``qparams`` for how s and z are chosen.

Core (``qparams``):
    qrange(bits, signed=True, restricted=False) -> (qmin, qmax)           bits in 2..16
    QParams(scale, zero_point, qmin, qmax, axis=None)   .bits, .signed    frozen dataclass
    calculate_qparams(min_val, max_val, bits=8, symmetric=False, signed=True, restricted=False,
                      axis=None, eps=float32 eps) -> QParams
    quantize(x, qp) -> smallest integer array holding [qmin, qmax];  dequantize(q, qp) -> float32
    storage_dtype(qmin, qmax)

Observers (``observers``), each Observer(bits=8, symmetric=False, signed=True, restricted=False),
a Module: call it on data, then .calculate_qparams():
    MinMaxObserver, MovingAverageMinMaxObserver(averaging_constant=0.01, ...),
    PerChannelMinMaxObserver(ch_axis=0, ...), HistogramObserver(bins=2048, ...),
    PercentileObserver(percentile=99.99, bins=2048, ...)

Fake quantization (``fake_quant``):
    fake_quantize(x, qp) -> Tensor       straight-through estimator
    FakeQuantize(observer=None)          enable_/disable_observer(), enable_/disable_fake_quant()
"""

from minigrad.quant.fake_quant import FakeQuantize, FakeQuantizeSTE, fake_quantize
from minigrad.quant.observers import (HistogramObserver, MinMaxObserver,
                                      MovingAverageMinMaxObserver, Observer,
                                      PercentileObserver, PerChannelMinMaxObserver)
from minigrad.quant.qparams import (QParams, calculate_qparams, dequantize, qrange, quantize,
                                    storage_dtype)

__all__ = ["QParams", "qrange", "calculate_qparams", "quantize", "dequantize", "storage_dtype",
           "Observer", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PerChannelMinMaxObserver", "HistogramObserver", "PercentileObserver",
           "fake_quantize", "FakeQuantize", "FakeQuantizeSTE"]
