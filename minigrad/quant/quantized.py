"""Quantized layers: integer weights, integer kernels, integer activations between layers.

A converted model (``workflow.convert``) is a chain

    Quantize -> QuantizedConv2d / QuantizedLinear / pass-throughs ... -> DeQuantize

Between ``Quantize`` and ``DeQuantize`` every tensor is a NumPy array of activation codes
(uint8: activations are affine and unsigned, x = s (x_q - z), z in [0, 2^b - 1]), and the
(s, z) of each is fixed at conversion. A quantized Conv2d or Linear with input (s_x, z_x),
symmetric int8 weights w = s_w w_q (one s_w per output channel, zero point 0) and output
(s_y, z_y) computes, with integers only (Jacob et al. 2018, section 2):

    acc = sum w_q (x_q - z_x) + b_q           int8 x uint8 -> int32 (``int8_gemm``/``int8_conv2d``)
    y_q = clamp(z_y + round(M acc), qmin, qmax),  M = s_x s_w / s_y ~= M0 2^-31 2^-n
                                               (``requantize``, ``fixed_point``)

with the bias quantized to b_q = round(b / (s_x s_w)) (int32, the accumulator's scale) and a
following ReLU fused by qmin = z_y (the code of 0.0). For a Linear the term -z_x sum_k w_q is
the same at every call and is folded into the int32 bias once. Weights below 8 bits
(e.g. 4-bit, codes in [-7, 7]) are stored in int8 arrays and run the same kernels;
``storage_bytes`` counts them at their real width.

Max pooling and ReLU commute with the monotone map x -> code, so they run on the codes and
keep the input's (s, z); flatten and dropout (eval) pass the codes through; average pooling
averages the codes (the zero point is the padding) and rounds half to even.

``forward_reference`` is each layer's float64 twin, a fake-quantization simulation: it
dequantizes the input codes and the weights, runs the float layer on them in float64, divides
by s_x s_w (which gives back the integer accumulator exactly: every term is an integer times
s_x s_w and float64 sums of fewer than 2^53 / (255 * 127) such terms make errors far below
1/2) and rounds with ``fixed_point.requantize``, the exact rule. ``workflow.simulate`` runs a
model that way; the tests check it equals the integer executor bit for bit.
"""

import math

import numpy as np

from minigrad import backend
from minigrad.backend import fixed_point
from minigrad.nn.containers import Sequential
from minigrad.nn.module import Module
from minigrad.quant.qparams import QParams, calculate_qparams, check_finite, dequantize, quantize
from minigrad.tensor import Tensor

KERNEL_BITS = 8  # the integer kernels take 8-bit codes


def _codes(x, layer):
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        raise TypeError(f"{layer}: expected an integer NumPy array of activation codes (the "
                        f"output of Quantize or a quantized layer), got {type(x).__name__}"
                        f"{'' if not hasattr(x, 'dtype') else ' ' + str(x.dtype)}")
    return x


class Quantize(Module):
    """float input -> activation codes, x_q = clamp(round(x / s) + z, qmin, qmax)."""

    def __init__(self, scale, zero_point, qmin, qmax):
        super().__init__()
        self.qp = QParams(np.float32(scale), np.int32(zero_point), qmin, qmax)
        self.scale, self.zero_point = float(self.qp.scale), int(self.qp.zero_point)
        self.qmin, self.qmax = self.qp.qmin, self.qp.qmax

    def forward(self, x):
        array = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
        check_finite(array, "the model input", "Quantize")
        return quantize(array.astype(np.float32, copy=False), self.qp)

    forward_reference = forward

    def state(self):
        return {"scale": self.scale, "zero_point": self.zero_point, "qmin": self.qmin,
                "qmax": self.qmax}

    def storage_bytes(self):
        return {"scale": 4, "zero_point": 4}

    def extra_repr(self):
        return f"scale={self.scale:.6g}, zero_point={self.zero_point}, [{self.qmin}, {self.qmax}]"


