"""The index math every window op (convolution, pooling) shares, for every kernel set.

Along an axis of size H, a kernel of size K with stride s, padding p and dilation d puts its
output position i over the padded inputs i*s + k*d (k = 0 .. K-1), and there are

    H_out = (H + 2p - d(K - 1) - 1) // s + 1

output positions. Every kernel set checks its shapes with these two functions, so a window
that does not fit is reported in the same words whichever kernels run.
"""


def output_size(size, kernel, stride, padding, dilation):
    """H_out = (H + 2p - d(K - 1) - 1) // s + 1; ValueError when the window does not fit."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"window of size {kernel} (dilation {dilation}) does not fit an input "
                         f"of size {size} with padding {padding}")
    return out


def output_hw(x_shape, kernel_hw, stride, padding, dilation):
    """(H_out, W_out) of a window op on an input of shape (..., H, W)."""
    h, w = x_shape[-2:]
    return (output_size(h, kernel_hw[0], stride[0], padding[0], dilation[0]),
            output_size(w, kernel_hw[1], stride[1], padding[1], dilation[1]))
