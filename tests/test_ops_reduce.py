"""Reductions and scans: gradcheck, PyTorch parity and float16 for every differentiable one (via
helpers.op_tests); indices, bool and integer results, NaN/inf edges and ties against PyTorch's
stored results; a Hypothesis sweep over shapes, dims and both spellings against NumPy; errors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from helpers import EXAMPLES, OpCase, away_from_zero, gradients_of_sum, op_tests, shapes


@st.composite
def shape_and_axis(draw, min_side=1, min_dims=0, tuples=True):
    """A shape, an ``axis`` valid for it (None, an int, or with ``tuples`` a tuple), and
    ``keepdims``."""
    shape = draw(shapes(min_dims=min_dims, min_side=min_side), label="shape")
    ndim = len(shape)
    choices = [st.none()]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
        if tuples:
            choices.append(hnp.valid_tuple_axes(ndim, min_size=1))
    axis = draw(st.one_of(choices), label="axis")
    return [shape], {"axis": axis, "keepdims": draw(st.booleans(), label="keepdims")}


@st.composite
def shape_and_dim(draw, min_side=1):
    """A shape and one int ``dim`` of it (0 or -1 for a 0-d shape), and ``keepdim``."""
    shape = draw(shapes(min_side=min_side), label="shape")
    bound = len(shape) or 1
    return [shape], {"dim": draw(st.integers(-bound, bound - 1), label="dim"),
                     "keepdim": draw(st.booleans(), label="keepdim")}


def torch_dims(axis, x):
    """minigrad's axis=None means every axis; PyTorch wants them listed for some reductions."""
    return tuple(range(x.ndim)) if axis is None else axis


# The fixed examples: (shape, axis, keepdims), every side at least 2 (for var).
REDUCTION_EXAMPLES = [((), None, False), ((5,), 0, True), ((2, 3), None, True),
                      ((2, 3), -1, False), ((2, 3, 4), (0, 2), True), ((2, 3, 4), 1, False),
                      ((3, 2, 2), (-1, 0), False)]
EMPTY_EXAMPLES = [((0, 3), 0, False), ((2, 0), None, True)]  # for ops with an identity
# One int dim: (shape, dim, keepdim), including 0-d with dim 0 and -1, and an empty batch.
DIM_EXAMPLES = [((), 0, False), ((), -1, True), ((5,), 0, True), ((2, 3), -1, False),
                ((2, 3, 4), 1, False), ((3, 2, 2), 0, True), ((0, 3), 1, False)]


def reduction(name, fn, torch_fn, min_side=1, min_dims=0, extra=({},), domain=None,
              examples=REDUCTION_EXAMPLES, tuples=True):
    """An OpCase for a reduction over ``axis`` (None, int or, with ``tuples``, a tuple) with
    ``keepdims``, and each of the options in ``extra``."""
    def draw(data):
        drawn_shapes, kwargs = data.draw(shape_and_axis(min_side, min_dims, tuples),
                                         label="shape_and_axis")
        return drawn_shapes, {**kwargs, **data.draw(st.sampled_from(extra), label="extra")}

    cases = [([shape], {"axis": axis, "keepdims": keepdims, **options})
             for shape, axis, keepdims in examples if len(shape) >= min_dims
             for options in extra]
    return OpCase(name, draw, fn, torch_fn, examples=cases,
                  **({"domain": domain} if domain else {}))


def along_dim(name, fn, torch_fn, min_side=1, extra=({},), domain=None, examples=DIM_EXAMPLES):
    """An OpCase for an op along one int ``dim`` with ``keepdim`` (``fn``/``torch_fn`` take
    ``dim`` and ``keepdim``; scans ignore ``keepdim``)."""
    def draw(data):
        drawn_shapes, kwargs = data.draw(shape_and_dim(min_side), label="shape_and_dim")
        return drawn_shapes, {**kwargs, **data.draw(st.sampled_from(extra), label="extra")}

    cases = [([shape], {"dim": dim, "keepdim": keepdim, **options})
             for shape, dim, keepdim in examples for options in extra]
    return OpCase(name, draw, fn, torch_fn, examples=cases,
                  **({"domain": domain} if domain else {}))


def some_zeros(i, x):
    """About a third of the values exactly 0: the products' gradients must stay exact."""
    return np.where(np.abs(x) < 0.45, 0.0, x)


