"""Below 8 bits and beside them: binary, ternary and power-of-two weights, power-of-two scales,
and float16 storage.

Binary weights (BinaryConnect: Courbariaux, Bengio & David 2015, "BinaryConnect: Training Deep
Neural Networks with binary weights during propagations"). The forward uses

    w_b = alpha sign(w),   sign(w) = +1 for w >= 0, -1 otherwise   (no zero: 1 bit a weight)

with alpha = mean |w| (``scaled=True``, the per-tensor scale of XNOR-Net, Rastegari et al.
2016, which keeps the output's size) or alpha = 1 (``scaled=False``, BinaryConnect's +-1).
The real-valued weight w is kept (``weight_orig``) and is what the optimizer updates:
BinaryConnect accumulates the small updates in full precision and binarizes again at each
forward. sign() has zero derivative, so the backward is a straight-through estimator:

    dL/dw = dL/dw_b * 1{|w| <= 1}

the identity, zeroed where |w| > 1. BinaryConnect instead clips w to [-1, 1] after every
update; zeroing the gradient outside (the "hard tanh" STE of Hubara et al. 2016, BNN) keeps a
weight that has drifted out from moving further out, without touching the optimizer. alpha is
a constant in the backward.

Ternary weights (Li & Liu 2016, "Ternary Weight Networks"): with Delta = 0.7 mean |w|,

    w_t = +alpha if w > Delta,  -alpha if w < -Delta,  0 otherwise
    alpha = mean of |w| over the I_Delta = {i : |w_i| > Delta}

Delta ~= 0.7 E|w| is the paper's approximation of the Delta minimising ||w - w_t||^2 for
normally or uniformly distributed w, and this alpha is the exact minimiser for that Delta.
2 bits a weight (3 states), one float scale a tensor. Backward: the identity (TWN's STE).

Power-of-two weights (log quantization: Miyashita, Lee & Murmann 2016; INQ, Zhou et al.
2017): every weight becomes 0 or +-2^p with p an integer, so multiplying by it is a shift.
With ``bits`` bits (one sign bit, bits - 1 for the exponent, one exponent code kept for 0)
there are n = 2^(bits-1) - 1 exponents, p in [p_max - n + 1, p_max] (bits=2: 0 or
+-2^p_max, ternary; bits=4: 7 exponents). We round in the log domain:

    p = clamp(round(log2 |w|), p_min, p_max),   w_q = sign(w) 2^p,
    w_q = 0 where |w| < 2^(p_min - 1)  (nearer 0 than 2^p_min; zeros stay zero)

and p_max = round(log2 max|w|) unless given. ``power_of_two_weights(module)`` trains a layer
this way (real-valued ``weight_orig``, straight-through gradient, like binary weights). Some
tutorials write "quantize to powers of two" as round(w / 2^p) 2^p: that is a *uniform*
quantizer whose step (scale) is a power of two, a different thing: its values are multiples
of 2^p, not powers of two. That one is
``power_of_two_scale``: round a QParams scale to the nearest power of two (in the log domain,
or up, so that the range only grows). When the input, weight and output scales are all powers
of two, the requantization multiplier s_x s_w / s_y is 2^-k and requantizing is a rounding
shift by k bits (``fixed_point.requantize_by_shift``).

Float16 (IEEE half: 1 sign, 5 exponent, 10 fraction bits): ``to_float16`` stores every
floating parameter as a float16 buffer (2 bytes instead of 4) and computes in float32: the
forward casts the stored value up, so the arithmetic is float32's and only the weights carry
float16's error, at most 2^-11 relative for |w| in float16's normal range [2^-14, 65504]
(smaller values lose relative precision as subnormals, below 2^-25 they become 0; larger
ones are refused). Storage for inference: there is no gradient (mixed-precision training
keeps float32 master weights, which this does not).
"""

import math

import numpy as np

from minigrad import ops
from minigrad.autograd import Function
from minigrad.backend import array_module
from minigrad.nn.utils.parametrize import Parametrization, remove_parametrizations
from minigrad.quant.qparams import QParams, check_finite
from minigrad.quant.weight_reparam import (PRUNED, remove_format, store_as, stored_as,
                                           take_parameter)
from minigrad.tensor import Tensor

TERNARY_THRESHOLD = 0.7  # Delta = 0.7 mean|w| (Li & Liu 2016)
BINARY_CLIP = 1.0  # the STE passes the gradient where |w| <= 1
FLOAT16_MAX = float(np.finfo(np.float16).max)
MIN_POWER_BITS, MAX_POWER_BITS = 2, 8


