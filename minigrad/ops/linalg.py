"""Matrix multiplication with NumPy's ``matmul`` semantics.

For matrices, C = A B with C_ij = sum_k A_ik B_kj, and for a scalar loss L:

    dL/dA = dL/dC · B^T        dL/dB = A^T · dL/dC

A 1-D operand is a vector: on the left it acts as a (1, n) row, on the right as an (n, 1)
column, and that axis is dropped from the result. Operands with more than two axes are stacks
of matrices whose leading (batch) axes broadcast; the engine sums the gradient over broadcast
batch axes. Where the kernels issue adds fast GEMMs, they plug in behind this op.
"""

from minigrad.autograd import Function
from minigrad.backend import array_module, kernels_for


__all__ = [
    "matmul",
]


def _check_shapes(a_shape, b_shape):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{a_shape} and {b_shape}")
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape} are not aligned "
                         f"({inner_a} != {inner_b})")


class MatMul(Function):
    """C = A @ B (see the module docstring for the gradients)."""

    @staticmethod
    def forward(ctx, a, b):
        _check_shapes(a.shape, b.shape)
        ctx.save_for_backward(a, b)
        try:
            return kernels_for(a).matmul(a, b)
        except ValueError:  # the batch axes do not broadcast
            raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} "
                             "cannot be broadcast together") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = array_module(a)
        # View vectors as matrices so one pair of formulas covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # (first: for vector @ vector the gradient goes () -> (1,) -> (1, 1))
            grad = xp.expand_dims(grad, -1)
        if a.ndim == 1:
            grad = xp.expand_dims(grad, -2)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = kernels_for(a).matmul(grad, xp.swapaxes(b2, -1, -2))
            grad_a = grad_a.reshape(grad_a.shape[:-2] + (-1,)) if a.ndim == 1 else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = kernels_for(a).matmul(xp.swapaxes(a2, -1, -2), grad)
            grad_b = grad_b.reshape(grad_b.shape[:-1]) if b.ndim == 1 else grad_b
        return grad_a, grad_b


def matmul(a, b):
    return MatMul.apply(a, b)
