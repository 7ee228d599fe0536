"""Integer kernels for quantized inference: ``int8_gemm``, ``int8_conv2d`` and ``requantize`` in
both CPU kernel sets against exact int64 arithmetic (bit for bit), the fixed-point multiplier
of ``minigrad.backend.fixed_point`` against exact rational rounding, and the errors."""

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad import backend
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.backend import fixed_point
from minigrad.backend.fixed_point import (fixed_point_value, is_power_of_two, power_of_two_shift,
                                        quantize_multiplier, requantize, requantize_by_shift,
                                        requantize_reference, rounding_right_shift)
from kernel_cases import windows

EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True)
KERNEL_SETS = [numpy_ref, numba_cpu]
CODES = st.sampled_from([np.int8, np.uint8])


def codes(rng, shape, dtype):
    """Random codes over the whole range of ``dtype``, the extremes included."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def zero_point(rng, dtype):
    info = np.iinfo(dtype)
    return int(rng.integers(info.min, info.max, endpoint=True))


def exact_gemm(a, b, za, zb):
    return (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)


def exact_conv(x, weight, zx, stride, padding, dilation):
    """The convolution of x - z_x, padded with zeros, in int64 (the float reference's im2col
    and matmul run on int64 arrays: exact)."""
    return numpy_ref.conv2d_forward(x.astype(np.int64) - zx, weight.astype(np.int64), stride,
                                    padding, dilation)


def assert_int32_equal(ours, exact):
    assert ours.dtype == np.int32 and ours.shape == exact.shape
    np.testing.assert_array_equal(ours, exact)


# ----------------------------------------------------------------------------- int8_gemm

@EXAMPLES
@given(st.integers(1, 19), st.integers(1, 70), st.integers(1, 11), CODES, CODES, st.booleans(),
       st.integers(0, 2**16))
def test_int8_gemm_kernels_equal_the_exact_product(m, k, n, a_dtype, b_dtype, with_bias, seed):
    rng = np.random.default_rng(seed)
    a, b = codes(rng, (m, k), a_dtype), codes(rng, (k, n), b_dtype)
    za, zb = zero_point(rng, a_dtype), zero_point(rng, b_dtype)
    bias = rng.integers(-2**20, 2**20, n).astype(np.int32) if with_bias else None
    exact = exact_gemm(a, b, za, zb) + (0 if bias is None else bias)
    for kernel_set in KERNEL_SETS:
        assert_int32_equal(kernel_set.int8_gemm(a, b, za, zb, bias), exact)


@pytest.mark.parametrize("a_dtype, b_dtype", [(np.uint8, np.uint8), (np.int8, np.int8),
                                              (np.uint8, np.int8)])
def test_int8_gemm_is_exact_at_the_largest_k_and_the_extreme_codes(a_dtype, b_dtype):
    """K = 33,025 terms of 255 * 255 (or 255 * -255): the sums reach 2^31 - 2^15 and the
    zero-point corrections overflow int32 on the way (the wrapped sum is still exact)."""
    k = fixed_point.INT8_MAX_TERMS
    a_info, b_info = np.iinfo(a_dtype), np.iinfo(b_dtype)
    a = np.full((3, k), a_info.max, a_dtype)
    a[1] = a_info.min
    b = np.full((k, 5), b_info.min, b_dtype)
    b[:, 2] = b_info.max
    exact = exact_gemm(a, b, a_info.min, b_info.max)
    assert np.abs(exact).max() > 2**31 - 2**16
    for kernel_set in KERNEL_SETS:
        assert_int32_equal(kernel_set.int8_gemm(a, b, a_info.min, b_info.max), exact)


def test_int8_gemm_takes_views():
    """A Linear layer passes its (N, K) weight as W.T; slices are not contiguous."""
    rng = np.random.default_rng(0)
    x, weight = codes(rng, (9, 40), np.uint8), codes(rng, (7, 40), np.int8)
    exact = exact_gemm(x[::2, 1:], weight[:, 1:].T, 5, 0)
    for kernel_set in KERNEL_SETS:
        assert_int32_equal(kernel_set.int8_gemm(x[::2, 1:], weight[:, 1:].T, 5, 0), exact)


# --------------------------------------------------------------------------- int8_conv2d

@EXAMPLES
@given(windows(), st.integers(1, 9), CODES, st.booleans(), st.integers(0, 2**16))
def test_int8_conv2d_kernels_equal_the_exact_convolution(window, out_channels, x_dtype,
                                                         with_bias, seed):
    shape, kernel, stride, padding, dilation = window
    rng = np.random.default_rng(seed)
    x, weight = codes(rng, shape, x_dtype), codes(rng, (out_channels, shape[1]) + kernel, np.int8)
    zx = zero_point(rng, x_dtype)
    bias = rng.integers(-2**20, 2**20, out_channels).astype(np.int32) if with_bias else None
    exact = exact_conv(x, weight, zx, stride, padding, dilation)
    if bias is not None:
        exact += bias[:, None, None]
    for kernel_set in KERNEL_SETS:
        assert_int32_equal(kernel_set.int8_conv2d(x, weight, zx, stride, padding, dilation, bias),
                           exact)


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
@pytest.mark.parametrize("shape, out_channels, padding", [((2, 1, 28, 28), 6, 2),
                                                          ((3, 6, 14, 14), 16, 0)])
def test_int8_conv2d_at_lenet5_shapes(kernel_set, shape, out_channels, padding):
    rng = np.random.default_rng(1)
    x, weight = codes(rng, shape, np.uint8), codes(rng, (out_channels, shape[1], 5, 5), np.int8)
    geometry = ((1, 1), (padding, padding), (1, 1))
    assert_int32_equal(kernel_set.int8_conv2d(x, weight, 37, *geometry),
                       exact_conv(x, weight, 37, *geometry))


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
def test_int8_conv2d_pads_with_the_zero_point(kernel_set):
    """An input that is all z_x is the real 0.0 everywhere, padding included: every sum is 0.
    Padding with the code 0 would leave -z_x * (the border weights) at the border."""
    weight = codes(np.random.default_rng(2), (3, 2, 3, 3), np.int8)
    x = np.full((1, 2, 5, 5), 100, np.uint8)
    acc = kernel_set.int8_conv2d(x, weight, 100, (1, 1), (1, 1), (1, 1))
    assert acc.shape == (1, 3, 5, 5) and not acc.any()


# ---------------------------------------------------------------------------- requantize

@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5, 6)])
@pytest.mark.parametrize("qmin, qmax, zp", [(-128, 127, -3), (0, 255, 0), (17, 255, 17)])
def test_requantize_kernels_equal_fixed_point(shape, qmin, qmax, zp):
    rng = np.random.default_rng(3)
    acc = rng.integers(-2**31, 2**31 - 1, shape, endpoint=True).astype(np.int32)
    acc.reshape(-1)[::3] //= 2**12  # many accumulators near the output range, the rest clamped
    multipliers = np.exp(rng.uniform(np.log(1e-9), np.log(4.0), shape[1]))
    for m0, shift, per_channel in [quantize_multiplier(multipliers) + (True,),
                                   quantize_multiplier(0.0123) + (False,)]:
        axis1 = (-1,) + (1,) * (len(shape) - 2)
        expected = requantize(acc, np.reshape(m0, axis1) if per_channel else m0,
                              np.reshape(shift, axis1) if per_channel else shift, zp, qmin, qmax)
        for kernel_set in KERNEL_SETS:
            ours = kernel_set.requantize(acc, m0, shift, zp, qmin, qmax)
            assert ours.dtype == expected.dtype == (np.int8 if qmin < 0 else np.uint8)
            np.testing.assert_array_equal(ours, expected)


def test_the_cpu_kernel_sets_have_the_integer_kernels(monkeypatch):
    monkeypatch.setattr(backend, "_cpu_kernels", backend.kernels("cpu"))
    for name in ("numpy", "numba"):
        kernels = backend.set_cpu_kernels(name)
        assert all(callable(getattr(kernels, f)) for f in ("int8_gemm", "int8_conv2d",
                                                             "requantize"))


PLAIN_PYTHON_INT8 = """
import inspect, sys
import numpy as np
from minigrad.backend import numba_cpu
assert inspect.isfunction(numba_cpu.integer._int8_gemm)  # a Python function, not a Numba dispatcher
rng = np.random.default_rng(0)
a, b = rng.integers(0, 256, (3, 21)).astype(np.uint8), rng.integers(-128, 128, (21, 6)).astype(np.int8)
x, w = rng.integers(0, 256, (1, 3, 6, 5)).astype(np.uint8), rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8)
acc = numba_cpu.int8_conv2d(x, w, 200, (1, 2), (1, 1), (1, 1))
np.savez(sys.argv[1], gemm=numba_cpu.int8_gemm(a, b, 255, -128), conv=acc,
         codes=numba_cpu.requantize(acc, 1234567890, 10, 3, -128, 127))
