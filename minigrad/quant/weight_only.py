"""int4 weight-only quantization with group scales: 4-bit weights, float activations.

The format of GPTQ (Frantar et al. 2023) and AWQ (Lin et al. 2024) checkpoints and of
PyTorch's int4 weight-only layers (torchao ``int4_weight_only``, gpt-fast's
``WeightOnlyInt4Linear``): a Linear's (out, in) weight is cut into groups of ``group_size``
consecutive input columns of one output row (32, 64 or 128; 128 by default), and each group
g gets its own affine quantizer (asymmetric, unsigned codes, GPTQ's choice):

    s_g = (max+ - min-) / (2^b - 1),   z_g = clamp(round(-min- / s_g), 0, 2^b - 1)
    q   = clamp(round(w / s_g) + z_g, 0, 2^b - 1)          codes in [0, 15] for b = 4
    w  ~= s_g (q - z_g)

with min- = min(min_g, 0), max+ = max(max_g, 0) (``qparams.calculate_qparams`` on each
group, per channel along the groups: 0.0 is exact, and a weight of the group's range comes
back within s_g / 2). A constant group [c, ..., c] still gets the range [min(c, 0),
max(c, 0)]; an all-zero group gets s = float32 eps. Asymmetric rather than symmetric: a
group whose weights are all of one sign (common in small groups) uses all 16 codes instead
of 8.

Storage: two codes per byte (``pack_int4``: the code of the even index in the low nibble,
the odd one in the high nibble, the order of torch's quint4x2), scales float32 (one per
group: 4 / group_size bytes a weight, 0.25 bits at 128; float16 would halve that but round
the scale), zero points 4-bit codes packed the same way, bias float32:

    bytes = out * ceil(in / 2) + 4 * G + out * ceil(in / group_size / 2) + 4 * out,
    G = out * in / group_size groups

``WeightOnlyInt4Linear`` computes y = x dequant(W)^T + b in float32: activations are never
quantized, the weight is expanded from its codes at every call (deployments fuse this into
the matmul kernel; we show the arithmetic), and the gradient reaches x, so the layer can sit
inside a model that is still trained around it. Bits 2 and 3 use the same format with fewer
codes (still one nibble each).
"""

import copy
import math

import numpy as np

from minigrad import backend
from minigrad.nn import functional as F
from minigrad.nn.layers import Linear
from minigrad.nn.module import Module, Parameter
from minigrad.quant.attention import (projection_inputs, quantization_sites, quantized_site,
                                      replaced)
from minigrad.quant.qparams import QParams, calculate_qparams, check_finite, dequantize, quantize
from minigrad.tensor import Tensor

GROUP_SIZE = 128
MIN_BITS, MAX_BITS = 2, 4  # codes that fit one nibble


def check_group_size(in_features, group_size, caller):
    """ValueError unless ``group_size`` is a positive int dividing ``in_features``."""
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) \
            or group_size < 1 or in_features % group_size:
        raise ValueError(f"{caller}: group_size={group_size!r} must be a positive int dividing "
                         f"in_features={in_features} (groups of consecutive input columns)")
    return int(group_size)


def check_bits(bits, caller):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
            or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{caller}: bits must be an integer in {MIN_BITS}..{MAX_BITS} (one "
                         f"4-bit nibble a code), got {bits!r}")
    return int(bits)


# --------------------------------------------------------------------------- packing
def pack_int4(codes):
    """uint8 bytes holding two 4-bit codes each along the last axis: byte j = codes[2j] |
    codes[2j+1] << 4. An odd last axis is padded with one 0 code (give ``unpack_int4`` the
    length to drop it). ValueError for codes outside [0, 15]."""
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() > 15):
        raise ValueError(f"pack_int4: codes must lie in [0, 15], got [{codes.min()}, "
                         f"{codes.max()}]")
    codes = codes.astype(np.uint8)
    if codes.shape[-1] % 2:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (1,), np.uint8)], axis=-1)
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack_int4(packed, length):
    """The ``length`` 4-bit codes along the last axis of ``packed`` (``pack_int4``'s
    inverse), uint8."""
    packed = np.asarray(packed, np.uint8)
    if not 2 * packed.shape[-1] - 1 <= length <= 2 * packed.shape[-1]:
        raise ValueError(f"unpack_int4: {packed.shape[-1]} bytes hold {2 * packed.shape[-1]} "
                         f"codes, cannot give {length}")
    codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(packed.shape[:-1] + (-1,))
    return codes[..., :length]


# --------------------------------------------------------------------------- group quantizer
def group_qparams(weight, group_size=GROUP_SIZE, bits=4):
    """The QParams of every group of a (out, in) ``weight`` array: per channel (axis 0) over
    the (out * in / group_size, group_size) view, affine, codes [0, 2^bits - 1]."""
    weight = check_finite(np.asarray(weight), "the weight", "group_qparams")
    if weight.ndim != 2:
        raise ValueError(f"group_qparams: expected a (out, in) weight, got shape {weight.shape}")
    group_size = check_group_size(weight.shape[1], group_size, "group_qparams")
    bits = check_bits(bits, "group_qparams")
    groups = weight.reshape(-1, group_size)
    return calculate_qparams(groups.min(axis=1), groups.max(axis=1), bits, signed=False, axis=0)