class DeQuantize(Quantize):
    """activation codes -> float32 Tensor, x = s (x_q - z)."""

    def forward(self, x):
        return Tensor(dequantize(_codes(x, "DeQuantize"), self.qp))

    forward_reference = forward


class QuantizedLayer(Module):
    """What QuantizedLinear and QuantizedConv2d share: codes, scales, the fixed-point
    multipliers and the requantization. Subclasses define ``accumulate(x_q)`` (the int32
    accumulators with the integer kernels) and ``float_layer(x, w)`` (the float op, for the
    reference)."""

    GEOMETRY = ()  # the subclass's extra constructor arguments, saved by ``state``

    def __init__(self, weight_q, weight_scale, weight_bits, bias_q, input_scale,
                 input_zero_point, output_scale, output_zero_point, qmin, qmax, relu):
        super().__init__()
        weight_q, bias_q = np.asarray(weight_q), np.asarray(bias_q)
        weight_scale = np.asarray(weight_scale, np.float32)
        channels = weight_q.shape[0] if weight_q.ndim else 0
        if weight_q.dtype != np.int8 or bias_q.dtype != np.int32 or bias_q.shape != (channels,):
            raise ValueError(f"{type(self).__name__}: need int8 weight codes and one int32 bias "
                             f"per output channel, got {weight_q.dtype} {weight_q.shape} and "
                             f"{bias_q.dtype} {bias_q.shape}")
        if weight_scale.shape not in ((), (channels,)):
            raise ValueError(f"{type(self).__name__}: weight_scale must be a scalar or have "
                             f"{channels} entries, got shape {weight_scale.shape}")
        low, high = -(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1) - 1
        if not 2 <= weight_bits <= KERNEL_BITS or weight_q.size and (
                weight_q.min() < low or weight_q.max() > high):
            raise ValueError(f"{type(self).__name__}: {weight_bits}-bit weights need codes in "
                             f"[{low}, {high}] and 2 <= bits <= {KERNEL_BITS}")
        if not 0 <= qmin <= output_zero_point <= qmax <= 2**KERNEL_BITS - 1:
            raise ValueError(f"{type(self).__name__}: output codes must be unsigned 8-bit with "
                             f"qmin <= zero point <= qmax, got [{qmin}, {qmax}], "
                             f"z={output_zero_point}")
        self.weight_q, self.weight_scale, self.weight_bits = weight_q, weight_scale, weight_bits
        self.bias_q = bias_q
        self.input_scale, self.input_zero_point = float(input_scale), int(input_zero_point)
        self.output_scale, self.output_zero_point = float(output_scale), int(output_zero_point)
        self.qmin, self.qmax, self.relu = int(qmin), int(qmax), bool(relu)
        multiplier = self.accumulator_scale() / self.output_scale
        m0, shift = fixed_point.quantize_multiplier(np.broadcast_to(multiplier, (channels,)))
        self.multiplier_m0, self.multiplier_shift = m0, shift.astype(np.int8)

    # ------------------------------------------------------------- building
    @classmethod
    def from_float(cls, layer, input_qp, output_qp, weight_qp, relu=False, name=None):
        """Quantize a float ``layer`` given the QParams of its input, output and weight."""
        name = name or type(layer).__name__
        weight = layer.weight.numpy()
        check_finite(weight, "the weight", name)
        bias = np.zeros(weight.shape[0]) if layer.bias is None else layer.bias.numpy()
        check_finite(bias, "the bias", name)
        if np.any(weight_qp.zero_point != 0):
            raise ValueError(f"{name}: weights must be quantized symmetrically (zero point 0), "
                             f"got zero points {weight_qp.zero_point}")
        bits = weight_qp.bits
        if bits > KERNEL_BITS or input_qp.bits > KERNEL_BITS or output_qp.bits > KERNEL_BITS:
            raise ValueError(f"{name}: the integer kernels take codes of at most {KERNEL_BITS} "
                             f"bits, this layer asks for {bits}-bit weights and "
                             f"{output_qp.bits}-bit activations (fake-quantize to study wider "
                             "codes)")
        weight_q = quantize(weight, weight_qp).astype(np.int8)
        accumulator_scale = float(input_qp.scale) * weight_qp.scale.astype(np.float64)
        bias_q = np.rint(bias.astype(np.float64) / accumulator_scale)
        if np.abs(bias_q).max(initial=0) > fixed_point.ACC_MAX:
            raise ValueError(f"{name}: the quantized bias does not fit int32 (the scale of the "
                             "input times the weight's is too small for this bias)")
        z_y = int(output_qp.zero_point)
        return cls(weight_q, weight_qp.scale, bits, bias_q.astype(np.int32), input_qp.scale,
                   input_qp.zero_point, output_qp.scale, z_y, z_y if relu else output_qp.qmin,
                   output_qp.qmax, relu, **{g: getattr(layer, g) for g in cls.GEOMETRY})

    def accumulator_scale(self):
        """s_x s_w, float64, one per output channel (or a scalar): the scale of acc."""
        return self.input_scale * self.weight_scale.astype(np.float64)

    # ------------------------------------------------------------- running
    def forward(self, x):
        acc = self.accumulate(_codes(x, type(self).__name__))
        return backend.kernels("cpu").requantize(acc, self.multiplier_m0, self.multiplier_shift,
                                                 self.output_zero_point, self.qmin, self.qmax)

    def forward_reference(self, x):
        """The same codes from float64 arithmetic on dequantized values (module docstring)."""
        x_real = self.input_scale * (_codes(x, type(self).__name__).astype(np.float64)
                                     - self.input_zero_point)
        scale = self.accumulator_scale()
        per_channel = np.reshape(scale, (-1,) + (1,) * (self.weight_q.ndim - 1))
        weight = self.weight_q.astype(np.float64) * np.reshape(
            self.weight_scale.astype(np.float64), per_channel.shape)
        y = self.float_layer(x_real, weight) + self._along_channels(self.bias_q * scale, x.ndim)
        acc = np.rint(y / self._along_channels(np.broadcast_to(scale, self.bias_q.shape), x.ndim))
        return fixed_point.requantize(
            acc.astype(np.int64), self._along_channels(self.multiplier_m0, x.ndim),
            self._along_channels(self.multiplier_shift, x.ndim), self.output_zero_point,
            self.qmin, self.qmax)

    @staticmethod
    def _along_channels(values, ndim):
        """(C,) values shaped to broadcast along axis 1 of an ndim-D array."""
        return np.reshape(values, (-1,) + (1,) * (ndim - 2))

    # ------------------------------------------------------------- storage
    def storage_bytes(self):
        """What integer inference reads: weight codes at their real width (4-bit codes count
        half a byte), int32 biases, the fixed-point multipliers (int32 M0, int8 shift) and the
        output zero point. The float weight scales are kept for dequantizing and for
        ``forward_reference``, not read by the integer path, and not counted."""
        channels = self.bias_q.size
        return {"weight": math.ceil(self.weight_q.size * self.weight_bits / 8),
                "bias": self.bias_q.nbytes, "scale": channels * 5, "zero_point": 4}

    def state(self):
        """Everything the constructor takes, for ``export``."""
        return {"weight_q": self.weight_q, "weight_scale": self.weight_scale,
                "weight_bits": self.weight_bits, "bias_q": self.bias_q,
                "input_scale": self.input_scale, "input_zero_point": self.input_zero_point,
                "output_scale": self.output_scale, "output_zero_point": self.output_zero_point,
                "qmin": self.qmin, "qmax": self.qmax, "relu": self.relu,
                **{g: list(getattr(self, g)) for g in self.GEOMETRY}}

    def extra_repr(self):
        return (f"{self.weight_bits}-bit weights {tuple(self.weight_q.shape)}, "
                f"out scale={self.output_scale:.6g} z={self.output_zero_point}"
                f"{', relu' if self.relu else ''}")


