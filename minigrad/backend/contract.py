"""The kernel contract: every function a kernel set provides, with its signature and shapes.

A kernel set is a module (``numpy_ref``, ``numba_cpu``, ``cupy_gpu``) that defines each of the
functions below with these parameters; ``backend.kernels(device)`` returns one, and the ops
call only what is listed here. ``KernelSet`` is a ``typing.Protocol``: a module satisfies it
structurally (PEP 544), and ``tests/test_kernel_contract.py`` checks each set against it,
name by name and parameter by parameter.

Conventions for every kernel:

* arrays in, arrays out: plain NumPy arrays for the CPU sets, CuPy arrays for the GPU set;
* images are NCHW: x (N, C, H, W); conv weights (O, C/groups, KH, KW); window arguments are pairs
  ``kernel_hw``, ``stride``, ``padding``, ``dilation`` = (along H, along W);
* H_out, W_out follow ``geometry.output_hw``, and a window that does not fit raises its
  ValueError;
* float kernels return the dtype of their inputs; the results equal ``numpy_ref``'s (the
  readable reference) up to float rounding, and the integer kernels equal it exactly.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class KernelSet(Protocol):
    """The functions of one kernel set. Shapes: (N, C, H, W) inputs, (O, C/groups, KH, KW)
    conv weights."""

    def matmul(self, a, b):
        """C = A @ B with NumPy's matmul semantics: (..., M, K) @ (..., K, N) -> (..., M, N)."""

    def erf(self, x):
        """erf(x) = 2/sqrt(pi) int_0^x e^(-t^2) dt, elementwise, in x's float dtype."""

    def im2col(self, x, kernel_hw, stride, padding, dilation):
        """x (N, C, H, W) -> (cols (C*KH*KW, N*H_out*W_out), (H_out, W_out)): row (c, kh, kw)
        holds x_pad[n, c, i*s + kh*d, j*s + kw*d] for every (n, i, j)."""

    def conv2d_forward(self, x, weight, stride, padding, dilation, groups=1):
        """out (N, O, H_out, W_out) with weight (O, C/G, KH, KW), G = ``groups``: output channel o
        of group g = o // (O/G) reads only input channels g*C/G + c, c < C/G:
        out[n,o,i,j] = sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, g*C/G + c, i*s+kh*d, j*s+kw*d].
        G divides C and O; G = 1 is the full convolution, G = C the depthwise one."""

    def conv2d_backward_input(self, grad_out, weight, x_shape, stride, padding, dilation,
                              groups=1):
        """dL/dx (``x_shape``) from dL/dout (N, O, H_out, W_out) and the (O, C/G, KH, KW)
        weight: input channel g*C/G + c gets the gradients of group g's outputs only."""

    def conv2d_backward_weight(self, grad_out, x, weight_shape, stride, padding, dilation,
                               groups=1):
        """dL/dw (``weight_shape`` = (O, C/G, KH, KW)) from dL/dout (N, O, H_out, W_out) and
        the input: w[o, c] met only input channel g*C/G + c, g = o // (O/G)."""

    def max_pool2d_forward(self, x, kernel_hw, stride, padding, dilation):
        """(out (N, C, H_out, W_out), winner int32 of the same shape): the window's maximum,
        padding counting as -inf, and the first offset kh*KW + kw that holds it."""

    def max_pool2d_backward(self, grad_out, winner, x_shape, kernel_hw, stride, padding,
                            dilation):
        """dL/dx (``x_shape``): each output's gradient goes to the input that won its window."""

    def avg_pool2d_forward(self, x, kernel_hw, stride, padding):
        """out (N, C, H_out, W_out) = the window's sum / (KH*KW), zero padding included."""

    def avg_pool2d_backward(self, grad_out, x_shape, kernel_hw, stride, padding):
        """dL/dx (``x_shape``): each input of a window gets 1/(KH*KW) of its gradient."""

    def csr_matmul(self, data, indices, indptr, n_rows, x):
        """Y (n_rows, B) = A @ X for A in CSR form (data, indices: (nnz,), indptr: (n_rows+1,))
        and a dense X (K, B)."""

    def int8_gemm(self, a, b, a_zero_point=0, b_zero_point=0, bias=None):
        """C (M, N) int32 = (A - z_a) @ (B - z_b) (+ bias (N,) int32), exactly, for int8/uint8
        A (M, K) and B (K, N)."""

    def int8_conv2d(self, x, weight, x_zero_point, stride, padding, dilation, bias=None):
        """acc (N, O, H_out, W_out) int32 = sum w (x_pad - z_x) (+ bias (O,) int32) for int8/uint8
        codes x, padded with z_x, and int8 weights."""

    def requantize(self, acc, m0, shift, zero_point, qmin, qmax):
        """Codes clamp(round(acc M0 2^-31 2^-n) + z, qmin, qmax) for int32 acc (N, C, ...), with
        M0 and n scalars or one per channel (axis 1): ``fixed_point.requantize``."""


# The kernel names, in the order above.
KERNELS = tuple(name for name in vars(KernelSet) if not name.startswith("_"))
