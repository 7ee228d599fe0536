"""Integer arithmetic for quantized kernels: 8-bit operands, int32 accumulators, and
fixed-point requantization from int32 accumulators back to 8-bit codes, with integers only.

A quantized layer multiplies integer codes, x = s_x (x_q - z_x), w = s_w w_q (weights
symmetric), and adds them up in an int32 accumulator (``int8_gemm``, ``int8_conv2d`` of
every kernel set). Since

    y = sum w x = s_w s_x sum w_q (x_q - z_x) = s_w s_x acc,

the output code is y_q = z_y + round(y / s_y) = z_y + round(M acc), with the real multiplier

    M = s_x s_w / s_y        (one per output channel when s_w is per-channel).

Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", section 2.2) observe that M is the only real number left,
and that it is known ahead of time, so it can be stored as fixed point: write

    M = 2^-n M_frac,   M_frac in [0.5, 1),   M0 = round(M_frac 2^31)  (an int32),

so that M ~= M0 2^-31 2^-n, and round(M acc) becomes integer arithmetic: one 32 x 32 -> 64-bit
product acc M0, then one rounding right shift by 31 + n bits. ``quantize_multiplier`` finds
(M0, n); ``requantize`` applies them. (Jacob et al. use a rounding doubling high multiply, then
a second rounding shift; we round once, the exact product, which is simpler to state and never
worse.)

Conventions here:

* n may be negative: M >= 1 (rare: it means s_y < s_x s_w) gives n < 0, still a right shift
  by 31 + n >= 1 bits. Multipliers from 2^30 on are refused (the shift would reach 0).
* M < 2^-32 comes back as (M0, n) = (0, 0): |acc| <= 2^31, so |M acc| < 1/2 and every
  accumulator rounds to 0 anyway.
* Rounding is round half to even, the rule of the rest of ``minigrad.quant`` (``np.rint``),
  computed exactly with integers: floor by an arithmetic shift, then compare the remainder with
  half of 2^(31+n); above half rounds up, exactly half rounds to the even neighbour.

How far is this from exact rounding? |M0 - M_frac 2^31| <= 1/2 and M_frac 2^31 >= 2^30, so
the fixed-point multiplier M* = M0 2^-31-n is within a relative 2^-31 of M, and

    |acc M* - acc M| <= |acc| M 2^-31.

``requantize`` rounds acc M* exactly, so it can differ from ``requantize_reference`` (exact
rational rounding of acc M) only where acc M lies within |acc| M 2^-31 of a half-integer, and
then by one code. For an output that fits 8 bits (|acc M| < 256), that is a distance below
2^-23. When M is a dyadic rational whose numerator fits 31 bits (a power of two, 3/8, ...), M* is
M and the two agree everywhere.

Power-of-two scales: when s_x, s_w and s_y are all powers of two, so is M = 2^-k, and
requantization is a rounding right shift by k bits, no multiply (``requantize_by_shift``).
"""

from fractions import Fraction

import numpy as np

from minigrad.backend.geometry import output_hw

# The integer dtypes codes are stored in, smallest first.
STORAGE_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32)


def storage_dtype(qmin, qmax):
    """The smallest NumPy integer dtype holding [qmin, qmax] (int8, uint8, int16, ...)."""
    return next(np.dtype(d) for d in STORAGE_DTYPES
                if np.iinfo(d).min <= qmin and qmax <= np.iinfo(d).max)


# ------------------------------------------------------------------ int8 operands
#
# Quantized layers (``minigrad.quant``) multiply 8-bit codes and add the products in int32;
# ``requantize`` below turns the int32 accumulators back into 8-bit codes. Every
# product of two 8-bit codes minus their zero points is at most 255 * 255 in size, so a sum of
# K of them fits int32 while K * 255 * 255 < 2^31: K <= 33,025 terms (a Linear layer's
# in_features, a convolution's C * KH * KW). NumPy's matmul on int8 arrays would compute in
# int8 and wrap around, so the operands are cast to int32 before they are multiplied.

INT8_MAX_TERMS = (2**31 - 1) // (255 * 255)
CODE_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _check_int8(name, what, array, ndim, dtypes=("int8", "uint8")):
    if array.dtype.name not in dtypes:
        raise TypeError(f"{name}: {what} must be {' or '.join(dtypes)}, got {array.dtype} "
                        f"(shape {array.shape})")
    if array.ndim != ndim:
        raise ValueError(f"{name}: {what} must be {ndim}-D, got shape {array.shape}")


def _check_zero_point(name, what, zero_point, dtype):
    low, high = CODE_RANGES[dtype.name]
    if not (isinstance(zero_point, (int, np.integer)) and not isinstance(zero_point, bool)
            and low <= zero_point <= high):
        raise ValueError(f"{name}: the zero point of {what} must be an integer in "
                         f"[{low}, {high}] ({dtype}), got {zero_point!r}")