class QuantizedLinear(QuantizedLayer):
    """y_q = requantize(x_q W_q^T - z_x rowsum(W_q) + b_q) for (N, in_features) codes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_features = self.weight_q.shape[1]
        # -z_x sum_k W_q[o, k] is the same at every call: one int32 vector with the bias.
        self.folded_bias = (self.bias_q - self.input_zero_point
                            * self.weight_q.sum(axis=1, dtype=np.int32)).astype(np.int32)

    def accumulate(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"QuantizedLinear: expected codes of shape (N, {self.in_features}), "
                             f"got {x.shape}")
        return backend.kernels("cpu").int8_gemm(x, self.weight_q.T, 0, 0, self.folded_bias)

    def float_layer(self, x, weight):
        return x @ weight.T


class QuantizedConv2d(QuantizedLayer):
    """acc = int8_conv2d(x_q, W_q, z_x) + b_q (padding with z_x, the code of 0.0)."""

    GEOMETRY = ("stride", "padding", "dilation")

    def __init__(self, *args, stride=(1, 1), padding=(0, 0), dilation=(1, 1), **kwargs):
        super().__init__(*args, **kwargs)
        self.stride, self.padding, self.dilation = tuple(stride), tuple(padding), tuple(dilation)

    def accumulate(self, x):
        return backend.kernels("cpu").int8_conv2d(x, self.weight_q, self.input_zero_point,
                                                  self.stride, self.padding, self.dilation,
                                                  self.bias_q)

    def float_layer(self, x, weight):
        # The reference kernels, whichever CPU set is chosen: this is the float64 oracle.
        return backend.kernel_set("numpy").conv2d_forward(x, weight, self.stride, self.padding,
                                                          self.dilation)


class CodePassThrough(Module):
    """Base of the layers that act on codes with the input's (s, z) kept."""

    def state(self):
        return {}

    def storage_bytes(self):
        return {}

    def forward_reference(self, x):
        return self.forward(x)


