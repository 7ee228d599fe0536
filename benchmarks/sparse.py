"""Sparse (CSR) inference against dense: is a pruned layer faster as CSR?

    python benchmarks/sparse.py [--repeats N] [--quick]

Rows:
* Linear 300x784 (LeNet-300-100's first layer), 1000x1000 and 4096x4096 (64 MB of float32:
  larger than the caches, so the dense product waits on memory), weights with 0 .. 99% of their
  entries zeroed at random, batch 1 and 64: the dense kernel (``kernels.matmul(x, W.T)``,
  NumPy's BLAS, as the Linear op calls it) against ``numba_cpu.csr_matmul`` (as SparseLinear
  calls it: W @ x^T, x^T a transposed view);
* LeNet-300-100 (MLP 784-300-100-10) and LeNet-5 with 90% of every weight zeroed, batch 1:
  the whole dense model against ``to_sparse(model)``, both under ``no_grad``.

Each time is the median of ``--repeats`` single calls, dense and CSR alternating, after
warm-up calls (which include the Numba compilation). ratio = dense time / CSR time: above 1,
CSR is faster. NumPy's BLAS uses every core unless OPENBLAS_NUM_THREADS says otherwise
(``OPENBLAS_NUM_THREADS=1 python benchmarks/sparse.py`` compares one core with one core); the
Numba kernels use one. Machines here are shared and noisy: compare ratios within one run.
"""

import argparse
import os

import numpy as np

import minigrad as mg
from minigrad import backend
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.models import MLP, LeNet5
from minigrad.nn import Conv2d, Linear
from minigrad.prune.sparse import to_csr, to_sparse
from minigrad.report import format_table
from minigrad.timing import median_seconds

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
LAYERS = ((300, 784), (1000, 1000), (4096, 4096))
BATCHES = (1, 64)


def median_us(dense_call, sparse_call, repeats):
    """Median times of one call of each, in microseconds, the two calls in turns after five
    warm-up rounds (``minigrad.timing``)."""
    return [1e6 * seconds for seconds in median_seconds([dense_call, sparse_call], repeats, 5)]


def zero_at_random(weight, sparsity, rng):
    """Set about ``sparsity`` of the entries of ``weight`` to 0, in place."""
    weight[rng.random(weight.shape) < sparsity] = 0
    return weight


def layer_rows(repeats, rng):
    rows = []
    for out_features, in_features in LAYERS:
        for sparsity in SPARSITIES:
            weight = zero_at_random(
                rng.standard_normal((out_features, in_features), dtype=np.float32), sparsity, rng)
            csr = to_csr(weight)
            for batch in BATCHES:
                x = rng.standard_normal((batch, in_features), dtype=np.float32)
                expected = x @ weight.T  # float32 sums of up to 4096 terms: relative to their size
                np.testing.assert_allclose(
                    numba_cpu.csr_matmul(csr.data, csr.indices, csr.indptr, out_features, x.T).T,
                    expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
                dense, sparse = median_us(
                    lambda: numpy_ref.matmul(x, weight.T),
                    lambda: numba_cpu.csr_matmul(csr.data, csr.indices, csr.indptr,
                                                 out_features, x.T), repeats)
                rows.append((f"Linear {out_features}x{in_features}", f"{sparsity:.0%}", batch,
                             dense, sparse, dense / sparse))
    return rows


def model_rows(repeats, rng):
    rows = []
    for name, model, shape in [("LeNet-300-100", MLP([784, 300, 100, 10]), (1, 784)),
                               ("LeNet-5", LeNet5(), (1, 1, 28, 28))]:
        for layer in model.modules():
            if isinstance(layer, (Linear, Conv2d)):
                zero_at_random(layer.weight.data, 0.9, rng)
        model.eval()
        sparse_model = to_sparse(model)
        x = mg.tensor(rng.standard_normal(shape, dtype=np.float32))
        with mg.no_grad():
            np.testing.assert_allclose(sparse_model(x).numpy(), model(x).numpy(), atol=1e-5)
            dense, sparse = median_us(lambda: model(x), lambda: sparse_model(x), repeats)
        rows.append((f"{name} (whole model)", "90%", 1, dense, sparse, dense / sparse))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 repeats (a smoke test)")
    args = parser.parse_args()
    repeats = 20 if args.quick else args.repeats
    backend.set_cpu_kernels("numba")
    rng = np.random.default_rng(0)
    print(f"median of {repeats} calls; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    rows = layer_rows(repeats, rng) + model_rows(repeats, rng)
    print(format_table(["workload", "sparsity", "batch", "dense (us)", "CSR (us)",
                        "dense / CSR"], rows, [None, None, None, ".1f", ".1f", ".2f"]))


if __name__ == "__main__":
    main()