def _check_terms(name, terms):
    if terms > INT8_MAX_TERMS:
        raise ValueError(f"{name}: {terms} terms per sum could overflow the int32 accumulator "
                         f"(at most {INT8_MAX_TERMS}: terms * 255 * 255 < 2^31)")


def _check_bias(name, bias, size):
    if bias is not None and (bias.dtype != np.int32 or bias.shape != (size,)):
        raise ValueError(f"{name}: bias must be int32 of shape ({size},), got {bias.dtype} "
                         f"{bias.shape}")


def check_int8_gemm_operands(name, a, b, a_zero_point, b_zero_point, bias=None):
    """TypeError/ValueError naming ``name`` and both shapes unless A (M, K) and B (K, N) are
    int8/uint8 matrices that multiply, with zero points their dtypes can hold."""
    _check_int8(name, "A", a, 2)
    _check_int8(name, "B", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: A {a.shape} and B {b.shape} do not multiply: need (M, K) "
                         "and (K, N)")
    _check_zero_point(name, "A", a_zero_point, a.dtype)
    _check_zero_point(name, "B", b_zero_point, b.dtype)
    _check_terms(name, a.shape[1])
    _check_bias(name, bias, b.shape[1])


def check_int8_conv2d_operands(name, x, weight, x_zero_point, stride, padding, dilation,
                               bias=None):
    """Errors as ``check_int8_gemm_operands``'s for x (N, C, H, W) int8/uint8, weight
    (O, C, KH, KW) int8; returns the output size (H_out, W_out)."""
    _check_int8(name, "x", x, 4)
    _check_int8(name, "weight", weight, 4, dtypes=("int8",))
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{name}: x {x.shape} has {x.shape[1]} channels, weight "
                         f"{weight.shape} expects {weight.shape[1]}")
    _check_zero_point(name, "x", x_zero_point, x.dtype)
    _check_terms(name, int(np.prod(weight.shape[1:])))
    _check_bias(name, bias, weight.shape[0])
    return output_hw(x.shape, weight.shape[2:], stride, padding, dilation)


# ------------------------------------------------------------------ requantization

FRACTION_BITS = 31  # M0 / 2^31 in [0.5, 1)
MIN_SHIFT, MAX_SHIFT = -30, 31  # so the total shift 31 + n is in 1 .. 62 bits
# Accumulators are int32: |acc| <= 2^31, so |acc * M0| < 2^62 fits int64.
ACC_MIN, ACC_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(multiplier):
    """M -> (M0, n) with M ~= M0 * 2^-31 * 2^-n, M0 in [2^30, 2^31) (or (0, 0), see the module
    docstring), relative error at most 2^-31. ``multiplier`` is a float or an array (one per
    channel); a float gives Python ints, an array int32 arrays of its shape."""
    m = np.asarray(multiplier, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"quantize_multiplier: multipliers must be finite and >= 0, got "
                         f"{multiplier!r}")
    fraction, exponent = np.frexp(m)  # m = fraction * 2^exponent, fraction in [0.5, 1)
    m0 = np.rint(np.ldexp(fraction, FRACTION_BITS)).astype(np.int64)
    carry = m0 == 2**FRACTION_BITS  # the fraction rounded up to 1.0: take 0.5 * 2^(e+1)
    m0, shift = np.where(carry, m0 // 2, m0), -(exponent + carry)
    if np.any(shift < MIN_SHIFT):
        raise ValueError(f"quantize_multiplier: multipliers must round to below 2^{-MIN_SHIFT}, got "
                         f"{multiplier!r}")
    negligible = shift > MAX_SHIFT  # M < 2^-32 rounds every int32 accumulator to 0
    m0, shift = np.where(negligible, 0, m0), np.where(negligible, 0, shift)
    if m.ndim == 0:
        return int(m0), int(shift)
    return m0.astype(np.int32), shift.astype(np.int32)


def fixed_point_value(m0, shift):
    """The real number M0 * 2^-31 * 2^-n that (M0, n) stands for, as float64 (exact)."""
    return np.ldexp(np.asarray(m0, np.float64), -FRACTION_BITS - np.asarray(shift))


def rounding_right_shift(x, shift):
    """x / 2^shift rounded to the nearest integer, ties to even, for int64 ``x`` and
    0 <= shift <= 62 (both arrays broadcast). Exact integer arithmetic: the floor is an
    arithmetic shift, the remainder x - floor * 2^shift is in [0, 2^shift)."""
    x, shift = np.asarray(x, np.int64), np.asarray(shift, np.int64)
    floor = x >> shift
    remainder = x - (floor << shift)
    half = (np.int64(1) << shift) >> 1  # 0 when shift is 0: then there is no remainder
    round_up = (remainder > half) | ((remainder == half) & (shift > 0) & ((floor & 1) == 1))
    return floor + round_up


def check_fixed_point(name, m0, shift):
    """(M0, n) as int64 arrays; ValueError unless 0 <= M0 < 2^31 and -30 <= n <= 31."""
    m0, shift = np.asarray(m0, np.int64), np.asarray(shift, np.int64)
    if np.any((m0 < 0) | (m0 >= 2**FRACTION_BITS) | (shift < MIN_SHIFT) | (shift > MAX_SHIFT)):
        raise ValueError(f"{name}: need 0 <= M0 < 2^31 and {MIN_SHIFT} <= n <= {MAX_SHIFT} "
                         f"(see quantize_multiplier), got M0={m0}, n={shift}")
    return m0, shift


def _accumulators(name, acc):
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"{name}: accumulators must be integers (int32), got {acc.dtype}")
    if acc.dtype.itemsize > 4 and acc.size and (acc.min() < ACC_MIN or acc.max() > ACC_MAX):
        raise ValueError(f"{name}: accumulators must fit int32, got values in "
                         f"[{acc.min()}, {acc.max()}]")
    return acc.astype(np.int64)


