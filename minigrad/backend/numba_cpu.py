"""Numba kernels for the CPU: the functions of ``numpy_ref`` with the same signatures and the
same results (``tests/test_numba_kernels.py`` checks each against it), fast enough to train
LeNet-5 at PyTorch's speed. Every choice below was timed against its alternatives: see
``docs/performance.md``.

Each public function is a short Python wrapper (it checks the geometry with
``numpy_ref.output_size``, so errors read the same, allocates the outputs with NumPy and lays the
inputs out) around ``@njit`` loops that only fill arrays in. With ``NUMBA_DISABLE_JIT=1`` the
loops run as plain Python, and a debugger can step into them.

Convolution, direct: "shift and add" on flattened images. For one term (c, kh, kw) of

    out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, c, i*s + kh*d, j*s + kw*d]

output plane o receives w[o,c,kh,kw] times input channel c shifted by (kh*d, kw*d). Flatten the
padded image row by row (row length U) and the shift is a single offset: output (i, j), kept at
q = i*U + j of an "extended" output, reads flat input q + kh*d*U + kw*d. So every term reads one
contiguous run of the input, and per image the convolution is a GEMM, out_ext = W @ runs, whose
rows of B are the runs: im2col's matrix, read in place instead of copied out. The extended output
has U - W_out junk columns per row (they read across the end of a row); they are computed and
dropped. (A run of W_out inputs per output row would be too short to vectorize.)

Strides: a phase split (space-to-depth) keeps the runs contiguous. With stride (s, t) the padded
image is cut into s*t phase images, phase (a, b) holding x_pad[r, u] for r % s == a and
u % t == b at (r // s, u // t). Output (i, j) reads row i*s + kh*d: row i + (kh*d) // s of a
phase with row phase (kh*d) % s, so within one phase the stride is 1 again. With stride 1 the
only phase is the padded image.

Gradients: dL/dx is the adjoint, W^T @ grad added back into the runs the forward pass read
(grad extended with zero junk columns); dL/dw[o, t] sums, over the images, the dot product of
grad plane o with the run of term t.

The three GEMMs run in 2x4 blocks (``_add_2x4_times_rows``, ``_add_dots_2x4``), so the loops are
bound by arithmetic instead of loads and stores; the operands are zero-padded to whole blocks,
and padding terms read an extra, all-zero channel. From ``BLAS_FROM_OUT_CHANNELS`` output
channels on, NumPy's BLAS, which uses every core, beats these loops, and the wrappers call the
reference (im2col + one GEMM) instead.

Pooling: a window position (kh, kw) is a flat offset too, kh*d*Wp + kw*e in the padded image
(padding -inf for max, 0 for average); one loop per output runs over its window's offsets.

GEMM: ``matmul`` is NumPy's (BLAS). ``gemm_blocked`` is the textbook cache-blocked GEMM, to read
and to compare with BLAS: C is cut into tiles of rows (one ``prange`` task each), K and N into
blocks so that a block of B stays in cache while every row of the tile uses it, and the inner
loop, in i-k-j order, adds A[i, k] * B[k, j0:j1] to the row C[i, j0:j1], contiguous and
vectorized, two rows of C and four of B at a time.

Sparse matmul: ``csr_matmul`` multiplies a CSR matrix (a pruned weight) by a dense one, one
loop order for a single column (batch 1: a dot product per row) and one for many (each stored
value times a contiguous row of X); see the comment above it.

Integer kernels (quantized inference): ``int8_gemm`` takes dot products of A's rows with B's
columns (both runs of K 8-bit codes) in 2x4 blocks, ``int8_conv2d`` is the direct convolution
above on the codes, padded with their zero point, one output channel and eight terms per pass;
both add in int32 and apply the zero points afterwards (gemmlowp's trick, see
``numpy_ref.int8_gemm``). ``requantize`` turns the accumulators into 8-bit codes in one pass.
Why these loop shapes (LLVM's choice of vector instructions decides it): see the comment above
``_int_dots_2x4`` and ``docs/performance.md``.

Threads: the loops that could run in parallel are ``prange`` loops, but ``PARALLEL`` is False.
In a training step NumPy's BLAS (the Linear layers) and Numba each keep a pool of spinning
threads; on a small machine they take turns by the scheduler's time slice, which made a LeNet-5
step 1.5-2x *slower* with ``PARALLEL = True`` (and 1.3x faster with OPENBLAS_NUM_THREADS=1).
Flip the flag and clear ``__pycache__`` to try it on yours.

Memory: the wrappers allocate every output with NumPy. Outputs this size allocated inside Numba
went back to the operating system after each training step and were faulted in again at the
next, which cost a third of the step.
"""