def first_is_nan(i, x):
    """One NaN, the first element (so no slice of two or more elements is all NaN)."""
    x = x.copy()
    x.reshape(-1)[:1] = np.nan
    return x


NORMS = [{"p": p} for p in [2, 1, math.inf, -math.inf, 0, 0.5, 3]]

CASES = [
    reduction("sum", lambda x, axis, keepdims: x.sum(axis, keepdims),
              lambda x, axis, keepdims: x.sum(torch_dims(axis, x), keepdims),
              examples=REDUCTION_EXAMPLES + EMPTY_EXAMPLES),
    reduction("nansum", lambda x, axis, keepdims: mg.nansum(x, axis, keepdims),
              lambda x, axis, keepdims: x.nansum(torch_dims(axis, x), keepdims),
              domain=first_is_nan, examples=REDUCTION_EXAMPLES + EMPTY_EXAMPLES),
    reduction("mean", lambda x, axis, keepdims: x.mean(axis, keepdims),
              lambda x, axis, keepdims: x.mean(torch_dims(axis, x), keepdims),
              examples=REDUCTION_EXAMPLES + EMPTY_EXAMPLES),
    reduction("nanmean", lambda x, axis, keepdims: mg.nanmean(x, axis, keepdims),
              lambda x, axis, keepdims: x.nanmean(torch_dims(axis, x), keepdims),
              min_side=2, min_dims=1, domain=first_is_nan),
    # Two or more elements per reduction, so the unbiased variance is finite.
    reduction("var", lambda x, axis, keepdims, correction: mg.var(x, axis, keepdim=keepdims,
                                                                  correction=correction),
              lambda x, axis, keepdims, correction: x.var(torch_dims(axis, x),
                                                          correction=correction,
                                                          keepdim=keepdims),
              min_side=2, min_dims=1, extra=({"correction": 0}, {"correction": 1})),
    reduction("std", lambda x, axis, keepdims, correction: mg.std(x, axis, keepdim=keepdims,
                                                                  correction=correction),
              lambda x, axis, keepdims, correction: x.std(torch_dims(axis, x),
                                                          correction=correction,
                                                          keepdim=keepdims),
              min_side=2, min_dims=1, extra=({"correction": 0}, {"correction": 1})),
    reduction("var_mean_std_mean",
              lambda x, axis, keepdims: (lambda v, m, s, n: v + 2 * m + 3 * s + 4 * n)(
                  *mg.var_mean(x, axis, keepdim=keepdims),
                  *mg.std_mean(x, axis, keepdim=keepdims, correction=0)),
              lambda x, axis, keepdims: (lambda dims: (
                  x.var(dims, keepdim=keepdims) + 2 * x.mean(dims, keepdim=keepdims)
                  + 3 * x.std(dims, keepdim=keepdims, correction=0)
                  + 4 * x.mean(dims, keepdim=keepdims)))(torch_dims(axis, x)),
              min_side=2, min_dims=1),
    reduction("amax", lambda x, axis, keepdims: mg.amax(x, axis, keepdims),
              lambda x, axis, keepdims: x.amax(torch_dims(axis, x), keepdims)),
    reduction("amin", lambda x, axis, keepdims: mg.amin(x, axis, keepdims),
              lambda x, axis, keepdims: x.amin(torch_dims(axis, x), keepdims)),
    reduction("max_without_dim", lambda x, axis, keepdims: x.max(),
              lambda x, axis, keepdims: x.max(), examples=REDUCTION_EXAMPLES[:3]),
    reduction("logsumexp", lambda x, axis, keepdims: x.logsumexp(axis, keepdims),
              lambda x, axis, keepdims: x.logsumexp(torch_dims(axis, x), keepdims),
              examples=REDUCTION_EXAMPLES + EMPTY_EXAMPLES),
    reduction("norm", lambda x, axis, keepdims, p: mg.norm(x, p, axis, keepdims),
              lambda x, axis, keepdims, p: x.norm(p, torch_dims(axis, x), keepdims),
              extra=NORMS, domain=lambda i, x: away_from_zero(x),
              examples=REDUCTION_EXAMPLES[1:4]),
    along_dim("norm_fro", lambda x, dim, keepdim: mg.norm(x, "fro", dim, keepdim),
              lambda x, dim, keepdim: x.norm("fro", dim, keepdim)),
    along_dim("max_dim", lambda x, dim, keepdim: x.max(dim, keepdim).values,
              lambda x, dim, keepdim: x.max(dim, keepdim).values),
    along_dim("min_dim", lambda x, dim, keepdim: x.min(dim, keepdim).values,
              lambda x, dim, keepdim: x.min(dim, keepdim).values),
    along_dim("aminmax", lambda x, dim, keepdim: (lambda r: r.min + 2 * r.max)(
                  mg.aminmax(x, dim=dim, keepdim=keepdim)),
              lambda x, dim, keepdim: (lambda r: r.min + 2 * r.max)(
                  x.aminmax(dim=dim, keepdim=keepdim)), examples=DIM_EXAMPLES[:-1]),
    along_dim("median_dim", lambda x, dim, keepdim: mg.median(x, dim, keepdim).values,
              lambda x, dim, keepdim: x.median(dim, keepdim).values),
    reduction("median_without_dim", lambda x, axis, keepdims: mg.median(x),
              lambda x, axis, keepdims: x.median(), examples=REDUCTION_EXAMPLES[:4]),
    # Distinct values: the mode is then the smallest (ties of values are tested below).
    along_dim("mode", lambda x, dim, keepdim: mg.mode(x, dim, keepdim).values,
              lambda x, dim, keepdim: x.mode(dim, keepdim).values),
    reduction("prod", lambda x, axis, keepdims: mg.prod(x, axis, keepdims),
              lambda x, axis, keepdims: (x.prod().reshape([1] * x.ndim if keepdims else [])
                                         if axis is None else x.prod(axis, keepdims)),
              examples=[((), None, False), ((2, 3), None, False), ((0, 3), 0, True)],
              tuples=False),
    along_dim("prod_dim_with_zeros", lambda x, dim, keepdim: mg.prod(x, dim, keepdim),
              lambda x, dim, keepdim: x.prod(dim, keepdim), domain=some_zeros,
              examples=DIM_EXAMPLES + [((3, 6), 1, False)]),
    along_dim("cumsum", lambda x, dim, keepdim: mg.cumsum(x, dim),
              lambda x, dim, keepdim: x.cumsum(dim)),
    along_dim("cumprod_with_zeros", lambda x, dim, keepdim: mg.cumprod(x, dim),
              lambda x, dim, keepdim: x.cumprod(dim), domain=some_zeros,
              examples=DIM_EXAMPLES + [((3, 6), 1, False)]),
    along_dim("cummax", lambda x, dim, keepdim: mg.cummax(x, dim).values,
              lambda x, dim, keepdim: x.cummax(dim).values),
    along_dim("cummin", lambda x, dim, keepdim: mg.cummin(x, dim).values,
              lambda x, dim, keepdim: x.cummin(dim).values),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


# --------------------------------------------------------------------------- ties and edges
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_amax_ties_share_the_gradient_max_with_a_dim_gives_it_to_the_index(reduce,
                                                                          torch_reference):
    values = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [1.0, 1.0, 3.0]], dtype=np.float32)
    axes = [None, 0, 1]

    def with_dim(lib, axis):
        return lambda t: getattr(lib, reduce)(t, axis).values

    expected = torch_reference(f"ties_{reduce}", lambda torch: {
        **{f"a{reduce}:axis={axis}": gradients_of_sum(
            torch, lambda t: getattr(t, "a" + reduce)(torch_dims(axis, t)), values)[0]
           for axis in axes},
        **{f"{reduce}:axis={axis}": gradients_of_sum(torch, with_dim(torch, axis), values)[0]
           for axis in axes[1:]},
        **{f"{reduce}:indices:axis={axis}": getattr(torch.tensor(values), reduce)(axis).indices
           for axis in axes[1:]}})
    for axis in axes:
        shared, = gradients_of_sum(mg, lambda x: getattr(x, reduce)(axis=axis) if axis is None
                                   else getattr(mg, "a" + reduce)(x, axis), values)
        np.testing.assert_allclose(shared, expected[f"a{reduce}:axis={axis}"], rtol=1e-6)
    for axis in axes[1:]:
        selected, = gradients_of_sum(mg, with_dim(mg, axis), values)
        np.testing.assert_array_equal(selected, expected[f"{reduce}:axis={axis}"])
        indices = getattr(mg, reduce)(mg.tensor(values), axis).indices
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(indices.numpy(), expected[f"{reduce}:indices:axis={axis}"])


