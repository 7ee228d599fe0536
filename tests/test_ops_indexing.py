"""Indexing ops: gather/scatter/index_select/take/masked ops and the values of sort/topk by
gradcheck and PyTorch parity; indices (nonzero, argsort, sort/topk indices, one_hot,
searchsorted) by value and dtype against PyTorch; and the error messages."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import OpCase, import_torch, op_tests, shapes


def long(index):
    """An index array as a PyTorch int64 tensor (for the torch_fn side of a case)."""
    return import_torch().as_tensor(np.asarray(index, dtype=np.int64))


def index_rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="index seed"))


def shape_and_dim(data, min_dims=1):
    shape = data.draw(shapes(min_dims=min_dims), label="shape")
    return shape, data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")


def index_shape(data, shape, dim, at_dim_max=4):
    """A shape no larger than ``shape`` apart from ``dim`` (1..at_dim_max there)."""
    dim %= len(shape)
    return tuple(data.draw(st.integers(1, at_dim_max if d == dim else n), label="index size")
                 for d, n in enumerate(shape))


def distinct_along(rng, shape, dim, size):
    """An int64 index of ``shape`` whose values along ``dim`` are distinct, in [0, size)."""
    dim %= len(shape)
    full = shape[:dim] + (size,) + shape[dim + 1:]
    order = np.argsort(rng.random(full), axis=dim)
    return order[tuple(slice(0, n) for n in shape)].astype(np.int64)


def gather_case(data):
    shape, dim = shape_and_dim(data)
    index = index_rng(data).integers(0, shape[dim], index_shape(data, shape, dim))
    return [shape], {"dim": dim, "index": index}


def scatter_case(data, with_src=True):
    shape, dim = shape_and_dim(data)
    at = index_shape(data, shape, dim, at_dim_max=shape[dim])
    index = distinct_along(index_rng(data), at, dim, shape[dim])
    # src no larger than the index: PyTorch's backward fails for a larger one
    return ([shape, at] if with_src else [shape]), {"dim": dim, "index": index}


def scatter_add_case(data):
    shape, dim = shape_and_dim(data)
    at = index_shape(data, shape, dim)
    return [shape, at], {"dim": dim, "index": index_rng(data).integers(0, shape[dim], at)}



def index_select_case(data):
    shape, dim = shape_and_dim(data)
    count = data.draw(st.integers(0, 5), label="count")
    return [shape], {"dim": dim, "index": index_rng(data).integers(0, shape[dim], count)}


def index_add_case(data):
    shape, dim = shape_and_dim(data)
    count = data.draw(st.integers(0, 5), label="count")
    source = shape[:dim % len(shape)] + (count,) + shape[dim % len(shape) + 1:]
    return [shape, source], {"dim": dim, "alpha": data.draw(st.sampled_from([1, -0.5])),
                             "index": index_rng(data).integers(0, shape[dim], count)}


def take_along_dim_case(data):
    shape, dim = shape_and_dim(data)
    # indices of size 1 at some other dims broadcast against the input; negatives count back
    at = tuple(data.draw(st.integers(1, 3)) if d == dim % len(shape)
               else data.draw(st.sampled_from([1, n])) for d, n in enumerate(shape))
    return [shape], {"dim": dim, "indices": index_rng(data).integers(-shape[dim], shape[dim], at)}


def take_case(data):
    shape = data.draw(shapes(), label="shape")
    size = int(np.prod(shape))
    at = data.draw(shapes(max_dims=2), label="index shape")
    return [shape], {"index": index_rng(data).integers(-size, size, at)}


def masked_case(data):
    a, mask = data.draw(st.sampled_from([((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)),
                                         ((), (2,)), ((2, 1), (1, 4))]), label="shapes")
    return [a, mask], {}


def sorted_case(data):
    shape, dim = shape_and_dim(data)
    return [shape], {"dim": dim, "descending": data.draw(st.booleans(), label="descending")}


def topk_case(data):
    shape, dim = shape_and_dim(data)
    return [shape], {"dim": dim, "k": data.draw(st.integers(0, shape[dim])),
                     "largest": data.draw(st.booleans(), label="largest")}


def kthvalue_case(data):
    shape, dim = shape_and_dim(data)
    return [shape], {"dim": dim, "k": data.draw(st.integers(1, shape[dim])),
                     "keepdim": data.draw(st.booleans(), label="keepdim")}


I64 = np.int64
MASK = {1: bool}  # input 1 of the masked ops is a bool mask, drawn at random


def arr(values):
    return np.array(values, dtype=I64)


CASES = [
    OpCase("gather", gather_case,
           lambda a, dim, index: mg.gather(a, dim, mg.tensor(index)),
           lambda a, dim, index: a.gather(dim, long(index)),
           examples=[([(3, 4)], {"dim": 0, "index": arr([[0, 2, 1, 0], [2, 2, 0, 1]])}),
                     ([(2, 3, 4)], {"dim": -1, "index": arr(np.arange(12).reshape(2, 2, 3) % 4)}),
                     ([(4,)], {"dim": 0, "index": arr([3, 3, 0, 1, 1])}),
                     ([(3, 2)], {"dim": 1, "index": arr([[1], [0]])}),
                     ([()], {"dim": 0, "index": arr(0)}),
                     ([(2, 3)], {"dim": 1, "index": np.zeros((2, 0), dtype=I64)})]),
    OpCase("scatter", scatter_case,
           lambda a, src, dim, index: mg.scatter(a, dim, mg.tensor(index), src),
           lambda a, src, dim, index: a.scatter(dim, long(index), src),
           examples=[([(3, 4), (2, 4)], {"dim": 0, "index": arr([[0, 2, 1, 0], [2, 1, 0, 1]])}),
                     ([(2, 4), (2, 2)], {"dim": -1, "index": arr([[3, 0], [1, 2]])}),
                     ([(2, 3, 2), (2, 1, 2)], {"dim": 1, "index": arr([[[0, 1]], [[2, 2]]])}),
                     ([(), ()], {"dim": 0, "index": arr(0)})]),
    OpCase("scatter_value", lambda data: scatter_case(data, with_src=False),
           lambda a, dim, index: mg.scatter(a, dim, mg.tensor(index), 1.5),
           lambda a, dim, index: a.scatter(dim, long(index), 1.5),
           examples=[([(3, 4)], {"dim": 1, "index": arr([[0, 3], [2, 1], [1, 0]])})]),
    OpCase("scatter_add", scatter_add_case,
           lambda a, src, dim, index: mg.scatter_add(a, dim, mg.tensor(index), src),
           lambda a, src, dim, index: a.scatter_add(dim, long(index), src),
           examples=[([(3, 4), (2, 4)], {"dim": 0, "index": arr([[0, 2, 1, 0], [0, 2, 0, 1]])}),
                     ([(2, 3), (2, 4)], {"dim": -1, "index": arr([[1, 1, 1, 0], [2, 0, 2, 2]])}),
                     ([(2, 3), (0, 1)], {"dim": 0, "index": np.zeros((0, 1), dtype=I64)})]),
    OpCase("index_select", index_select_case,
           lambda a, dim, index: mg.index_select(a, dim, mg.tensor(index)),
           lambda a, dim, index: a.index_select(dim, long(index)),
           examples=[([(3, 4)], {"dim": 0, "index": arr([2, 0, 2])}),
                     ([(2, 3, 4)], {"dim": -1, "index": arr([3, 1])}),
                     ([(2, 3)], {"dim": 1, "index": arr(1)}),
                     ([(2, 3)], {"dim": 0, "index": arr([])})]),
    OpCase("index_add", index_add_case,
           lambda a, source, dim, index, alpha: mg.index_add(a, dim, mg.tensor(index), source,
                                                             alpha=alpha),
           lambda a, source, dim, index, alpha: a.index_add(dim, long(index), source,
                                                            alpha=alpha),
           examples=[([(3, 2), (4, 2)], {"dim": 0, "index": arr([2, 0, 2, 2]), "alpha": 1}),
                     ([(2, 3, 2), (2, 3, 1)], {"dim": -1, "index": arr([1]), "alpha": -0.5})]),
    OpCase("take_along_dim", take_along_dim_case,
           lambda a, dim, indices: mg.take_along_dim(a, mg.tensor(indices), dim),
           lambda a, dim, indices: a.take_along_dim(long(indices), dim),
           examples=[([(3, 4)], {"dim": 1, "indices": arr([[0, -1], [3, 3], [1, 0]])}),
                     ([(2, 3, 4)], {"dim": 0, "indices": arr([[[1], [0], [-2]]])}),
                     ([(3, 4)], {"dim": None, "indices": arr([[11, 0], [5, 5]])})]),
    OpCase("take", take_case,
           lambda a, index: mg.take(a, mg.tensor(index)), lambda a, index: a.take(long(index)),
           examples=[([(3, 4)], {"index": arr([[0, 11], [-1, 5]])}),
                     ([()], {"index": arr([0, -1, 0])}), ([(5,)], {"index": arr(2)}),
                     ([(2, 2)], {"index": arr([])})]),
    OpCase("masked_fill", masked_case,
           lambda a, mask: mg.masked_fill(a, mask, -2.5),
           lambda a, mask: a.masked_fill(mask, -2.5), dtypes=MASK, no_grad_inputs=(1,),
           examples=[([(2, 3), (2, 3)], {}), ([(2, 3), (3,)], {}), ([(3,), (2, 3)], {}),
                     ([(), (2,)], {})]),
    OpCase("masked_fill_tensor_value",
           lambda data: (masked_case(data)[0] + [()], {}),
           mg.masked_fill, lambda a, mask, value: a.masked_fill(mask, value),
           dtypes=MASK, no_grad_inputs=(1,),
           examples=[([(2, 3), (2, 3), ()], {}), ([(2, 1), (1, 4), ()], {})]),
    OpCase("masked_select", masked_case, mg.masked_select,
           lambda a, mask: a.masked_select(mask), dtypes=MASK, no_grad_inputs=(1,),
           examples=[([(2, 3), (2, 3)], {}), ([(2, 3), (3,)], {}), ([(3,), (2, 3)], {}),
                     ([(), (2,)], {})]),
    OpCase("sort", sorted_case,
           lambda a, dim, descending: mg.sort(a, dim, descending).values,
           lambda a, dim, descending: a.sort(dim, descending).values,
           examples=[([(5,)], {"dim": 0, "descending": False}),
                     ([(3, 4)], {"dim": -1, "descending": True}),
                     ([(2, 3, 4)], {"dim": 1, "descending": False}),
                     ([()], {"dim": 0, "descending": True}),
                     ([(2, 0)], {"dim": 1, "descending": False})]),
    OpCase("msort", lambda data: ([data.draw(shapes(min_dims=1))], {}), mg.msort,
           lambda a: a.msort(), examples=[([(4,)], {}), ([(3, 2)], {})]),
    OpCase("topk", topk_case,
           lambda a, k, dim, largest: mg.topk(a, k, dim, largest).values,
           lambda a, k, dim, largest: a.topk(k, dim, largest).values,
           examples=[([(5,)], {"k": 2, "dim": 0, "largest": True}),
                     ([(3, 4)], {"k": 3, "dim": -1, "largest": False}),
                     ([(2, 3, 4)], {"k": 1, "dim": 1, "largest": True}),
                     ([(3,)], {"k": 0, "dim": 0, "largest": True})]),
    OpCase("kthvalue", kthvalue_case,
           lambda a, k, dim, keepdim: mg.kthvalue(a, k, dim, keepdim).values,
           lambda a, k, dim, keepdim: a.kthvalue(k, dim, keepdim).values,
           examples=[([(5,)], {"k": 2, "dim": 0, "keepdim": False}),
                     ([(3, 4)], {"k": 4, "dim": -1, "keepdim": True}),
                     ([(2, 3, 4)], {"k": 1, "dim": 1, "keepdim": False})]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


# --------------------------------------------------------------------------- integer results
TIES = np.array([[3.0, 1.0, 3.0, 2.0, 1.0], [0.0, 0.0, -1.0, 0.0, 5.0]], dtype=np.float32)
DISTINCT = np.random.default_rng(3).permutation(24).reshape(2, 3, 4).astype(np.float32)


def assert_same(ours, expected, name):
    assert ours.dtype == expected.dtype, f"{name}: {ours.dtype} vs {expected.dtype}"
    np.testing.assert_array_equal(ours.numpy(), expected, err_msg=name)


def test_sort_and_argsort_indices_match_torch_stable(torch_reference):
    expected = torch_reference("sort_indices", lambda torch: {
        f"{d}_{desc}": torch.sort(torch.tensor(TIES), dim=d, descending=desc,
                                  stable=True).indices
        for d in (0, -1) for desc in (False, True)})
    for d in (0, -1):
        for desc in (False, True):
            name = f"{d}_{desc}"
            assert_same(mg.sort(mg.tensor(TIES), d, desc, stable=True).indices, expected[name],
                        name)
            assert_same(mg.argsort(mg.tensor(TIES), d, desc, stable=True), expected[name], name)


def test_sort_of_integers_and_bools_keeps_their_dtype(torch_reference):
    ints = np.array([[4, -1, 7], [0, 0, -3]], dtype=np.int64)
    bools = np.array([True, False, True, False])
    expected = torch_reference("sort_dtypes", lambda torch: {
        "ints": torch.sort(torch.tensor(ints), descending=True, stable=True).values,
        "ints_indices": torch.sort(torch.tensor(ints), descending=True, stable=True).indices,
        "bools": torch.sort(torch.tensor(bools), stable=True).values,
        "bools_indices": torch.sort(torch.tensor(bools), stable=True).indices})
    values, indices = mg.sort(mg.tensor(ints), descending=True)
    assert_same(values, expected["ints"], "ints")
    assert_same(indices, expected["ints_indices"], "ints_indices")
    values, indices = mg.sort(mg.tensor(bools))
    assert_same(values, expected["bools"], "bools")
    assert_same(indices, expected["bools_indices"], "bools_indices")


@pytest.mark.parametrize("k, dim, largest", [(2, -1, True), (3, 1, False), (1, 0, True)])
def test_topk_and_kthvalue_indices_match_torch(k, dim, largest, torch_reference):
    expected = torch_reference(f"topk_indices/{k}/{dim}/{largest}", lambda torch: {
        "topk": torch.topk(torch.tensor(DISTINCT), k, dim, largest).indices,
        "kthvalue": torch.kthvalue(torch.tensor(DISTINCT), k, dim).indices,
        "kthvalue_keepdim": torch.kthvalue(torch.tensor(DISTINCT), k, dim, True).indices})
    x = mg.tensor(DISTINCT)
    assert_same(mg.topk(x, k, dim, largest).indices, expected["topk"], "topk")
    assert_same(mg.kthvalue(x, k, dim).indices, expected["kthvalue"], "kthvalue")
    assert_same(mg.kthvalue(x, k, dim, keepdim=True).indices, expected["kthvalue_keepdim"],
                "kthvalue_keepdim")


NONZERO_INPUTS = {
    "matrix": np.array([[0.0, 1.5, 0.0], [-2.0, 0.0, 3.0]]),
    "ints_3d": np.array([[[0, 1], [2, 0]], [[0, 0], [0, 7]]]),
    "bools": np.array([True, False, True]),
    "scalar": np.array(4.0),
    "zero_scalar": np.array(0),
    "empty": np.zeros((0, 3)),
}


@pytest.mark.parametrize("name", NONZERO_INPUTS)
def test_nonzero_and_argwhere_match_torch(name, torch_reference):
    values = NONZERO_INPUTS[name]
    expected = torch_reference(f"nonzero/{name}", lambda torch: {
        "rows": torch.nonzero(torch.tensor(values)),
        **{f"column{d}": column for d, column in
           enumerate(torch.nonzero(torch.tensor(values), as_tuple=True))}})
    assert_same(mg.nonzero(mg.tensor(values)), expected["rows"], "rows")
    assert_same(mg.argwhere(mg.tensor(values)), expected["rows"], "argwhere")
    columns = mg.nonzero(mg.tensor(values), as_tuple=True)
    assert len(columns) == sum(key.startswith("column") for key in expected)
    for d, column in enumerate(columns):
        assert_same(column, expected[f"column{d}"], f"column{d}")


ONE_HOT_INPUTS = {
    "vector": (np.array([0, 2, 1, 2]), -1),
    "matrix_more_classes": (np.array([[1, 0], [3, 3]]), 5),
    "scalar": (np.array(1), 3),
    "empty": (np.zeros((0,), dtype=np.int64), 4),
}


@pytest.mark.parametrize("name", ONE_HOT_INPUTS)
def test_one_hot_matches_torch(name, torch_reference):
    classes, num_classes = ONE_HOT_INPUTS[name]
    expected = torch_reference(f"one_hot/{name}", lambda torch: {
        "out": torch.nn.functional.one_hot(torch.tensor(classes), num_classes)})
    assert_same(mg.one_hot(mg.tensor(classes), num_classes), expected["out"], name)


def test_searchsorted_and_bucketize_match_torch(torch_reference):
    boundaries = np.array([-1.0, 0.0, 0.0, 2.5])
    rows = np.array([[0.0, 1.0, 2.0], [-3.0, 5.0, 6.0]])
    values = np.array([[-2.0, 0.0, 1.0], [2.5, 9.0, 0.0]])
    expected = torch_reference("searchsorted", lambda torch: {
        "left": torch.searchsorted(torch.tensor(boundaries), torch.tensor(values)),
        "right": torch.searchsorted(torch.tensor(boundaries), torch.tensor(values), right=True),
        "rows": torch.searchsorted(torch.tensor(rows), torch.tensor(values), side="right"),
        "int32": torch.searchsorted(torch.tensor(boundaries), torch.tensor(values),
                                    out_int32=True),
        "bucketize": torch.bucketize(torch.tensor(values), torch.tensor(boundaries)),
        "bucketize_right": torch.bucketize(torch.tensor(values), torch.tensor(boundaries),
                                           right=True)})
    b, r, v = mg.tensor(boundaries), mg.tensor(rows), mg.tensor(values)
    assert_same(mg.searchsorted(b, v), expected["left"], "left")
    assert_same(mg.searchsorted(b, v, right=True), expected["right"], "right")
    assert_same(mg.searchsorted(r, v, side="right"), expected["rows"], "rows")
    assert_same(mg.searchsorted(b, v, out_int32=True), expected["int32"], "int32")
    assert_same(mg.bucketize(v, b), expected["bucketize"], "bucketize")
    assert_same(mg.bucketize(v, b, right=True), expected["bucketize_right"], "bucketize_right")


def test_masked_fill_of_an_integer_tensor_keeps_its_dtype(torch_reference):
    values, mask = np.arange(6).reshape(2, 3), np.array([True, False, True])
    expected = torch_reference("masked_fill_ints", lambda torch: {
        "out": torch.tensor(values).masked_fill(torch.tensor(mask), 2.7)})
    assert_same(mg.masked_fill(mg.tensor(values), mg.tensor(mask), 2.7), expected["out"], "out")


# --------------------------------------------------------------------------- gradients, misc
def test_gather_with_repeated_indices_adds_the_gradients():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mg.gather(x, 0, mg.tensor([0, 0, 2, 0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_scatter_sends_no_gradient_to_overwritten_positions():
    a = mg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    src = mg.tensor([[10.0, 20.0]], requires_grad=True)
    out = mg.scatter(a, 1, mg.tensor([[2, 0]]), src)
    np.testing.assert_array_equal(out.numpy(), [[20.0, 2.0, 10.0]])
    (out * mg.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[0.0, 2.0, 0.0]])
    np.testing.assert_array_equal(src.grad.numpy(), [[3.0, 1.0]])


def test_scatter_from_a_larger_src_uses_its_leading_corner():
    """PyTorch computes this forward but fails in its backward; the gradient of the unused
    part of src is 0."""
    a, src = mg.zeros(2, 3, requires_grad=True), mg.tensor([[1.0, 2.0], [3.0, 4.0]],
                                                           requires_grad=True)
    out = mg.scatter(a, 1, mg.tensor([[2], [0]]), src)
    np.testing.assert_array_equal(out.numpy(), [[0.0, 0.0, 1.0], [3.0, 0.0, 0.0]])
    out.sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(a.grad.numpy(), [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])


def test_int32_indices_are_accepted_where_torch_accepts_them():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    index = mg.tensor(np.array([[1, 0]], dtype=np.int32))
    np.testing.assert_array_equal(mg.gather(x, 0, index).numpy(), [[3.0, 2.0]])
    np.testing.assert_array_equal(mg.index_select(x, 1, mg.tensor(np.array([1], np.int32)))
                                  .numpy(), [[2.0], [4.0]])
    with pytest.raises(TypeError, match="take: index must be an int64 tensor, got dtype int32"):
        mg.take(x, index)


def test_dim_spellings_and_dims_out_of_range():
    x = mg.tensor(DISTINCT)
    np.testing.assert_array_equal(mg.sort(x, axis=1).values.numpy(), np.sort(DISTINCT, axis=1))
    with pytest.raises(IndexError, match=r"gather: dim 3 is out of range for a tensor of shape "
                                         r"\(2, 3, 4\)"):
        mg.gather(x, 3, mg.zeros(1, 1, 1, dtype=np.int64))
    with pytest.raises(IndexError, match=r"sort: dim -4 is out of range"):
        mg.sort(x, -4)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: mg.gather(x, 0, mg.tensor([[0.0]])), TypeError,
     "gather: index must be an int64 or int32 tensor, got dtype float32"),
    (lambda x: mg.gather(x, 0, mg.tensor([0])), ValueError,
     r"gather: index of shape \(1,\) must have as many dims as the input of shape \(2, 3\)"),
    (lambda x: mg.gather(x, 0, mg.tensor([[0, 0, 0, 0]])), ValueError,
     r"gather: index of shape \(1, 4\) must be no larger than the input of shape \(2, 3\) "
     r"apart from dim 0"),
    (lambda x: mg.gather(x, 1, mg.tensor([[3]])), IndexError,
     "gather: index 3 is out of bounds for dim 1 with size 3"),
    (lambda x: mg.gather(x, 1, mg.tensor([[-1]])), IndexError,
     "gather: index -1 is out of bounds for dim 1 with size 3"),
    (lambda x: mg.scatter(x, 1, mg.tensor([[0, 1]]), mg.ones(1, 1)), ValueError,
     r"scatter: index of shape \(1, 2\) must be no larger than src of shape \(1, 1\)"),
    (lambda x: mg.scatter(x, 1, mg.tensor([[0]]), mg.ones(1, 1, dtype=np.float64)), TypeError,
     "scatter: src has dtype float64 but the input has dtype float32"),
    (lambda x: mg.index_select(x, 0, mg.tensor([[0]])), ValueError,
     r"index_select: index must be 1-D or 0-d, got shape \(1, 1\)"),
    (lambda x: mg.index_select(x, 0, mg.tensor([-1])), IndexError,
     "index_select: index -1 is out of bounds for dim 0 with size 2"),
    (lambda x: mg.index_add(x, 0, mg.tensor([0]), mg.ones(2, 3)), ValueError,
     r"index_add: source of shape \(2, 3\) does not fit input of shape \(2, 3\) with 1 "
     r"indices along dim 0 \(expected \(1, 3\)\)"),
    (lambda x: mg.take(x, mg.tensor([6])), IndexError,
     "take: index 6 is out of bounds for dim 0 with size 6"),
    (lambda x: mg.take_along_dim(x, mg.tensor([[0], [0], [0]]), 1), ValueError,
     r"take_along_dim: input of shape \(2, 3\) and indices of shape \(3, 1\) do not broadcast "
     r"apart from dim 1"),
    (lambda x: mg.masked_fill(x, mg.ones(2, 3), 0.0), TypeError,
     "masked_fill: mask must be a bool tensor, got dtype float32"),
    (lambda x: mg.masked_fill(x, x > 0, mg.ones(1)), ValueError,
     r"masked_fill: value must be a number or a 0-d tensor, got a tensor of shape \(1,\)"),
    (lambda x: mg.masked_select(x, mg.tensor([True, False])), ValueError,
     r"masked_select: input of shape \(2, 3\) and mask of shape \(2,\) cannot be broadcast"),
    (lambda x: mg.topk(x, 4), ValueError,
     r"topk: k=4 is out of range for dim 1 of size 3 \(a tensor of shape \(2, 3\)\)"),
    (lambda x: mg.kthvalue(x, 0, 0), ValueError, "kthvalue: k=0 is out of range for dim 0"),
    (lambda x: mg.searchsorted(mg.ones(2, 3), mg.ones(3, 1)), ValueError,
     r"searchsorted: a sorted_sequence of shape \(2, 3\) must be 1-D or match the leading dims"),
])
def test_bad_inputs_are_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call(mg.ones(2, 3))


@pytest.mark.parametrize("classes, num_classes, message", [
    ([1, -1], -1, "one_hot: class -1 is negative"),
    ([1, 3], 3, "one_hot: class 3 is too large for num_classes=3"),
    (np.zeros(0, dtype=np.int64), -1, "one_hot: cannot infer num_classes from an empty tensor"),
])
def test_one_hot_refuses_classes_out_of_range(classes, num_classes, message):
    with pytest.raises(ValueError, match=message):
        mg.one_hot(mg.tensor(classes), num_classes)


def test_one_hot_wants_int64_classes():
    with pytest.raises(TypeError, match="one_hot: index must be an int64 tensor, got dtype int32"):
        mg.one_hot(mg.tensor(np.array([1, 2], dtype=np.int32)))
