"""minigrad.quant core math: integer ranges, QParams, calculate_qparams, quantize / dequantize
(round trip within s/2, 0.0 exact, codes never leave [qmin, qmax], per-channel along the right
axis, round half to even), fake_quantize's straight-through gradient, bit-for-bit agreement with
PyTorch's quantize_per_tensor and fake_quantize ops, and clear errors on bad input."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend
from minigrad.quant import (QParams, calculate_qparams, dequantize, fake_quantize, qrange,
                            quantize, storage_dtype)

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True)
EPS32 = float(np.finfo(np.float32).eps)


def scheme():
    """bits, symmetric, signed, restricted."""
    return st.tuples(st.integers(2, 16), st.booleans(), st.booleans(), st.booleans())


def channel_data(seed, shape=(6, 5)):
    """Rows and columns with very different ranges, offsets of either sign, one all-zero row."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * rng.uniform(0.01, 20, (shape[0], 1)) * rng.uniform(
        0.1, 3, (1, shape[1])) + rng.uniform(-5, 5, (shape[0], 1))
    x[seed % shape[0]] = 0
    return x.astype(np.float32)


def qparams_for(x, bits, symmetric, signed, restricted, axis):
    if axis is None:
        return calculate_qparams(x.min(), x.max(), bits, symmetric, signed, restricted)
    rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return calculate_qparams(rows.min(1), rows.max(1), bits, symmetric, signed, restricted,
                             axis=axis)


def per_element(values, x, axis):
    """A per-tensor or per-channel parameter broadcast against x."""
    if axis is None:
        return values
    shape = [1] * x.ndim
    shape[axis] = -1
    return values.reshape(shape)


# ------------------------------------------------------------------ ranges and parameters
@pytest.mark.parametrize("bits, signed, restricted, expected", [
    (8, True, False, (-128, 127)), (8, True, True, (-127, 127)), (8, False, False, (0, 255)),
    (8, False, True, (1, 255)), (2, True, False, (-2, 1)), (2, True, True, (-1, 1)),
    (4, False, False, (0, 15)), (16, True, False, (-32768, 32767)), (16, False, False, (0, 65535)),
])
def test_qrange(bits, signed, restricted, expected):
    assert qrange(bits, signed, restricted) == expected
    qmin, qmax = expected
    qp = QParams(np.float32(1), np.int32(max(qmin, 0)), qmin, qmax)
    assert (qp.bits, qp.signed) == (bits, signed)


@pytest.mark.parametrize("qmin, qmax, dtype", [(-128, 127, np.int8), (0, 255, np.uint8),
                                               (-7, 7, np.int8), (-2048, 2047, np.int16),
                                               (0, 65535, np.uint16), (1, 65535, np.uint16)])
def test_storage_dtype_is_the_smallest_that_holds_the_range(qmin, qmax, dtype):
    assert storage_dtype(qmin, qmax) == dtype


def test_affine_and_symmetric_formulas_by_hand():
    qp = calculate_qparams(-1.0, 3.0)  # s = 4/255, z = -128 - round(-63.75) = -64
    assert qp.scale == np.float32(4) / np.float32(255) and qp.zero_point == -64
    assert calculate_qparams(0.5, 3.0).zero_point == -128  # the range is widened to contain 0
    qp = calculate_qparams(-1.0, 3.0, symmetric=True, signed=False)
    assert qp.scale == np.float32(3) / np.float32(127.5) and qp.zero_point == 128
    qp = calculate_qparams(-1.0, 3.0, bits=4, symmetric=True, restricted=True)
    assert (qp.qmin, qp.qmax, qp.zero_point) == (-7, 7, 0)
    assert qp.scale == np.float32(3) / np.float32(7)
    qp = calculate_qparams(0.0, 0.0)  # all zeros: the scale floor keeps it usable
    assert qp.scale == np.float32(EPS32)


def test_rounding_is_half_to_even():
    qp = QParams(np.float32(1), np.int32(0), -128, 127)
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 126.5], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, qp), [0, 2, 2, 0, -2, -2, 0, 126])


