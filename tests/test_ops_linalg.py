"""Products: gradcheck and PyTorch parity for matmul (vectors, matrices, broadcast batches),
dot, mv, mm, bmm, outer, inner, tensordot and einsum; mixed dtypes and wrong shapes refused."""

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from helpers import OpCase, import_torch, op_tests

# NumPy's gufunc signature: '?' axes may be absent (vector operands), leading axes broadcast.
MATMUL_SHAPES = hnp.mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)",
                                                  max_dims=4, max_side=4)

CASES = [
    OpCase("matmul", lambda data: (list(data.draw(MATMUL_SHAPES, label="shapes").input_shapes),
                                   {}),
           mg.matmul, lambda a, b: a @ b,
           examples=[([(3,), (3, 2)], {}), ([(2, 3), (3,)], {}), ([(2, 3), (3, 4)], {}),
                     ([(2, 1, 2, 3), (3, 3, 2)], {}), ([(4,), (2, 4, 1)], {})]),
    OpCase("matmul_operator", lambda data: ([(2, 3, 4), (4, 5)], {}), lambda a, b: a @ b,
           lambda a, b: a @ b, examples=[([(2, 3, 4), (4, 5)], {})]),
    OpCase("matmul_vector_vector", lambda data: ([(4,), (4,)], {}), lambda a, b: a @ b,
           lambda a, b: a @ b, examples=[([(4,), (4,)], {})]),
]


def sized(*subscripts):
    """draw(): shapes for operands with these subscripts, each letter a size from 1 to 4."""
    def draw(data):
        sizes = {c: data.draw(st.integers(1, 4), label=c) for c in sorted(set("".join(subscripts)))}
        return [tuple(sizes[c] for c in term) for term in subscripts], {}

    return draw


def product(name, fn, torch_fn, subscripts, examples):
    return OpCase(name, sized(*subscripts), fn, torch_fn,
                  examples=[(list(shapes), {}) for shapes in examples])


def einsum(equation, subscripts, examples, draw=None):
    """An OpCase for one einsum equation; ``subscripts`` (one string an operand, letters only)
    let Hypothesis draw the sizes, or ``draw`` is given (for "...")."""
    return OpCase(f"einsum_{equation}", draw or sized(*subscripts),
                  lambda *xs: mg.einsum(equation, *xs),
                  lambda *xs: import_torch().einsum(equation, *xs),
                  examples=[(list(shapes), {}) for shapes in examples])


def batched_shapes(data):
    return data.draw(st.sampled_from([[(2, 2, 3), (3, 4)], [(3,) + (2, 3), (1, 3, 2)],
                                      [(2, 3), (2, 3, 1)]]), label="shapes"), {}


CASES += [
    product("dot", mg.dot, lambda a, b: a.dot(b), ("i", "i"), [((4,), (4,)), ((0,), (0,))]),
    product("vdot", mg.vdot, lambda a, b: a.vdot(b), ("i", "i"), [((3,), (3,))]),
    product("mv", mg.mv, lambda a, b: a.mv(b), ("ij", "j"), [((2, 3), (3,)), ((0, 2), (2,))]),
    product("mm", mg.mm, lambda a, b: a.mm(b), ("ij", "jk"), [((2, 3), (3, 4)), ((3, 1), (1, 2))]),
    product("bmm", mg.bmm, lambda a, b: a.bmm(b), ("bij", "bjk"), [((2, 3, 4), (2, 4, 1))]),
    product("outer", mg.outer, lambda a, b: a.outer(b), ("i", "j"), [((3,), (2,)), ((1,), (4,))]),
    product("inner", mg.inner, lambda a, b: a.inner(b), ("ij", "kj"),
            [((2, 3), (4, 3)), ((3,), (3,))]),
    OpCase("inner_scalar", lambda data: ([(), (2, 3)], {}), mg.inner,
           lambda a, b: import_torch().inner(a, b), examples=[([(), (2, 3)], {})]),
    product("tensordot", lambda a, b: mg.tensordot(a, b, dims=2),
            lambda a, b: import_torch().tensordot(a, b, dims=2), ("ijk", "jkl"),
            [((2, 3, 4), (3, 4, 2))]),
    OpCase("tensordot_pairs", lambda data: ([(2, 3, 4), (4, 2)], {}),
           lambda a, b: mg.tensordot(a, b, dims=([0, -1], [1, 0])),
           lambda a, b: import_torch().tensordot(a, b, dims=([0, 2], [1, 0])),
           examples=[([(2, 3, 4), (4, 2)], {})]),
    einsum("ij,jk->ik", ("ij", "jk"), [((2, 3), (3, 4))]),
    einsum("bij,bjk->bik", ("bij", "bjk"), [((2, 2, 3), (2, 3, 4))]),
    einsum("i,j->ij", ("i", "j"), [((3,), (2,))]),
    einsum("ij->ji", ("ij",), [((2, 3),)]),
    einsum("ii->i", ("ii",), [((3, 3),)]),
    einsum("ij,ij->", ("ij", "ij"), [((2, 3), (2, 3)), ((1, 3), (2, 3))]),
    einsum("iij,jk", ("iij", "jk"), [((2, 2, 3), (3, 2))]),
    einsum("ij->", ("ij",), [((2, 3),), ((0, 2),)]),
    einsum("ij,jk,kl->il", ("ij", "jk", "kl"), [((2, 3), (3, 2), (2, 4))]),
    einsum("...ij,...jk->...ik", None, [((2, 2, 3), (3, 4)), ((3, 2, 3), (1, 3, 2))],
           draw=batched_shapes),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


@pytest.mark.parametrize("a_shape, b_shape, message", [
    ((2, 3), (4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned \(3 != 4\)"),
    ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) are not aligned"),
    ((2, 2, 3), (3, 3, 1), r"matmul: batch dimensions of shapes \(2, 2, 3\) and \(3, 3, 1\)"),
    ((), (3,), r"matmul: both operands need at least one dimension"),
])
def test_shape_mismatch_names_both_shapes(a_shape, b_shape, message):
    a = mg.zeros(a_shape) if a_shape else mg.tensor(1.0)
    with pytest.raises(ValueError, match=message):
        a @ mg.zeros(b_shape)


def torch_large_matmul(torch):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 128), dtype=np.float32), rng.standard_normal(
        (128, 32), dtype=np.float32)
    return {"a": a, "b": b, "out": torch.tensor(a) @ torch.tensor(b)}


