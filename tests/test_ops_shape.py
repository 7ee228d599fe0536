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
    kind = data.draw(st.sampled_from(["slices", "ints", "int_array", "mask", "mixed",
                                      "int_then_array"]))
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
    elif kind == "mixed":
        index = (0, Ellipsis, None)
    else:  # PyTorch's placement: the int is applied first, the array's dims stay in place
        shape = data.draw(shapes(min_dims=3, max_dims=4), label="shape")
        rows = data.draw(st.lists(st.integers(-shape[2], shape[2] - 1), min_size=1, max_size=4))
        index = (data.draw(st.integers(0, shape[0] - 1)), slice(None), np.array(rows))
    return [shape], {"index": index}


def stack_case(data):
    shape = data.draw(shapes(), label="shape")
    return [shape] * 3, {"axis": data.draw(st.integers(-len(shape) - 1, len(shape)))}


def torch_getitem(t, index):
    def as_torch(item):
        return import_torch().tensor(item) if isinstance(item, np.ndarray) else item

    return t[tuple(map(as_torch, index)) if isinstance(index, tuple) else as_torch(index)]


def from_examples(examples):
    """draw(): one of the fixed examples (for ops whose arguments depend on the shape in ways
    a strategy would only restate); Hypothesis still draws the values."""
    return lambda data: data.draw(st.sampled_from(examples), label="example")


def fixed(name, fn, torch_fn, examples, **options):
    """An OpCase whose draws are its fixed examples."""
    return OpCase(name, from_examples(examples), fn, torch_fn, examples=examples, **options)


def torch_pad_mode(mode):
    return lambda x, pad: torch_functional().pad(x, pad, mode=mode)


