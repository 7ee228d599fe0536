"""Reference kernels: convolution and pooling written with array slicing, readable first.

These are the kernels every faster backend is tested against. They use only the array
module of their inputs (``xp``), so they run on NumPy arrays and, unchanged, on CuPy arrays.

Shapes: images are NCHW (batch, channels, height, width); conv weights are (O, C/G, KH, KW),
G = ``groups``: output channel o, of group g = o // (O/G), reads input channels g*C/G + c, c < C/G.
Every window op shares one piece of index math. With stride s, padding p and dilation d along
an axis of size H and a kernel of size K, output position i reads the padded input at

    i*s + k*d,   k = 0 .. K-1,      and there are  H_out = (H + 2p - d(K-1) - 1) // s + 1

output positions. So for a fixed kernel offset (kh, kw), the positions read by all outputs form
one strided slice of the padded input, ``x_pad[..., kh*d : kh*d + s*(H_out-1) + 1 : s, ...]``.
The kernels loop over the KH*KW offsets and do whole-array work for each:

* im2col stacks the KH*KW slices into a matrix, so a convolution becomes one matrix product:
      out[n, o, i, j] = sum_{c, kh, kw} w[o, c, kh, kw] * x_pad[n, c, i*s + kh*d, j*s + kw*d]
* col2im is its adjoint: it adds each slice of a gradient matrix back into the padded input
  (adding, because neighbouring windows overlap), then drops the padding.
* pooling takes the max (or mean) over the KH*KW slices instead of a weighted sum.
"""

import math

import numpy as np

from minigrad.backend import array_module, fixed_point, lowest_value
from minigrad.backend.fixed_point import check_int8_conv2d_operands, check_int8_gemm_operands
from minigrad.backend.geometry import output_hw


def _offsets(kernel_hw, out_hw, stride, dilation):
    """For each kernel offset (kh, kw): the strided slices of the padded input it reads."""
    (kh_size, kw_size), (out_h, out_w) = kernel_hw, out_hw
    for kh in range(kh_size):
        rows = slice(kh * dilation[0], kh * dilation[0] + stride[0] * (out_h - 1) + 1, stride[0])
        for kw in range(kw_size):
            cols = slice(kw * dilation[1], kw * dilation[1] + stride[1] * (out_w - 1) + 1,
                         stride[1])
            yield kh, kw, (Ellipsis, rows, cols)


def pad(x, padding, value=0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    return array_module(x).pad(x, widths, mode="constant", constant_values=value)


def _padded_zeros(xp, x_shape, padding, dtype):
    """Zeros shaped like the padded input, to add gradients into."""
    n, c, h, w = x_shape
    return xp.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), dtype=dtype)


def _unpad(x_pad, x_shape, padding):
    """Drop the padding again: gradients that landed on it belong to no input."""
    h, w = x_shape[-2:]
    return x_pad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def im2col(x, kernel_hw, stride, padding, dilation):
    """(N, C, H, W) -> cols of shape (C*KH*KW, N*H_out*W_out), and (H_out, W_out).

    Row (c, kh, kw) of ``cols`` holds x_pad[n, c, i*s + kh*d, j*s + kw*d] for every (n, i, j).
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, dilation)
    x_pad = pad(x, padding)
    cols = xp.empty((c, kernel_hw[0], kernel_hw[1], n) + out_hw, dtype=x.dtype)
    for kh, kw, window in _offsets(kernel_hw, out_hw, stride, dilation):
        cols[:, kh, kw] = x_pad[window].transpose(1, 0, 2, 3)
    return cols.reshape(c * kernel_hw[0] * kernel_hw[1], -1), out_hw


def col2im(cols, x_shape, kernel_hw, stride, padding, dilation):
    """The adjoint of im2col: add every entry of ``cols`` back where im2col read it from."""
    xp = array_module(cols)
    n, c = x_shape[:2]
    out_hw = output_hw(x_shape, kernel_hw, stride, padding, dilation)
    cols = cols.reshape((c, kernel_hw[0], kernel_hw[1], n) + out_hw)
    x_pad = _padded_zeros(xp, x_shape, padding, cols.dtype)
    for kh, kw, window in _offsets(kernel_hw, out_hw, stride, dilation):
        x_pad[window] += cols[:, kh, kw].transpose(1, 0, 2, 3)
    return _unpad(x_pad, x_shape, padding)


def matmul(a, b):
    """C = A @ B with NumPy's matmul semantics (BLAS underneath)."""
    return array_module(a).matmul(a, b)


_erf_python = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """erf(x) = 2/sqrt(pi) int_0^x e^(-t^2) dt, elementwise. NumPy has none (SciPy is not a
    dependency), so this maps Python's ``math.erf`` over the array: exact, one Python call per
    element."""
    return np.asarray(_erf_python(x), dtype=x.dtype)


def by_group(matrix, groups):
    """(R, K) -> (groups, R/groups, K), a batch of one matrix per group (its rows are
    contiguous: channels come first in both the weight's and im2col's row order); one group
    keeps the matrix as it is, so the ungrouped convolution runs the same single product."""
    return matrix if groups == 1 else matrix.reshape(groups, -1, matrix.shape[-1])