def test_large_float32_matmul_matches_torch(torch_reference):
    expected = torch_reference("large_float32", torch_large_matmul)
    np.testing.assert_allclose((mg.tensor(expected["a"]) @ mg.tensor(expected["b"])).numpy(),
                               expected["out"], rtol=1e-4, atol=1e-4)


def test_einsum_accepts_a_list_of_operands_and_the_implicit_output():
    a, b = mg.randn(2, 3), mg.randn(3, 4)
    np.testing.assert_allclose(mg.einsum("ij,jk", [a, b]).numpy(), (a @ b).numpy(), rtol=1e-6)
    np.testing.assert_allclose(mg.einsum("ba", a).numpy(), a.numpy().T)


@pytest.mark.parametrize("op", [mg.matmul, mg.mm, lambda a, b: mg.einsum("ij,jk->ik", a, b),
                                mg.tensordot, lambda a, b: a @ b])
def test_mixed_float_dtypes_are_refused_naming_both(op):
    a, b = mg.ones(2, 3), mg.ones(3, 2, dtype=np.float64)
    if op is mg.tensordot:
        a, b = mg.ones(2, 3), mg.ones(2, 3, dtype=np.float64)
    with pytest.raises(TypeError, match=r"expected operands of the same dtype, got float32 of "
                                        r"shape \(2, 3\) and float64 of shape"):
        op(a, b)


@pytest.mark.parametrize("call, message", [
    (lambda: mg.dot(mg.ones(2, 3), mg.ones(3)),
     r"dot: expected a 1-D and a 1-D tensor, got shapes \(2, 3\) and \(3,\)"),
    (lambda: mg.dot(mg.ones(3), mg.ones(4)), r"dot: shapes \(3,\) and \(4,\) are not aligned"),
    (lambda: mg.mv(mg.ones(2, 3), mg.ones(3, 1)), r"mv: expected a 2-D and a 1-D tensor"),
    (lambda: mg.mm(mg.ones(2, 3), mg.ones(2, 3)), r"mm: shapes \(2, 3\) and \(2, 3\) are not"),
    (lambda: mg.bmm(mg.ones(2, 2, 3), mg.ones(3, 3, 1)),
     r"bmm: batch sizes of shapes \(2, 2, 3\) and \(3, 3, 1\) differ"),
    (lambda: mg.outer(mg.ones(2, 1), mg.ones(3)), r"outer: expected two 1-D tensors"),
    (lambda: mg.tensordot(mg.ones(2, 3), mg.ones(2, 3), dims=1),
     r"tensordot: dim 1 of shape \(2, 3\) and dim 0 of shape \(2, 3\) differ in size"),
    (lambda: mg.einsum("ij,jk->ik", mg.ones(2, 3), mg.ones(4, 2)),
     r"einsum: subscript 'j' of 'ij,jk->ik' has sizes 3 and 4"),
    (lambda: mg.einsum("ij->i", mg.ones(2, 3), mg.ones(2)),
     r"einsum: .* names 1 operand\(s\), got 2"),
    (lambda: mg.einsum("ijk->i", mg.ones(2, 3)), r"einsum: operand of shape \(2, 3\) does not fit"),
    (lambda: mg.einsum("ij->ik", mg.ones(2, 3)), r"einsum: the output subscripts .* must be"),
    (lambda: mg.einsum("i1->i", mg.ones(2, 3)), r"einsum: subscripts 'i1' .* must be letters"),
])
def test_wrong_shapes_are_refused_naming_the_op(call, message):
    with pytest.raises(ValueError, match=message):
        call()