BIG = (2, 3, 12, 5, 4)  # x[1, :, 3:11:2, idx, 0:2]: NumPy and PyTorch place idx differently
PAD_EXAMPLES = [([(1, 2, 5)], {"pad": (2, 1)}), ([(2, 5)], {"pad": (-1, 3)}),
                ([(2, 3, 4)], {"pad": (1, 2, 2, 0)}), ([(1, 2, 3, 4)], {"pad": (0, 3, 1, 2)}),
                ([(1, 1, 2, 3, 3)], {"pad": (1, 1, 1, 0, 1, 1)})]


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
    fixed("pad_constant_crop", lambda x, pad: mg.pad(x, pad, value=0.5),
          lambda x, pad: torch_functional().pad(x, pad, value=0.5),
          [([(4,)], {"pad": (-1, 2)}), ([(2, 3, 4)], {"pad": (2, -3, -1, 1)}),
           ([(0, 3)], {"pad": (1, 1, 1, 0)}), ([(3, 3)], {"pad": (-3, 0)})]),
    *[fixed(f"pad_{mode}", lambda x, pad, mode=mode: mg.pad(x, pad, mode=mode),
            torch_pad_mode(mode), PAD_EXAMPLES)
      for mode in ("reflect", "replicate", "circular")],
    fixed("getitem_torch_placement", lambda x, index: x[index], torch_getitem,
          [([BIG], {"index": (1, slice(None), slice(3, 11, 2), [0, 2, 4], slice(0, 2))}),
           ([BIG], {"index": (1, slice(None), slice(3, 11, 2), np.array([[0, -1], [4, 4]]),
                              slice(0, 2))}),
           ([(3, 4, 5)], {"index": (np.array([0, 2], dtype=np.int32), 1, [1, -1])}),
           ([(3, 4, 5)], {"index": (Ellipsis, np.array([[1, 0]]), None)}),
           ([(3, 4, 5)], {"index": (0, slice(None), True, [0, 1])}),
           ([(3, 4, 5)], {"index": (np.array([True, False, True]), slice(None), [0, 4])}),
           ([(3, 4, 5)], {"index": (np.int64(-1), [], slice(1, None))}),
           ([(3, 4)], {"index": np.array([[True, False, True, True]] * 3)})]),
    fixed("flip", lambda x, dims: mg.flip(x, dims), lambda x, dims: x.flip(dims),
          [([(4,)], {"dims": (0,)}), ([(2, 3, 4)], {"dims": (0, -1)}), ([()], {"dims": ()}),
           ([(0, 3)], {"dims": (1,)})]),
    fixed("roll", lambda x, shifts, dims: mg.roll(x, shifts, dims),
          lambda x, shifts, dims: x.roll(shifts, dims),
          [([(5,)], {"shifts": 2, "dims": None}), ([(2, 3)], {"shifts": -4, "dims": None}),
           ([(2, 3, 4)], {"shifts": (1, -5), "dims": (0, -1)}),
           ([(3, 2)], {"shifts": 7, "dims": 0})]),
    *[fixed(name, lambda x, k, name=name: getattr(mg, name)(x, k),
            lambda x, k, name=name: getattr(x, name)(k),
            [([(3, 4)], {"k": 0}), ([(4, 3)], {"k": -1}), ([(2, 3, 4)], {"k": 2}),
             ([(2, 2)], {"k": -3})])
      for name in ("tril", "triu")],
    fixed("diag", lambda x, k: mg.diag(x, k), lambda x, k: x.diag(k),
          [([(3,)], {"k": 0}), ([(2,)], {"k": 2}), ([(3,)], {"k": -1}), ([(3, 4)], {"k": 1}),
           ([(3, 4)], {"k": -2}), ([(2, 3)], {"k": 5})]),
    fixed("diagonal", lambda x, **kw: mg.diagonal(x, **kw), lambda x, **kw: x.diagonal(**kw),
          [([(3, 4)], {}), ([(2, 3, 4)], {"offset": 1, "dim1": -1, "dim2": 0}),
           ([(2, 3, 4)], {"offset": -1, "dim1": 2, "dim2": 1}), ([(2, 3)], {"offset": -5})]),
    fixed("diag_embed", lambda x, **kw: mg.diag_embed(x, **kw),
          lambda x, **kw: import_torch().diag_embed(x, **kw),
          [([(2, 3)], {}), ([(3,)], {"offset": 1, "dim1": 1, "dim2": 0}),
           ([(2, 3)], {"offset": -1, "dim1": 0, "dim2": 2})]),
    fixed("trace", mg.trace, lambda x: x.trace(), [([(3, 4)], {}), ([(4, 4)], {})]),
    fixed("repeat", lambda x, sizes: mg.repeat(x, *sizes), lambda x, sizes: x.repeat(*sizes),
          [([(2, 3)], {"sizes": (2, 1, 3)}), ([(3,)], {"sizes": (2,)}), ([()], {"sizes": (2, 3)}),
           ([(2, 3)], {"sizes": (1, 0)})]),
    fixed("tile", lambda x, dims: mg.tile(x, dims), lambda x, dims: x.tile(dims),
          [([(2, 3)], {"dims": (2,)}), ([(3,)], {"dims": (2, 2)}),
           ([(2, 1, 2)], {"dims": (3, 1, 2)})]),
    fixed("repeat_interleave", lambda x, repeats, dim: mg.repeat_interleave(
        x, mg.tensor(repeats) if isinstance(repeats, np.ndarray) else repeats, dim),
          lambda x, repeats, dim: x.repeat_interleave(
        import_torch().tensor(repeats) if isinstance(repeats, np.ndarray) else repeats, dim),
          [([(2, 3)], {"repeats": 2, "dim": None}),
           ([(2, 3)], {"repeats": np.array([1, 0, 3]), "dim": 1}),
           ([(3, 2)], {"repeats": np.array([2]), "dim": -2}), ([()], {"repeats": 3, "dim": None})]),
    fixed("unfold", lambda x, d, size, step: mg.unfold(x, d, size, step),
          lambda x, d, size, step: x.unfold(d, size, step),
          [([(7,)], {"d": 0, "size": 3, "step": 2}), ([(2, 5, 3)], {"d": 1, "size": 2, "step": 1}),
           ([(2, 4)], {"d": -1, "size": 4, "step": 3}), ([()], {"d": 0, "size": 1, "step": 1})]),
    fixed("unflatten", lambda x, d, sizes: mg.unflatten(x, d, sizes),
          lambda x, d, sizes: x.unflatten(d, sizes),
          [([(2, 6)], {"d": 1, "sizes": (2, 3)}), ([(6,)], {"d": 0, "sizes": (-1, 2)}),
           ([(2, 0)], {"d": -1, "sizes": (3, 0)})]),
    fixed("movedim", lambda x, src, dst: mg.movedim(x, src, dst),
          lambda x, src, dst: x.movedim(src, dst),
          [([(2, 3, 4)], {"src": 0, "dst": -1}), ([(2, 3, 4)], {"src": (0, 1), "dst": (2, 0)}),
           ([(2, 3, 4, 1)], {"src": (-1, 0), "dst": (1, 3)})]),
    fixed("swapaxes", lambda x, a0, a1: mg.swapaxes(x, a0, a1) + mg.swapdims(x, a0, a1),
          lambda x, a0, a1: x.swapaxes(a0, a1) + x.swapdims(a0, a1),
          [([(2, 3, 4)], {"a0": 0, "a1": -1}), ([(2, 3)], {"a0": 1, "a1": 1})]),
    fixed("chunk", lambda x, chunks, dim: mg.cat(mg.chunk(x, chunks, dim)[::-1], dim),
          lambda x, chunks, dim: import_torch().cat(x.chunk(chunks, dim)[::-1], dim),
          [([(5, 2)], {"chunks": 4, "dim": 0}), ([(2, 6)], {"chunks": 4, "dim": -1}),
           ([(7,)], {"chunks": 3, "dim": 0}), ([(2, 3)], {"chunks": 5, "dim": 1})]),
    fixed("narrow", lambda x, dim, start, length: mg.narrow(x, dim, start, length),
          lambda x, dim, start, length: x.narrow(dim, start, length),
          [([(5, 3)], {"dim": 0, "start": -3, "length": 2}),
           ([(2, 4)], {"dim": 1, "start": 1, "length": 3}),
           ([(2, 4)], {"dim": -1, "start": 4, "length": 0})]),
    fixed("meshgrid", lambda *xs, indexing: mg.stack(mg.meshgrid(*xs, indexing=indexing)),
          lambda *xs, indexing: import_torch().stack(
              import_torch().meshgrid(*xs, indexing=indexing)),
          [([(2,), (3,), ()], {"indexing": "ij"}), ([(2,), (3,), (4,)], {"indexing": "xy"}),
           ([(3,)], {"indexing": "xy"}), ([(2,), (0,)], {"indexing": "ij"})]),
    *[fixed(name, lambda *xs, name=name: getattr(mg, name)(xs),
            lambda *xs, name=name: getattr(import_torch(), name)(xs), examples)
      for name, examples in [
          ("hstack", [([(2,), (3,), ()], {}), ([(2, 1), (2, 3)], {})]),
          ("vstack", [([(3,), (2, 3)], {}), ([(), ()], {}), ([(1, 2, 2), (2, 2, 2)], {})]),
          ("dstack", [([(2, 3), (2, 3, 2)], {}), ([(3,), (1, 3, 2)], {})]),
          ("column_stack", [([(3,), (3, 2)], {}), ([(), ()], {})])]],
    fixed("atleast_3d", lambda *xs: mg.stack(mg.atleast_3d(*xs)) if len(xs) > 1
          else mg.atleast_3d(*xs),
          lambda *xs: import_torch().stack(import_torch().atleast_3d(*xs)) if len(xs) > 1
          else import_torch().atleast_3d(*xs),
          [([()], {}), ([(3,)], {}), ([(2, 3)], {}), ([(2, 3, 1, 2)], {}), ([(2,), (2,)], {})]),
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


