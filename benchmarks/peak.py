"""The machine's float32 peak, measured two ways, for ``run.py``'s "% of peak" column.

    python benchmarks/peak.py [--threads N]        # prints one JSON object

1. A tight FMA loop in Numba: each thread updates 8 independent chains x = x * m + c, 16 deep,
   on 8-lane vectors (LLVM emits one vfmadd per vector and step; ``FMA`` = fastmath "contract"
   only, so it cannot fold the chain). 8 chains hide the FMA latency (4 cycles) on two FMA
   pipes. FLOPs = 2 per lane per update. This is what the arithmetic units can do. The peak is
   the larger of the loop on all threads and threads x the loop on one: on a shared machine
   one busy core slows every thread of the first, and the second needs one free core only.
2. BLAS's best sgemm (NumPy's ``@``) over a few square sizes: what a tuned kernel reaches.

Also times the textbook blocked GEMM (``gemm_blocked.py``) against BLAS at 512^3. All of this
runs in a process of its own: Numba's thread pool started here must not spin beside the
timed frameworks (docs/performance.md, "Threads").
"""

import argparse
import json
import time

import numpy as np
from numba import get_num_threads, njit, prange

from minigrad.backend.numba_cpu.blocks import FMA

LANES, DEPTH = 64, 16  # per chain: LANES floats (8 vectors); DEPTH updates per load and store
CHAINS = 8


@njit(parallel=True, cache=True, fastmath=FMA)
def _fma_chains(steps, out):
    for thread in prange(out.shape[0]):
        acc = np.empty((CHAINS, LANES), np.float32)
        for i in range(CHAINS):
            for j in range(LANES):
                acc[i, j] = np.float32(j)
        m, c = np.float32(0.999), np.float32(0.001)  # x converges to c / (1 - m): no overflow
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        a4, a5, a6, a7 = acc[4], acc[5], acc[6], acc[7]
        for _ in range(steps):
            for j in range(LANES):  # vectorized: j is the lane
                x0, x1, x2, x3 = a0[j], a1[j], a2[j], a3[j]
                x4, x5, x6, x7 = a4[j], a5[j], a6[j], a7[j]
                for _ in range(DEPTH):  # unrolled: 8 independent FMAs per step
                    x0 = x0 * m + c
                    x1 = x1 * m + c
                    x2 = x2 * m + c
                    x3 = x3 * m + c
                    x4 = x4 * m + c
                    x5 = x5 * m + c
                    x6 = x6 * m + c
                    x7 = x7 * m + c
                a0[j], a1[j], a2[j], a3[j] = x0, x1, x2, x3
                a4[j], a5[j], a6[j], a7[j] = x4, x5, x6, x7
        out[thread] = acc.sum()


def best_seconds(call, repeats):
    """The fastest of ``repeats`` runs of ``call()``, after one untimed run."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def fma_peak_gflops(threads, steps=100_000, repeats=20):
    """GFLOP/s of the FMA loop on ``threads`` threads: 2 * CHAINS * DEPTH * LANES * steps
    FLOPs per thread, the best of ``repeats`` runs."""
    out = np.zeros(threads, np.float32)
    seconds = best_seconds(lambda: _fma_chains(steps, out), repeats)
    return 2 * CHAINS * DEPTH * LANES * steps * threads / seconds * 1e-9


def best_sgemm_gflops(sizes=(256, 512, 1024, 1536), repeats=5):
    """The best GFLOP/s of float32 ``a @ b`` (2 n^3 FLOPs) over square sizes: (gflops, n)."""
    rng = np.random.default_rng(0)
    rates = []
    for n in sizes:
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        rates.append((2 * n**3 / best_seconds(lambda: a @ b, repeats) * 1e-9, n))
    return max(rates)


def blocked_gemm_gflops(n=512, repeats=10):
    """GFLOP/s of ``gemm_blocked`` and of BLAS on the same n^3 float32 product."""
    from gemm_blocked import gemm_blocked  # beside this script

    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2 * n**3 * 1e-9
    return {"n": n, "gemm_blocked": flops / best_seconds(lambda: gemm_blocked(a, b), repeats),
            "numpy_blas": flops / best_seconds(lambda: a @ b, repeats)}


def measure(threads):
    all_threads, one_thread = fma_peak_gflops(threads), fma_peak_gflops(1)
    sgemm, size = best_sgemm_gflops()
    return {"threads": threads, "fma_loop_gflops": max(all_threads, threads * one_thread),
            "fma_loop_all_threads": all_threads, "fma_loop_one_thread": one_thread,
            "sgemm_gflops": sgemm, "sgemm_size": size, "blocked_gemm": blocked_gemm_gflops()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the FMA loop (default: Numba's, NUMBA_NUM_THREADS)")
    args = parser.parse_args()
    print(json.dumps(measure(args.threads or get_num_threads())))