def conv2d_forward(x, weight, stride, padding, dilation, groups=1):
    """out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, g*C/G + c, i*s+kh*d, j*s+kw*d],
    g = o // (O/G), as one matrix product per group G: W_g (O/G, C/G*KH*KW) @ cols_g
    (C/G*KH*KW, N*H_out*W_out), where cols_g are group g's rows of im2col's matrix."""
    n, o = x.shape[0], weight.shape[0]
    cols, out_hw = im2col(x, weight.shape[2:], stride, padding, dilation)
    out = by_group(weight.reshape(o, -1), groups) @ by_group(cols, groups)
    return out.reshape((o, n) + out_hw).transpose(1, 0, 2, 3)


def grad_matrix(grad_out):
    """(N, O, H_out, W_out) -> (O, N*H_out*W_out), the layout of the forward product."""
    return grad_out.transpose(1, 0, 2, 3).reshape(grad_out.shape[1], -1)


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups=1):
    """dL/dx = col2im(W_g^T @ dL/dout_g per group g): each output's gradient flows back to the
    inputs it read, which are in its own group."""
    weights = by_group(weight.reshape(weight.shape[0], -1), groups)
    cols_grad = weights.swapaxes(-1, -2) @ by_group(grad_matrix(grad_out), groups)
    return col2im(cols_grad, x_shape, weight.shape[2:], stride, padding, dilation)


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups=1):
    """dL/dW_g = dL/dout_g @ cols_g^T per group g: each weight met every input it multiplied."""
    cols, _ = im2col(x, weight_shape[2:], stride, padding, dilation)
    grad_w = by_group(grad_matrix(grad_out), groups) @ by_group(cols, groups).swapaxes(-1, -2)
    return grad_w.reshape(weight_shape)


def max_pool2d_forward(x, kernel_hw, stride, padding, dilation):
    """out[n, c, i, j] = max over the window; also returns which offset won (for backward).

    Padding counts as -inf, so it never wins. On ties the first offset in (kh, kw) order wins.
    A NaN wins over every number, and a later NaN over an earlier one, as in PyTorch (whose
    kernel keeps ``val > max || isnan(val)``): a window holding a NaN gives NaN, and its
    gradient goes to the window's last NaN.
    """
    xp = array_module(x)
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, dilation)
    x_pad = pad(x, padding, value=lowest_value(x.dtype))
    out = xp.full(x.shape[:2] + out_hw, lowest_value(x.dtype), dtype=x.dtype)
    winner = xp.zeros(out.shape, dtype=np.int32)
    for kh, kw, window in _offsets(kernel_hw, out_hw, stride, dilation):
        candidate = x_pad[window]
        better = (candidate > out) | xp.isnan(candidate)
        out = xp.where(better, candidate, out)
        winner = xp.where(better, kh * kernel_hw[1] + kw, winner)
    return out, winner


def max_pool2d_backward(grad_out, winner, x_shape, kernel_hw, stride, padding, dilation):
    """The whole gradient of each output goes to the input that won its window."""
    xp = array_module(grad_out)
    out_hw = grad_out.shape[-2:]
    x_pad = _padded_zeros(xp, x_shape, padding, grad_out.dtype)
    for kh, kw, window in _offsets(kernel_hw, out_hw, stride, dilation):
        x_pad[window] += xp.where(winner == kh * kernel_hw[1] + kw, grad_out, 0)
    return _unpad(x_pad, x_shape, padding)


def avg_pool2d_forward(x, kernel_hw, stride, padding):
    """out = (1 / (KH*KW)) * sum over the window; zero padding counts in the average
    (PyTorch's default count_include_pad=True)."""
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, (1, 1))
    x_pad = pad(x, padding)
    out = array_module(x).zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for _, _, window in _offsets(kernel_hw, out_hw, stride, (1, 1)):
        out += x_pad[window]
    return out / (kernel_hw[0] * kernel_hw[1])


def avg_pool2d_backward(grad_out, x_shape, kernel_hw, stride, padding):
    """Each input in a window receives 1 / (KH*KW) of that window's gradient."""
    xp = array_module(grad_out)
    out_hw = grad_out.shape[-2:]
    share = grad_out / (kernel_hw[0] * kernel_hw[1])
    x_pad = _padded_zeros(xp, x_shape, padding, grad_out.dtype)
    for _, _, window in _offsets(kernel_hw, out_hw, stride, (1, 1)):
        x_pad[window] += share
    return _unpad(x_pad, x_shape, padding)


def check_csr_operands(name, data, indices, indptr, n_rows, x):
    """ValueError naming ``name`` and the shapes when the CSR arrays and X cannot be multiplied.
    Only what is cheap is checked (no pass over ``indices``): ``minigrad.prune.sparse.CSRMatrix``
    validates its arrays once, when it is built."""
    if x.ndim != 2:
        raise ValueError(f"{name}: X must be a (K, B) matrix, got shape {x.shape}")
    if indptr.shape != (n_rows + 1,):
        raise ValueError(f"{name}: indptr must have n_rows + 1 = {n_rows + 1} entries, got shape "
                         f"{indptr.shape}")
    if data.shape != indices.shape or data.ndim != 1:
        raise ValueError(f"{name}: data {data.shape} and indices {indices.shape} must be 1-D "
                         "and of one length")


