"""Uniform (affine) quantization: the integer grid, its parameters, and the two maps to and from it.

A b-bit quantizer maps a real x to an integer code x_q in [qmin, qmax] and back::

    x_q = clamp(round(x / s) + z, qmin, qmax)        quantize
    x  ~= s (x_q - z)                                 dequantize

The scale s > 0 is the step between neighbouring codes and the zero point z is the code that
stands for 0.0. Because z is an integer inside [qmin, qmax], 0.0 is represented *exactly*
(quantize(0) = z, dequantize(z) = 0), which matters for zero padding, ReLU outputs and
pruned weights. Values inside the grid's range [s (qmin - z), s (qmax - z)] come back with an
error of at most s/2; values outside are clamped to the nearest end (clipping error).

Choosing s and z from an observed range [min, max] (``calculate_qparams``, PyTorch's formulas;
Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference"). First the range is widened to contain 0:
min- = min(min, 0), max+ = max(max, 0).

* affine (asymmetric): s = (max+ - min-) / (qmax - qmin),  z = qmin - round(min- / s), clamped.
  Rounding z to an integer moves ("nudges") the grid by less than s/2 so that 0.0 falls on a
  code; the range actually covered is [s (qmin - z), s (qmax - z)].
* symmetric: s = max(-min-, max+) / ((qmax - qmin) / 2),  z = 0 for signed codes and
  2^(b-1) for unsigned ones (128 for 8 bits). The restricted signed range
  [-(2^(b-1) - 1), 2^(b-1) - 1] drops the code -2^(b-1) so the grid is symmetric about 0
  (s = max|x| / (2^(b-1) - 1)); the unsigned restricted range is the same grid shifted by
  2^(b-1): [1, 2^b - 1].

In both, s is clamped to at least ``eps`` (float32's machine epsilon) so an all-zero tensor
gets a usable scale. Per-channel quantization keeps one (s, z) pair per slice along ``axis``
(axis 0, the output channels, for Conv2d and Linear weights).

Rounding: one mode everywhere, round half to even (``rint``), the IEEE default and what
PyTorch (``std::nearbyint``) uses, so 0.5 and 1.5 both go to the even neighbour and there is
no drift toward +infinity. Like PyTorch (FBGEMM) we compute x / s as x * (1/s) with the
reciprocal rounded to float32: the two differ in the last bit for some x, and multiplying is
what makes our codes equal PyTorch's bit for bit.
"""

from dataclasses import dataclass

import numpy as np

from minigrad.backend import array_module
from minigrad.backend.fixed_point import storage_dtype
from minigrad.tensor import Tensor

EPS = float(np.finfo(np.float32).eps)
MIN_BITS, MAX_BITS = 2, 16
NO_CODE = "only finite values have a quantized code"