"""


def test_the_integer_kernels_run_as_plain_python_with_the_jit_disabled(tmp_path):
    """With NUMBA_DISABLE_JIT=1 the loops run on NumPy scalars, whose int8 * uint8 is int16:
    the kernels cast first, so the results stay exact."""
    path = tmp_path / "plain.npz"
    subprocess.run([sys.executable, "-c", PLAIN_PYTHON_INT8, str(path)], check=True,
                   env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    saved = np.load(path)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (3, 21)).astype(np.uint8), rng.integers(-128, 128, (21, 6)).astype(
        np.int8)
    x, w = rng.integers(0, 256, (1, 3, 6, 5)).astype(np.uint8), rng.integers(
        -128, 128, (2, 3, 3, 3)).astype(np.int8)
    acc = numpy_ref.int8_conv2d(x, w, 200, (1, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(saved["gemm"], numpy_ref.int8_gemm(a, b, 255, -128))
    np.testing.assert_array_equal(saved["conv"], acc)
    np.testing.assert_array_equal(saved["codes"],
                                  numpy_ref.requantize(acc, 1234567890, 10, 3, -128, 127))


# -------------------------------------------------------------------------- fixed point

@EXAMPLES
@given(st.floats(2.0**-32, 2.0**29, allow_subnormal=False))
def test_quantize_multiplier_round_trips_within_2_to_the_minus_31(multiplier):
    m0, shift = quantize_multiplier(multiplier)
    assert isinstance(m0, int) and isinstance(shift, int)
    assert 2**30 <= m0 < 2**31 and fixed_point.MIN_SHIFT <= shift <= fixed_point.MAX_SHIFT
    assert abs(fixed_point_value(m0, shift) - multiplier) <= 2.0**-31 * multiplier


def test_quantize_multiplier_conventions():
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1.0) == (2**30, -1)  # M >= 1: a negative n
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-33) == (0, 0)  # rounds every int32 accumulator to 0
    assert quantize_multiplier(1 - 2.0**-40) == (2**30, -1)  # M0 rounded up to 2^31: carried
    m0, shift = quantize_multiplier(np.array([0.25, 3.0, 0.1]))  # per channel
    assert m0.dtype == shift.dtype == np.int32
    np.testing.assert_array_equal(m0, [2**30, 3 * 2**29, round(0.8 * 2**31)])
    np.testing.assert_array_equal(shift, [1, -2, 3])


def dyadic_multipliers():
    """M = p / 2^q with p < 2^31: the fixed-point M0 2^-31 2^-n is exactly M (from 2^-32 on;
    below, M rounds every int32 accumulator to 0 and M0 is 0)."""
    return st.builds(lambda p, q: p / 2.0**q, st.integers(1, 2**31 - 1),
                     st.integers(8, 60)).filter(lambda m: m >= 2.0**-32)


@EXAMPLES
@given(dyadic_multipliers(), st.integers(-3, 3), st.integers(0, 2**16))
def test_requantize_is_exact_rounding_when_the_multiplier_is_dyadic(multiplier, zp, seed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-2**31, 2**31 - 1, 400, endpoint=True).astype(np.int32)
    acc[:200] //= 2**rng.integers(0, 31, 200)  # every magnitude
    m0, shift = quantize_multiplier(multiplier)
    assert fixed_point_value(m0, shift) == multiplier
    np.testing.assert_array_equal(requantize(acc, m0, shift, zp, -128, 127),
                                  requantize_reference(acc, multiplier, zp, -128, 127))


@EXAMPLES
@given(st.floats(1e-6, 1.0), st.integers(0, 2**16))
def test_requantize_differs_from_exact_rounding_only_within_the_bound(multiplier, seed):
    """|acc M* - acc M| <= |acc| M 2^-31: a code can differ by one, and only where acc M lies
    that close to a half-integer."""
    rng = np.random.default_rng(seed)
    acc = (rng.integers(-2**31, 2**31 - 1, 300, endpoint=True) // 2**rng.integers(0, 31, 300))
    m0, shift = quantize_multiplier(multiplier)
    wide = -2**31, 2**31 - 1  # no clamping to speak of: compare the rounded values themselves
    ours = requantize(acc, m0, shift, 0, *wide)
    exact = requantize_reference(acc, multiplier, 0, *wide)
    for a, q, e in zip(acc, ours, exact):
        if q != e:
            product = Fraction(int(a)) * Fraction(multiplier)
            to_half = abs(product - (product.numerator // product.denominator) - Fraction(1, 2))
            assert abs(int(q) - int(e)) == 1 and to_half <= abs(product) * Fraction(1, 2**31)


def test_requantize_rounds_ties_to_even_and_clamps():
    acc = np.array([2, 6, 10, -2, -6, -10, 3, -3, 1000, -1000], np.int32)  # x 1/4
    m0, shift = quantize_multiplier(0.25)
    np.testing.assert_array_equal(requantize(acc, m0, shift, 0, -128, 127),
                                  [0, 2, 2, 0, -2, -2, 1, -1, 127, -128])
    codes_ = requantize(acc, m0, shift, 10, 0, 200)  # the smallest dtype holding [0, 200]
    assert codes_.dtype == np.uint8
    np.testing.assert_array_equal(codes_, [10, 12, 12, 10, 8, 8, 11, 9, 200, 0])


@EXAMPLES
@given(st.integers(0, 2**16), st.sampled_from([(-128, 127), (0, 255), (-127, 127), (3, 200)]))
def test_requantized_codes_stay_in_range(seed, qrange):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-2**31, 2**31 - 1, 500, endpoint=True).astype(np.int32)
    m0, shift = quantize_multiplier(np.exp(rng.uniform(-20, 5, 500)))
    codes_ = requantize(acc, m0, shift, int(rng.integers(*qrange)), *qrange)
    assert codes_.min() >= qrange[0] and codes_.max() <= qrange[1]


def test_rounding_right_shift_is_round_half_to_even():
    x = np.arange(-1000, 1001)
    for shift in range(6):
        np.testing.assert_array_equal(rounding_right_shift(x, shift), np.rint(x / 2**shift))
    assert rounding_right_shift(2**62 - 1, 62) == 1 and rounding_right_shift(-(2**61), 62) == 0


def test_power_of_two_scales_requantize_with_a_shift():
    assert is_power_of_two([0.5, 4.0, 2.0**-20]) and not is_power_of_two([0.5, 0.3])
    assert not is_power_of_two(0.0) and not is_power_of_two(-0.5)
    assert power_of_two_shift(2.0**-7) == 7 and power_of_two_shift(4.0) == -2
    np.testing.assert_array_equal(power_of_two_shift(np.array([0.5, 0.125])), [1, 3])
    with pytest.raises(ValueError, match="not a power of two"):
        power_of_two_shift(0.3)
    acc = np.random.default_rng(4).integers(-2**31, 2**31 - 1, 2000, endpoint=True).astype(
        np.int32) // 2**(np.arange(2000) % 31)
    for k in [-2, 0, 1, 7, 20, 31]:
        m0, shift = quantize_multiplier(2.0**-k)
        assert m0 == 2**30 and shift == k - 1  # the multiply is by 2^30: a shift in disguise
        by_shift = requantize_by_shift(acc, k, 3, -128, 127)
        np.testing.assert_array_equal(by_shift, requantize(acc, m0, shift, 3, -128, 127))
        np.testing.assert_array_equal(by_shift, requantize_reference(acc, 2.0**-k, 3, -128, 127))


# -------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
def test_int8_gemm_refuses_bad_operands_by_name(kernel_set):
    a, b = np.zeros((4, 3), np.uint8), np.zeros((3, 2), np.int8)
    with pytest.raises(TypeError, match=r"int8_gemm: A must be int8 or uint8, got float32 "
                                        r"\(shape \(4, 3\)\)"):
        kernel_set.int8_gemm(a.astype(np.float32), b)
    with pytest.raises(ValueError, match=r"A \(4, 3\) and B \(4, 2\) do not multiply"):
        kernel_set.int8_gemm(a, np.zeros((4, 2), np.int8))
    with pytest.raises(ValueError, match=r"zero point of A must be an integer in \[0, 255\]"):
        kernel_set.int8_gemm(a, b, -1, 0)
    with pytest.raises(ValueError, match=r"zero point of B .* \[-128, 127\]"):
        kernel_set.int8_gemm(a, b, 0, 0.5)
    with pytest.raises(ValueError, match="33026 terms per sum could overflow"):
        kernel_set.int8_gemm(np.zeros((1, 33026), np.uint8), np.zeros((33026, 1), np.int8))
    with pytest.raises(ValueError, match=r"bias must be int32 of shape \(2,\)"):
        kernel_set.int8_gemm(a, b, bias=np.zeros(2, np.int64))


@pytest.mark.parametrize("kernel_set", KERNEL_SETS, ids=lambda k: k.__name__.split(".")[-1])
def test_int8_conv2d_refuses_bad_operands_by_name(kernel_set):
    x, weight, geometry = np.zeros((1, 3, 5, 5), np.uint8), np.zeros((2, 3, 3, 3), np.int8), (
        (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"x \(1, 3, 5, 5\) has 3 channels, weight "
                                         r"\(2, 4, 3, 3\) expects 4"):
        kernel_set.int8_conv2d(x, np.zeros((2, 4, 3, 3), np.int8), 0, *geometry)
    with pytest.raises(TypeError, match="weight must be int8, got uint8"):
        kernel_set.int8_conv2d(x, weight.astype(np.uint8), 0, *geometry)
    with pytest.raises(ValueError, match="x must be 4-D, got shape"):
        kernel_set.int8_conv2d(x[0], weight, 0, *geometry)
    with pytest.raises(ValueError, match="window of size 7 .* does not fit an input of size 5"):
        kernel_set.int8_conv2d(x, np.zeros((2, 3, 7, 7), np.int8), 0, *geometry)
    with pytest.raises(ValueError, match=r"zero point of x must be an integer in \[0, 255\]"):
        kernel_set.int8_conv2d(x, weight, 256, *geometry)


def test_fixed_point_refuses_what_it_cannot_represent():
    for bad in [-0.1, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="finite and >= 0"):
            quantize_multiplier(bad)
    with pytest.raises(ValueError, match="round to below 2"):
        quantize_multiplier(2.0**30)
    acc = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match=r"need 0 <= M0 < 2\^31 and -30 <= n <= 31"):
        requantize(acc, 2**31, 0, 0, -128, 127)
    with pytest.raises(ValueError, match="-30 <= n <= 31"):
        requantize(acc, 2**30, 32, 0, -128, 127)
    with pytest.raises(TypeError, match="accumulators must be integers"):
        requantize(acc.astype(np.float32), 2**30, 0, 0, -128, 127)
    with pytest.raises(ValueError, match="must fit int32"):
        requantize(np.array([2**31]), 2**30, 0, 0, -128, 127)
    with pytest.raises(ValueError, match="need qmin < qmax"):
        requantize(acc, 2**30, 0, 0, 5, 5)
    with pytest.raises(ValueError, match="-31 <= k <= 62"):
        requantize_by_shift(acc, 63, 0, -128, 127)
    with pytest.raises(TypeError, match=r"acc must be int32 of shape \(N, C, ...\)"):
        numba_cpu.requantize(acc.astype(np.int64).reshape(1, 3), 2**30, 0, 0, -128, 127)