# Ops PyTorch defines on integers keep the integer dtype (and bool stays bool where it can).
INTEGER_OPS = {
    "flip": (lambda x: mg.flip(x, (0, 2)), lambda x: x.flip((0, 2))),
    "roll": (lambda x: mg.roll(x, (1, -1), (0, 1)), lambda x: x.roll((1, -1), (0, 1))),
    "tril": (lambda x: mg.tril(x, 1), lambda x: x.tril(1)),
    "triu": (lambda x: mg.triu(x, -1), lambda x: x.triu(-1)),
    "diagonal": (lambda x: mg.diagonal(x, 1, 0, 2), lambda x: x.diagonal(1, 0, 2)),
    "diag": (lambda x: mg.diag(x[0], 1), lambda x: x[0].diag(1)),
    "diag_embed": (mg.diag_embed, lambda x: x.diag_embed()),
    "trace": (lambda x: mg.trace(x[1]), lambda x: x[1].trace()),
    "repeat": (lambda x: mg.repeat(x, 1, 2, 1, 2), lambda x: x.repeat(1, 2, 1, 2)),
    "tile": (lambda x: mg.tile(x, (2,)), lambda x: x.tile((2,))),
    "repeat_interleave": (lambda x: mg.repeat_interleave(x, 2, dim=1),
                          lambda x: x.repeat_interleave(2, dim=1)),
    "unfold": (lambda x: mg.unfold(x, 2, 2, 1), lambda x: x.unfold(2, 2, 1)),
    "movedim": (lambda x: mg.movedim(x, 0, -1), lambda x: x.movedim(0, -1)),
    "narrow": (lambda x: mg.narrow(x, 2, 1, 2), lambda x: x.narrow(2, 1, 2)),
    "getitem": (lambda x: x[1, :, [0, 3]], lambda x: x[1, :, [0, 3]]),
    "pad_reflect": (lambda x: mg.pad(x, (1, 2), mode="reflect"),
                    lambda x: torch_functional().pad(x, (1, 2), mode="reflect")),
    "pad_constant": (lambda x: mg.pad(x, (1, -1, 0, 1), value=7),
                     lambda x: torch_functional().pad(x, (1, -1, 0, 1), value=7)),
}


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_tensors_keep_their_dtype_and_values_like_torch(dtype, torch_reference):
    values = np.arange(24).reshape(2, 3, 4).astype(dtype)
    expected = torch_reference(f"integers_{np.dtype(dtype).name}", lambda torch: {
        name: theirs(torch.tensor(values)) for name, (_, theirs) in INTEGER_OPS.items()})
    for name, (ours, _) in INTEGER_OPS.items():
        out = ours(mg.tensor(values))
        assert out.dtype == expected[name].dtype, f"{name}: {out.dtype}"
        np.testing.assert_array_equal(out.numpy(), expected[name], err_msg=name)


