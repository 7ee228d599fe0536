"""Regularization utilities: gradient clipping (``torch.nn.utils``'s two functions, with the
same semantics) and the L1 / L2 weight penalties, to add to a loss.

Gradient clipping acts on the gradients after ``backward`` and before ``optimizer.step()``:

    clip_grad_norm_     g <- g * min(1, max_norm / (||(g_1, ..., g_k)||_p + 1e-6))
                        one factor for all gradients, so their direction is kept
                        (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training
                        recurrent neural networks")
    clip_grad_value_    g <- clip(g, -c, c), element by element (the direction changes)

The penalties are minigrad expressions, so autograd differentiates them with the loss:

    l1_penalty   sum_i |w_i|      d/dw = sign(w)   (lasso: pushes weights to exactly 0)
    l2_penalty   sum_i w_i^2      d/dw = 2 w       (ridge / Tikhonov: shrinks all weights)

In a training step (e.g. in a ``minigrad.train.Callback.on_after_backward``, for clipping):

    loss = F.cross_entropy(model(x), y) + 1e-4 * l2_penalty(model.parameters())
    optimizer.zero_grad(); loss.backward()
    clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

``parametrize`` (``minigrad.nn.utils.parametrize``, as in PyTorch) makes a tensor of a module
a function of stored ones: pruning masks and quantized weight formats are built on it.
"""

import math

from minigrad.backend import array_module
from minigrad.tensor import Tensor, tensor
from minigrad.nn.utils import parametrize

__all__ = ["clip_grad_norm_", "clip_grad_value_", "l1_penalty", "l2_penalty", "parametrize",
           "vector_norm"]


def _as_list(parameters):
    """A single Tensor or an iterable of Tensors (e.g. a generator) as a list."""
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _gradients(parameters):
    """The gradient arrays of the parameters that have one (``grad`` None is skipped)."""
    return [p.grad.data for p in _as_list(parameters) if p.grad is not None]


def vector_norm(array, norm_type):
    """||a||_p of all elements of ``array`` (torch.linalg.vector_norm's conventions):

        p = inf: max_i |a_i|    p = -inf: min_i |a_i|    p = 0: #{i : a_i != 0}
        otherwise (sum_i |a_i|^p)^(1/p)

    An empty array has norm 0. The result is a 0-d array of ``array``'s dtype and device.
    """
    xp = array_module(array)
    magnitudes = xp.abs(array).ravel()
    if magnitudes.size == 0:
        return xp.zeros((), dtype=array.dtype)
    if norm_type == math.inf:
        return magnitudes.max()
    if norm_type == -math.inf:
        return magnitudes.min()
    if norm_type == 0:
        return (magnitudes != 0).sum().astype(array.dtype)
    return (magnitudes ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients by one factor so that their total norm is at most ``max_norm``.

    The total norm is the p-norm of the per-parameter norms, which for p > 0 (and inf) is the
    norm of all gradients concatenated into one vector:

        total = || (||g_1||_p, ..., ||g_k||_p) ||_p
        g_i  <- g_i * min(1, max_norm / (total + 1e-6))        (in place)

    Parameters whose ``grad`` is None are skipped; ``parameters`` may be a single Tensor.
    Returns the total norm *before* clipping as a 0-d Tensor (0 when no gradient exists).
    A non-finite total raises RuntimeError when ``error_if_nonfinite``; otherwise, as in
    PyTorch, the gradients are scaled by the resulting factor (0 for inf, nan for nan).
    """
    max_norm, norm_type = float(max_norm), float(norm_type)
    grads = _gradients(parameters)
    if not grads:
        return tensor(0.0)
    xp = array_module(grads[0])
    total = vector_norm(xp.stack([vector_norm(g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}, so it cannot be clipped; to scale the gradients by this "
            "non-finite norm anyway, pass error_if_nonfinite=False")
    # The +1e-6 keeps the factor finite for zero gradients and makes it a hair below 1 at
    # total = max_norm; min(., 1) means gradients are only ever shrunk, never grown.
    factor = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= factor.astype(g.dtype)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element to [-clip_value, clip_value] in place:
    g <- min(max(g, -c), c). Parameters whose ``grad`` is None are skipped. Returns None."""
    clip_value = float(clip_value)
    for g in _gradients(parameters):
        array_module(g).clip(g, -clip_value, clip_value, out=g)


def _sum_over_parameters(parameters, term):
    """sum over parameters w of term(w) (a scalar Tensor each), as one graph."""
    terms = [term(p) for p in _as_list(parameters)]
    if not terms:
        return tensor(0.0)
    total = terms[0]
    for value in terms[1:]:
        total = total + value
    return total


def l1_penalty(parameters):
    """The L1 norm of all parameters, sum_i |w_i|, as a differentiable scalar Tensor.

    Its gradient is sign(w) (0 at w = 0, as for ``abs``), so the loss term lambda * l1 pulls
    every weight toward 0 by the same amount lambda * lr per SGD step, whatever its size: weights
    whose loss gradient is smaller than lambda end up within about lambda * lr of 0 (a nearly
    sparse model), unlike with L2. They hop across 0 rather than land on it, as the gradient
    flips sign there; proximal methods (soft thresholding) would set them to exactly 0.
    """
    return _sum_over_parameters(parameters, lambda w: w.abs().sum())


def l2_penalty(parameters):
    """The squared L2 norm of all parameters, sum_i w_i^2, as a differentiable scalar Tensor.

    Its gradient is 2 w, so adding lambda * l2_penalty to the loss adds 2 lambda w to each
    gradient: for SGD that is exactly ``SGD(weight_decay=2 * lambda)`` on the plain loss
    (PyTorch's weight_decay adds weight_decay * w to the gradient), momentum included.
    (Many texts write the term as (lambda / 2) ||w||^2 so that the two lambdas agree.)

    For adaptive optimizers the two are not the same: Adam divides the penalty's gradient by
    sqrt(v) like any other gradient, so heavily-updated weights are barely decayed. AdamW's
    decoupled weight decay (Loshchilov & Hutter 2019) instead subtracts lr * weight_decay * w
    outside the adaptive step; an L2 term in the loss cannot reproduce it.
    """
    return _sum_over_parameters(parameters, lambda w: (w ** 2).sum())
