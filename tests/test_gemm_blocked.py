"""The cache-blocked GEMM that ``benchmarks/run.py`` times against BLAS: equal to np.matmul."""

import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
from gemm_blocked import gemm_blocked  # noqa: E402 (benchmarks/ is not a package)

from kernel_cases import assert_same, random  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (7, 13, 5), (33, 65, 129), (2, 3, 1030),
                                     (64, 64, 64)])
def test_gemm_blocked_equals_matmul(m, k, n, dtype):
    a, b = random((m, k), dtype, 0), random((k, n), dtype, 1)
    assert_same(gemm_blocked(a, b), np.matmul(a, b))
    assert_same(gemm_blocked(b.T, a.T), np.matmul(b.T, a.T))  # non-contiguous inputs


def test_gemm_blocked_refuses_what_it_does_not_do():
    with pytest.raises(ValueError, match=r"gemm_blocked: need matrices \(M, K\) @ \(K, N\)"):
        gemm_blocked(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="float32 or float64 only"):
        gemm_blocked(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
