"""Numba kernels for the CPU: the functions of ``numpy_ref`` with the same signatures and the
same results (``tests/test_numba_kernels.py`` checks each against it), fast enough to train
LeNet-5 at PyTorch's speed. Every choice below was timed against its alternatives: see
``docs/performance.md``.

Each public function is a short Python wrapper (it checks the geometry with
``geometry.output_size``, so errors read the same, allocates the outputs with NumPy and lays the
inputs out) around ``@njit`` loops that only fill arrays in. With ``NUMBA_DISABLE_JIT=1`` the
loops run as plain Python, and a debugger can step into them.

One module per op family: ``conv.py`` (direct convolution and its gradients), ``grouped.py``
(the public convolution kernels, with ``groups``: direct depthwise loops, else ``conv.py`` on
each group), ``pool.py`` (max and average pooling), ``sparse.py`` (CSR matmul), ``integer.py``
(int8 GEMM and convolution, requantization), and ``blocks.py``, the register blocks they are
built from.
``matmul`` and ``im2col`` are the reference's: BLAS and one copy, nothing a loop would win.

Threads: the loops that could run in parallel are ``prange`` loops, but ``PARALLEL`` is False.
In a training step NumPy's BLAS (the Linear layers) and Numba each keep a pool of spinning
threads; on a small machine they take turns by the scheduler's time slice, which made a LeNet-5
step 1.5-2x *slower* with ``PARALLEL = True`` (and 1.3x faster with OPENBLAS_NUM_THREADS=1).
Flip the flag and clear ``__pycache__`` to try it on yours.

Memory: the wrappers allocate every output with NumPy. Outputs this size allocated inside Numba
went back to the operating system after each training step and were faulted in again at the
next, which cost a third of the step.
"""

from minigrad.backend.numba_cpu.grouped import (conv2d_backward_input, conv2d_backward_weight,
                                                conv2d_forward)
from minigrad.backend.numba_cpu.integer import int8_conv2d, int8_gemm, requantize
from minigrad.backend.numba_cpu.pool import (avg_pool2d_backward, avg_pool2d_forward,
                                             max_pool2d_backward, max_pool2d_forward)
from minigrad.backend.numba_cpu.sparse import csr_matmul
from minigrad.backend.numpy_ref import im2col, matmul

__all__ = ["matmul", "im2col", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
           "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
           "csr_matmul", "int8_gemm", "int8_conv2d", "requantize"]