TIED = np.array([[1, 2, 2, 1, 3], [5, 5, 4, 4, 4], [3, 1, 3, 1, 0], [2, 2, 2, 2, 2]])


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_mode_cummax_cummin_median_pick_as_torch_on_ties(dtype, torch_reference):
    values = (TIED % 2 if dtype == np.bool_ else TIED).astype(dtype)
    ops = [("mode", 1), ("mode", 0), ("mode", -1), ("cummax", 1), ("cummin", 1),
           ("cummax", 0), ("cummin", -2)] + ([("median", 1), ("median", 0)]
                                             if dtype != np.bool_ else [])
    expected = torch_reference(f"pick_ties/{np.dtype(dtype).name}", lambda torch: {
        f"{op}:{dim}:{part}": getattr(getattr(torch.tensor(values), op)(dim), part)
        for op, dim in ops for part in ("values", "indices")})
    for op, dim in ops:
        out = getattr(mg, op)(mg.tensor(values), dim)
        for part in ("values", "indices"):
            want = expected[f"{op}:{dim}:{part}"]
            got = getattr(out, part).numpy()
            assert got.dtype == want.dtype, f"{op}({dim}).{part}: {got.dtype} vs {want.dtype}"
            np.testing.assert_array_equal(got, want, err_msg=f"{op}({dim}).{part}")