class QuantizedFlatten(CodePassThrough):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        shape = _codes(x, "QuantizedFlatten").shape
        start, end = self.start_dim % len(shape), self.end_dim % len(shape)
        return x.reshape(shape[:start] + (-1,) + shape[end + 1:])

    def state(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class QuantizedReLU(CodePassThrough):
    """max(x, 0) is max(x_q, z) on codes."""

    def __init__(self, zero_point):
        super().__init__()
        self.zero_point = int(zero_point)

    def forward(self, x):
        return np.maximum(_codes(x, "QuantizedReLU"), np.asarray(self.zero_point, x.dtype))

    def state(self):
        return {"zero_point": self.zero_point}


class QuantizedPool2d(CodePassThrough):
    """Shared by max and average pooling on codes: geometry and the padding value."""

    def __init__(self, kernel_size, stride, padding, pad_code):
        super().__init__()
        pair = (lambda v: (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(i) for i in v))
        self.kernel_size, self.stride, self.padding = map(pair, (kernel_size, stride, padding))
        self.pad_code = int(pad_code)

    def padded(self, x):
        (ph, pw), x = self.padding, _codes(x, type(self).__name__)
        return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self.pad_code)

    def state(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "pad_code": self.pad_code}


class QuantizedMaxPool2d(QuantizedPool2d):
    """Max pooling on codes: x -> code is non-decreasing, so the max of the codes is the code
    of the max. Padding is qmin (never above a real value), as -inf is in float."""

    def forward(self, x):
        # (NumPy's reference kernel starts from -inf cast to the codes' dtype: a harmless
        # "invalid value in cast" warning, silenced here.)
        with np.errstate(invalid="ignore"):
            return backend.kernels("cpu").max_pool2d_forward(self.padded(x), self.kernel_size,
                                                             self.stride, (0, 0), (1, 1))[0]

    def forward_reference(self, x):
        windows = np.lib.stride_tricks.sliding_window_view(self.padded(x), self.kernel_size,
                                                           axis=(2, 3))
        return windows[:, :, ::self.stride[0], ::self.stride[1]].max(axis=(-2, -1))


