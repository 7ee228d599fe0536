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
a Module: call it on data, then .calculate_qparams(); .reset_min_max_vals() forgets the data,
.allocate(shape) sizes per-channel statistics before any (so a saved state_dict loads):
    MinMaxObserver, MovingAverageMinMaxObserver(averaging_constant=0.01, ...),
    PerChannelMinMaxObserver(ch_axis=0, ...), HistogramObserver(bins=2048, ...),
    PercentileObserver(percentile=99.99, bins=2048, ...)

Fake quantization (``fake_quant``):
    fake_quantize(x, qp) -> Tensor       straight-through estimator
    FakeQuantize(observer=None)          enable_/disable_observer(), enable_/disable_fake_quant(),
                                         allocate(shape)
NaN or inf given to any quantizer raise ValueError, counting them (``qparams.check_finite``).

Beyond 8 bits. Each parametrizes one tensor of one module (``minigrad.nn.utils.parametrize``),
so a mixed-precision model is one call per layer with that layer's bits; ``module.weight`` is
computed from what is stored at every access (``weight_reparam``), and gradients reach what
is trained.
    kmeans_share(module, name="weight", bits=4, init="linear")   Deep Compression: Parameter
        <name>_centroids (2^bits,), buffer <name>_indices; weight = centroids[indices]
    remove_sharing(module, name), codebook(module, name) -> (centroids, indices),
    centroid_param_groups(model, centroid_lr)   fine-tuning: centroids at centroid_lr k / n
    kmeans_1d(values, k, init="linear") -> (centroids, labels)                (``weight_sharing``)
    binarize(module, name="weight", scaled=True)     BinaryConnect, alpha sign(w), STE |w| <= 1
    ternarize(module, name="weight", threshold=0.7)  Ternary Weight Networks, STE
    power_of_two_weights(module, name="weight", bits=4, max_exponent=None)   0 or +-2^p, STE
    remove_low_bit(module, name)        binary, ternary, power of two or float16 made permanent
    power_of_two_quantize(w, bits, max_exponent=None)   0 or sign(w) 2^p, log-domain rounding
    power_of_two_scale(qp, round_up=False)           QParams with power-of-two scales (shifts)
    to_float16(module)                               float16 storage, float32 compute
                                                                                  (``low_bit``)
Accounting (``accounting``):
    model_size(model) -> ModelSize (.rows, .total, .by_category(), .table()): real bytes per
        module (weights or codes, codebooks, scales, zero points, biases); a module may report
        its own with storage_bytes() -> {category: bytes}
    sqnr(reference, quantized) dB;  layer_sqnr(float_model, quantized_model, x) -> {layer: dB}
    bit_width_sensitivity(model, score, bits_list, layers=None, quantize_layer=None)
        -> {layer: [(bits, score)]};  fake_quantize_weight(module, bits, name="weight")

Workflow (``workflow``, ``quantized``, ``fuse``, ``export``): from a float model to an integer one.
    QConfig(activation_bits=8, weight_bits=8, per_channel=True, activation_observer=None,
            weight_observer=None);  default_qconfig(bits=8, per_channel=True)
        qconfig arguments take a QConfig, or {layer name: QConfig, "": default} (mixed precision)
    prepare(model, qconfig=None) -> PreparedModel    static PTQ: BN folded, observers; calibrate;
        its state_dict (activation ranges, weight_sites: per-channel weight ranges) loads into
        a fresh prepare/prepare_qat of the same model before any batch
    prepare_qat(model, qconfig=None) -> PreparedModel   fake-quantized weights and activations;
        train it; .freeze_observers()
    convert(prepared) -> QuantizedModel    Quantize -> QuantizedConv2d/QuantizedLinear (int8
        weights, int32 bias, fixed-point multipliers, ReLU fused) and code pass-throughs
        (QuantizedMaxPool2d, QuantizedAvgPool2d, QuantizedReLU, QuantizedFlatten) -> DeQuantize
    simulate(qmodel, x)          float64 fake-quant twin of the integer path, equal bit for bit
    quantize_dynamic(model, verbose=True)    Linear -> DynamicQuantizedLinear, MultiheadAttention
                                             -> QuantizedMultiheadAttention (``attention``),
                                             prints a table
    fuse_conv_bn(conv, bn), fuse_linear_bn(linear, bn)   eval-mode batch norm folded in
    save_quantized(qmodel, path), load_quantized(path)   .npz: integer arrays + qparams