# ------------------------------------------------------------------ properties of quantize
@EXAMPLES
@given(scheme=scheme(), axis=st.sampled_from([None, 0, 1]), seed=st.integers(0, 2**31))
def test_round_trip_error_is_at_most_half_a_step_in_range(scheme, axis, seed):
    x = channel_data(seed)
    qp = qparams_for(x, *scheme, axis)
    q = quantize(x, qp)
    assert q.dtype == storage_dtype(qp.qmin, qp.qmax)
    assert q.min() >= qp.qmin and q.max() <= qp.qmax
    x_hat = dequantize(q, qp)
    assert x_hat.dtype == np.float32
    scale = per_element(qp.scale, x, axis)
    # s/2, plus float32 rounding of x * (1/s), of s itself (times up to 2^16 steps) and of s q.
    slack = 2 * EPS32 * (np.abs(x) + scale * (qp.qmax - qp.qmin))
    assert np.all(np.abs(x_hat - x) <= scale / 2 + slack)


@EXAMPLES
@given(scheme=scheme(), low=st.floats(-1e6, 1e6), high=st.floats(-1e6, 1e6),
       per_channel=st.booleans())
def test_zero_is_exactly_representable(scheme, low, high, per_channel):
    low, high = min(low, high), max(low, high)
    if per_channel:
        qp = calculate_qparams(np.array([low, 0.0, low / 3]), np.array([high, 0.0, high / 3]),
                               *scheme, axis=1)
        zeros = np.zeros((2, 3), dtype=np.float32)
    else:
        qp = calculate_qparams(low, high, *scheme)
        zeros = np.zeros(4, dtype=np.float32)
    codes = quantize(zeros, qp)
    np.testing.assert_array_equal(codes, np.broadcast_to(qp.zero_point, zeros.shape))
    assert np.all(dequantize(codes, qp) == 0)