def test_mode_and_cummax_gradients_go_to_the_returned_indices(torch_reference):
    values = TIED.astype(np.float64)
    ops = {"mode": lambda lib, t: lib.mode(t, 1).values,
           "cummax": lambda lib, t: lib.cummax(t, 1).values,
           "median_dim": lambda lib, t: lib.median(t, 0).values,
           "median": lambda lib, t: lib.median(t)}
    expected = torch_reference("tie_gradients", lambda torch: {
        name: gradients_of_sum(torch, lambda t: op(torch, t), values)[0]
        for name, op in ops.items()})
    for name, op in ops.items():
        grad, = gradients_of_sum(mg, lambda t: op(mg, t), values)
        np.testing.assert_allclose(grad, expected[name], err_msg=name)


def test_median_is_the_lower_median_and_its_indices_match_torch(torch_reference):
    values = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    expected = torch_reference("median", lambda torch: {
        "all": torch.tensor(values).median(),
        **{f"{dim}:{part}": getattr(torch.tensor(values).median(dim, keepdim=True), part)
           for dim in (0, 1, -1) for part in ("values", "indices")}})
    assert mg.median(mg.tensor(values)).item() == expected["all"]
    assert mg.median(mg.tensor(values)).item() == np.sort(values, axis=None)[11]  # of 24
    for dim in (0, 1, -1):
        out = mg.median(mg.tensor(values), dim, keepdim=True)
        np.testing.assert_array_equal(out.values.numpy(), expected[f"{dim}:values"])
        np.testing.assert_array_equal(out.indices.numpy(), expected[f"{dim}:indices"])


def test_var_and_std_edges_match_torch(torch_reference):
    """correction >= n: inf, or NaN where the deviations are 0; nothing: NaN; never -0."""
    inputs = {"two": [1.0, 2.0], "equal": [2.0, 2.0], "one": [5.0], "none": []}
    corrections = [0, 1, 2, 3, 0.5]

    def compute(torch):
        with warnings.catch_warnings():  # "degrees of freedom is <= 0"
            warnings.simplefilter("ignore")
            return {f"{op}:{name}:{c}": getattr(torch.tensor(x, dtype=torch.float64), op)(
                correction=c) for op in ("var", "std") for name, x in inputs.items()
                for c in corrections}

    expected = torch_reference("var_std_edges", compute)
    for key, want in expected.items():
        op, name, c = key.split(":")
        got = getattr(mg, op)(mg.tensor(inputs[name], dtype=np.float64),
                              correction=float(c)).numpy()
        np.testing.assert_array_equal(got, want, err_msg=key)
        assert not (got == 0 and np.signbit(got)), f"{key} is -0"