def csr_matmul(data, indices, indptr, n_rows, x):
    """Y = A @ X for a sparse A (n_rows x K) in CSR form and a dense X (K x B): Y is n_rows x B.

    Row i of A keeps its nonzero values in data[indptr[i]:indptr[i+1]] and their columns in
    indices[indptr[i]:indptr[i+1]] (see ``minigrad.prune.sparse`` for a worked example). Each
    stored value A[i, k] = data[j], k = indices[j], adds A[i, k] * X[k, :] to Y[i, :]:

        Y[i, :] = sum over j in indptr[i] .. indptr[i+1]-1 of data[j] * X[indices[j], :]

    Here all products are formed at once and ``np.add.at`` adds each to its row (unlike
    ``y[rows] += ...``, it adds every product even when a row appears many times). Empty rows
    get no product and stay 0.
    """
    check_csr_operands("csr_matmul", data, indices, indptr, n_rows, x)
    xp = array_module(x)
    rows = xp.repeat(xp.arange(n_rows), xp.diff(indptr))  # the row of every stored value
    y = xp.zeros((n_rows, x.shape[1]), dtype=np.result_type(data.dtype, x.dtype))
    xp.add.at(y, rows, data[:, None] * x[indices])
    return y


# ------------------------------------------------------------------ integer (int8) kernels
#
# The operand checks and the int32 bound are in ``fixed_point``, with the requantization that
# turns the int32 accumulators back into 8-bit codes.

def int8_gemm(a, b, a_zero_point=0, b_zero_point=0, bias=None):
    """C = (A - z_a) @ (B - z_b) (+ bias, one int32 per column) as int32, exactly, for int8 or
    uint8 codes A (M x K) and B (K x N).

    Multiplying out gives the form integer GEMM libraries compute (gemmlowp's trick), so that
    the zero points are never subtracted from every element:

        C = A @ B - z_a colsum(B) - z_b rowsum(A) + K z_a z_b

    A @ B runs on the codes as they are; the corrections are a row, a column and a number (for
    a layer's weights, colsum(B) is known ahead and folds into the bias). The sums can leave
    int32 on the way; int32 arithmetic wraps modulo 2^32, so the result is still exact."""
    check_int8_gemm_operands("int8_gemm", a, b, a_zero_point, b_zero_point, bias)
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    za, zb, k = int(a_zero_point), int(b_zero_point), a.shape[1]
    c = a32 @ b32
    c -= za * b32.sum(axis=0, dtype=np.int32) + zb * a32.sum(axis=1, dtype=np.int32)[:, None]
    c += k * za * zb
    return c if bias is None else c + bias


def int8_conv2d(x, weight, x_zero_point, stride, padding, dilation, bias=None):
    """acc[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] (x_pad[n, c, i*s+kh*d, j*s+kw*d] - z_x)
    (+ bias[o]) as int32, for int8/uint8 codes x and symmetric int8 weights (zero point 0; their
    per-channel scales are applied later, in requantization).

    The padding is the zero point z_x, not 0: the code z_x stands for the real 0.0 that a float
    convolution pads with, and the code 0 stands for -s z_x, which would add -z_x w to every
    sum at the border. Then, as in ``conv2d_forward``, one matrix product: the weights
    (O, C*KH*KW) times im2col's matrix, whose zero point is z_x."""
    check_int8_conv2d_operands("int8_conv2d", x, weight, x_zero_point, stride, padding,
                               dilation, bias)
    n, o = x.shape[0], weight.shape[0]
    x_pad = pad(x, padding, value=x_zero_point)
    cols, out_hw = im2col(x_pad, weight.shape[2:], stride, (0, 0), dilation)
    acc = int8_gemm(weight.reshape(o, -1), cols, 0, x_zero_point)
    if bias is not None:
        acc += bias[:, None]
    return acc.reshape((o, n) + out_hw).transpose(1, 0, 2, 3)


def _per_channel(value, ndim):
    """A scalar as it is, a (C,) array shaped to broadcast along axis 1 of an ndim-D array."""
    return value if np.ndim(value) == 0 else np.reshape(value, (-1,) + (1,) * (ndim - 2))


def requantize(acc, m0, shift, zero_point, qmin, qmax):
    """``fixed_point.requantize`` for int8_gemm / int8_conv2d results:
    clamp(round(acc M0 2^-31 2^-n) + z, qmin, qmax), M0 and n scalars or one per output channel
    (axis 1 of acc: (N, C) or (N, C, H, W)). A ReLU that follows is free: qmin = z clamps it."""
    return fixed_point.requantize(acc, _per_channel(m0, acc.ndim), _per_channel(shift, acc.ndim),
                                  zero_point, qmin, qmax)
