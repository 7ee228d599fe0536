"""The textbook cache-blocked GEMM, written with Numba, to read and to compare with BLAS.

C is cut into tiles of rows (one ``prange`` task each), K and N into
blocks so that a block of B stays in cache while every row of the tile uses it, and the inner
loop, in i-k-j order, adds A[i, k] * B[k, j0:j1] to the row C[i, j0:j1], contiguous and
vectorized, two rows of C and four of B at a time.

The kernels do not use it (``matmul`` is NumPy's, BLAS); ``benchmarks/peak.py`` (printed by
``run.py``) times it against BLAS, and ``tests/test_gemm_blocked.py`` checks it against
``numpy.matmul``.
"""

import numpy as np
from numba import njit, prange

from minigrad.backend.numba_cpu.blocks import FMA, add_2x4_times_rows, round_up, zero_padded

ROW_TILE, K_BLOCK, COL_BLOCK = 32, 64, 512  # ROW_TILE even, K_BLOCK a multiple of 4


def gemm_blocked(a, b):
    """C = A @ B for 2-D float32/float64 matrices with the cache-blocked loops below."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_blocked: need matrices (M, K) @ (K, N), got {a.shape} @ {b.shape}")
    dtype = np.result_type(a, b)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"gemm_blocked: float32 or float64 only, got {a.dtype} @ {b.dtype}")
    (m, k), n = a.shape, b.shape[1]
    a_packed = zero_padded(a.astype(dtype, copy=False), (round_up(m, 2), round_up(k, 4)))
    b_packed = zero_padded(b.astype(dtype, copy=False), (round_up(k, 4), n))
    out = np.zeros((a_packed.shape[0], n), dtype)
    _gemm_blocked(a_packed, b_packed, out)
    return out[:m]


@njit(parallel=True, cache=True, fastmath=FMA)
def _gemm_blocked(a, b, out):
    m, k_size = a.shape
    n = b.shape[1]
    for tile in prange((m + ROW_TILE - 1) // ROW_TILE):
        for j0 in range(0, n, COL_BLOCK):
            j1 = min(j0 + COL_BLOCK, n)
            for k0 in range(0, k_size, K_BLOCK):
                for i in range(tile * ROW_TILE, min(tile * ROW_TILE + ROW_TILE, m), 2):
                    for k in range(k0, min(k0 + K_BLOCK, k_size), 4):
                        add_2x4_times_rows(out[i, j0:j1], out[i + 1, j0:j1], a[i, k:k + 4],
                                            a[i + 1, k:k + 4], b[k, j0:j1], b[k + 1, j0:j1],
                                            b[k + 2, j0:j1], b[k + 3, j0:j1])
