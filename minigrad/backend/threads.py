"""How many threads the CPU kernels run on: ``set_num_threads(n)``, as ``torch.set_num_threads``.

Two pools could use the cores: NumPy's BLAS (matmul, the Linear layers, ``gemm_conv``) and
Numba's ``prange`` loops. Only BLAS does: the Numba kernels are compiled with
``PARALLEL = False`` (``numba_cpu/blocks.py``), since a second pool of spinning threads fights
BLAS's for the cores and gained nothing consistent, idle or busy (docs/performance.md,
"Threads"). So one owner per call: BLAS, on its own default of one thread per core.

On a machine where something else keeps a core busy, BLAS's threads wait for the core that is
not free, and one thread is faster: a LeNet-5 training step (batch 64) took 16.6 ms with 2 BLAS
threads and 12.1 ms with 1, LeNet-5 inference at batch 256 39.1 ms and 23.5, an MLP step
8.1 ms and 4.1. On an idle machine 1 thread costs up to 25% on BLAS-heavy work (the MLP step:
3.5 ms -> 4.4; a 512^3 sgemm runs at half speed), so the default stays BLAS's; call
``set_num_threads(1)`` on a shared machine.

threadpoolctl sets BLAS's threads in a running process (OPENBLAS_NUM_THREADS is read only when
NumPy loads); it and Numba are imported inside the functions, so ``import minigrad`` stays
light.
"""

import os


def set_num_threads(threads):
    """Run the CPU kernels on ``threads`` threads: BLAS's pool (through threadpoolctl) and
    Numba's parallel loops (``numba.set_num_threads``) together, so the two never disagree
    about the cores. Raises ValueError for a count below 1 or above the machine's cores."""
    cores = os.cpu_count() or 1
    if not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ValueError(f"set_num_threads: expected a thread count from 1 to {cores} "
                         f"(the cores), got {threads!r}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def get_num_threads():
    """The threads BLAS runs on, as threadpoolctl reports them (the most of any BLAS library
    loaded): the pool the CPU kernels use."""
    from threadpoolctl import threadpool_info

    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"),
               default=1)