from functools import lru_cache

import numpy as np
from numba import njit, prange

from minigrad.backend import numpy_ref
from minigrad.backend.numpy_ref import _geometry, output_size  # noqa: F401 (re-exported)

PARALLEL = False
# From this many output channels on, the reference's single im2col GEMM is faster: BLAS runs on
# every core and is tuned far beyond these loops, which run on one.
BLAS_FROM_OUT_CHANNELS = 32

# "contract" lets LLVM fuse a*b + c into one FMA instruction; "reassoc" lets it split a sum
# across SIMD lanes (a dot product cannot vectorize otherwise). Both only change rounding.
FMA = {"contract"}
FMA_SUMS = {"contract", "reassoc"}


def matmul(a, b):
    """C = A @ B with NumPy's matmul semantics (BLAS underneath)."""
    return np.matmul(a, b)


# ------------------------------------------------------------------------ shared inner loops

@njit(inline="always")
def _add_2x4_times_rows(c0, c1, a0, a1, b0, b1, b2, b3):
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
def _add_dots_2x4(out0, out1, g0, g1, x0, x1, x2, x3):
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


def _pairs(*pairs):
    """Geometry arguments as tuples of ints (hashable, for the layout caches)."""
    return [tuple(int(v) for v in pair) for pair in pairs]


def _round_up(size, multiple):
    return size + -size % multiple


def _zero_padded(array, shape):
    """``array`` (C-contiguous) with zeros appended up to ``shape``; no copy when it fits.
    Padding to whole 2x4 blocks spares the inner loops any ragged edges (real GEMMs do the
    same when they "pack" their operands)."""
    if array.shape == shape:
        return np.ascontiguousarray(array)
    padded = np.zeros(shape, array.dtype)
    padded[tuple(slice(0, size) for size in array.shape)] = array
    return padded


# ----------------------------------------------------------------------------------- GEMM

ROW_TILE, K_BLOCK, COL_BLOCK = 32, 64, 512  # ROW_TILE even, K_BLOCK a multiple of 4


