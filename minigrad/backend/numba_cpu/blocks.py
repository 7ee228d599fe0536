"""The pieces every GEMM-shaped Numba loop here is built from: 2x4 register blocks, the
zero padding of operands to whole blocks, and the compiler flags the loops are built with.

A 2x4 block keeps two rows of C and four of B in registers, so each value loaded feeds two
multiply-adds (``add_2x4_times_rows``: C += A @ B one row at a time; ``add_dots_2x4``: eight
dot products at once). The convolution kernels (``conv.py``) and the cache-blocked GEMM in
``benchmarks/gemm_blocked.py`` use them.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from minigrad.backend.threads import kernel_threads

# Compile the prange loops serially: Numba's OpenMP pool would fight BLAS's for the cores
# (docs/performance.md, "Threads"). The direct kernels split their images over Python threads
# instead (``over_images``), when ``backend.set_num_threads(n, owner="kernels")`` asks.
PARALLEL = False

# "contract" lets LLVM fuse a*b + c into one FMA instruction; "reassoc" lets it split a sum
# across SIMD lanes (a dot product cannot vectorize otherwise). Both only change rounding.
FMA = {"contract"}
FMA_SUMS = {"contract", "reassoc"}


def common_dtype(*arrays):
    """The arrays as C-contiguous arrays of their common dtype (NumPy's result type, the
    reference's)."""
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype) for a in arrays]


@njit(inline="always")
def add_2x4_times_rows(c0, c1, a0, a1, b0, b1, b2, b3):
    """[c0; c1] += [a0; a1] @ [b0; b1; b2; b3] for a 2x4 block of A (rows a0, a1 of length 4)
    and four rows of B: each b value loaded feeds two multiply-adds, each c value is loaded and
    stored once per four. With one multiply-add per load and store (c += a * b) the loop would
    wait on memory. (Blocks are passed as 1-D rows: 2-D slices took seconds more to compile.)"""
    a00, a01, a02, a03 = a0[0], a0[1], a0[2], a0[3]
    a10, a11, a12, a13 = a1[0], a1[1], a1[2], a1[3]
    for q in range(c0.shape[0]):
        u0, u1, u2, u3 = b0[q], b1[q], b2[q], b3[q]
        c0[q] += a00 * u0 + a01 * u1 + a02 * u2 + a03 * u3
        c1[q] += a10 * u0 + a11 * u1 + a12 * u2 + a13 * u3


@njit(inline="always")
def add_dots_2x4(out0, out1, g0, g1, x0, x1, x2, x3):
    """out_i[k] += dot(g_i, x_k) for a 2x4 block (rows out0, out1): six loads feed eight
    products."""
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = g0.dtype.type(0)
    for q in range(g0.shape[0]):
        u0, u1, u2, u3 = x0[q], x1[q], x2[q], x3[q]
        s00 += g0[q] * u0
        s01 += g0[q] * u1
        s02 += g0[q] * u2
        s03 += g0[q] * u3
        s10 += g1[q] * u0
        s11 += g1[q] * u1
        s12 += g1[q] * u2
        s13 += g1[q] * u3
    out0[0] += s00
    out0[1] += s01
    out0[2] += s02
    out0[3] += s03
    out1[0] += s10
    out1[1] += s11
    out1[2] += s12
    out1[3] += s13


def pairs(*pairs):
    """Geometry arguments as tuples of ints (hashable, for the layout caches)."""
    return [tuple(int(v) for v in pair) for pair in pairs]


def round_up(size, multiple):
    return size + -size % multiple


def zero_padded(array, shape):
    """``array`` (C-contiguous) with zeros appended up to ``shape``; no copy when it fits.
    Padding to whole 2x4 blocks spares the inner loops any ragged edges (real GEMMs do the
    same when they "pack" their operands)."""
    if array.shape == shape:
        return np.ascontiguousarray(array)
    padded = np.zeros(shape, array.dtype)
    padded[tuple(slice(0, size) for size in array.shape)] = array
    return padded


_pool = []  # one ThreadPoolExecutor, made at the first parallel call


def image_parts(images):
    """How many parts ``over_images`` cuts a batch of ``images`` into."""
    return max(1, min(images, kernel_threads()))


def over_images(run, images):
    """Call run(part, slice) for ``backend.threads.kernel_threads()`` equal slices of the
    batch, range(images), one per thread, and return how many parts there were. The calling
    thread takes part 0 and pool threads the others; ``run`` calls an ``@njit(nogil=True)``
    kernel, which releases Python's lock, so the parts run at the same time. Kernels whose
    parts add into one result (dL/dw) give each part its own array and sum them after."""
    parts = image_parts(images)
    bounds = [images * k // parts for k in range(parts + 1)]
    slices = [slice(bounds[k], bounds[k + 1]) for k in range(parts)]
    if parts > 1 and not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1)))
    futures = [_pool[0].submit(run, k, part) for k, part in enumerate(slices[1:], 1)]
    run(0, slices[0])
    for future in futures:
        future.result()  # re-raises what the part raised
    return parts
