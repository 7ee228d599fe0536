"""Numba sparse matmul: ``csr_matmul`` multiplies a CSR matrix (a pruned weight) by a dense
one, one loop order for a single column (batch 1: a dot product per row) and one for many (each
stored value times a contiguous row of X).

Y = A @ X with A in CSR form (see ``numpy_ref.csr_matmul``); two loop orders, timed in
``docs/performance.md``:

* few columns in X (batch 1): one dot product per row of A and column of X, reading X's
  column as a contiguous row of X^T. The dot gathers x[indices[j]]: three loads per stored
  value, summed into four accumulators so that four multiply-adds are in flight (one sum
  would wait on the previous add each time). "reassoc" would let LLVM vectorize the loop with
  gather instructions instead, which were 2.3x slower on the AMD EPYC (Zen 4) we measured.
* many columns (a batch): row i of Y is the sum of data[j] * X[indices[j], :], whole rows of
  X (X laid out C-contiguous, K x B), four stored values per pass over Y's row: the inner loop
  runs over B contiguous values and vectorizes, as in ``blocks.add_2x4_times_rows``.

The index is cast to unsigned before it is used: column indices are never negative, and an
unsigned index spares Numba's test for Python's negative indexing (a third of the dot's time).
"""

import numpy as np
from numba import njit, prange

from minigrad.backend.numba_cpu.blocks import FMA, PARALLEL
from minigrad.backend.numpy_ref import check_csr_operands

ROWS_TIMES_X_FROM_BATCH = 3  # from this many columns of X on, the row-times-X loop is faster


@njit(inline="always")
def _sparse_dot(data, indices, start, end, x):
    """sum of data[j] * x[indices[j]] for j in start .. end-1, in four partial sums."""
    s0 = s1 = s2 = s3 = data.dtype.type(0)
    j = start
    while j + 4 <= end:
        s0 += data[j] * x[np.uint32(indices[j])]
        s1 += data[j + 1] * x[np.uint32(indices[j + 1])]
        s2 += data[j + 2] * x[np.uint32(indices[j + 2])]
        s3 += data[j + 3] * x[np.uint32(indices[j + 3])]
        j += 4
    for tail in range(j, end):
        s0 += data[tail] * x[np.uint32(indices[tail])]
    return (s0 + s1) + (s2 + s3)


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _csr_row_dots(data, indices, indptr, x_t, out_t):
    """out_t[b, i] = dot(row i of A, row b of X^T)."""
    for b in prange(x_t.shape[0]):
        column = x_t[b]
        for i in range(indptr.shape[0] - 1):
            out_t[b, i] = _sparse_dot(data, indices, indptr[i], indptr[i + 1], column)


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _csr_rows_times_x(data, indices, indptr, x, out):
    """out[i, :] += data[j] * x[indices[j], :] for every stored value j of row i; ``out``
    starts at zero."""
    for i in prange(indptr.shape[0] - 1):
        y, j, end = out[i], indptr[i], indptr[i + 1]
        while j + 4 <= end:
            a0, a1, a2, a3 = data[j], data[j + 1], data[j + 2], data[j + 3]
            x0, x1 = x[np.uint32(indices[j])], x[np.uint32(indices[j + 1])]
            x2, x3 = x[np.uint32(indices[j + 2])], x[np.uint32(indices[j + 3])]
            for q in range(y.shape[0]):
                y[q] += a0 * x0[q] + a1 * x1[q] + a2 * x2[q] + a3 * x3[q]
            j += 4
        for tail in range(j, end):
            a, row = data[tail], x[np.uint32(indices[tail])]
            for q in range(y.shape[0]):
                y[q] += a * row[q]


def csr_matmul(data, indices, indptr, n_rows, x):
    """Y = A @ X for A in CSR form (n_rows x K) and a dense X (K x B)."""
    check_csr_operands("csr_matmul", data, indices, indptr, n_rows, x)
    dtype = np.result_type(data, x)
    data = np.ascontiguousarray(data, dtype)
    if x.shape[1] < ROWS_TIMES_X_FROM_BATCH:
        # X^T is free when X is itself a transposed (B, K) batch, as in SparseLinear.
        out_t = np.empty((x.shape[1], n_rows), dtype)
        _csr_row_dots(data, indices, indptr, np.ascontiguousarray(x.T, dtype), out_t)
        return out_t.T
    out = np.zeros((n_rows, x.shape[1]), dtype)
    _csr_rows_times_x(data, indices, indptr, np.ascontiguousarray(x, dtype), out)
    return out