def test_bool_tensors_through_shape_ops_stay_bool():
    mask = mg.tensor(np.array([[True, False, True], [False, True, True]]))
    for out in [mg.flip(mask, 0), mg.tril(mask), mg.repeat(mask, 2, 1), mg.roll(mask, 1),
                mg.diagonal(mask), mask[:, [2, 0]]]:
        assert out.dtype == np.bool_
    np.testing.assert_array_equal(mg.tril(mask).numpy(), [[True, False, False],
                                                          [False, True, False]])


CHUNKINGS = [(5, 4), (6, 4), (7, 3), (2, 5), (0, 3), (1, 1)]  # (size, chunks)


def test_chunk_and_split_piece_sizes_follow_torch(torch_reference):
    expected = torch_reference("piece_sizes", lambda torch: {
        **{f"chunk_{n}_{c}": [len(p) for p in torch.zeros(n).chunk(c)] for n, c in CHUNKINGS},
        **{f"split_{n}_{c}": [len(p) for p in torch.zeros(n).split(c)] for n, c in CHUNKINGS}})
    for n, c in CHUNKINGS:
        np.testing.assert_array_equal([len(p) for p in mg.chunk(mg.zeros(n), c)],
                                      expected[f"chunk_{n}_{c}"], err_msg=f"chunk {n} {c}")
        np.testing.assert_array_equal([len(p) for p in mg.split(mg.zeros(n), c)],
                                      expected[f"split_{n}_{c}"], err_msg=f"split {n} {c}")