def check_bits(bits):
    """Return ``bits`` if it is an integer in 2..16, else raise ValueError."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not (
            MIN_BITS <= bits <= MAX_BITS):
        raise ValueError(f"bits must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    return int(bits)


def check_finite(array, what, caller, hint="quantization needs finite values"):
    """Return ``array`` if all its values are finite, else raise ValueError naming ``caller``,
    ``what`` the array is and how many of its values are NaN or inf (then ``hint``). Every
    quantizer refuses that way: a range, a code or a centroid of NaN means nothing."""
    xp = array_module(array)
    array = xp.asarray(array)
    if array.dtype.kind in "biu":  # integers are finite: no pass over the array
        return array
    bad = int(array.size - int(xp.count_nonzero(xp.isfinite(array))))
    if bad:
        values = "value" if bad == 1 else "values"
        raise ValueError(f"{caller}: {what} contains {bad} NaN or inf {values} (of "
                         f"{array.size}); {hint}")
    return array


def qrange(bits, signed=True, restricted=False):
    """(qmin, qmax) of a ``bits``-wide integer code.

    signed: [-2^(b-1), 2^(b-1) - 1]; restricted signed: [-(2^(b-1) - 1), 2^(b-1) - 1];
    unsigned: [0, 2^b - 1]; restricted unsigned: [1, 2^b - 1].
    """
    bits = check_bits(bits)
    if signed:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2**bits - 1
    return qmin + int(restricted), qmax


def storage_bits(qmin, qmax):
    """The width of the smallest two's-complement (qmin < 0) or unsigned integer holding
    [qmin, qmax]."""
    if qmin < 0:
        return max(qmax.bit_length(), (-qmin - 1).bit_length()) + 1
    return qmax.bit_length()


@dataclass(frozen=True, eq=False)
class QParams:
    """The parameters of one uniform quantizer.

    ``scale``: float32 array, shape () per-tensor or (C,) per-channel; ``zero_point``: int32
    array of the same shape, each inside [qmin, qmax]; ``axis``: None per-tensor, else the
    axis of the quantized array that the C channels run along.
    """

    scale: object
    zero_point: object
    qmin: int
    qmax: int
    axis: object = None

    def __post_init__(self):
        xp = array_module(self.scale)
        scale = xp.asarray(self.scale, dtype=np.float32)
        zero_point = xp.asarray(self.zero_point)
        object.__setattr__(self, "scale", scale)
        if not isinstance(self.qmin, (int, np.integer)) or not isinstance(
                self.qmax, (int, np.integer)) or not self.qmin < self.qmax:
            raise ValueError(f"QParams: need integers qmin < qmax, got qmin={self.qmin!r}, "
                             f"qmax={self.qmax!r}")
        object.__setattr__(self, "qmin", int(self.qmin))
        object.__setattr__(self, "qmax", int(self.qmax))
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(f"QParams: [{self.qmin}, {self.qmax}] needs {self.bits} bits; "
                             f"bits must be in {MIN_BITS}..{MAX_BITS}")
        if self.axis is None and scale.ndim != 0:
            raise ValueError(f"QParams: per-tensor (axis=None) needs a scalar scale, got shape "
                             f"{scale.shape}; pass axis= for per-channel parameters")
        if self.axis is not None and (not isinstance(self.axis, (int, np.integer))
                                      or scale.ndim != 1):
            raise ValueError(f"QParams: per-channel needs an integer axis and a 1-d scale, got "
                             f"axis={self.axis!r} and scale of shape {scale.shape}")
        if zero_point.shape != scale.shape or zero_point.dtype.kind not in "iu":
            raise ValueError(f"QParams: zero_point must be an integer array shaped like scale "
                             f"{scale.shape}, got {zero_point.dtype} {zero_point.shape}")
        object.__setattr__(self, "zero_point", zero_point.astype(np.int32))
        if not bool(xp.all(xp.isfinite(scale) & (scale > 0))):
            raise ValueError(f"QParams: scale must be finite and > 0, got {scale}")
        if not bool(xp.all((zero_point >= self.qmin) & (zero_point <= self.qmax))):
            raise ValueError(f"QParams: zero_point {zero_point} lies outside "
                             f"[{self.qmin}, {self.qmax}], so 0.0 would not be representable")

    @property
    def bits(self):
        return storage_bits(self.qmin, self.qmax)

    @property
    def signed(self):
        return self.qmin < 0

    def __repr__(self):
        return (f"QParams(scale={self.scale}, zero_point={self.zero_point}, qmin={self.qmin}, "
                f"qmax={self.qmax}, axis={self.axis})")


def calculate_qparams(min_val, max_val, bits=8, symmetric=False, signed=True, restricted=False,
                      axis=None, eps=EPS):
    """QParams whose grid covers [min_val, max_val] (widened to contain 0); the formulas are in
    the module docstring and equal PyTorch's observers' ``_calculate_qparams``.

    Per-tensor: ``min_val``/``max_val`` are scalars; per-channel: 1-d arrays of length C and
    ``axis`` names the channel axis of the arrays to be quantized.
    """
    qmin, qmax = qrange(bits, signed, restricted)
    xp = array_module(min_val)
    lo = xp.asarray(min_val, dtype=np.float32)
    hi = xp.asarray(max_val, dtype=np.float32)
    if lo.shape != hi.shape or lo.ndim != (0 if axis is None else 1):
        want = "scalars (axis=None)" if axis is None else f"1-d arrays (axis={axis})"
        raise ValueError(f"calculate_qparams: min_val and max_val must be {want}, got shapes "
                         f"{lo.shape} and {hi.shape}")
    for name, value in (("min_val", lo), ("max_val", hi)):
        check_finite(value, name, "calculate_qparams", "the range must be finite (NaN or inf "
                     "in the observed data?)")
    if bool(xp.any(lo > hi)):
        raise ValueError(f"calculate_qparams: min_val {lo} is above max_val {hi}")
    min_neg = xp.minimum(lo, np.float32(0))
    max_pos = xp.maximum(hi, np.float32(0))
    eps = np.float32(eps)
    if symmetric:
        scale = xp.maximum(-min_neg, max_pos) / np.float32((qmax - qmin) / 2)
        scale = xp.maximum(scale, eps)
        middle = 0 if signed else 2 ** (bits - 1)
        zero_point = xp.full(scale.shape, middle, dtype=np.int32)
    else:
        scale = xp.maximum((max_pos - min_neg) / np.float32(qmax - qmin), eps)
        zero_point = qmin - xp.rint(min_neg / scale).astype(np.int32)  # the nudge: 0.0 is a code
        zero_point = xp.clip(zero_point, qmin, qmax)
    return QParams(scale, zero_point, qmin, qmax, axis)


def broadcast_qparams(x, qp):
    """(scale, zero_point) shaped to broadcast against ``x``: unchanged per-tensor, and
    per-channel as (1, .., C, .., 1) with C at ``qp.axis``."""
    xp = array_module(x)
    scale, zero_point = xp.asarray(qp.scale), xp.asarray(qp.zero_point)
    if qp.axis is None:
        return scale, zero_point
    axis = qp.axis + x.ndim if qp.axis < 0 else qp.axis
    if not 0 <= axis < x.ndim or x.shape[axis] != scale.shape[0]:
        raise ValueError(f"QParams: per-channel parameters for {scale.shape[0]} channels along "
                         f"axis {qp.axis} do not fit an array of shape {x.shape}")
    shape = [1] * x.ndim
    shape[axis] = scale.shape[0]
    return scale.reshape(shape), zero_point.reshape(shape)


def unclamped_codes(x, qp):
    """round(x / s) + z before clamping, as floats in x's precision (float32 at least).

    The straight-through estimator needs these too: its gradient mask is qmin <= code <= qmax.
    ``x`` must be finite (the callers check it with ``check_finite``).
    """
    xp = array_module(x)
    work = np.result_type(x.dtype, np.float32)
    scale, zero_point = broadcast_qparams(x, qp)
    inverse_scale = (np.float32(1) / scale).astype(work)  # x * (1/s), as PyTorch: see above
    with np.errstate(over="ignore"):  # a huge |x| / s becomes inf, which the clamp handles
        return xp.rint(x.astype(work, copy=False) * inverse_scale) + zero_point


def _check_array(x, caller, hint):
    """quantize and dequantize work on arrays (codes are not differentiable)."""
    if isinstance(x, Tensor):
        raise TypeError(f"{caller}: takes a NumPy or CuPy array, got a Tensor of shape "
                        f"{x.shape}; pass tensor.numpy() ({hint})")


def quantize(x, qp):
    """x_q = clamp(round(x / s) + z, qmin, qmax) as the smallest integer dtype holding
    [qmin, qmax]; round is half to even. NaN or inf in x raise ValueError."""
    _check_array(x, "quantize", "fake_quantize(x, qp) quantizes a Tensor inside a graph")
    xp = array_module(x)
    codes = unclamped_codes(check_finite(x, "the input", "quantize", NO_CODE), qp)
    return xp.clip(codes, qp.qmin, qp.qmax).astype(storage_dtype(qp.qmin, qp.qmax))


def dequantize(q, qp):
    """x ~= s (x_q - z), as float32. NaN or inf codes (in a float array) raise ValueError."""
    _check_array(q, "dequantize", "codes are arrays")
    q = check_finite(q, "the code array", "dequantize", "codes are finite integers")
    scale, zero_point = broadcast_qparams(q, qp)
    return (q.astype(np.float32) - zero_point.astype(np.float32)) * scale
