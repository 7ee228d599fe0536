"""How many threads the CPU kernels run on, and who owns them: ``set_num_threads(n, owner)``,
as ``torch.set_num_threads`` with one more choice.

Two pools could use the cores: NumPy's BLAS (matmul, the Linear layers, ``gemm_conv``) and the
direct Numba kernels (convolutions below 32 output channels, depthwise convolution), which split
their images over Python threads (``numba_cpu/blocks.py: over_images``). Both at once fight:
OpenBLAS's threads spin for about 0.1 s after each call, waiting for the next, and take the core
the kernels' second thread needs. So one owner at a time:

* ``owner="blas"`` (the default, and NumPy's own): BLAS on ``n`` threads, the kernels on one;
* ``owner="kernels"``: BLAS on one thread (it never spins), the kernels' images on ``n``.

Measured on 2 idle cores (docs/performance.md, "Threads"), ms per step, blas / kernels: LeNet-5
training (batch 64) 5.3 / 4.3-4.7, LeNet-5 inference (batch 256) 6.9 / 4.9, a depthwise layer's
fwd + bwd 3.3 / 2.7; but the MLP step, all BLAS, is 20-25% slower on one BLAS thread, and a
large sgemm half as fast. Where something else keeps a core busy, ``set_num_threads(1)`` is
the fastest (LeNet-5 training 16.6 ms with 2 BLAS threads, 12.1 with 1).

threadpoolctl sets BLAS's threads in a running process (OPENBLAS_NUM_THREADS is read only when
NumPy loads); it and Numba are imported inside the functions, so ``import minigrad`` stays
light.
"""

import os


OWNERS = ("blas", "kernels")
_kernel_threads = 1  # the direct Numba kernels' threads: > 1 only when they own the cores


def set_num_threads(threads, owner="blas"):
    """Run the CPU kernels on ``threads`` threads, owned by ``owner`` (see the module
    docstring): "blas" gives them to BLAS's pool (through threadpoolctl) and leaves the direct
    kernels on one; "kernels" gives them to the direct kernels and BLAS one. Numba's own
    thread count follows ``threads``. Raises ValueError for a count below 1 or above the
    machine's cores, or another owner."""
    global _kernel_threads
    cores = os.cpu_count() or 1
    if not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ValueError(f"set_num_threads: expected a thread count from 1 to {cores} "
                         f"(the cores), got {threads!r}")
    if owner not in OWNERS:
        raise ValueError(f"set_num_threads: owner must be one of {OWNERS}, got {owner!r}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads if owner == "blas" else 1, user_api="blas")
    _kernel_threads = threads if owner == "kernels" else 1
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def kernel_threads():
    """How many threads the direct Numba kernels split their images over (1 unless
    ``set_num_threads(n, owner="kernels")``)."""
    return _kernel_threads


def get_num_threads():
    """The threads of the pool that owns the cores: the direct kernels' when they do, else
    BLAS's, as threadpoolctl reports them (the most of any BLAS library loaded)."""
    if _kernel_threads > 1:
        return _kernel_threads
    from threadpoolctl import threadpool_info

    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"),
               default=1)