def test_empty_and_nan_reductions_match_torch(torch_reference):
    empty, nans = np.zeros((0, 3), np.float32), np.full((2, 2), np.nan, np.float32)
    calls = {
        "sum": lambda lib, x: lib.sum(x(empty)), "prod": lambda lib, x: lib.prod(x(empty)),
        "mean": lambda lib, x: lib.mean(x(empty)), "mean0": lambda lib, x: lib.mean(x(empty), 0),
        "median": lambda lib, x: lib.median(x(empty)), "norm": lambda lib, x: lib.norm(x(empty)),
        "norm1": lambda lib, x: lib.norm(x(empty), 1, 0), "cumsum": lambda lib, x: lib.cumsum(
            x(empty), 0), "any": lambda lib, x: lib.any(x(empty)),
        "all": lambda lib, x: lib.all(x(empty)), "nanmean": lambda lib, x: lib.nanmean(x(nans)),
        "nansum": lambda lib, x: lib.nansum(x(nans), 1), "amax1": lambda lib, x: lib.amax(
            x(empty), 1), "max1": lambda lib, x: lib.max(x(empty), 1).values,
        "count_nonzero": lambda lib, x: lib.count_nonzero(x(empty), 0)}
    expected = torch_reference("empty_and_nan", lambda torch: {
        name: call(torch, torch.tensor) for name, call in calls.items()})
    for name, call in calls.items():
        got = call(mg, mg.tensor)
        assert got.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(got.numpy(), expected[name], err_msg=name)


def test_gradients_at_the_kinks_match_torch(torch_reference):
    """The 2-norm of zeros and the std of equal values have gradient 0 (not NaN); the inf-norm
    shares its gradient between ties; the prod of several zeros has gradient 0."""
    cases = {"norm2": (lambda lib, t: lib.norm(t), np.zeros((2, 3))),
             "norm2_dim": (lambda lib, t: lib.norm(t, 2, 1), np.array([[0.0, 0.0], [3.0, 4.0]])),
             "norm_inf": (lambda lib, t: lib.norm(t, math.inf), np.array([1.0, -3.0, 3.0])),
             "norm_half": (lambda lib, t: lib.norm(t, 0.5), np.array([0.0, 1.0, -4.0])),
             "std": (lambda lib, t: lib.std(t, 1), np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])),
             "prod": (lambda lib, t: lib.prod(t, 1), np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 2.0]])),
             "cumprod": (lambda lib, t: lib.cumprod(t, 0), np.array([2.0, 0.0, 3.0, 0.0, 4.0]))}
    expected = torch_reference("kinks", lambda torch: {
        name: gradients_of_sum(torch, lambda t: op(torch, t), x)[0]
        for name, (op, x) in cases.items()})
    for name, (op, x) in cases.items():
        grad, = gradients_of_sum(mg, lambda t: op(mg, t), x)
        np.testing.assert_allclose(grad, expected[name], rtol=1e-12, err_msg=name)


INTEGERS = {"bool": np.array([[True, False, True], [False, False, True]]),
            "uint8": np.array([[0, 3, 250], [7, 0, 9]], np.uint8),
            "int32": np.array([[-2, 0, 5], [7, 1, -3]], np.int32),
            "int64": np.array([[-2, 0, 5], [7, 1, -3]], np.int64),
            "float32": np.array([[0.5, 0.0, -2.0], [0.0, 0.0, 1.5]], np.float32)}
NO_GRADIENT_CALLS = {
    "sum": lambda lib, t: lib.sum(t), "sum_dim": lambda lib, t: lib.sum(t, 0),
    "prod": lambda lib, t: lib.prod(t, 1), "cumsum": lambda lib, t: lib.cumsum(t, 1),
    "cumprod": lambda lib, t: lib.cumprod(t, 0), "nansum": lambda lib, t: lib.nansum(t),
    "any": lambda lib, t: lib.any(t), "all": lambda lib, t: lib.all(t),
    "any_dim": lambda lib, t: lib.any(t, 1, keepdim=True), "all_dims": lambda lib, t: lib.all(
        t, (0, 1)), "count_nonzero": lambda lib, t: lib.count_nonzero(t),
    "count_nonzero_dim": lambda lib, t: lib.count_nonzero(t, -1),
    "amax": lambda lib, t: lib.amax(t, 0), "max_values": lambda lib, t: lib.max(t, 1).values,
    "max_indices": lambda lib, t: lib.max(t, 1).indices,
    "min_indices": lambda lib, t: lib.min(t, 0).indices,
    "argmin": lambda lib, t: lib.argmin(t.float(), 1),
    "logsumexp": lambda lib, t: lib.logsumexp(t, 1), "cummin_values": lambda lib, t: lib.cummin(
        t, 1).values}


