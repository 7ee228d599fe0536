"""GPU kernels for CuPy arrays: the reference kernels of ``numpy_ref`` as CUDA threads.

Same functions, signatures and results as ``numpy_ref`` (the test oracle), and the same index
math, quoted from its docstring: along an axis with stride s, padding p and dilation d, output
position i at kernel offset k reads input position

    i*s + k*d - p        (outside 0 .. H-1 it reads the padding).

* ``matmul`` is cuBLAS, through ``cupy.matmul``.
* Convolution keeps the reference's plan: an ``im2col`` kernel (one thread per entry of the
  (C*KH*KW, N*H_out*W_out) column matrix) and one cuBLAS GEMM for the forward pass and the weight
  gradient (a batched GEMM, one matrix per group, for a grouped convolution). The input gradient
  is cuBLAS (W^T @ dL/dout) then ``col2im``.
* ``col2im`` and the pooling backward kernels *gather*: one thread per input element visits the
  outputs whose windows read it, by inverting the formula above,

      i = (y + p - k*d) / s,   kept when the division is exact and 0 <= i < H_out,

  and sums their gradients. Each thread writes only its own element, so there are no atomic
  adds and the sum has a fixed order (scattering with atomicAdd from each output would be
  shorter, but its result would change from run to run wherever windows overlap).
* Pooling forward kernels run one thread per output and loop over its window. Max pooling keeps
  the first strict maximum in (kh, kw) order and records it as ``kh*KW + kw`` (int32); padding
  is skipped, which is the same as reading it as -inf.

The CUDA source below is a C++ template in the element type; it is compiled once, on first use,
for float and double (``RawModule`` name expressions ``"im2col<float>"``, ...). Every kernel
takes the geometry as one ``Window`` struct, passed by value from a one-element NumPy array.
This module imports CuPy, so ``backend.kernels("cuda")`` imports it only once a GPU is in use.
"""

import functools

import numpy as np

from minigrad.backend import cupy_module, numpy_ref
from minigrad.backend.geometry import output_hw
from minigrad.backend.numpy_ref import by_group, grad_matrix

cupy = cupy_module()

