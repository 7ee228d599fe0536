"""Shape ops: gradcheck and PyTorch parity over random shapes, and their error messages."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from helpers import OpCase, import_torch, op_tests, shapes

F = None  # torch.nn.functional, loaded by the tests that call PyTorch


def torch_functional():
    global F
    if F is None:
        F = import_torch().nn.functional
    return F


def one_shape(extra):
    """draw(): a shape of 1-3 axes plus keyword arguments computed from it by ``extra``."""
    def draw(data):
        shape = data.draw(shapes(min_dims=1), label="shape")
        return [shape], data.draw(extra(shape), label="kwargs")

    return draw


def same_shapes_but_axis(count):
    """draw(): ``count`` shapes that agree except along ``axis`` (for cat/stack/split)."""
    def draw(data):
        base = list(data.draw(shapes(min_dims=1), label="shape"))
        axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
        sizes = data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
        drawn = [tuple(base[:axis % len(base)] + [n] + base[axis % len(base) + 1:])
                 for n in sizes]
        return drawn, {"axis": axis}

    return draw


def split_case(data):
    (shape,), kwargs = same_shapes_but_axis(1)(data)
    length = shape[kwargs["axis"]]
    size = data.draw(st.integers(1, length), label="split_size")
    return [shape], {**kwargs, "size": size}


def index_case(data):
    """A shape and an index: slices, ints, integer arrays (with repeats), masks, or a mix with
    Ellipsis and None (new axis)."""
    shape = data.draw(shapes(min_dims=1), label="shape")
    kind = data.draw(st.sampled_from(["slices", "ints", "int_array", "mask", "mixed"]))
    first = shape[0]
    if kind == "slices":
        index = tuple(slice(data.draw(st.integers(0, n - 1)), None,
                            data.draw(st.integers(1, 2))) for n in shape)
    elif kind == "ints":
        index = data.draw(st.integers(-first, first - 1))
    elif kind == "int_array":
        index = np.array(data.draw(st.lists(st.integers(0, first - 1), min_size=1, max_size=6)))
    elif kind == "mask":
        index = np.array(data.draw(st.lists(st.booleans(), min_size=first, max_size=first)))
    else:
        index = (0, Ellipsis, None)
    return [shape], {"index": index}


def stack_case(data):
    shape = data.draw(shapes(), label="shape")
    return [shape] * 3, {"axis": data.draw(st.integers(-len(shape) - 1, len(shape)))}


def torch_getitem(t, index):
    return t[import_torch().tensor(index) if isinstance(index, np.ndarray) else index]


def torch_pad(x, pad):
    return torch_functional().pad(x, pad)


CASES = [
    OpCase("reshape", one_shape(lambda s: st.just({"shape": (-1,) + s[:0] if len(s) == 1
                                                   else (s[-1], -1)})),
           lambda x, shape: x.reshape(shape), lambda x, shape: x.reshape(shape),
           examples=[([(5,)], {"shape": (-1,)}), ([(2, 3)], {"shape": (3, -1)}),
                     ([(2, 3, 4)], {"shape": (4, -1)})]),
    OpCase("permute", one_shape(lambda s: st.permutations(range(len(s))).map(
        lambda p: {"axes": tuple(p)})),
        lambda x, axes: x.permute(*axes), lambda x, axes: x.permute(*axes),
        examples=[([(4,)], {"axes": (0,)}), ([(2, 3)], {"axes": (1, 0)}),
                  ([(2, 3, 4)], {"axes": (2, 0, 1)})]),
    OpCase("transpose", one_shape(lambda s: st.fixed_dictionaries(
        {"d0": st.integers(-len(s), len(s) - 1), "d1": st.integers(-len(s), len(s) - 1)})),
        lambda x, d0, d1: x.transpose(d0, d1), lambda x, d0, d1: x.transpose(d0, d1),
        examples=[([(2, 3)], {"d0": 0, "d1": 1}), ([(2, 3, 4)], {"d0": -1, "d1": 0}),
                  ([(2, 3)], {"d0": 1, "d1": 1})]),
    OpCase("T", one_shape(lambda s: st.just({})), lambda x: x.T,
           lambda x: x.permute(*reversed(range(x.ndim))),
           examples=[([(5,)], {}), ([(2, 3)], {}), ([(2, 3, 4)], {})]),
    OpCase("flatten", one_shape(lambda s: st.fixed_dictionaries(
        {"start": st.integers(0, len(s) - 1)})),
        lambda x, start: x.flatten(start), lambda x, start: x.flatten(start),
        examples=[([(5,)], {"start": 0}), ([(2, 3, 4)], {"start": 0}),
                  ([(2, 3, 4)], {"start": 1})]),
    OpCase("squeeze", lambda data: ([data.draw(shapes(max_side=2))], {}),
           lambda x: x.squeeze(), lambda x: x.squeeze(),
           examples=[([()], {}), ([(1,)], {}), ([(2, 2)], {}), ([(1, 2, 1)], {})]),
    OpCase("unsqueeze", one_shape(lambda s: st.fixed_dictionaries(
        {"axis": st.integers(-len(s) - 1, len(s))})),
        lambda x, axis: x.unsqueeze(axis), lambda x, axis: x.unsqueeze(axis),
        examples=[([(3,)], {"axis": 0}), ([(2, 3)], {"axis": -1}), ([(2, 3)], {"axis": 1})]),
    OpCase("expand", one_shape(lambda s: st.just({"shape": (2,) + tuple(
        -1 if n > 1 else 3 for n in s)})),
        lambda x, shape: x.expand(*shape), lambda x, shape: x.expand(*shape),
        examples=[([(1,)], {"shape": (2, 3)}), ([(2, 1)], {"shape": (2, -1, 3)}),
                  ([(1, 4, 1)], {"shape": (2, 3, -1, 3)})]),
    OpCase("broadcast_to", lambda data: ([(3, 1)], {"shape": (2, 3, 4)}),
           lambda x, shape: mg.broadcast_to(x, shape),
           lambda x, shape: x.broadcast_to(shape),
           examples=[([(3, 1)], {"shape": (2, 3, 4)})]),
    OpCase("getitem", index_case, lambda x, index: x[index], torch_getitem,
           examples=[([(3, 4)], {"index": (slice(1, None, 2), slice(0, None, 1))}),
                     ([(3, 2)], {"index": -1}), ([(3, 2)], {"index": np.array([0, 2, 0])}),
                     ([(3,)], {"index": np.array([True, False, True])}),
                     ([(2, 3, 4)], {"index": (0, Ellipsis, None)})]),
    OpCase("cat", same_shapes_but_axis(3), lambda *xs, axis: mg.cat(xs, axis),
           lambda *xs, axis: import_torch().cat(xs, axis),
           examples=[([(2, 3), (1, 3), (3, 3)], {"axis": 0}),
                     ([(2, 1), (2, 2), (2, 3)], {"axis": -1}),
                     ([(2, 1, 3), (2, 2, 3), (2, 1, 3)], {"axis": 1})]),
    OpCase("stack", lambda data: stack_case(data),
           lambda *xs, axis: mg.stack(xs, axis), lambda *xs, axis: import_torch().stack(xs, axis),
           examples=[([(2, 3)] * 3, {"axis": 0}), ([(2, 3)] * 3, {"axis": -1}),
                     ([()] * 3, {"axis": 0}), ([(3,)] * 3, {"axis": 1})]),
    OpCase("split", split_case, lambda x, axis, size: mg.split(x, size, axis)[-1] * 2
           + mg.split(x, size, axis)[0].sum(),
           lambda x, axis, size: x.split(size, axis)[-1] * 2 + x.split(size, axis)[0].sum(),
           examples=[([(5, 2)], {"axis": 0, "size": 2}), ([(2, 3)], {"axis": -1, "size": 3}),
                     ([(2, 4, 1)], {"axis": 1, "size": 1})]),
    OpCase("pad", one_shape(lambda s: st.lists(st.integers(0, 2), min_size=2,
                                               max_size=2 * min(len(s), 2)).filter(
        lambda p: len(p) % 2 == 0).map(lambda p: {"pad": tuple(p)})),
        lambda x, pad: mg.pad(x, pad), torch_pad,
        examples=[([(3,)], {"pad": (1, 2)}), ([(2, 3)], {"pad": (0, 1, 2, 0)}),
                  ([(2, 2, 3)], {"pad": (1, 1)})]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


def test_getitem_with_repeated_indices_adds_the_gradients():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[mg.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_getitem_with_a_boolean_mask_tensor():
    x = mg.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    positives = x[x > 0]
    np.testing.assert_array_equal(positives.numpy(), [1.0, 4.0])
    positives.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0], [0.0, 1.0]])


def test_split_with_sections_and_errors():
    x = mg.arange(6.0)
    assert [p.shape for p in mg.split(x, [1, 5])] == [(1,), (5,)]
    assert [p.shape for p in x.split(4)] == [(4,), (2,)]
    with pytest.raises(ValueError, match=r"split: sizes \[1, 2\] do not add up to 6"):
        mg.split(x, [1, 2])


def test_shape_errors_name_the_op_and_shapes():
    x = mg.ones(2, 3)
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match=r"broadcast_to: .*\(2, 3\) to \(4, 3\)"):
        x.broadcast_to((4, 3))
    with pytest.raises(ValueError, match=r"cat: shapes \(2, 3\) and \(2, 4\) differ outside "
                                         r"axis 0"):
        mg.cat([x, mg.ones(2, 4)])
    with pytest.raises(ValueError, match=r"stack: .*\(2, 3\).*\(3, 2\)"):
        mg.stack([x, mg.ones(3, 2)])
    with pytest.raises(ValueError, match=r"permute: axes \(0, 0\)"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"pad: \(1,\)"):
        mg.pad(x, (1,))
    with pytest.raises(IndexError, match="unsqueeze: dim 3 is out of range"):
        x.unsqueeze(3)
    with pytest.raises(IndexError, match="stack: dim -4 is out of range"):
        mg.stack([x, x], axis=-4)


def test_permute_with_negative_axes_has_the_right_gradient():
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = x.permute(0, -1, 1)
    assert y.shape == (2, 4, 3)
    (y * mg.tensor(np.arange(24.0).reshape(2, 4, 3))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(),
                                  np.arange(24.0).reshape(2, 4, 3).transpose(0, 2, 1))
    with pytest.raises(ValueError, match=r"permute: axes \(0, 1, 5\)"):
        x.permute(0, 1, 5)