class StraightThrough(Function):
    """y = quantizer(w);  dy/dw = 1 where |w| <= clip (everywhere when clip is None), else 0.
    ``quantizer`` maps an array to an array of the same shape and dtype."""

    @staticmethod
    def forward(ctx, w, quantizer=None, clip=None):
        ctx.save_for_backward(None if clip is None else array_module(w).abs(w) <= clip)
        return quantizer(w).astype(w.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return (grad if inside is None else grad * inside,)


# --------------------------------------------------------------------------- binary, ternary
def binary_weights(w, scaled=True):
    """alpha sign(w) with sign(0) = +1; alpha = mean|w| when ``scaled``, else 1."""
    xp = array_module(w)
    alpha = xp.abs(w).mean() if scaled else 1
    return xp.where(w >= 0, alpha, -alpha).astype(w.dtype)


def ternary_threshold(w, threshold=TERNARY_THRESHOLD):
    """(Delta, alpha) of Ternary Weight Networks: Delta = threshold * mean|w|, alpha = mean of
    the |w| above Delta (0 when there are none: an all-zero tensor)."""
    magnitude = array_module(w).abs(w)
    delta = threshold * magnitude.mean()
    above = magnitude > delta
    alpha = magnitude[above].mean() if above.any() else magnitude.dtype.type(0)
    return delta, alpha


def ternary_weights(w, threshold=TERNARY_THRESHOLD):
    """+alpha above Delta, -alpha below -Delta, 0 between (see ``ternary_threshold``)."""
    delta, alpha = ternary_threshold(w, threshold)
    return (alpha * ((w > delta).astype(w.dtype) - (w < -delta).astype(w.dtype))).astype(w.dtype)


class LowBitWeight(Parametrization):
    """``weight = StraightThrough(quantize(weight_orig))``: the real-valued Parameter itself
    is stored (as ``<name>_orig``) and trained; inference needs ``bits`` a weight and
    ``scale_bytes`` for the tensor."""

    bits, scale_bytes, clip = None, 0, None

    def quantize(self, w):
        raise NotImplementedError(f"{type(self).__name__} must define quantize(w)")

    def forward(self, orig):
        # Training can turn a weight into NaN after the format was registered.
        check_finite(orig.data, "the real-valued weight", type(self).__name__)
        return StraightThrough.apply(orig, quantizer=self.quantize, clip=self.clip)

    def storage_bytes(self, orig):
        return {"values": math.ceil(orig.data.size * self.bits / 8), "scale": self.scale_bytes}


class BinaryWeight(LowBitWeight):
    """alpha sign(w), 1 bit a weight and a float32 alpha (none when not ``scaled``)."""

    kind, bits, clip = "binary", 1, BINARY_CLIP

    def __init__(self, scaled=True):
        self.scaled, self.scale_bytes = scaled, 4 if scaled else 0

    def quantize(self, w):
        return binary_weights(w, self.scaled)


class TernaryWeight(LowBitWeight):
    """0 or +-alpha, 2 bits a weight and a float32 alpha."""

    kind, bits, scale_bytes = "ternary", 2, 4

    def __init__(self, threshold=TERNARY_THRESHOLD):
        self.threshold = threshold

    def quantize(self, w):
        return ternary_weights(w, self.threshold)


def binarize(module, name="weight", scaled=True):
    """Binary ``module.<name>`` (BinaryConnect): the forward uses alpha sign(w) of the
    real-valued Parameter, now ``<name>_orig`` (the same object, so an optimizer built before
    keeps training it); the gradient reaches it straight through, zeroed where |w| > 1.
    Pruned entries become +-alpha too (binary has no 0). Returns ``module``."""
    return store_as(module, name, BinaryWeight(scaled), "binarize")


def ternarize(module, name="weight", threshold=TERNARY_THRESHOLD):
    """Ternary ``module.<name>`` (Ternary Weight Networks): the forward uses 0 or +-alpha
    (see ``ternary_threshold``) of the real-valued ``<name>_orig``; the gradient reaches it
    unchanged (straight through). Returns ``module``."""
    if not threshold > 0:
        raise ValueError(f"ternarize: threshold must be > 0 (Delta = threshold * mean|w|), "
                         f"got {threshold!r}")
    return store_as(module, name, TernaryWeight(threshold), "ternarize")


def remove_low_bit(module, name="weight"):
    """Make the binary, ternary, power-of-two or float16 storage of ``module.<name>``
    permanent: a plain Parameter holding the values the forward used (for binary, ternary and
    power of two the same Parameter object as ``<name>_orig``). ValueError for any other
    tensor. Returns ``module``."""
    return remove_format(module, name, ("binary", "ternary", "power_of_two", "float16"),
                         "remove_low_bit")


# --------------------------------------------------------------------------- powers of two
def check_bit_width(bits, low, high, caller, meaning):
    """``bits`` as an int if it is an integer in low..high, else ValueError."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not (
            low <= bits <= high):
        raise ValueError(f"{caller}: bits must be an integer in {low}..{high} ({meaning}), "
                         f"got {bits!r}")
    return int(bits)


def check_power_bits(bits):
    return check_bit_width(bits, MIN_POWER_BITS, MAX_POWER_BITS, "power_of_two_quantize",
                           "1 sign bit and an exponent")


def exponent_range(bits, max_exponent):
    """(p_min, p_max): the 2^(bits-1) - 1 exponents of a ``bits``-bit power-of-two code."""
    bits = check_power_bits(bits)
    return int(max_exponent) - (2 ** (bits - 1) - 1) + 1, int(max_exponent)


def power_of_two_values(w, bits, max_exponent=None):
    """The array ``w`` with each entry 0 or sign(w) 2^p (see the module docstring)."""
    xp = array_module(w)
    magnitude = xp.abs(w).astype(np.float64)
    if max_exponent is None:
        if not magnitude.size or magnitude.max() == 0:
            return xp.zeros_like(w)
        max_exponent = xp.rint(xp.log2(magnitude.max()))
    p_min, p_max = exponent_range(bits, max_exponent)
    with np.errstate(divide="ignore"):  # log2(0) = -inf, clamped, then zeroed below
        exponent = xp.clip(xp.rint(xp.log2(magnitude)), p_min, p_max)
    values = xp.sign(w) * xp.exp2(exponent)
    return xp.where(magnitude < 2.0 ** (p_min - 1), 0, values).astype(w.dtype)


def power_of_two_quantize(w, bits, max_exponent=None):
    """Each weight to 0 or sign(w) 2^p, p = clamp(round(log2|w|), p_min, p_max) with
    2^(bits-1) - 1 exponents ending at ``max_exponent`` (default round(log2 max|w|)).

    An array gives an array; a Tensor gives a Tensor whose gradient passes straight through
    (the identity), for training with power-of-two weights. NaN or inf raise ValueError."""
    check_power_bits(bits)
    check_finite(w.data if isinstance(w, Tensor) else w, "the weights", "power_of_two_quantize")
    if isinstance(w, Tensor):
        return StraightThrough.apply(
            w, quantizer=lambda a: power_of_two_values(a, bits, max_exponent))
    return power_of_two_values(array_module(w).asarray(w), bits, max_exponent)


class PowerOfTwoWeight(LowBitWeight):
    """0 or sign(w) 2^p: ``bits`` a weight and the top exponent p_max (one int8 byte)."""

    kind, scale_bytes = "power_of_two", 1

    def __init__(self, bits, max_exponent=None):
        self.bits, self.max_exponent = check_power_bits(bits), max_exponent

    def quantize(self, w):
        return power_of_two_values(w, self.bits, self.max_exponent)


def power_of_two_weights(module, name="weight", bits=4, max_exponent=None):
    """Power-of-two ``module.<name>``: the forward uses ``power_of_two_quantize`` of the
    real-valued ``<name>_orig`` (p_max from the current weights unless ``max_exponent`` is
    given); the gradient reaches it straight through. Returns ``module``."""
    return store_as(module, name, PowerOfTwoWeight(bits, max_exponent), "power_of_two_weights")


def power_of_two_scale(qp, round_up=False):
    """``qp`` with each scale rounded to a power of two: 2^round(log2 s), or 2^ceil(log2 s)
    with ``round_up`` (the range then only grows, so nothing inside it before is clipped).
    Zero points and the integer range stay, so 0.0 is still exact. Per-channel scales are
    rounded one by one."""
    if not isinstance(qp, QParams):
        raise TypeError(f"power_of_two_scale: expected QParams, got {type(qp).__name__}")
    xp = array_module(qp.scale)
    log2 = xp.log2(qp.scale.astype(np.float64))
    scale = xp.exp2(xp.ceil(log2) if round_up else xp.rint(log2)).astype(np.float32)
    return QParams(scale, qp.zero_point, qp.qmin, qp.qmax, qp.axis)


# --------------------------------------------------------------------------- float16
class Float16Weight(Parametrization):
    """``weight = weight_fp16`` cast up to ``dtype`` (the weight's own, float32 as a rule):
    stored in half precision, used in single."""

    kind = "float16"

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)

    def right_inverse(self, tensor):
        return {"fp16": Tensor(tensor.data.astype(np.float16))}

    def forward(self, fp16):
        return ops.cast(fp16, self.dtype)

    def storage_bytes(self, fp16):
        return {"values": int(fp16.data.nbytes)}


def float16_tensor(module, name):
    """Store the Parameter ``module.<name>`` as the float16 buffer ``<name>_fp16``."""
    param = take_parameter(module, name, "to_float16")
    data = param.data
    if not bool(array_module(data).all(array_module(data).abs(data) <= FLOAT16_MAX)):
        raise ValueError(f"to_float16: {name!r} of {type(module).__name__} has values outside "
                         f"float16's range +-{FLOAT16_MAX:g}")
    return store_as(module, name, Float16Weight(param.dtype), "to_float16")


def to_float16(module):
    """Store every floating Parameter of ``module`` and its submodules (weights, biases,
    batch-norm gammas and betas) in float16, computing in float32. A pruned tensor has its
    pruning made permanent first. Buffers (batch-norm statistics) and tensors already stored
    another way (k-means centroids, the real-valued weights of binary / ternary layers) stay
    as they are. Returns ``module``."""
    for submodule in list(module.modules()):
        for name in [n for n in submodule.parametrizations if stored_as(submodule, n) == PRUNED]:
            remove_parametrizations(submodule, name, leave_parametrized=True)
        stored = {name for entry in submodule.parametrizations.values() for name in entry.stored}
        for name, param in list(submodule.named_parameters(recurse=False)):
            if param.dtype.kind == "f" and name not in stored:
                float16_tensor(submodule, name)
    return module
