"""The two spellings of a dimension (``ops.dims``): every op and functional that takes ``dim``
also takes NumPy's ``axis`` (and ``keepdims`` for ``keepdim``), none is written with NumPy's
names, giving both is refused, and a wrong dim names the dim and the shape."""

import inspect

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F


def functions_with(parameter):
    found = []
    for module, names in ((mg.ops, mg.ops.__all__), (F, F.__all__)):
        for name in names:
            function = getattr(module, name)
            if parameter in inspect.signature(function).parameters:
                found.append(pytest.param(function, id=f"{module.__name__}.{name}"))
    return found


DIM_FUNCTIONS = functions_with("dim")
KEEPDIM_FUNCTIONS = functions_with("keepdim")


def test_the_sweep_sees_the_ops_that_take_a_dim():
    names = {param.id.rsplit(".", 1)[1] for param in DIM_FUNCTIONS}
    assert {"sum", "mean", "max", "softmax", "cat", "squeeze", "gather", "sort", "cumsum",
            "normalize", "cosine_similarity"} <= names
    assert len(DIM_FUNCTIONS) > 40 and len(KEEPDIM_FUNCTIONS) > 15


@pytest.mark.parametrize("function", DIM_FUNCTIONS)
def test_dim_and_axis_together_are_refused_naming_both(function):
    with pytest.raises(TypeError, match="got both dim and axis"):
        function(mg.ones(2, 3), dim=0, axis=0)


@pytest.mark.parametrize("function", KEEPDIM_FUNCTIONS)
def test_keepdim_and_keepdims_together_are_refused(function):
    with pytest.raises(TypeError, match="got both keepdim and keepdims"):
        function(mg.ones(2, 3), keepdim=True, keepdims=True)


def test_no_op_is_written_with_numpys_names():
    for parameter in ("axis", "keepdims"):
        assert not functions_with(parameter), f"ops with a parameter named {parameter}"


@pytest.mark.parametrize("torch_spelling, numpy_spelling", [
    (lambda x: x.sum(dim=1, keepdim=True), lambda x: x.sum(axis=1, keepdims=True)),
    (lambda x: x.mean(dim=(0, 1)), lambda x: x.mean(axis=(0, 1))),
    (lambda x: x.amax(dim=0, keepdim=True), lambda x: x.amax(axis=0, keepdims=True)),
    (lambda x: x.softmax(dim=0), lambda x: x.softmax(axis=0)),
    (lambda x: x.cumsum(dim=1), lambda x: x.cumsum(axis=1)),
    (lambda x: x.unsqueeze(dim=1), lambda x: x.unsqueeze(axis=1)),
    (lambda x: mg.cat([x, x], dim=1), lambda x: mg.cat([x, x], axis=1)),
    (lambda x: x.sort(dim=0).indices, lambda x: x.sort(axis=0).indices),
    (lambda x: x.max(dim=1).indices, lambda x: x.max(axis=1).indices),
    (lambda x: x.std(dim=1, keepdim=True), lambda x: x.std(axis=1, keepdims=True)),
    (lambda x: F.normalize(x, dim=0), lambda x: F.normalize(x, axis=0)),
    (lambda x: F.log_softmax(x, dim=1), lambda x: F.log_softmax(x, axis=1))])
def test_both_spellings_give_the_same_result(torch_spelling, numpy_spelling):
    x = mg.tensor(np.arange(12.0).reshape(3, 4) % 5)
    expected = torch_spelling(x)
    assert expected.shape != x.shape or not np.array_equal(expected.numpy(), x.numpy())
    np.testing.assert_array_equal(numpy_spelling(x).numpy(), expected.numpy())


@pytest.mark.parametrize("name, call", [
    ("sum", lambda x: x.sum(dim=2)), ("softmax", lambda x: x.softmax(dim=-3)),
    ("cumsum", lambda x: x.cumsum(5)), ("gather", lambda x: x.gather(2, mg.zeros(2, 3).long())),
    ("sort", lambda x: x.sort(dim=2)), ("cat", lambda x: mg.cat([x, x], dim=2)),
    ("squeeze", lambda x: x.squeeze(dim=(0, 7)))])
def test_a_wrong_dim_names_the_dim_and_the_shape(name, call):
    with pytest.raises(IndexError, match=rf"{name}: dim -?\d is out of range for a tensor of "
                                         r"shape \(2, 3\)"):
        call(mg.ones(2, 3))


@pytest.mark.parametrize("name", ["sum", "mean", "nansum", "nanmean", "var", "std", "amax",
                                  "count_nonzero", "norm"])
def test_an_empty_tuple_of_dims_reduces_every_dim_as_in_pytorch(name):
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(getattr(mg, name)(x, dim=()).numpy(),
                               getattr(mg, name)(x).numpy())
    assert getattr(mg, name)(x, dim=()).shape == ()


def test_shape_arguments_pytorch_refuses_are_refused():
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 1"):
        mg.zeros(2, 3, 4).flatten(2, 1)
    with pytest.raises(ValueError, match=r"expand: -1 .* cannot stand for a new leading dim"):
        mg.zeros(3).expand(-1, 3)
    with pytest.raises(TypeError, match=r"argmax: dim must be an int, got \(0, 1\)"):
        mg.argmax(mg.zeros(2, 3), dim=(0, 1))
    with pytest.raises(TypeError, match="^eq: expected a Tensor"):
        mg.eq(1, 2)
