"""Numba convolution for many channels: im2col per chunk of images, then NumPy's BLAS, in NCHW
throughout.

    out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, c, i*s + kh*d, j*s + kw*d]

is, per image n, one matrix product out[n] (O, H_out*W_out) = W (O, C*KH*KW) @ cols[n]
(C*KH*KW, H_out*W_out), row (c, kh, kw) of cols[n] holding x_pad[n, c, i*s + kh*d, j*s + kw*d]
at column i*W_out + j. With cols laid out (N, C*KH*KW, H_out*W_out), one batched ``np.matmul``
writes the output straight into NCHW: unlike the reference's single (O, N*H_out*W_out) product,
nothing is transposed afterwards. The copy into cols is a Numba loop over contiguous runs of a
zero-padded input, and it runs a chunk of images at a time (``CHUNK_BYTES``), so the product
reads cols from the cache instead of memory.

Gradients, with g[n] = dL/dout[n] as an (O, H_out*W_out) matrix:

    dL/dW = sum_n g[n] @ cols[n]^T
    dL/dx = col2im(W^T @ g[n]) for every n: each entry added back where im2col read it.

At stride 1 (and padding p <= d(K-1)) dL/dx is itself a convolution, with no col2im:

    dL/dx[n, c, y, z] = sum_{o,kh,kw} w[o, c, KH-1-kh, KW-1-kw] g_pad[n, o, y + kh*d, z + kw*d]

where g is zero-padded by d(K-1) - p: the weights flipped in both spatial axes and transposed
(O <-> C), the gradient padded. ``conv.py`` chooses between this module and the direct loops.
"""

import numpy as np
from numba import njit

from minigrad.backend.geometry import output_hw

# im2col's matrix is made and used in chunks of about this many bytes, which stay in the cache
# between the copy and the product.
CHUNK_BYTES = 2 << 20


def _padded(x, padding):
    """x with ``padding`` zeros on both sides of H and W (x itself when there are none)."""
    (ph, pw), (h, w) = padding, x.shape[2:]
    if ph == 0 and pw == 0:
        return np.ascontiguousarray(x)
    x_pad = np.zeros(x.shape[:2] + (h + 2 * ph, w + 2 * pw), x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad


@njit(inline="always")
def _gather(src, step, dst, start, length):
    """dst[start + j] = src[j * step] for j < length. Called with ``step`` a literal 1 or 2,
    which LLVM then vectorizes (a run-time step made im2col 2.3x slower at stride 2)."""
    for j in range(length):
        dst[start + j] = src[j * step]


@njit(inline="always")
def _scatter_add(src, start, length, step, dst):
    """dst[j * step] += src[start + j] for j < length: the adjoint of ``_gather``."""
    for j in range(length):
        dst[j * step] += src[start + j]


@njit(cache=True)
def _im2col(x_pad, kernel_hw, stride, dilation, out_hw, cols):
    """cols[n, (c, kh, kw), i*W_out + j] = x_pad[n, c, i*s + kh*d, j*t + kw*e]."""
    (kh_size, kw_size), (s, t), (d, e), (out_h, out_w) = kernel_hw, stride, dilation, out_hw
    for b in range(x_pad.shape[0]):
        for c in range(x_pad.shape[1]):
            image = x_pad[b, c]
            for kh in range(kh_size):
                for kw in range(kw_size):
                    row = cols[b, (c * kh_size + kh) * kw_size + kw]
                    for i in range(out_h):
                        src = image[i * s + kh * d, kw * e:]
                        if t == 1:
                            _gather(src, 1, row, i * out_w, out_w)
                        elif t == 2:
                            _gather(src, 2, row, i * out_w, out_w)
                        else:
                            _gather(src, t, row, i * out_w, out_w)


@njit(cache=True)
def _col2im(cols, kernel_hw, stride, dilation, out_hw, grad_pad):
    """The adjoint of ``_im2col``: grad_pad[n, c, i*s + kh*d, j*t + kw*e] += cols[...]."""
    (kh_size, kw_size), (s, t), (d, e), (out_h, out_w) = kernel_hw, stride, dilation, out_hw
    for b in range(grad_pad.shape[0]):
        for c in range(grad_pad.shape[1]):
            image = grad_pad[b, c]
            for kh in range(kh_size):
                for kw in range(kw_size):
                    row = cols[b, (c * kh_size + kh) * kw_size + kw]
                    for i in range(out_h):
                        dst = image[i * s + kh * d, kw * e:]
                        if t == 1:
                            _scatter_add(row, i * out_w, out_w, 1, dst)
                        elif t == 2:
                            _scatter_add(row, i * out_w, out_w, 2, dst)
                        else:
                            _scatter_add(row, i * out_w, out_w, t, dst)


def _chunks(n, rows, columns, dtype):
    """Slices of the batch of at most CHUNK_BYTES of cols each (at least one image), and one
    buffer that holds the cols of the largest, for every chunk of the call to reuse."""
    images = max(1, CHUNK_BYTES // (rows * columns * np.dtype(dtype).itemsize))
    buffer = np.empty(min(images, n) * rows * columns, dtype)
    return [slice(b, min(b + images, n)) for b in range(0, n, images)], buffer


def _view(buffer, shape):
    """The first entries of ``buffer`` as an array of ``shape``."""
    return buffer[:int(np.prod(shape))].reshape(shape)


def _is_pointwise(kernel_hw, stride, padding):
    """A 1x1 kernel at stride 1 without padding: cols[n] is x[n] itself, (C, H*W)."""
    return kernel_hw == (1, 1) and stride == (1, 1) and padding == (0, 0)


def conv2d_forward(x, weight, stride, padding, dilation):
    """out[n] = W @ cols[n], chunk by chunk, written straight into NCHW. Arguments as in
    ``conv.conv2d_forward``: C-contiguous arrays of one dtype, geometry as tuples of ints."""
    (n, c), (o, kernel_hw) = x.shape[:2], (weight.shape[0], weight.shape[2:])
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, dilation)
    out = np.empty((n, o) + out_hw, x.dtype)
    out_mat, weight_mat = out.reshape(n, o, -1), weight.reshape(o, -1)
    if _is_pointwise(kernel_hw, stride, padding):
        return np.matmul(weight_mat, x.reshape(n, c, -1), out=out_mat).reshape(out.shape)
    x_pad, rows, columns = _padded(x, padding), weight_mat.shape[1], out_mat.shape[2]
    chunks, buffer = _chunks(n, rows, columns, x.dtype)
    for chunk in chunks:
        cols = _view(buffer, (chunk.stop - chunk.start, rows, columns))
        _im2col(x_pad[chunk], kernel_hw, stride, dilation, out_hw, cols)
        np.matmul(weight_mat, cols, out=out_mat[chunk])
    return out


def flipped_weight(weight):
    """w'[c, o, kh, kw] = w[o, c, KH-1-kh, KW-1-kw]: the weights of dL/dx as a convolution."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def backward_input_is_a_convolution(weight_shape, stride, padding, dilation):
    """Where dL/dx is computed as a forward convolution: stride 1, padding p <= d(K-1) on both
    axes (a larger p would need negative padding), and fewer output than input channels (its
    cols has O*KH*KW rows, col2im's C*KH*KW; at O = C the two took the same time)."""
    return (stride == (1, 1) and weight_shape[0] < weight_shape[1]
            and all(p <= d * (k - 1) for p, d, k in zip(padding, dilation, weight_shape[2:])))


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation):
    """dL/dx: a forward convolution with the flipped weights where
    ``backward_input_is_a_convolution``, else col2im(W^T @ g[n]), chunk by chunk."""
    (o, c), kernel_hw = weight.shape[:2], weight.shape[2:]
    if backward_input_is_a_convolution(weight.shape, stride, padding, dilation):
        grad_padding = tuple(d * (k - 1) - p for p, d, k in zip(padding, dilation, kernel_hw))
        return conv2d_forward(grad_out, flipped_weight(weight), (1, 1), grad_padding, dilation)
    n, out_hw = x_shape[0], grad_out.shape[2:]
    weight_t, grad_mat = weight.reshape(o, -1).T, grad_out.reshape(n, o, -1)
    (h, w), (ph, pw) = x_shape[2:], padding
    grad_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), grad_out.dtype)
    chunks, buffer = _chunks(n, weight_t.shape[0], grad_mat.shape[2], grad_out.dtype)
    for chunk in chunks:
        cols = _view(buffer, (chunk.stop - chunk.start,) + weight_t.shape[:1] + grad_mat.shape[2:])
        np.matmul(weight_t, grad_mat[chunk], out=cols)
        _col2im(cols, kernel_hw, stride, dilation, out_hw, grad_pad[chunk])
    return np.ascontiguousarray(grad_pad[:, :, ph:ph + h, pw:pw + w])