CUDA_SOURCE = r"""
// The geometry of one window op: input (N, C, H, W), kernel (KH, KW), output (H_out, W_out).
struct Window {
    int batch, channels, height, width;
    int kernel_h, kernel_w, out_h, out_w;
    int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

// Splits the last coordinate off a row-major flat index: returns index % size and leaves
// index / size, so repeated calls peel off the coordinates from the last axis to the first.
__device__ int take(long long& index, int size) {
    int coordinate = index % size;
    index /= size;
    return coordinate;
}

// Flat offset of [n, c, y, x] in a contiguous (N, C, height, width) array.
__device__ long long nchw(int n, int c, int y, int x, int channels, int height, int width) {
    return (((long long)n * channels + c) * height + y) * width + x;
}

// Flat offset of cols[(c, kh, kw), (n, i, j)] in the (C*KH*KW, N*H_out*W_out) column matrix.
__device__ long long cols_offset(int c, int kh, int kw, int n, int i, int j, const Window& w) {
    long long row = ((long long)c * w.kernel_h + kh) * w.kernel_w + kw;
    return ((row * w.batch + n) * w.out_h + i) * w.out_w + j;
}

// Input position read by output position i at kernel offset k: i*s + k*d - p.
__device__ int input_position(int i, int k, int stride, int pad, int dilation) {
    return i * stride + k * dilation - pad;
}

// The inverse: the output position i with i*s + k*d - p == y, or -1 when there is none.
__device__ int output_position(int y, int k, int stride, int pad, int dilation, int out_size) {
    int shifted = y + pad - k * dilation;
    if (shifted < 0 || shifted % stride != 0) return -1;
    return shifted / stride < out_size ? shifted / stride : -1;
}

// Calls visit(kh, kw, row, col) for each offset of output (i, j)'s window that lands inside
// the input (not in the padding), with (row, col) the input position it reads.
template <typename Visit>
__device__ void for_each_input_in_window(int i, int j, const Window& w, Visit visit) {
    for (int kh = 0; kh < w.kernel_h; ++kh) {
        int row = input_position(i, kh, w.stride_h, w.pad_h, w.dilation_h);
        if (row < 0 || row >= w.height) continue;
        for (int kw = 0; kw < w.kernel_w; ++kw) {
            int col = input_position(j, kw, w.stride_w, w.pad_w, w.dilation_w);
            if (col >= 0 && col < w.width) visit(kh, kw, row, col);
        }
    }
}

// Calls visit(kh, kw, i, j) for each output (i, j) whose window reads input (row, col), at
// kernel offset (kh, kw): the gather that replaces a scatter in every backward kernel.
template <typename Visit>
__device__ void for_each_window_reading(int row, int col, const Window& w, Visit visit) {
    for (int kh = 0; kh < w.kernel_h; ++kh) {
        int i = output_position(row, kh, w.stride_h, w.pad_h, w.dilation_h, w.out_h);
        if (i < 0) continue;
        for (int kw = 0; kw < w.kernel_w; ++kw) {
            int j = output_position(col, kw, w.stride_w, w.pad_w, w.dilation_w, w.out_w);
            if (j >= 0) visit(kh, kw, i, j);
        }
    }
}

// -inf, where max pooling starts (NVRTC has no <cmath>, so it is built from its bit pattern).
template <typename T> __device__ T negative_infinity();
template <> __device__ float negative_infinity<float>() { return -__int_as_float(0x7f800000); }
template <> __device__ double negative_infinity<double>() {
    return -__longlong_as_double(0x7ff0000000000000LL);
}

// One thread per entry cols[(c, kh, kw), (n, i, j)] = x_pad[n, c, i*s + kh*d, j*s + kw*d].
template <typename T>
__global__ void im2col(long long total, const T* x, T* cols, Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int j = take(rest, w.out_w), i = take(rest, w.out_h), n = take(rest, w.batch);
    int kw = take(rest, w.kernel_w), kh = take(rest, w.kernel_h), c = rest;
    int row = input_position(i, kh, w.stride_h, w.pad_h, w.dilation_h);
    int col = input_position(j, kw, w.stride_w, w.pad_w, w.dilation_w);
    bool inside = row >= 0 && row < w.height && col >= 0 && col < w.width;
    cols[index] = inside ? x[nchw(n, c, row, col, w.channels, w.height, w.width)] : T(0);
}

// One thread per input element: the sum of every cols entry im2col copied from it.
template <typename T>
__global__ void col2im(long long total, const T* cols, T* x, Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int col = take(rest, w.width), row = take(rest, w.height), c = take(rest, w.channels);
    int n = rest;
    T sum = 0;
    for_each_window_reading(row, col, w, [&](int kh, int kw, int i, int j) {
        sum += cols[cols_offset(c, kh, kw, n, i, j, w)];
    });
    x[index] = sum;
}

// One thread per output: the window's first strict maximum and its offset kh*KW + kw; a NaN
// wins over every number and over earlier NaNs (PyTorch's rule: the window's last NaN).
// value != value is the NaN test (NVRTC has no <cmath>; no fast-math flag is given).
template <typename T>
__global__ void max_pool2d_forward(long long total, const T* x, T* out, int* winner,
                                   Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int j = take(rest, w.out_w), i = take(rest, w.out_h), c = take(rest, w.channels), n = rest;
    T best = negative_infinity<T>();
    int best_offset = 0;
    for_each_input_in_window(i, j, w, [&](int kh, int kw, int row, int col) {
        T value = x[nchw(n, c, row, col, w.channels, w.height, w.width)];
        if (value > best || value != value) {
            best = value;
            best_offset = kh * w.kernel_w + kw;
        }
    });
    out[index] = best;
    winner[index] = best_offset;
}

// One thread per input element: the gradients of the outputs whose window it won.
template <typename T>
__global__ void max_pool2d_backward(long long total, const T* grad_out, const int* winner,
                                    T* grad_x, Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int col = take(rest, w.width), row = take(rest, w.height), c = take(rest, w.channels);
    int n = rest;
    T sum = 0;
    for_each_window_reading(row, col, w, [&](int kh, int kw, int i, int j) {
        long long out_index = nchw(n, c, i, j, w.channels, w.out_h, w.out_w);
        if (winner[out_index] == kh * w.kernel_w + kw) sum += grad_out[out_index];
    });
    grad_x[index] = sum;
}

// One thread per output: the window's sum over KH*KW (padding adds zeros but still counts).
template <typename T>
__global__ void avg_pool2d_forward(long long total, const T* x, T* out, Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int j = take(rest, w.out_w), i = take(rest, w.out_h), c = take(rest, w.channels), n = rest;
    T sum = 0;
    for_each_input_in_window(i, j, w, [&](int kh, int kw, int row, int col) {
        sum += x[nchw(n, c, row, col, w.channels, w.height, w.width)];
    });
    out[index] = sum / T(w.kernel_h * w.kernel_w);
}

// One thread per input element: 1 / (KH*KW) of the gradient of each window it is in.
template <typename T>
__global__ void avg_pool2d_backward(long long total, const T* grad_out, T* grad_x, Window w) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    long long rest = index;
    int col = take(rest, w.width), row = take(rest, w.height), c = take(rest, w.channels);
    int n = rest;
    T sum = 0;
    for_each_window_reading(row, col, w, [&](int kh, int kw, int i, int j) {
        sum += grad_out[nchw(n, c, i, j, w.channels, w.out_h, w.out_w)];
    });
    grad_x[index] = sum / T(w.kernel_h * w.kernel_w);
}
"""