def test_index_tensors_and_comparison_masks_index_like_torch(torch_reference):
    values = np.arange(-6.0, 6.0).reshape(3, 4)
    expected = torch_reference("tensor_indices", lambda torch: {
        "int32_rows": torch.tensor(values)[torch.tensor([2, -3, 2], dtype=torch.int32)],
        "int64_grid": torch.tensor(values)[torch.tensor([[0], [2]]), torch.tensor([1, 3])],
        "positive": torch.tensor(values)[torch.tensor(values) > 0],
        "0d_int_tensor": torch.tensor(values)[torch.tensor(1), 1:],
        "rows_mask_then_int": torch.tensor(values)[torch.tensor([True, False, True]), -1]})
    x = mg.tensor(values)
    ours = {"int32_rows": x[mg.tensor(np.array([2, -3, 2], dtype=np.int32))],
            "int64_grid": x[mg.tensor([[0], [2]]), mg.tensor([1, 3])],
            "positive": x[x > 0],
            "0d_int_tensor": x[mg.tensor(1), 1:],
            "rows_mask_then_int": x[mg.tensor([True, False, True]), -1]}
    for name, out in ours.items():
        assert out.shape == expected[name].shape, name
        np.testing.assert_array_equal(out.numpy(), expected[name], err_msg=name)


def test_getitem_errors_name_the_index_and_the_size():
    x = mg.ones(3, 4)
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dim 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for dim 1 with size 4"):
        x[:, [0, -5]]
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for dim 1 with size 4"):
        x[0, mg.tensor([4])]
    with pytest.raises(IndexError, match=r"too many indices for a tensor of shape \(3, 4\)"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"must be integer or bool, got float32"):
        x[mg.tensor([0.0])]
    with pytest.raises(IndexError, match=r"mask of shape \(2,\) does not match"):
        x[mg.tensor([True, False])]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(IndexError, match="got float"):
        x[1.5]


def test_pad_errors_follow_torchs_rules():
    x = mg.ones(1, 2, 3)
    with pytest.raises(ValueError, match=r"reflect padding \(3, 0\) of dim 2 must be smaller "
                                         r"than its size 3"):
        mg.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"circular padding \(4, 0\) of dim 2 wraps around"):
        mg.pad(x, (4, 0), mode="circular")
    with pytest.raises(NotImplementedError, match=r"6 pad values do not fit shape \(1, 2, 3\)"):
        mg.pad(x, (1,) * 6, mode="replicate")
    with pytest.raises(NotImplementedError, match=r"2 pad values do not fit shape \(3,\)"):
        mg.pad(mg.ones(3), (1, 1), mode="reflect")
    with pytest.raises(ValueError, match=r"padding \(-2, -2\) crops more than the 3 elements"):
        mg.pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"needs non-empty channel and padded dims"):
        mg.pad(mg.ones(1, 0, 3), (1, 1), mode="replicate")
    with pytest.raises(ValueError, match="takes no value"):
        mg.pad(x, (1, 1), mode="reflect", value=1.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        mg.pad(x, (1, 1), mode="wrap")
    assert mg.pad(mg.ones(0, 2, 3), (1, 1), mode="reflect").shape == (0, 2, 5)


def test_reflect_pad_gradient_adds_the_mirrored_copies():
    x = mg.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    y = mg.pad(x, (2, 2), mode="reflect")
    np.testing.assert_array_equal(y.numpy()[0, 0], [3, 2, 1, 2, 3, 2, 1])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [2.0, 3.0, 2.0])