def quantize_groups(weight, group_size=GROUP_SIZE, bits=4):
    """(codes (out, in) uint8 in [0, 2^bits - 1], scale (out, G) float32, zero_point (out, G)
    uint8) of ``weight`` with G = in / group_size groups a row (module docstring)."""
    weight = np.asarray(weight, np.float32)
    qp = group_qparams(weight, group_size, bits)
    codes = quantize(weight.reshape(-1, group_size), qp).astype(np.uint8)  # [0, 15]: uint8
    codes = codes.reshape(weight.shape)
    rows = (weight.shape[0], -1)
    return codes, qp.scale.reshape(rows), qp.zero_point.astype(np.uint8).reshape(rows)


def dequantize_groups(codes, scale, zero_point, bits=4):
    """s_g (q - z_g) as float32, (out, in), from ``quantize_groups``' three arrays."""
    out, groups = scale.shape
    qp = QParams(scale.ravel(), zero_point.ravel().astype(np.int32), 0, 2**bits - 1, axis=0)
    return dequantize(codes.reshape(out * groups, -1), qp).reshape(codes.shape)


# --------------------------------------------------------------------------- the layer
class WeightOnlyInt4Linear(Module):
    """y = x dequant(W)^T + b: a Linear whose weight is stored as packed 4-bit group codes
    (buffers ``weight_packed`` (out, ceil(in/2)) uint8, ``weight_scale`` (out, in/group_size)
    float32, ``weight_zero_point`` (out, ceil(G/2)) uint8, packed) and whose activations and
    bias stay float32. Build it with ``from_float``."""

    def __init__(self, in_features, out_features, bias=True, group_size=GROUP_SIZE, bits=4):
        super().__init__()
        self.group_size = check_group_size(in_features, group_size, "WeightOnlyInt4Linear")
        self.bits = check_bits(bits, "WeightOnlyInt4Linear")
        self.in_features, self.out_features = in_features, out_features
        groups = in_features // self.group_size
        self.register_buffer("weight_packed", Tensor(
            np.zeros((out_features, math.ceil(in_features / 2)), np.uint8)))
        self.register_buffer("weight_scale", Tensor(np.ones((out_features, groups), np.float32)))
        self.register_buffer("weight_zero_point", Tensor(
            np.zeros((out_features, math.ceil(groups / 2)), np.uint8)))
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None
        self.storage_kind = f"uint{self.bits} groups of {self.group_size}"

    @classmethod
    def from_float(cls, linear, group_size=GROUP_SIZE, bits=4):
        """Quantize a float ``Linear`` (its weight by groups; the bias is copied)."""
        bias = None if linear.bias is None else backend.to_device(linear.bias.data, "cpu")
        return cls.from_arrays(backend.to_device(linear.weight.data, "cpu"), bias, group_size,
                               bits)

    @classmethod
    def from_arrays(cls, weight, bias, group_size=GROUP_SIZE, bits=4):
        """From a float (out, in) ``weight`` array and a ``bias`` array or None."""
        layer = cls(weight.shape[1], weight.shape[0], bias is not None, group_size, bits)
        codes, scale, zero_point = quantize_groups(weight, layer.group_size, layer.bits)
        layer.weight_packed.data = pack_int4(codes)
        layer.weight_scale.data = scale
        layer.weight_zero_point.data = pack_int4(zero_point)
        if bias is not None:
            layer.bias.data = np.asarray(bias, np.float32)
        return layer

    @property
    def weight_q(self):
        """The (out, in) uint8 codes, unpacked."""
        return unpack_int4(self.weight_packed.data, self.in_features)

    def dequantized_weight(self):
        """s_g (q - z_g), the (out, in) float32 weight the layer multiplies by."""
        zero_point = unpack_int4(self.weight_zero_point.data, self.weight_scale.shape[1])
        return dequantize_groups(self.weight_q, self.weight_scale.data, zero_point, self.bits)

    def forward(self, x):
        return F.linear(x, Tensor(self.dequantized_weight()), self.bias)

    def storage_bytes(self):
        """Packed codes, float32 scales, packed zero points, float32 bias."""
        return {"weight": self.weight_packed.data.nbytes, "scale": self.weight_scale.data.nbytes,
                "zero_point": self.weight_zero_point.data.nbytes,
                "bias": 0 if self.bias is None else self.bias.data.nbytes}

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, group_size={self.group_size}, bits={self.bits}")


def quantize_weight_only(model, group_size=GROUP_SIZE, bits=4, layers=Linear):
    """A copy of ``model`` (eval mode) with every module of type ``layers`` (Linear by
    default) replaced by its ``WeightOnlyInt4Linear``, and every MultiheadAttention by a
    ``QuantizedMultiheadAttention`` of four such layers; every other module is kept as it is.
    ValueError naming the layer when ``group_size`` does not divide its in_features (checked
    for all layers before any is converted)."""
    model = copy.deepcopy(model).eval()
    chosen = quantization_sites(model, layers)
    for name, module in chosen:
        try:
            for count in projection_inputs(module):
                check_group_size(count, group_size, "quantize_weight_only")
        except ValueError as error:
            raise ValueError(f"{error}; layer {name or type(module).__name__!r}") from None
    for name, module in chosen:
        model = replaced(model, name, quantized_site(
            module, lambda w, b: WeightOnlyInt4Linear.from_arrays(w, b, group_size, bits)))
    return model