@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("signed", [True, False])
def test_codes_stay_in_range_for_far_out_inputs(bits, signed):
    qp = calculate_qparams(-1.0, 1.0, bits=bits, signed=signed)
    big = np.finfo(np.float32).max
    x = np.array([-big, -1e30, -1e4, -1.5, 1.5, 1e4, 1e30, big], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        q = quantize(x, qp)
    np.testing.assert_array_equal(q, [qp.qmin] * 4 + [qp.qmax] * 4)
    assert quantize(x.astype(np.float64), qp).dtype == q.dtype


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_scales_run_along_the_axis(axis):
    x = channel_data(3, shape=(4, 5))
    qp = qparams_for(x, 8, False, True, False, axis % 2)
    qp = QParams(qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis)
    assert qp.scale.shape == (x.shape[axis],)
    q = quantize(x, qp)
    for c in range(x.shape[axis]):
        channel = np.take(x, c, axis=axis)
        own = calculate_qparams(channel.min(), channel.max())
        assert own.scale == qp.scale[c] and own.zero_point == qp.zero_point[c]
        np.testing.assert_array_equal(np.take(q, c, axis=axis), quantize(channel, own))
    with pytest.raises(ValueError, match="do not fit an array of shape"):
        quantize(x.T if x.shape[0] != x.shape[1] else x[:, :2], qp)


def test_works_on_float64_and_python_lists():
    qp = calculate_qparams(-2.0, 2.0, bits=4)
    np.testing.assert_array_equal(quantize([0.0, 1.0, -2.0], qp),
                                  quantize(np.array([0.0, 1.0, -2.0]), qp))


# ------------------------------------------------------------------ fake quantization
def test_ste_gradient_is_identity_inside_and_zero_outside():
    qp = QParams(np.float32(0.1), np.int32(3), -8, 7)  # codes -8..7: x in [-1.1, 0.4]
    x = mg.tensor([-2.0, -1.2, -1.14, -1.0, 0.0, 0.3, 0.44, 0.46, 0.9], requires_grad=True)
    y = fake_quantize(x, qp)
    np.testing.assert_array_equal(y.numpy(), dequantize(quantize(x.numpy(), qp), qp))
    upstream = np.arange(1, 10, dtype=np.float32)
    y.backward(mg.tensor(upstream))
    # round(x/s) + z: -17, -9, -8 (-11.4 rounds to -11), -7, 3, 6, 7 (4.4 -> 4), 8, 12
    inside = np.array([0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=np.float32)
    np.testing.assert_array_equal(x.grad.numpy(), upstream * inside)


def test_fake_quantize_keeps_float64_and_needs_qparams():
    x = mg.tensor(np.linspace(-1, 1, 7), requires_grad=True)
    y = fake_quantize(x, calculate_qparams(-1.0, 1.0, bits=3))
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64
    with pytest.raises(TypeError, match="qp must be QParams"):
        fake_quantize(x, (0.1, 0))


# ------------------------------------------------------------------ against PyTorch
def torch_quantized(torch, trials, signed):
    """PyTorch's quantize_per_tensor of each ``(x, qp)`` in ``trials``: the integer codes
    (``codes<trial>``) and their dequantized values (``dequantized<trial>``)."""
    dtype = torch.qint8 if signed else torch.quint8
    results = {}
    for trial, (x, qp) in enumerate(trials):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized tensors are deprecated in torch 2.13
            theirs = torch.quantize_per_tensor(torch.from_numpy(x), float(qp.scale),
                                               int(qp.zero_point), dtype)
        results[f"codes{trial}"] = theirs.int_repr()
        results[f"dequantized{trial}"] = theirs.dequantize()
    return results


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_and_dequantize_equal_torch(signed, torch_reference):
    rng = np.random.default_rng(0)
    trials = []
    for trial in range(20):
        x = (rng.standard_normal(2000) * rng.uniform(0.1, 10)).astype(np.float32)
        trials.append((x, calculate_qparams(x.min() * 0.6, x.max() * 0.9, signed=signed,
                                            symmetric=bool(trial % 2))))
    expected = torch_reference(f"quantize_per_tensor-signed={signed}",
                               lambda torch: torch_quantized(torch, trials, signed))
    for trial, (x, qp) in enumerate(trials):
        ours, codes = quantize(x, qp), expected[f"codes{trial}"]
        assert ours.dtype == codes.dtype
        np.testing.assert_array_equal(ours, codes)
        np.testing.assert_allclose(dequantize(ours, qp), expected[f"dequantized{trial}"],
                                   rtol=1e-6, atol=0)


def torch_fake_quantized(torch, x, qp, upstream):
    """PyTorch's fake_quantize (per tensor or per channel) of ``x``: the output (``out``) and
    the gradient for ``upstream`` (``grad``)."""
    theirs = torch.tensor(x, requires_grad=True)
    if qp.axis is None:
        out = torch.fake_quantize_per_tensor_affine(theirs, float(qp.scale), int(qp.zero_point),
                                                    qp.qmin, qp.qmax)
    else:
        out = torch.fake_quantize_per_channel_affine(
            theirs, torch.from_numpy(qp.scale), torch.from_numpy(qp.zero_point), qp.axis,
            qp.qmin, qp.qmax)
    out.backward(torch.from_numpy(upstream))
    return {"out": out, "grad": theirs.grad}


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_fake_quantize_values_and_gradient_equal_torch(axis, torch_reference):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 5)) * 3).astype(np.float32)
    qp = qparams_for(x * 0.5, 6, False, False, False, axis)  # a narrow range: some clamping
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    expected = torch_reference(f"fake_quantize-axis={axis}",
                               lambda torch: torch_fake_quantized(torch, x, qp, upstream))
    ours = mg.tensor(x, requires_grad=True)
    out = fake_quantize(ours, qp)
    out.backward(mg.tensor(upstream))
    np.testing.assert_array_equal(out.numpy(), expected["out"])
    np.testing.assert_array_equal(ours.grad.numpy(), expected["grad"])
    assert 0 < np.count_nonzero(ours.grad.numpy() == 0) < x.size


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bits", [0, 1, 17, 32, 8.0, True, "8"])
def test_bits_outside_2_to_16_are_refused(bits):
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        qrange(bits)
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        calculate_qparams(-1.0, 1.0, bits=bits)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(bad):
    qp = calculate_qparams(-1.0, 1.0)
    no_code = "only finite values have a quantized code"
    with pytest.raises(ValueError, match=re.escape(
            f"quantize: the input contains 1 NaN or inf value (of 2); {no_code}")):
        quantize(np.array([0.0, bad], dtype=np.float32), qp)
    with pytest.raises(ValueError, match=re.escape(
            f"fake_quantize: the input contains 2 NaN or inf values (of 3); {no_code}")):
        fake_quantize(mg.tensor([bad, 0.0, bad]), qp)
    with pytest.raises(ValueError, match=re.escape(
            "calculate_qparams: max_val contains 1 NaN or inf value (of 1); the range must be "
            "finite (NaN or inf in the observed data?)")):
        calculate_qparams(-1.0, bad)
    with pytest.raises(ValueError, match=re.escape(
            "dequantize: the code array contains 1 NaN or inf value (of 2); codes are finite "
            "integers")):
        dequantize(np.array([3.0, bad]), qp)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scale=0.0), "scale must be finite and > 0"),
    (dict(scale=-0.1), "scale must be finite and > 0"),
    (dict(scale=np.nan), "scale must be finite and > 0"),
    (dict(zero_point=200), "lies outside"),
    (dict(zero_point=1.5), "zero_point must be an integer array"),
    (dict(qmin=5, qmax=5), "need integers qmin < qmax"),
    (dict(qmin=0, qmax=2**17), "needs 18 bits"),
    (dict(qmin=0, qmax=1), "needs 1 bits"),
    (dict(axis=0), "per-channel needs an integer axis and a 1-d scale"),
    (dict(scale=np.ones(3, np.float32), zero_point=np.zeros(3, np.int32)), "pass axis="),
    (dict(scale=np.ones(3, np.float32), axis=0), "shaped like scale"),
])
def test_bad_qparams_are_refused(kwargs, match):
    args = dict(scale=np.float32(0.1), zero_point=np.int32(0), qmin=-128, qmax=127, axis=None)
    args.update(kwargs)
    args["zero_point"] = np.asarray(args["zero_point"])
    with pytest.raises(ValueError, match=match):
        QParams(**args)


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="min_val 2.0 is above max_val 1.0"):
        calculate_qparams(2.0, 1.0)
    with pytest.raises(ValueError, match=r"must be scalars \(axis=None\)"):
        calculate_qparams(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"must be 1-d arrays \(axis=0\)"):
        calculate_qparams(0.0, 1.0, axis=0)