int4 weight-only (``weight_only``; GPTQ / AWQ / torchao int4_weight_only): asymmetric uint4
codes per group of group_size input columns, float32 scales, activations stay float.
    quantize_weight_only(model, group_size=128, bits=4, layers=Linear) -> a copy with
        WeightOnlyInt4Linear layers (.from_float(linear, group_size, bits), y = x W^T + b)
    quantize_groups(w, group_size, bits) -> (codes, scale, zero_point); dequantize_groups,
    group_qparams, pack_int4(codes), unpack_int4(packed, length)
"""

from minigrad.quant.attention import QuantizedMultiheadAttention
from minigrad.quant.accounting import (LayerSize, ModelSize, bit_width_sensitivity,
                                       fake_quantize_weight, layer_sqnr, model_size, sqnr)
from minigrad.quant.fake_quant import FakeQuantize, FakeQuantizeSTE, fake_quantize
from minigrad.quant.low_bit import (binarize, power_of_two_quantize, power_of_two_scale,
                                    power_of_two_weights, remove_low_bit, ternarize, to_float16)
from minigrad.quant.observers import (HistogramObserver, MinMaxObserver,
                                      MovingAverageMinMaxObserver, Observer,
                                      PercentileObserver, PerChannelMinMaxObserver)
from minigrad.quant.qparams import (QParams, calculate_qparams, dequantize, qrange, quantize,
                                    storage_dtype)
from minigrad.quant.weight_sharing import (centroid_param_groups, codebook, kmeans_1d,
                                          kmeans_share, remove_sharing)
from minigrad.quant.export import load_quantized, save_quantized
from minigrad.quant.fuse import fuse_conv_bn, fuse_linear_bn
from minigrad.quant.quantized import (DeQuantize, DynamicQuantizedLinear, QuantizedAvgPool2d,
                                      QuantizedConv2d, QuantizedFlatten, QuantizedLinear,
                                      QuantizedMaxPool2d, QuantizedModel, QuantizedReLU,
                                      Quantize)
from minigrad.quant.weight_only import (WeightOnlyInt4Linear, dequantize_groups, group_qparams,
                                       pack_int4, quantize_groups, quantize_weight_only,
                                       unpack_int4)
from minigrad.quant.workflow import (PreparedModel, QConfig, convert, default_qconfig, prepare,
                                     prepare_qat, quantize_dynamic, simulate)

__all__ = ["QParams", "qrange", "calculate_qparams", "quantize", "dequantize", "storage_dtype",
           "Observer", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PerChannelMinMaxObserver", "HistogramObserver", "PercentileObserver",
           "fake_quantize", "FakeQuantize", "FakeQuantizeSTE",
           "kmeans_share", "remove_sharing", "codebook", "kmeans_1d", "centroid_param_groups",
           "binarize", "ternarize", "remove_low_bit", "power_of_two_quantize",
           "power_of_two_weights",
           "power_of_two_scale", "to_float16",
           "model_size", "ModelSize", "LayerSize", "sqnr", "layer_sqnr",
           "bit_width_sensitivity", "fake_quantize_weight",
           "QConfig", "default_qconfig", "prepare", "prepare_qat", "PreparedModel", "convert",
           "simulate", "quantize_dynamic", "fuse_conv_bn", "fuse_linear_bn", "QuantizedModel",
           "Quantize", "DeQuantize", "QuantizedLinear", "QuantizedConv2d", "QuantizedMaxPool2d",
           "QuantizedAvgPool2d", "QuantizedReLU", "QuantizedFlatten", "DynamicQuantizedLinear",
           "QuantizedMultiheadAttention",
           "save_quantized", "load_quantized", "WeightOnlyInt4Linear", "dequantize_groups",
           "group_qparams", "pack_int4", "quantize_groups", "quantize_weight_only", "unpack_int4"]
