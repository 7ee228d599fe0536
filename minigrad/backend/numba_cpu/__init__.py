"""Numba kernels for the CPU: the functions of ``numpy_ref`` with the same signatures and the
same results (``tests/test_numba_kernels.py`` checks each against it), fast enough to train
LeNet-5 at PyTorch's speed. Every choice below was timed against its alternatives: see
``docs/performance.md``.

Each public function is a short Python wrapper (it checks the geometry with
``geometry.output_size``, so errors read the same, allocates the outputs with NumPy and lays the
inputs out) around ``@njit`` loops that only fill arrays in. With ``NUMBA_DISABLE_JIT=1`` the
loops run as plain Python, and a debugger can step into them.

One module per op family: ``conv.py`` (direct convolution and its gradients),
``gemm_conv.py`` (im2col per chunk of images + BLAS, for 32 output channels and more),
``grouped.py`` (groups: direct depthwise loops, else conv.py per group), ``pool.py`` (max and
average pooling), ``sparse.py`` (CSR matmul), ``integer.py`` (int8 GEMM and convolution,
requantization), ``elementwise.py`` (erf), and ``blocks.py``, the register blocks they are built from.
``matmul`` and ``im2col`` are the reference's: BLAS and one copy, nothing a loop would win.

Threads: one owner at a time. By default BLAS owns the cores and every Numba loop runs on one
(the ``prange`` loops are compiled with ``PARALLEL`` False: Numba's OpenMP pool and BLAS's both
kept spinning threads, and on 2 cores they took turns by the scheduler's time slice).
``backend.set_num_threads(n, owner="kernels")`` gives the cores to the direct kernels instead
(``blocks.over_images``: the batch split over Python threads calling ``nogil`` kernels) and
BLAS one thread; ``backend.set_num_threads(1)`` is up to 2x faster where another process keeps
a core busy (docs/performance.md, "Threads").

Memory: the wrappers allocate every output with NumPy. Outputs this size allocated inside Numba
went back to the operating system after each training step and were faulted in again at the
next, which cost a third of the step.
"""

from minigrad.backend.numba_cpu.elementwise import erf
from minigrad.backend.numba_cpu.grouped import (conv2d_backward_input, conv2d_backward_weight,
                                                conv2d_forward)
from minigrad.backend.numba_cpu.integer import int8_conv2d, int8_gemm, requantize
from minigrad.backend.numba_cpu.pool import (avg_pool2d_backward, avg_pool2d_forward,
                                             max_pool2d_backward, max_pool2d_forward)
from minigrad.backend.numba_cpu.sparse import csr_matmul
from minigrad.backend.numpy_ref import im2col, matmul

__all__ = ["matmul", "erf", "im2col", "conv2d_forward", "conv2d_backward_input",
           "conv2d_backward_weight", "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
           "csr_matmul", "int8_gemm", "int8_conv2d", "requantize"]