def gemm_blocked(a, b):
    """C = A @ B for 2-D float32/float64 matrices with the cache-blocked loops below."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_blocked: need matrices (M, K) @ (K, N), got {a.shape} @ {b.shape}")
    dtype = np.result_type(a, b)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"gemm_blocked: float32 or float64 only, got {a.dtype} @ {b.dtype}")
    (m, k), n = a.shape, b.shape[1]
    a_packed = _zero_padded(a.astype(dtype, copy=False), (_round_up(m, 2), _round_up(k, 4)))
    b_packed = _zero_padded(b.astype(dtype, copy=False), (_round_up(k, 4), n))
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
                        _add_2x4_times_rows(out[i, j0:j1], out[i + 1, j0:j1], a[i, k:k + 4],
                                            a[i + 1, k:k + 4], b[k, j0:j1], b[k + 1, j0:j1],
                                            b[k + 2, j0:j1], b[k + 3, j0:j1])


# ---------------------------------------------------------------------------- convolution

def _phase_size(image_hw, padding, stride):
    """Rows R and columns U of each phase image: the padded size divided by the stride, rounded
    up (the image is padded on the bottom and right to fit exactly)."""
    return tuple(-(-(size + 2 * pad) // step) for size, pad, step in zip(image_hw, padding, stride))


def _phase_split(x, padding, stride):
    """(N, C, H, W) -> (N, (C+1)*s*t, R*U): the s*t phase images of every channel, flattened
    (see the module docstring), and those of one more, all-zero channel that the padding terms
    read. Zero padding, then one reshape and one transpose do the split."""
    (n, c, h, w), (s, t) = x.shape, stride
    rows, cols = _phase_size((h, w), padding, stride)
    x_pad = np.zeros((n, c + 1, rows * s, cols * t), x.dtype)
    x_pad[:, :c, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    phases = x_pad.reshape(n, c + 1, rows, s, cols, t).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(phases).reshape(n, (c + 1) * s * t, rows * cols)


def _phase_merge(phases, x_shape, padding, stride):
    """The adjoint of ``_phase_split``: phase images back to padded images, padding dropped."""
    (n, c, h, w), (s, t) = x_shape, stride
    rows, cols = _phase_size((h, w), padding, stride)
    x_pad = phases.reshape(n, c + 1, s, t, rows, cols).transpose(0, 1, 4, 2, 5, 3)
    x_pad = x_pad.reshape(n, c + 1, rows * s, cols * t)
    return np.ascontiguousarray(x_pad[:, :c, padding[0]:padding[0] + h, padding[1]:padding[1] + w])


@lru_cache(maxsize=256)
def _conv_layout(x_shape, weight_shape, stride, padding, dilation):
    """What the kernels need to know about one convolution's shapes (the same at every step,
    so it is computed once): the output size (checked as the reference checks it), the phase
    row length U, and for each term (c, kh, kw) of the sum, in im2col's row order, the phase
    image it reads (a row of ``_phase_split``'s output) and where in it its run starts. The
    list goes on with terms of the zero channel: the padding to whole blocks reads those."""
    channels, (kh_size, kw_size), (s, t) = x_shape[1], weight_shape[2:], stride
    out_hw = _geometry(x_shape, (kh_size, kw_size), stride, padding, dilation)
    phase_w = _phase_size(x_shape[2:], padding, stride)[1]
    per_channel = kh_size * kw_size
    term = np.arange(max(_round_up(channels * per_channel, 4), (channels + 1) * per_channel))
    c = np.minimum(term // per_channel, channels)
    rh, rw = (term // kw_size % kh_size) * dilation[0], (term % kw_size) * dilation[1]
    offsets = np.stack([c * s * t + (rh % s) * t + rw % t, (rh // s) * phase_w + rw // t], axis=1)
    offsets.flags.writeable = False  # shared by every call with these shapes
    return out_hw, phase_w, offsets


@njit(inline="always")
def _run(phases, offset, length):
    """The inputs one term reads, as a contiguous view: extended output q reads entry q."""
    return phases[offset[0], offset[1]:offset[1] + length]


@njit(inline="always")
def _four_runs(phases, offsets, t, length):
    """The runs of terms t, t+1, t+2, t+3."""
    return (_run(phases, offsets[t], length), _run(phases, offsets[t + 1], length),
            _run(phases, offsets[t + 2], length), _run(phases, offsets[t + 3], length))


@njit(inline="always")
def _extended_length(out_hw, phase_w):
    """Length of an extended output plane: out_h - 1 rows of phase_w, then out_w."""
    return (out_hw[0] - 1) * phase_w + out_hw[1]


@njit(inline="always")
def _crop_extended(extended, phase_w, out):
    """out[i, j] = extended[i * phase_w + j]: the junk columns are dropped. (Loops, because
    Numba takes seconds to compile slice assignments.)"""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = extended[i * phase_w + j]


@njit(inline="always")
def _extend(plane, phase_w, extended):
    """The inverse of ``_crop_extended``, with zeros in the junk columns."""
    for q in range(extended.shape[0]):
        extended[q] = 0
    for i in range(plane.shape[0]):
        for j in range(plane.shape[1]):
            extended[i * phase_w + j] = plane[i, j]


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _conv2d_forward(phases, weight, offsets, phase_w, out):
    """Per image, acc = weight @ runs: a GEMM whose rows of B are the terms' runs.
    ``weight`` is (O, terms) padded with zeros to whole 2x4 blocks."""
    o, terms = weight.shape
    length = _extended_length(out.shape[2:], phase_w)
    for b in prange(out.shape[0]):
        acc = np.zeros((o, length), out.dtype)
        for t in range(0, terms, 4):
            x0, x1, x2, x3 = _four_runs(phases[b], offsets, t, length)
            for oc in range(0, o, 2):
                _add_2x4_times_rows(acc[oc], acc[oc + 1], weight[oc, t:t + 4],
                                    weight[oc + 1, t:t + 4], x0, x1, x2, x3)
        for oc in range(out.shape[1]):
            _crop_extended(acc[oc], phase_w, out[b, oc])


@njit(parallel=PARALLEL, cache=True, fastmath=FMA)
def _conv2d_backward_input(grad_out, weight_t, per_channel, offsets, phase_w, grad_phases):
    """Per image, every term's run of dL/dx_pad += weight[:, t] @ grad, in 2x4 blocks: two
    runs (term (c, kh, kw) and (c+1, kh, kw): runs of one channel can overlap, of two cannot)
    times four output channels. ``weight_t`` is (terms, O), zero-padded to whole channel pairs
    (the zero channel pairs with an odd last one) and to a multiple of 4 output channels."""
    terms, o = weight_t.shape
    length = _extended_length(grad_out.shape[2:], phase_w)
    for b in prange(grad_out.shape[0]):
        g = np.zeros((o, length), grad_out.dtype)
        for oc in range(grad_out.shape[1]):
            _extend(grad_out[b, oc], phase_w, g[oc])
        for pair in range(0, terms, 2 * per_channel):
            for t in range(pair, pair + per_channel):
                x0 = _run(grad_phases[b], offsets[t], length)
                x1 = _run(grad_phases[b], offsets[t + per_channel], length)
                for oc in range(0, o, 4):
                    _add_2x4_times_rows(x0, x1, weight_t[t, oc:oc + 4],
                                        weight_t[t + per_channel, oc:oc + 4], g[oc], g[oc + 1],
                                        g[oc + 2], g[oc + 3])


@njit(parallel=PARALLEL, cache=True, fastmath=FMA_SUMS)
def _conv2d_backward_weight(grad_out, phases, offsets, phase_w, grad_w):
    """grad_w[o, t] = sum over images of dot(grad plane o, run of term t), in 2x4 blocks.
    ``grad_out`` has its channels padded to an even number, ``grad_w`` is (O, terms)."""
    o, terms = grad_w.shape
    length = _extended_length(grad_out.shape[2:], phase_w)
    for pair in prange(o // 2):  # each pair of output channels owns two rows of grad_w
        oc, g = 2 * pair, np.empty((2, length), grad_out.dtype)
        for b in range(grad_out.shape[0]):
            _extend(grad_out[b, oc], phase_w, g[0])
            _extend(grad_out[b, oc + 1], phase_w, g[1])
            for t in range(0, terms, 4):
                x0, x1, x2, x3 = _four_runs(phases[b], offsets, t, length)
                _add_dots_2x4(grad_w[oc, t:t + 4], grad_w[oc + 1, t:t + 4], g[0], g[1],
                              x0, x1, x2, x3)


def _common_dtype(*arrays):
    """The arrays as C-contiguous arrays of the reference's result dtype."""
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype) for a in arrays]