def _clamp_codes(name, rounded, zero_point, qmin, qmax):
    """clamp(rounded + z, qmin, qmax) in the smallest dtype holding [qmin, qmax]."""
    if not qmin < qmax:
        raise ValueError(f"{name}: need qmin < qmax, got [{qmin}, {qmax}]")
    codes = np.clip(rounded + np.asarray(zero_point, np.int64), qmin, qmax)
    return codes.astype(storage_dtype(int(qmin), int(qmax)))


def requantize(acc, m0, shift, zero_point, qmin, qmax):
    """y_q = clamp(round(acc * M0 * 2^-31 * 2^-n) + z, qmin, qmax), integers only, round half
    to even; dtype the smallest holding [qmin, qmax] (int8 for [-128, 127]).

    ``m0``, ``shift`` (from ``quantize_multiplier``) and ``zero_point`` broadcast against
    ``acc``: per-channel values for (N, C, H, W) accumulators have shape (C, 1, 1)."""
    acc = _accumulators("requantize", acc)
    m0, shift = check_fixed_point("requantize", m0, shift)
    rounded = rounding_right_shift(acc * m0, FRACTION_BITS + shift)
    return _clamp_codes("requantize", rounded, zero_point, qmin, qmax)


def requantize_reference(acc, multiplier, zero_point, qmin, qmax):
    """The same as ``requantize`` from the real multiplier M, in exact rational arithmetic
    (``fractions.Fraction``: a float64 M is a dyadic rational, taken exactly): round half to
    even of acc * M. Slow; a test oracle."""
    acc = _accumulators("requantize_reference", acc)
    exact = np.vectorize(lambda a, m: round(Fraction(int(a)) * Fraction(float(m))), otypes=[object])
    rounded = exact(acc, np.asarray(multiplier, np.float64)).astype(np.int64)
    return _clamp_codes("requantize_reference", rounded, zero_point, qmin, qmax)


def is_power_of_two(scale):
    """True when every entry of ``scale`` is exactly 2^k for an integer k (k may be negative)."""
    scale = np.asarray(scale, np.float64)
    fraction, _ = np.frexp(scale)
    return bool(np.all(np.isfinite(scale) & (scale > 0) & (fraction == 0.5)))


def power_of_two_shift(multiplier):
    """k with M = 2^-k, for a power-of-two multiplier (or an array of them); ValueError
    otherwise. A float gives an int, an array an int32 array."""
    if not is_power_of_two(multiplier):
        raise ValueError(f"power_of_two_shift: not a power of two: {multiplier!r}")
    _, exponent = np.frexp(np.asarray(multiplier, np.float64))
    shift = 1 - exponent  # M = 0.5 * 2^e = 2^(e - 1)
    return int(shift) if shift.ndim == 0 else shift.astype(np.int32)


def requantize_by_shift(acc, shift, zero_point, qmin, qmax):
    """y_q = clamp(round(acc * 2^-k) + z, qmin, qmax) for a power-of-two multiplier M = 2^-k:
    one rounding right shift (ties to even) and no multiply. k in -31 .. 62 (k < 0, M > 1,
    is a left shift); ``shift`` broadcasts against ``acc`` like ``requantize``'s."""
    acc = _accumulators("requantize_by_shift", acc)
    shift = np.asarray(shift, np.int64)
    if np.any(shift < -31) or np.any(shift > 62):
        raise ValueError(f"requantize_by_shift: need -31 <= k <= 62, got {shift}")
    rounded = np.where(shift >= 0, rounding_right_shift(acc, np.maximum(shift, 0)),
                       acc << np.maximum(-shift, 0))
    return _clamp_codes("requantize_by_shift", rounded, zero_point, qmin, qmax)