@pytest.mark.parametrize("dtype", sorted(INTEGERS))
def test_results_and_dtypes_of_bool_and_integer_tensors_match_torch(dtype, torch_reference):
    values = INTEGERS[dtype]
    expected = torch_reference(f"dtypes/{dtype}", lambda torch: {
        name: call(torch, torch.tensor(values)) for name, call in NO_GRADIENT_CALLS.items()})
    for name, call in NO_GRADIENT_CALLS.items():
        got = call(mg, mg.tensor(values))
        assert got.dtype == expected[name].dtype, f"{name}: {got.dtype} vs {expected[name].dtype}"
        assert not got.requires_grad
        if got.dtype.kind == "f":  # logsumexp: float32 rounding
            np.testing.assert_allclose(got.numpy(), expected[name], rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got.numpy(), expected[name], err_msg=name)


def test_var_takes_pytorchs_argument_forms():
    x = mg.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    biased = mg.var(x, 1, correction=0).numpy()
    np.testing.assert_allclose(biased, np.var(x.numpy(), axis=1), rtol=1e-12)
    for same in [mg.var(x, 1, False), mg.var(x, 1, 0), mg.var(x, 1, unbiased=False),
                 x.var(axis=1, correction=0)]:  # 0: the older positional correction
        np.testing.assert_array_equal(same.numpy(), biased)
    assert mg.var(x, False).item() == pytest.approx(np.var(x.numpy()), rel=1e-12)
    assert mg.std(x, True).item() == pytest.approx(np.std(x.numpy(), ddof=1), rel=1e-12)
    assert mg.var(x, 1, True, True).shape == (3, 1)
    with pytest.raises(TypeError, match="var: got both unbiased and correction"):
        mg.var(x, unbiased=False, correction=0)
    with pytest.raises(TypeError, match="std: unbiased must be a bool, got 2; .*correction=2"):
        mg.std(x, 0, 2)


def test_max_with_a_tensor_is_maximum_and_max_with_a_dim_names_its_parts():
    a, b = mg.tensor([1.0, 5.0, -2.0]), mg.tensor([3.0, 0.0, -1.0])
    np.testing.assert_array_equal(mg.max(a, b).numpy(), [3.0, 5.0, -1.0])
    np.testing.assert_array_equal(a.min(b).numpy(), [1.0, 0.0, -2.0])
    scores = mg.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    _, predicted = scores.max(1)
    np.testing.assert_array_equal(predicted.numpy(), [1, 0])
    assert scores.max(dim=1).indices.dtype == np.int64
    minmax = mg.aminmax(scores, dim=0)
    np.testing.assert_array_equal(minmax.min.numpy(), np.float32([0.1, 0.3, 0.2]))
    np.testing.assert_array_equal(minmax.max.numpy(), np.float32([0.5, 0.7, 0.2]))


# --------------------------------------------------------------------------- NumPy sweep
def numpy_axis(axis, shape):
    """NumPy names no axis of a 0-d array: PyTorch's dim 0 / -1 of it is every axis there."""
    return None if not shape else axis


SWEEP = {  # name: (minigrad op, NumPy op or None, kind of dim, keepdim?, float inputs only?)
    "sum": (mg.sum, np.sum, "tuple", True, False),
    "prod": (mg.prod, np.prod, "int", True, False),
    "mean": (mg.mean, np.mean, "tuple", True, True),
    "amax": (mg.amax, np.amax, "tuple", True, False),
    "amin": (mg.amin, np.amin, "tuple", True, False),
    "any": (mg.any, np.any, "tuple", True, False),
    "all": (mg.all, np.all, "tuple", True, False),
    "nansum": (mg.nansum, np.nansum, "tuple", True, False),
    "count_nonzero": (mg.count_nonzero, None, "tuple", False, False),
    "var": (mg.var, None, "tuple", True, True),
    "std": (mg.std, None, "tuple", True, True),
    "norm": (lambda x, **kw: mg.norm(x, 2, **kw), None, "tuple", True, True),
    "logsumexp": (mg.logsumexp, None, "tuple", True, False),
    "cumsum": (mg.cumsum, np.cumsum, "required", False, False),
    "cumprod": (mg.cumprod, np.cumprod, "required", False, False),
    "median": (lambda x, **kw: mg.median(x, **kw).values, None, "required", True, False),
    "mode": (lambda x, **kw: mg.mode(x, **kw).values, None, "required", True, False),
    "cummax": (lambda x, **kw: mg.cummax(x, **kw).values, None, "required", False, False),
}
IDENTITY_FREE = {"amax", "amin", "median", "mode"}  # no value over a dim of size 0