def conv2d_forward(x, weight, stride, padding, dilation):
    """out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, c, i*s+kh*d, j*s+kw*d]."""
    if len(weight) >= BLAS_FROM_OUT_CHANNELS:
        return numpy_ref.conv2d_forward(x, weight, stride, padding, dilation)
    stride, padding, dilation = _pairs(stride, padding, dilation)
    out_hw, phase_w, offsets = _conv_layout(x.shape, weight.shape, stride, padding, dilation)
    x, weight = _common_dtype(x, weight)
    o = len(weight)
    weight = _zero_padded(weight.reshape(o, -1), (_round_up(o, 2), _round_up(weight[0].size, 4)))
    out = np.empty((len(x), o) + out_hw, x.dtype)
    _conv2d_forward(_phase_split(x, padding, stride), weight, offsets, phase_w, out)
    return out


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation):
    """dL/dx: every output's gradient, times the weights, added back where it was read."""
    if len(weight) >= BLAS_FROM_OUT_CHANNELS:
        return numpy_ref.conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation)
    stride, padding, dilation = _pairs(stride, padding, dilation)
    _, phase_w, offsets = _conv_layout(tuple(x_shape), weight.shape, stride, padding, dilation)
    grad_out, weight = _common_dtype(grad_out, weight)
    o, c, kh_size, kw_size = weight.shape
    weight_t = _zero_padded(weight.reshape(o, -1).T,
                            (_round_up(c, 2) * kh_size * kw_size, _round_up(o, 4)))
    rows = _phase_size(x_shape[2:], padding, stride)[0]
    grad_phases = np.zeros((x_shape[0], (x_shape[1] + 1) * stride[0] * stride[1], rows * phase_w),
                           grad_out.dtype)
    _conv2d_backward_input(grad_out, weight_t, kh_size * kw_size, offsets, phase_w, grad_phases)
    return _phase_merge(grad_phases, x_shape, padding, stride)


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation):
    """dL/dw[o, c, kh, kw] = sum_{n,i,j} grad[n, o, i, j] x_pad[n, c, i*s+kh*d, j*s+kw*d]."""
    if weight_shape[0] >= BLAS_FROM_OUT_CHANNELS:
        return numpy_ref.conv2d_backward_weight(grad_out, x, weight_shape, stride, padding,
                                                dilation)
    stride, padding, dilation = _pairs(stride, padding, dilation)
    _, phase_w, offsets = _conv_layout(x.shape, tuple(weight_shape), stride, padding, dilation)
    grad_out, x = _common_dtype(grad_out, x)
    (n, o), terms = grad_out.shape[:2], int(np.prod(weight_shape[1:]))
    grad_w = np.zeros((_round_up(o, 2), _round_up(terms, 4)), x.dtype)
    _conv2d_backward_weight(_zero_padded(grad_out, (n, _round_up(o, 2)) + grad_out.shape[2:]),
                            _phase_split(x, padding, stride), offsets, phase_w, grad_w)
    return np.ascontiguousarray(grad_w[:o, :terms]).reshape(weight_shape)