class QuantizedAvgPool2d(QuantizedPool2d):
    """mean of s (x_q - z) = s (mean x_q - z): average the codes (padding z, the code of 0.0,
    which PyTorch's count_include_pad=True averages in), round half to even. Summed in
    float64, the mean of at most a few thousand integer codes lands exactly on a .5 tie only
    when it is one, so ``rint`` rounds as exact arithmetic would."""

    def forward(self, x):
        codes = self.padded(x)
        mean = backend.kernels("cpu").avg_pool2d_forward(codes.astype(np.float64),
                                                         self.kernel_size, self.stride, (0, 0))
        return np.rint(mean).astype(x.dtype)


class DynamicQuantizedLinear(Module):
    """Linear with int8 weights (symmetric, per output channel) and activations quantized per
    batch at run time: [min, max] of this batch gives affine uint8 (s_x, z_x), then

        y = s_x s_w (sum W_q (x_q - z_x)) + b      (int8_gemm, float32 output)

    No calibration is needed; the price is one pass over x for its range at every call."""

    def __init__(self, weight_q, weight_scale, bias):
        super().__init__()
        self.weight_q = np.asarray(weight_q)
        self.weight_scale = np.asarray(weight_scale, np.float32)
        self.bias = None if bias is None else np.asarray(bias, np.float32)
        self.in_features, self.out_features = self.weight_q.shape[1], self.weight_q.shape[0]

    @classmethod
    def from_float(cls, layer, weight_qp):
        return cls.from_arrays(layer.weight.numpy(),
                               None if layer.bias is None else layer.bias.numpy(), weight_qp)

    @classmethod
    def from_arrays(cls, weight, bias, weight_qp):
        """From a float (out, in) ``weight`` array, quantized by ``weight_qp``, and a bias."""
        return cls(quantize(weight, weight_qp).astype(np.int8), weight_qp.scale, bias)

    def forward(self, x):
        array = x.numpy() if isinstance(x, Tensor) else np.asarray(x, np.float32)
        check_finite(array, "the input", "DynamicQuantizedLinear")
        flat = array.reshape(-1, self.in_features)
        qp = calculate_qparams(flat.min(initial=0), flat.max(initial=0), bits=8, signed=False)
        acc = backend.kernels("cpu").int8_gemm(quantize(flat, qp), self.weight_q.T,
                                               int(qp.zero_point), 0)
        y = (acc * (np.float64(qp.scale) * self.weight_scale)).astype(np.float32)  # s_x s_w acc
        if self.bias is not None:
            y += self.bias
        return Tensor(y.reshape(array.shape[:-1] + (self.out_features,)))

    def storage_bytes(self):
        return {"weight": self.weight_q.nbytes, "scale": self.weight_scale.nbytes,
                "bias": 0 if self.bias is None else self.bias.nbytes}

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


class QuantizedModel(Sequential):
    """A converted model: ``Quantize``, quantized layers and pass-throughs, ``DeQuantize``,
    named after the float model's layers ("features.0" -> "features_0"). Calling it takes a
    float input (Tensor or array) and returns a float32 Tensor; inference only, no gradients."""


LAYER_TYPES = {cls.__name__: cls for cls in (
    Quantize, DeQuantize, QuantizedLinear, QuantizedConv2d, QuantizedFlatten, QuantizedReLU,
    QuantizedMaxPool2d, QuantizedAvgPool2d)}
