"""Reductions: gradcheck and PyTorch parity over random shapes and axes, ties, argmax."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from helpers import EXAMPLES, OpCase, gradients_of_sum, op_tests, shapes


@st.composite
def shape_and_axis(draw, min_side=1, min_dims=0):
    """A shape, an ``axis`` (None, an int or a tuple) valid for it, and ``keepdims``."""
    shape = draw(shapes(min_dims=min_dims, min_side=min_side), label="shape")
    ndim = len(shape)
    choices = [st.none()]
    if ndim:
        choices += [st.integers(-ndim, ndim - 1), hnp.valid_tuple_axes(ndim, min_size=1)]
    axis = draw(st.one_of(choices), label="axis")
    return [shape], {"axis": axis, "keepdims": draw(st.booleans(), label="keepdims")}


def torch_dims(axis, x):
    """minigrad's axis=None means every axis; PyTorch wants them listed for some reductions."""
    return tuple(range(x.ndim)) if axis is None else axis


# The fixed examples: (shape, axis, keepdims), every side at least 2 (for var).
REDUCTION_EXAMPLES = [((), None, False), ((5,), 0, True), ((2, 3), None, True),
                      ((2, 3), -1, False), ((2, 3, 4), (0, 2), True), ((2, 3, 4), 1, False),
                      ((3, 2, 2), (-1, 0), False)]


def reduction(name, fn, torch_fn, min_side=1, min_dims=0, extra=({},)):
    """An OpCase for a reduction over ``axis`` with ``keepdims``, and each of the options in
    ``extra``."""
    def draw(data):
        drawn_shapes, kwargs = data.draw(shape_and_axis(min_side, min_dims), label="shape_and_axis")
        return drawn_shapes, {**kwargs, **data.draw(st.sampled_from(extra), label="extra")}

    examples = [([shape], {"axis": axis, "keepdims": keepdims, **options})
                for shape, axis, keepdims in REDUCTION_EXAMPLES if len(shape) >= min_dims
                for options in extra]
    return OpCase(name, draw, fn, torch_fn, examples=examples)


CASES = [
    reduction("sum", lambda x, axis, keepdims: x.sum(axis, keepdims),
              lambda x, axis, keepdims: x.sum(torch_dims(axis, x), keepdims)),
    reduction("mean", lambda x, axis, keepdims: x.mean(axis, keepdims),
              lambda x, axis, keepdims: x.mean(torch_dims(axis, x), keepdims)),
    # Two or more elements per reduction, so the unbiased variance is finite.
    reduction("var", lambda x, axis, keepdims, correction: x.var(axis, correction, keepdims),
              lambda x, axis, keepdims, correction: x.var(torch_dims(axis, x),
                                                          correction=correction,
                                                          keepdim=keepdims),
              min_side=2, min_dims=1, extra=({"correction": 0}, {"correction": 1})),
    reduction("max", lambda x, axis, keepdims: x.max(axis, keepdims),
              lambda x, axis, keepdims: x.amax(torch_dims(axis, x), keepdims)),
    reduction("min", lambda x, axis, keepdims: x.min(axis, keepdims),
              lambda x, axis, keepdims: x.amin(torch_dims(axis, x), keepdims)),
    reduction("logsumexp", lambda x, axis, keepdims: x.logsumexp(axis, keepdims),
              lambda x, axis, keepdims: x.logsumexp(torch_dims(axis, x), keepdims)),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_ties_share_the_gradient_like_torch_amax(reduce, torch_reference):
    values = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=np.float32)
    axes = [None, 0, 1]
    expected = torch_reference(f"ties_{reduce}", lambda torch: {
        f"axis={axis}": gradients_of_sum(
            torch, lambda t: getattr(t, "a" + reduce)(torch_dims(axis, t)), values)[0]
        for axis in axes})
    for axis in axes:
        grad, = gradients_of_sum(mg, lambda x: getattr(x, reduce)(axis), values)
        np.testing.assert_allclose(grad, expected[f"axis={axis}"], rtol=1e-6)


def test_logsumexp_does_not_overflow():
    x = mg.tensor([1000.0, 1000.0], requires_grad=True)
    out = x.logsumexp()
    out.backward()
    assert out.item() == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5])


@EXAMPLES
@given(drawn=shape_and_axis(), seed=st.integers(0, 2**31))
def test_argmax_and_argmin_match_numpy(drawn, seed):
    (shape,), kwargs = drawn
    if isinstance(kwargs["axis"], tuple):  # NumPy's argmax takes one axis
        kwargs["axis"] = kwargs["axis"][0]
    values = np.random.default_rng(seed).standard_normal(shape)
    x = mg.tensor(values, requires_grad=True)
    for ours, theirs in [(x.argmax(**kwargs), np.argmax(values, **kwargs)),
                         (x.argmin(**kwargs), np.argmin(values, **kwargs))]:
        assert ours.dtype == np.int64 and not ours.requires_grad
        np.testing.assert_array_equal(ours.numpy(), theirs)


def test_axis_out_of_range_is_a_clear_error():
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range for a tensor of shape \(2, 3\)"):
        mg.ones(2, 3).sum(axis=2)