# -------------------------------------------------------------------------------- pooling

def _padded_flat(x, padding, value):
    """x with ``padding`` rows and columns of ``value`` around every image, each image
    flattened: (N, C, Hp * Wp)."""
    (n, c, h, w), (ph, pw) = x.shape, padding
    if ph == pw == 0:
        return np.ascontiguousarray(x).reshape(n, c, h * w)
    x_pad = np.full((n, c, h + 2 * ph, w + 2 * pw), value, x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad.reshape(n, c, -1)


def _padded_zeros(x_shape, padding, dtype):
    """Zeros shaped like ``_padded_flat``'s output, to add gradients into."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    return np.zeros((n, c, (h + 2 * ph) * (w + 2 * pw)), dtype)


def _unpadded(grad_flat, x_shape, padding):
    """Back to (N, C, H, W), the padding dropped: gradients that landed on it belong to no input."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    grad_pad = grad_flat.reshape(n, c, h + 2 * ph, w + 2 * pw)
    return np.ascontiguousarray(grad_pad[:, :, ph:ph + h, pw:pw + w])


@lru_cache(maxsize=256)
def _pool_layout(x_shape, kernel_hw, stride, padding, dilation):
    """Output size (checked as the reference checks it), padded row length Wp, and the flat
    offset of each window position (kh, kw) in (kh, kw) order: kh*d*Wp + kw*e."""
    out_hw = _geometry(x_shape, kernel_hw, stride, padding, dilation)
    width = x_shape[3] + 2 * padding[1]
    kh, kw = np.divmod(np.arange(kernel_hw[0] * kernel_hw[1]), kernel_hw[1])
    offsets = kh * dilation[0] * width + kw * dilation[1]
    offsets.flags.writeable = False  # shared by every call with these shapes
    return out_hw, width, offsets


@njit(inline="always")
def _window_start(i, j, stride, width):
    """Flat index in the padded image of output (i, j)'s window corner."""
    return i * stride[0] * width + j * stride[1]


@njit(parallel=PARALLEL, cache=True)
def _max_pool2d_forward(x_flat, offsets, stride, width, out, winner):
    n, c, out_h, out_w = out.shape
    for b in prange(n):
        for ch in range(c):
            image = x_flat[b, ch]
            for i in range(out_h):
                for j in range(out_w):
                    start, best, won = _window_start(i, j, stride, width), -np.inf, 0
                    for k in range(offsets.shape[0]):
                        if image[start + offsets[k]] > best:  # strictly: on ties the first wins
                            best, won = image[start + offsets[k]], k
                    out[b, ch, i, j], winner[b, ch, i, j] = best, won


@njit(parallel=PARALLEL, cache=True)
def _max_pool2d_backward(grad_out, winner, offsets, stride, width, grad_flat):
    n, c, out_h, out_w = grad_out.shape
    for b in prange(n):
        for ch in range(c):
            for i in range(out_h):
                for j in range(out_w):
                    start = _window_start(i, j, stride, width)
                    grad_flat[b, ch, start + offsets[winner[b, ch, i, j]]] += grad_out[b, ch, i, j]


@njit(parallel=PARALLEL, cache=True)
def _avg_pool2d_forward(x_flat, offsets, stride, width, out):
    n, c, out_h, out_w = out.shape
    for b in prange(n):
        for ch in range(c):
            image = x_flat[b, ch]
            for i in range(out_h):
                for j in range(out_w):
                    start, total = _window_start(i, j, stride, width), x_flat.dtype.type(0)
                    for k in range(offsets.shape[0]):
                        total += image[start + offsets[k]]
                    out[b, ch, i, j] = total / offsets.shape[0]


@njit(parallel=PARALLEL, cache=True)
def _avg_pool2d_backward(grad_out, offsets, stride, width, grad_flat):
    n, c, out_h, out_w = grad_out.shape
    for b in prange(n):
        for ch in range(c):
            grad_image = grad_flat[b, ch]
            for i in range(out_h):
                for j in range(out_w):
                    start = _window_start(i, j, stride, width)
                    share = grad_out[b, ch, i, j] / offsets.shape[0]
                    for k in range(offsets.shape[0]):
                        grad_image[start + offsets[k]] += share


def max_pool2d_forward(x, kernel_hw, stride, padding, dilation):
    """out = max over each window, and the winning offset kh*KW + kw (first max wins; the
    padding is -inf, so it never wins)."""
    kernel_hw, stride, padding, dilation = _pairs(kernel_hw, stride, padding, dilation)
    out_hw, width, offsets = _pool_layout(x.shape, kernel_hw, stride, padding, dilation)
    out = np.empty(x.shape[:2] + out_hw, x.dtype)
    winner = np.empty(out.shape, np.int64)
    _max_pool2d_forward(_padded_flat(x, padding, -np.inf), offsets, stride, width, out, winner)
    return out, winner


def max_pool2d_backward(grad_out, winner, x_shape, kernel_hw, stride, padding, dilation):
    """The whole gradient of each output goes to the input that won its window."""
    kernel_hw, stride, padding, dilation = _pairs(kernel_hw, stride, padding, dilation)
    _, width, offsets = _pool_layout(tuple(x_shape), kernel_hw, stride, padding, dilation)
    grad_flat = _padded_zeros(x_shape, padding, grad_out.dtype)
    _max_pool2d_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(winner), offsets,
                         stride, width, grad_flat)
    return _unpadded(grad_flat, x_shape, padding)