# ------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
def test_quantize_dequantize_on_cupy_equal_numpy():
    try:
        cupy = backend.cupy_module()
    except RuntimeError as error:
        pytest.skip(f"needs a CUDA GPU and CuPy (.venv/bin/pip install -e \".[cuda]\"): {error}")
    x = channel_data(5)
    for axis in (None, 0):
        qp = qparams_for(x, 8, False, True, False, axis)
        qp_gpu = qparams_for(cupy.asarray(x), 8, False, True, False, axis)
        assert isinstance(qp_gpu.scale, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(qp_gpu.scale), qp.scale)
        q_gpu = quantize(cupy.asarray(x), qp_gpu)
        np.testing.assert_array_equal(cupy.asnumpy(q_gpu), quantize(x, qp))
        np.testing.assert_array_equal(cupy.asnumpy(dequantize(q_gpu, qp_gpu)),
                                      dequantize(quantize(x, qp), qp))
        x_gpu = mg.tensor(x, requires_grad=True).to("cuda")
        fake_quantize(x_gpu, qp_gpu).sum().backward()
        assert x_gpu.grad.device == "cuda"


@pytest.mark.parametrize("function", [quantize, dequantize])
def test_a_tensor_is_refused_with_the_way_out(function):
    qp = calculate_qparams(-1.0, 1.0)
    with pytest.raises(TypeError, match=r"got a Tensor of shape \(3,\); pass tensor.numpy"):
        function(mg.tensor(np.ones(3, dtype=np.float32)), qp)