@st.composite
def sweep_call(draw, kind):
    """A shape (size-0 sides and 0-d included), a dtype, and a dim of the ``kind`` the op
    takes ("tuple": None, an int or a tuple; "int": None or an int; "required": an int)."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    ndim, bound = len(shape), len(shape) or 1
    dims = [] if kind == "required" else [st.none()]
    dims.append(st.integers(-bound, bound - 1))
    if kind == "tuple" and ndim:
        dims.append(hnp.valid_tuple_axes(ndim, min_size=1))  # negative ones included
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int32, np.bool_]))
    return shape, dtype, draw(st.one_of(dims)), draw(st.booleans())


def reduces_over_nothing(shape, dim):
    dims = range(len(shape)) if dim is None else [dim] if isinstance(dim, int) else dim
    return any(shape[d] == 0 for d in dims) if shape else False


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_both_spellings_agree_and_match_numpy(name):
    op, numpy_op, kind, has_keepdim, floats_only = SWEEP[name]

    @EXAMPLES
    @given(drawn=sweep_call(kind), seed=st.integers(0, 2**31))
    def check(drawn, seed):
        shape, dtype, dim, keepdim = drawn
        values = np.random.default_rng(seed).integers(-2, 3, size=shape).astype(dtype)
        x = mg.tensor(values)
        torch_style, numpy_style = {"dim": dim}, {"axis": dim}
        if has_keepdim:
            torch_style["keepdim"] = numpy_style["keepdims"] = keepdim
        if floats_only and dtype not in (np.float32, np.float64):
            with pytest.raises(TypeError, match="expected a floating-point tensor, got dtype"):
                op(x, **torch_style)
            return
        if name in IDENTITY_FREE and reduces_over_nothing(shape, dim):
            with pytest.raises((IndexError, RuntimeError), match=r"of size 0 of a tensor of shape"):
                op(x, **torch_style)
            return
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # means and variances of nothing
            warnings.simplefilter("ignore", RuntimeWarning)
            ours, theirs = op(x, **torch_style), op(x, **numpy_style)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            if numpy_op is None:
                return
            expected = np.asarray(numpy_op(values, **{**numpy_style,
                                                      "axis": numpy_axis(dim, shape)}))
        if not shape and kind == "required":  # a 0-d tensor's one-element scan: shape ()
            expected = expected.reshape(())
        tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
        assert ours.shape == expected.shape, f"{name}: {ours.shape} vs NumPy's {expected.shape}"
        assert ours.dtype == expected.dtype, f"{name}: {ours.dtype} vs NumPy's {expected.dtype}"
        np.testing.assert_allclose(ours.numpy(), expected, **tol)

    check()


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


def test_logsumexp_does_not_overflow():
    x = mg.tensor([1000.0, 1000.0], requires_grad=True)
    out = x.logsumexp()
    out.backward()
    assert out.item() == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5])


# --------------------------------------------------------------------------- bad input
DIM_OPS = {  # name: call with a dim given by keyword (dim= or axis=)
    "sum": mg.sum, "nansum": mg.nansum, "mean": mg.mean, "nanmean": mg.nanmean,
    "var": mg.var, "std": mg.std, "var_mean": mg.var_mean, "std_mean": mg.std_mean,
    "amax": mg.amax, "amin": mg.amin, "aminmax": mg.aminmax, "max": mg.max, "min": mg.min,
    "median": mg.median, "mode": mg.mode, "prod": mg.prod, "norm": mg.norm,
    "logsumexp": mg.logsumexp, "cumsum": mg.cumsum, "cumprod": mg.cumprod,
    "cummax": mg.cummax, "cummin": mg.cummin, "any": mg.any, "all": mg.all,
    "count_nonzero": mg.count_nonzero, "argmax": mg.argmax, "argmin": mg.argmin,
}


@pytest.mark.parametrize("name", sorted(DIM_OPS))
def test_a_wrong_dim_names_the_op_the_dim_and_the_shape(name):
    with pytest.raises(IndexError, match=rf"{name}: dim -3 is out of range for a tensor of "
                                         rf"shape \(2, 3\)"):
        DIM_OPS[name](mg.ones(2, 3), dim=-3)


@pytest.mark.parametrize("name", sorted(DIM_OPS))
def test_dim_and_axis_together_are_refused(name):
    with pytest.raises(TypeError, match=rf"{name}: got both dim and axis"):
        DIM_OPS[name](mg.ones(2, 3), dim=0, axis=0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: mg.max(mg.ones(2, 3), (0, 1)), TypeError, r"max: dim must be one int .* amax"),
    (lambda: mg.min(mg.ones(2, 3), dim=(0,)), TypeError, r"min: dim must be one int .* amin"),
    (lambda: mg.prod(mg.ones(2, 3), (0, 1)), TypeError, r"prod: dim must be an int"),
    (lambda: mg.mode(mg.ones(2, 3), (0, 1)), TypeError, r"mode: dim must be an int"),
    (lambda: mg.max(mg.ones(2, 0), 1), IndexError,
     r"max: cannot reduce over dim 1 of size 0 of a tensor of shape \(2, 0\)"),
    (lambda: mg.max(mg.ones(2, 0)), RuntimeError, r"max: .* shape \(2, 0\)"),
    (lambda: mg.amin(mg.ones(0, 2), (0, 1)), IndexError, r"amin: .* dim 0 of size 0"),
    (lambda: mg.median(mg.ones(3, 0), -1), IndexError, r"median: .* dim 1 of size 0"),
    (lambda: mg.mode(mg.ones(3, 0)), IndexError, r"mode: .* dim 1 of size 0"),
    (lambda: mg.argmax(mg.ones(0)), RuntimeError, r"argmax: .* shape \(0,\)"),
    (lambda: mg.norm(mg.ones(0, 2), math.inf, 0), RuntimeError, r"norm\(p=inf\): .* size 0"),
    (lambda: mg.norm(mg.ones(2), "nuc"), ValueError, r"norm: p='nuc' is not supported"),
    (lambda: mg.norm(mg.ones(2), -1), ValueError, r"norm: p=-1 is not supported"),
    (lambda: mg.norm(mg.ones(2, 2, 2), "fro", (0, 1, 2)), ValueError,
     r"norm: the Frobenius norm is over at most two dims"),
    (lambda: mg.cumsum(mg.ones(2)), TypeError, r"dim"),
    (lambda: mg.count_nonzero(mg.ones(2), 0, keepdim=True), TypeError, r"keepdim"),
] + [(lambda op=op: getattr(mg, op)(mg.arange(3)), TypeError,
      rf"{op}: expected a floating-point tensor, got dtype int64")
     for op in ["mean", "nanmean", "var", "std", "norm", "var_mean"]])
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name, values, expected", [
    ("mean", np.full(10000, 10.0), 10.0), ("var", np.full(10000, 10.0), 0.0),
    ("std", np.full(10000, 10.0), 0.0), ("norm", np.full(4, 300.0), 600.0)])
def test_float16_statistics_accumulate_in_float32_as_in_pytorch(name, values, expected):
    x = mg.tensor(values.astype(np.float16), requires_grad=True)
    out = getattr(mg, name)(x)
    assert out.dtype == np.float16 and out.item() == expected
    out.backward()
    assert x.grad.dtype == np.float16 and np.isfinite(x.grad.numpy()).all()


def test_median_of_a_slice_holding_nan_is_nan_as_in_pytorch(torch_reference):
    values = np.array([[3.0, 1.0, 2.0, 4.0], [np.nan, 0.0, 5.0, np.nan]])

    def compute(torch):
        x = torch.tensor(values, requires_grad=True)
        whole = x.median()
        whole.backward()
        grad_whole = x.grad.clone()
        x.grad = None
        along = x.median(1)
        along.values.sum().backward()
        return {"whole": whole, "grad_whole": grad_whole, "values": along.values,
                "indices": along.indices, "grad_along": x.grad}

    expected = torch_reference("median_nan", compute)
    x = mg.tensor(values, requires_grad=True)
    whole = x.median()
    whole.backward()
    np.testing.assert_array_equal(whole.numpy(), expected["whole"])
    np.testing.assert_array_equal(x.grad.numpy(), expected["grad_whole"])
    x.grad = None
    along = x.median(1)
    along.values.sum().backward()
    np.testing.assert_array_equal(along.values.numpy(), expected["values"])
    np.testing.assert_array_equal(along.indices.numpy(), expected["indices"])
    np.testing.assert_array_equal(x.grad.numpy(), expected["grad_along"])