KERNEL_NAMES = ("im2col", "col2im", "max_pool2d_forward", "max_pool2d_backward",
                "avg_pool2d_forward", "avg_pool2d_backward")
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# The bytes of the C struct Window (fourteen ints, in its field order) as one opaque value:
# CuPy passes a one-element NumPy array by value. (A structured dtype naming the fields works
# too, but describing itself to CuPy costs it about 20 us per launch.)
WINDOW_DTYPE = np.dtype((np.void, 14 * 4))
THREADS_PER_BLOCK = 256


@functools.cache
def _compiled_module():
    """Compile every kernel for every element type (once per process; CuPy also caches the
    binary on disk)."""
    names = [f"{kernel}<{c_type}>" for kernel in KERNEL_NAMES for c_type in C_TYPES.values()]
    return cupy.RawModule(code=CUDA_SOURCE, name_expressions=names)


@functools.cache
def _kernel(name, dtype):
    if dtype not in C_TYPES:
        raise TypeError(f"{name}: the CUDA kernels take float32 or float64 arrays, got {dtype}")
    return _compiled_module().get_function(f"{name}<{C_TYPES[dtype]}>")


def _window(x_shape, kernel_hw, out_hw, stride, padding, dilation):
    """The geometry as the kernels' ``Window`` struct."""
    fields = (*x_shape, *kernel_hw, *out_hw, *stride, *padding, *dilation)
    return np.array(fields, dtype=np.int32).view(WINDOW_DTYPE)


def _launch(name, result, *args):
    """Run kernel ``name`` with one thread per element of ``result``, the array it fills; the
    element type is that of the first argument. Arrays must be C-contiguous: the kernels index
    them as flat row-major memory."""
    total = result.size
    if total:
        blocks = (total + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        _kernel(name, args[0].dtype)((blocks,), (THREADS_PER_BLOCK,), (np.int64(total), *args))
    return result


def matmul(a, b):
    """C = A @ B with NumPy's matmul semantics (cuBLAS underneath)."""
    return cupy.matmul(a, b)


def erf(x):
    """erf elementwise, CuPy's ``cupyx.scipy.special.erf``."""
    from cupyx.scipy.special import erf as cupy_erf

    return cupy_erf(x)


def im2col(x, kernel_hw, stride, padding, dilation):
    """(N, C, H, W) -> cols of shape (C*KH*KW, N*H_out*W_out), and (H_out, W_out), as in
    ``numpy_ref.im2col``."""
    x = cupy.ascontiguousarray(x)
    n, c = x.shape[:2]
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, dilation)
    cols = cupy.empty((c * kernel_hw[0] * kernel_hw[1], n * out_hw[0] * out_hw[1]), x.dtype)
    window = _window(x.shape, kernel_hw, out_hw, stride, padding, dilation)
    return _launch("im2col", cols, x, cols, window), out_hw


def col2im(cols, x_shape, kernel_hw, stride, padding, dilation):
    """The adjoint of im2col: each input element gathers the entries of ``cols`` read from it."""
    cols = cupy.ascontiguousarray(cols)
    out_hw = output_hw(x_shape, kernel_hw, stride, padding, dilation)
    x = cupy.empty(x_shape, cols.dtype)
    window = _window(x_shape, kernel_hw, out_hw, stride, padding, dilation)
    return _launch("col2im", x, cols, x, window)


def conv2d_forward(x, weight, stride, padding, dilation, groups=1):
    """out[n, o, i, j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, g*C/G + c, i*s+kh*d, j*s+kw*d],
    g = o // (O/G), as cuBLAS products W_g (O/G, C/G*KH*KW) @ cols_g (C/G*KH*KW,
    N*H_out*W_out), one per group (one batched call; ``numpy_ref.by_group``)."""
    n, o = x.shape[0], weight.shape[0]
    cols, out_hw = im2col(x, weight.shape[2:], stride, padding, dilation)
    out = matmul(by_group(weight.reshape(o, -1), groups), by_group(cols, groups))
    return out.reshape((o, n) + out_hw).transpose(1, 0, 2, 3)


def conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups=1):
    """dL/dx = col2im(W_g^T @ dL/dout_g per group g): each output's gradient flows back to the
    inputs it read."""
    weights = by_group(weight.reshape(weight.shape[0], -1), groups)
    cols_grad = matmul(weights.swapaxes(-1, -2), by_group(grad_matrix(grad_out), groups))
    return col2im(cols_grad, x_shape, weight.shape[2:], stride, padding, dilation)


def conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups=1):
    """dL/dW_g = dL/dout_g @ cols_g^T per group g: each weight met every input it multiplied."""
    cols, _ = im2col(x, weight_shape[2:], stride, padding, dilation)
    grad_w = matmul(by_group(grad_matrix(grad_out), groups),
                    by_group(cols, groups).swapaxes(-1, -2))
    return grad_w.reshape(weight_shape)


def max_pool2d_forward(x, kernel_hw, stride, padding, dilation):
    """out[n, c, i, j] = max over the window, and ``winner`` = kh*KW + kw of the first maximum
    (padding never wins), for the backward pass."""
    x = cupy.ascontiguousarray(x)
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, dilation)
    out = cupy.empty(x.shape[:2] + out_hw, x.dtype)
    winner = cupy.empty(out.shape, np.int32)
    window = _window(x.shape, kernel_hw, out_hw, stride, padding, dilation)
    _launch("max_pool2d_forward", out, x, out, winner, window)
    return out, winner


def max_pool2d_backward(grad_out, winner, x_shape, kernel_hw, stride, padding, dilation):
    """The whole gradient of each output goes to the input that won its window."""
    grad_out, winner = cupy.ascontiguousarray(grad_out), cupy.ascontiguousarray(winner)
    grad_x = cupy.empty(x_shape, grad_out.dtype)
    window = _window(x_shape, kernel_hw, grad_out.shape[-2:], stride, padding, dilation)
    return _launch("max_pool2d_backward", grad_x, grad_out, winner, grad_x, window)


def avg_pool2d_forward(x, kernel_hw, stride, padding):
    """out = (1 / (KH*KW)) * sum over the window, zero padding included in the count
    (PyTorch's default count_include_pad=True)."""
    x = cupy.ascontiguousarray(x)
    out_hw = output_hw(x.shape, kernel_hw, stride, padding, (1, 1))
    out = cupy.empty(x.shape[:2] + out_hw, x.dtype)
    window = _window(x.shape, kernel_hw, out_hw, stride, padding, (1, 1))
    return _launch("avg_pool2d_forward", out, x, out, window)


def avg_pool2d_backward(grad_out, x_shape, kernel_hw, stride, padding):
    """Each input in a window receives 1 / (KH*KW) of that window's gradient."""
    grad_out = cupy.ascontiguousarray(grad_out)
    grad_x = cupy.empty(x_shape, grad_out.dtype)
    window = _window(x_shape, kernel_hw, grad_out.shape[-2:], stride, padding, (1, 1))
    return _launch("avg_pool2d_backward", grad_x, grad_out, grad_x, window)


# ------------------------------------------------------------ CPU kernels, run on the host
#
# Sparse and integer inference run on the CPU (``prune.sparse``, ``quant.quantized``), so these
# kernels have no CUDA version: the GPU set copies the operands to the host, runs the
# reference there and copies the result back, which keeps one contract for every set.

def _on_host(kernel):
    """``kernel`` (a reference kernel) taking and returning CuPy arrays."""
    def host(value):
        return value.get() if isinstance(value, cupy.ndarray) else value

    def run(*args, **kwargs):
        kwargs = {name: host(value) for name, value in kwargs.items()}
        return cupy.asarray(kernel(*map(host, args), **kwargs))

    run.__name__, run.__doc__ = kernel.__name__, kernel.__doc__
    run.__wrapped__ = kernel  # inspect.signature reads the reference's parameters
    return run


csr_matmul = _on_host(numpy_ref.csr_matmul)
int8_gemm = _on_host(numpy_ref.int8_gemm)
int8_conv2d = _on_host(numpy_ref.int8_conv2d)
requantize = _on_host(numpy_ref.requantize)