def avg_pool2d_forward(x, kernel_hw, stride, padding):
    """out = (1 / (KH*KW)) * sum over the window, zero padding included in the count."""
    kernel_hw, stride, padding = _pairs(kernel_hw, stride, padding)
    out_hw, width, offsets = _pool_layout(x.shape, kernel_hw, stride, padding, (1, 1))
    out = np.empty(x.shape[:2] + out_hw, x.dtype)
    _avg_pool2d_forward(_padded_flat(x, padding, 0), offsets, stride, width, out)
    return out


def avg_pool2d_backward(grad_out, x_shape, kernel_hw, stride, padding):
    """Each input in a window receives 1 / (KH*KW) of that window's gradient."""
    kernel_hw, stride, padding = _pairs(kernel_hw, stride, padding)
    _, width, offsets = _pool_layout(tuple(x_shape), kernel_hw, stride, padding, (1, 1))
    grad_flat = _padded_zeros(x_shape, padding, grad_out.dtype)
    _avg_pool2d_backward(np.ascontiguousarray(grad_out), offsets, stride, width, grad_flat)
    return _unpadded(grad_flat, x_shape, padding)


# ------------------------------------------------------------------ sparse (CSR) matmul
#
# Y = A @ X with A in CSR form (see ``numpy_ref.csr_matmul``); two loop orders, timed in
# ``docs/performance.md``:
#
# * few columns in X (batch 1): one dot product per row of A and column of X, reading X's
#   column as a contiguous row of X^T. The dot gathers x[indices[j]]: three loads per stored
#   value, summed into four accumulators so that four multiply-adds are in flight (one sum
#   would wait on the previous add each time). "reassoc" would let LLVM vectorize the loop with
#   gather instructions instead, which were 2.3x slower on the AMD EPYC (Zen 4) we measured.
# * many columns (a batch): row i of Y is the sum of data[j] * X[indices[j], :], whole rows of
#   X (X laid out C-contiguous, K x B), four stored values per pass over Y's row: the inner loop
#   runs over B contiguous values and vectorizes, as in ``_add_2x4_times_rows``.
#
# The index is cast to unsigned before it is used: column indices are never negative, and an
# unsigned index spares Numba's test for Python's negative indexing (a third of the dot's time).

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
    numpy_ref.check_csr_operands("csr_matmul", data, indices, indptr, n_rows, x)
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


# ------------------------------------------------------------------ integer (int8) kernels
#
# The same results as ``numpy_ref.int8_gemm`` / ``int8_conv2d`` (exact int32), timed in
# ``docs/performance.md``. Two facts about how LLVM compiles integer loops shape them:
#
# * Numba computes int8 * int8 in int64 (it widens integers as Python would). Storing into an
#   int32 array, or wrapping a running sum in np.int32(...), lets LLVM narrow the arithmetic
#   back to 32-bit lanes, where it uses vpmaddwd / vpdpwssd (16-bit multiplies added into
#   32-bit lanes). It did so for a single output row (``_add_8_int_rows``) and for blocks of
#   dot products (``_int_dots_2x4``), but not for the float kernels' 2x4 shape
#   (``_add_2x4_times_rows``: two output rows), which it computed in 64-bit lanes, 1.7x slower.
# * Integer addition is associative, so a dot product vectorizes with no fastmath flag.
#
# Neither loop shape got the 8-bit instructions (vpdpbusd: 64 multiply-adds per instruction)
# or 16-bit pairs packed two to a lane: 16 multiply-adds per instruction, as for float32.

