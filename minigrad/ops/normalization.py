"""Normalization over the last axes of a tensor, with a closed-form backward: layer norm
(Ba, Kiros & Hinton 2016, "Layer Normalization") and RMS norm (Zhang & Sennrich 2019, "Root
Mean Square Layer Normalization").

Over the last ``k`` axes (the normalized shape), with optional elementwise ``weight`` w and
``bias`` b of that shape, and means taken over those axes:

    layer norm:  xhat = (x - mean(x)) r,  r = 1 / sqrt(mean((x - mean(x))^2) + eps)  (biased var)
    RMS norm:    xhat = x r,              r = 1 / sqrt(mean(x^2) + eps)
    y = xhat * w + b

With g = dL/dy * w (dL/dy without a weight):

    layer norm:  dL/dx = r (g - mean(g) - xhat mean(g xhat))
    RMS norm:    dL/dx = r (g - xhat mean(g xhat))
    dL/dw = sum of dL/dy * xhat,   dL/db = sum of dL/dy    (sums over the leading axes)

RMS norm is layer norm without the centring, so it is the same Function with ``centered``
off. The composite (mean, sub, mul, sqrt, div, ...) records about ten nodes and keeps as many
arrays; these keep xhat and r. ``nn.functional.layer_norm`` and ``rms_norm`` check the
arguments and apply them; there are no public functions here.
"""

from minigrad.autograd import Function


class LayerNormFunction(Function):
    """y = xhat * w + b over the last ``normalized_ndim`` axes (the module docstring has the
    math). The inputs are x, then w when ``has_weight``, then b when ``has_bias``; the class
    attribute ``centered`` says whether the mean is subtracted (layer norm) or not (RMS norm).
    """

    centered = True

    @staticmethod
    def forward(ctx, x, *affine, normalized_ndim=1, eps=1e-5, has_weight=True, has_bias=True):
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        centred = x - x.mean(axis=axes, keepdims=True) if ctx.centered else x
        # eps is a Python float, so x's dtype is kept (float32 stays float32).
        rstd = ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
        xhat = centred * rstd
        weight = affine[0] if has_weight else None
        ctx.axes, ctx.has_weight, ctx.has_bias = axes, has_weight, has_bias
        ctx.save_for_backward(xhat, rstd, weight)
        y = xhat if weight is None else xhat * weight
        return y + affine[-1] if has_bias else y

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        leading = tuple(range(grad.ndim - len(ctx.axes)))
        g = grad if weight is None else grad * weight
        grad_x = g - xhat * (g * xhat).mean(axis=ctx.axes, keepdims=True)
        if ctx.centered:
            grad_x -= g.mean(axis=ctx.axes, keepdims=True)
        grads = (rstd * grad_x,)
        if ctx.has_weight:
            grads += ((grad * xhat).sum(axis=leading),)
        if ctx.has_bias:
            grads += (grad.sum(axis=leading),)
        return grads


class RMSNormFunction(LayerNormFunction):
    """RMS norm: xhat = x / sqrt(mean(x^2) + eps), y = xhat * w (``has_bias`` False)."""

    centered = False
