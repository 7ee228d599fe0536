"""matmul: gradcheck and PyTorch parity for vectors, matrices and broadcast batches."""

import numpy as np
import pytest
from hypothesis.extra import numpy as hnp

import minigrad as mg
from helpers import OpCase, op_tests

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