@njit(inline="always")
def _int_dots_2x4(out0, out1, a0, a1, b0, b1, b2, b3):
    """out_r[c] += dot(a_r, b_c) for two rows of A and four of B^T, each summed in int32 (a
    wrapping sum: exact whenever the final value fits int32)."""
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.int32(0)
    for k in range(a0.shape[0]):
        x0, x1 = np.int32(a0[k]), np.int32(a1[k])
        u0, u1, u2, u3 = np.int32(b0[k]), np.int32(b1[k]), np.int32(b2[k]), np.int32(b3[k])
        s00, s01 = np.int32(s00 + x0 * u0), np.int32(s01 + x0 * u1)
        s02, s03 = np.int32(s02 + x0 * u2), np.int32(s03 + x0 * u3)
        s10, s11 = np.int32(s10 + x1 * u0), np.int32(s11 + x1 * u1)
        s12, s13 = np.int32(s12 + x1 * u2), np.int32(s13 + x1 * u3)
    sums = (s00, s01, s02, s03, s10, s11, s12, s13)
    for c in range(4):
        out0[c] += sums[c]
        out1[c] += sums[4 + c]


@njit(inline="always")
def _int_dot(a, b):
    """dot(a, b) summed in int32."""
    total = np.int32(0)
    for k in range(a.shape[0]):
        total = np.int32(total + np.int32(a[k]) * np.int32(b[k]))
    return total