# Below this many output positions per image, dL/dW takes one product per chunk of images
# instead of one per image: a product whose inner dimension is so short runs slowly.
DW_PER_CHUNK_BELOW_POSITIONS = 128


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation):
    """dL/dW = sum_n g[n] @ cols[n]^T: one product per image, or for small images one per
    chunk of B images, (O, B*H_out*W_out) @ (B*H_out*W_out, C*KH*KW), with cols written as
    (C*KH*KW, B, H_out*W_out) and the gradient's chunk transposed to match."""
    (n, o), kernel_hw = grad_out.shape[:2], tuple(weight_shape[2:])
    rows, columns = int(np.prod(weight_shape[1:])), grad_out.shape[2] * grad_out.shape[3]
    grad_w, grad_mat = np.zeros((o, rows), x.dtype), grad_out.reshape(n, o, -1)
    per_chunk = columns < DW_PER_CHUNK_BELOW_POSITIONS
    x_pad, pointwise = _padded(x, padding), _is_pointwise(kernel_hw, stride, padding)
    chunks, buffer = _chunks(n, rows, columns, x.dtype)
    for chunk in chunks:
        images = chunk.stop - chunk.start
        if pointwise:
            cols = x[chunk].reshape(images, rows, columns)
        else:
            cols = _view(buffer, (rows, images, columns) if per_chunk else (images, rows, columns))
            cols = cols.transpose(1, 0, 2) if per_chunk else cols
            _im2col(x_pad[chunk], kernel_hw, stride, dilation, grad_out.shape[2:], cols)
        if per_chunk:
            grad_chunk = grad_mat[chunk].transpose(1, 0, 2).reshape(o, -1)
            grad_w += grad_chunk @ cols.transpose(1, 0, 2).reshape(rows, -1).T
        else:
            grad_w += np.matmul(grad_mat[chunk], cols.transpose(0, 2, 1)).sum(axis=0)
    return grad_w.reshape(weight_shape)