def test_shape_op_errors_name_the_op_and_the_problem():
    x = mg.ones(2, 3)
    cases = [
        (lambda: mg.unfold(x, 1, 4, 1), ValueError, r"unfold: size 4 must be in \[0, 3\]"),
        (lambda: mg.unfold(x, 1, 2, 0), ValueError, "step 0 positive"),
        (lambda: mg.narrow(x, 1, 2, 2), ValueError, r"start 2 \+ length 2 exceeds size 3"),
        (lambda: mg.narrow(x, 1, 4, 0), IndexError, r"start 4 is out of range \[-3, 3\]"),
        (lambda: mg.chunk(x, 0), ValueError, "chunks must be positive, got 0"),
        (lambda: mg.unflatten(x, 1, (2, 2)), ValueError, r"sizes \[2, 2\] do not multiply up "
                                                         r"to 3"),
        (lambda: mg.movedim(x, (0, 1), 0), ValueError, "same number of dims"),
        (lambda: mg.movedim(x, (0, -2), (0, 1)), ValueError, r"dims \[0, 0\] name a dim twice"),
        (lambda: mg.repeat(x, 2), ValueError, r"at least one per dim of shape \(2, 3\)"),
        (lambda: mg.repeat_interleave(x, mg.tensor([1, 2]), dim=1), ValueError,
         r"one or 3 \(the size of dim 1"),
        (lambda: mg.repeat_interleave(x, -1), ValueError, "non-negative"),
        (lambda: mg.roll(x, (1, 2), 0), ValueError, r"shifts \(1, 2\) and dims 0"),
        (lambda: mg.roll(x, (1, 2)), ValueError, "without dims, shifts must be one int"),
        (lambda: mg.diagonal(x, 0, 1, -1), ValueError, "dim1 and dim2 must differ"),
        (lambda: mg.diag(mg.ones(2, 2, 2)), ValueError, r"diag: needs a 1-D or 2-D tensor"),
        (lambda: mg.trace(mg.ones(3)), ValueError, r"trace: needs a matrix"),
        (lambda: mg.tril(mg.ones(3)), ValueError, r"tril: needs a tensor of at least 2 dims"),
        (lambda: mg.meshgrid(x, mg.ones(2)), ValueError, r"meshgrid: needs 0-d or 1-D"),
        (lambda: mg.meshgrid(mg.ones(2), indexing="yx"), ValueError, "'ij' or 'xy'"),
        (lambda: mg.flip(x, 2), IndexError, r"flip: dim 2 is out of range"),
        (lambda: mg.split(x, 0, 1), ValueError, "split_size 0 must be positive"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_dim_spellings_and_single_tensor_forms():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(mg.repeat_interleave(x, 2, axis=0).numpy(),
                                  np.repeat(x.numpy(), 2, axis=0))
    assert [p.shape for p in mg.chunk(x, 2, axis=1)] == [(2, 2), (2, 1)]
    assert mg.narrow(x, axis=1, start=1, length=1).shape == (2, 1)
    assert mg.tile(x, 2, 1).shape == (4, 3)
    np.testing.assert_array_equal(mg.flip(x, 0, 1).numpy(), x.numpy()[::-1, ::-1])
    assert mg.moveaxis is mg.movedim
    assert mg.atleast_1d(mg.tensor(1.0)).shape == (1,)
    assert [t.shape for t in mg.atleast_2d([mg.tensor(1.0), mg.ones(3)])] == [(1, 1), (1, 3)]
    assert [t.shape for t in mg.meshgrid([mg.ones(2), mg.ones(3)])] == [(2, 3), (2, 3)]