@njit(parallel=PARALLEL, cache=True)
def _int8_gemm(a, b_t, out):
    """out[i, j] += dot(a[i], b_t[j]): 2x4 blocks, then single dots for the last odd row and
    the last N % 4 columns (no padded copies of A: it changes at every call)."""
    m, n = a.shape[0], b_t.shape[0]
    n4 = n - n % 4
    for pair in prange(m // 2):
        i = 2 * pair
        for j in range(0, n4, 4):
            _int_dots_2x4(out[i, j:j + 4], out[i + 1, j:j + 4], a[i], a[i + 1], b_t[j],
                          b_t[j + 1], b_t[j + 2], b_t[j + 3])
        for j in range(n4, n):
            out[i, j] += _int_dot(a[i], b_t[j])
            out[i + 1, j] += _int_dot(a[i + 1], b_t[j])
    for i in range(m - m % 2, m):
        for j in range(n):
            out[i, j] += _int_dot(a[i], b_t[j])


def int8_gemm(a, b, a_zero_point=0, b_zero_point=0, bias=None):
    """C = (A - z_a) @ (B - z_b) (+ bias) as int32 (see ``numpy_ref.int8_gemm``). C starts at
    the zero-point corrections and the bias; the loops add the dot products of A's rows with
    B's columns, so B is read as B^T, rows of K: pass a Linear weight W (N, K) as ``W.T``, a
    free view."""
    numpy_ref.check_int8_gemm_operands("int8_gemm", a, b, a_zero_point, b_zero_point, bias)
    za, zb, k = int(a_zero_point), int(b_zero_point), a.shape[1]
    column = k * za * zb - za * b.sum(axis=0, dtype=np.int32)
    if bias is not None:
        column = column + bias
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    out[:] = column
    if zb:
        out -= zb * a.sum(axis=1, dtype=np.int32)[:, None]
    _int8_gemm(np.ascontiguousarray(a), np.ascontiguousarray(b.T), out)
    return out


@njit(inline="always")
def _add_8_int_rows(c, w, x0, x1, x2, x3, x4, x5, x6, x7):
    """c += w[0] x0 + ... + w[7] x7 for one int32 output row and eight rows of inputs. (The
    weights are made int32 for plain Python, where int8 * uint8 would be an int16 product and
    a sum of eight could wrap.)"""
    w0, w1, w2, w3 = np.int32(w[0]), np.int32(w[1]), np.int32(w[2]), np.int32(w[3])
    w4, w5, w6, w7 = np.int32(w[4]), np.int32(w[5]), np.int32(w[6]), np.int32(w[7])
    for q in range(c.shape[0]):
        c[q] += (w0 * x0[q] + w1 * x1[q] + w2 * x2[q] + w3 * x3[q]
                 + w4 * x4[q] + w5 * x5[q] + w6 * x6[q] + w7 * x7[q])


@njit(inline="always")
def _add_4_int_rows(c, w, x0, x1, x2, x3):
    """The last four terms when their number is 4 mod 8 (LeNet's 25 -> 28, not 32)."""
    w0, w1, w2, w3 = np.int32(w[0]), np.int32(w[1]), np.int32(w[2]), np.int32(w[3])
    for q in range(c.shape[0]):
        c[q] += w0 * x0[q] + w1 * x1[q] + w2 * x2[q] + w3 * x3[q]


@njit(parallel=PARALLEL, cache=True)
def _int8_conv2d(phases, weight, offsets, phase_w, constant, out):
    """Per image, acc = constant + weight @ runs, like ``_conv2d_forward`` but one output
    channel and eight terms per pass (see ``_add_8_int_rows``). ``weight`` is (O, terms), terms
    padded with zeros to a multiple of 4."""
    o, terms = weight.shape
    length = _extended_length(out.shape[2:], phase_w)
    whole = terms - terms % 8
    for b in prange(out.shape[0]):
        acc = np.empty((o, length), np.int32)
        for oc in range(o):
            for q in range(length):
                acc[oc, q] = constant[oc]
        for t in range(0, whole, 8):
            x0, x1, x2, x3 = _four_runs(phases[b], offsets, t, length)
            x4, x5, x6, x7 = _four_runs(phases[b], offsets, t + 4, length)
            for oc in range(o):
                _add_8_int_rows(acc[oc], weight[oc, t:t + 8], x0, x1, x2, x3, x4, x5, x6, x7)
        if whole < terms:
            x0, x1, x2, x3 = _four_runs(phases[b], offsets, whole, length)
            for oc in range(o):
                _add_4_int_rows(acc[oc], weight[oc, whole:whole + 4], x0, x1, x2, x3)
        for oc in range(o):
            _crop_extended(acc[oc], phase_w, out[b, oc])


def int8_conv2d(x, weight, x_zero_point, stride, padding, dilation, bias=None):
    """int32 accumulators of a convolution of int8/uint8 codes with int8 weights (see
    ``numpy_ref.int8_conv2d``), computed directly (no im2col copy): the input is padded with
    its zero point, each sum taken over the raw codes, and z_x * (the channel's weight sum)
    subtracted: sum w (x - z_x) = sum w x - z_x sum w."""
    numpy_ref.check_int8_conv2d_operands("int8_conv2d", x, weight, x_zero_point, stride,
                                         padding, dilation, bias)
    stride, padding, dilation = _pairs(stride, padding, dilation)
    x_pad = numpy_ref._pad(x, padding, value=x_zero_point)
    out_hw, phase_w, offsets = _conv_layout(x_pad.shape, weight.shape, stride, (0, 0), dilation)
    o, terms = weight.shape[0], weight[0].size
    flat = weight.reshape(o, -1)
    constant = -int(x_zero_point) * flat.sum(axis=1, dtype=np.int32)
    if bias is not None:
        constant = constant + bias
    out = np.empty((x.shape[0], o) + out_hw, np.int32)
    _int8_conv2d(_phase_split(x_pad, (0, 0), stride), _zero_padded(flat, (o, _round_up(terms, 4))),
                 offsets, phase_w, constant.astype(np.int32), out)
    return out


@njit(parallel=PARALLEL, cache=True)
def _requantize(acc, m0, total_shift, zero_point, qmin, qmax, out):
    """out[b, c, q] = clamp(round(acc * M0[c] / 2^total_shift[c]) + z, qmin, qmax), the
    rounding half to even done as in ``fixed_point.rounding_right_shift`` (total shift >= 1)."""
    for b in prange(acc.shape[0]):
        for c in range(acc.shape[1]):
            multiplier, shift = m0[c], total_shift[c]
            half = np.int64(1) << (shift - 1)
            for q in range(acc.shape[2]):
                x = np.int64(acc[b, c, q]) * multiplier
                floor = x >> shift
                remainder = x - (floor << shift)
                up = (remainder > half) | ((remainder == half) & ((floor & 1) == 1))
                out[b, c, q] = min(max(floor + np.int64(up) + zero_point, qmin), qmax)


def requantize(acc, m0, shift, zero_point, qmin, qmax):
    """``numpy_ref.requantize`` (the same codes, bit for bit) in one pass over acc."""
    from minigrad.quant import fixed_point  # here: minigrad.quant imports the layers
    if acc.dtype != np.int32 or acc.ndim < 2:
        raise TypeError(f"requantize: acc must be int32 of shape (N, C, ...), got {acc.dtype} "
                        f"{acc.shape}")
    m0, shift = fixed_point.check_fixed_point("requantize", m0, shift)
    channels = acc.shape[1]
    m0, total = (np.ascontiguousarray(np.broadcast_to(v, (channels,)))
                 for v in (m0, shift + fixed_point.FRACTION_BITS))
    out = np.empty(acc.shape, fixed_point.storage_dtype(int(qmin), int(qmax)))
    _requantize(np.ascontiguousarray(acc).reshape(len(acc), channels, -1), m0, total,
                int(zero_point), int(qmin), int(qmax), out.reshape(len(acc), channels, -1))
    return out
