"""Importance scores: which weights matter. Higher score = more important = pruned last.

Every scorer is a plain function ``score(module, name, ...) -> array`` of the parameter's
shape; the pruning methods take one as ``importance=`` (or an array it returned). Where a score
uses the weight w, it is the effective weight ``w_orig * mask``, so pruned entries score 0.

    magnitude          |w|                       the classic (Han et al., "Learning both
                                                 Weights and Connections for Efficient Neural
                                                 Networks", NeurIPS 2015)
    random             U[0, 1), seeded           the baseline every method must beat
    gradient           |g|                       g = mean gradient over the batches seen
    squared_gradient   sum over batches of g_b^2 (a diagonal empirical Fisher, unnormalized)
    taylor             |w * g|                   first-order Taylor estimate of the change in
                                                 loss when w is set to 0: L(w = 0) - L(w)
                                                 ~ -g * w (Molchanov et al., "Pruning
                                                 Convolutional Neural Networks for Resource
                                                 Efficient Inference", ICLR 2017)
    ln_norm            ||slice||_n, broadcast    for structured pruning: one score per
                                                 filter / neuron (Li et al., "Pruning Filters
                                                 for Efficient ConvNets", ICLR 2017, use n=1)

The gradient scores read ``GradientStats`` that ``accumulate_gradients`` collects: bind them
with ``functools.partial(taylor, stats=stats)`` or ``lambda m, n: taylor(m, n, stats)``.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from minigrad import backend
from minigrad.prune.reparam import check_prunable, effective_weight, original_parameter
from minigrad.random import generator
from minigrad.tensor import Tensor


@dataclass
class GradientStats:
    """Sums over ``count`` batches of one parameter's gradient g_b and of g_b^2 (NumPy)."""

    sum: np.ndarray
    sum_sq: np.ndarray
    count: int

    @property
    def mean(self):
        return self.sum / self.count


def accumulate_gradients(model, loader, loss_fn, batches=None):
    """Run forward and backward over ``batches`` batches of ``loader`` (all when None) and
    return ``{parameter: GradientStats}`` for every parameter that got a gradient.

    The model stays in the mode it is in (call ``model.eval()`` first to score without
    dropout, with batch norm's running statistics). Gradients are cleared before each batch
    and left cleared (None) at the end. A pruned tensor's entry is keyed by ``<name>_orig``,
    the same Parameter as before pruning; its gradient is 0 at pruned entries.
    """
    if batches is not None and (not isinstance(batches, int) or batches < 1):
        raise ValueError(f"accumulate_gradients: batches must be a positive int or None, "
                         f"got {batches!r}")
    device = next(model.parameters()).device
    stats = {}
    for index, (x, y) in enumerate(loader):
        if batches is not None and index >= batches:
            break
        model.zero_grad()
        loss_fn(model(x.to(device)), y.to(device)).backward()
        for p in model.parameters():
            if p.grad is None:
                continue
            g = backend.to_device(p.grad.data, "cpu").astype(np.float64)
            entry = stats.setdefault(p, GradientStats(np.zeros_like(g), np.zeros_like(g), 0))
            entry.sum += g
            entry.sum_sq += g * g
            entry.count += 1
    model.zero_grad()
    if not stats:
        raise ValueError("accumulate_gradients: no parameter received a gradient (empty "
                         "loader?)")
    return stats


def _stats_for(module, name, stats, scorer):
    check_prunable(module, name, scorer)
    entry = stats.get(original_parameter(module, name))
    if entry is None:
        raise ValueError(f"{scorer}: no gradient statistics for {name!r} of "
                         f"{type(module).__name__}; run accumulate_gradients on the model "
                         "that holds it")
    return entry


def magnitude(module, name):
    """|w|."""
    check_prunable(module, name, "magnitude")
    return np.abs(effective_weight(module, name))


def random(module, name, seed=None):
    """Uniform scores in [0, 1): pruning by them is random pruning. ``seed=None`` draws from
    minigrad's generator, so ``minigrad.manual_seed`` makes it repeatable."""
    check_prunable(module, name, "random")
    rng = np.random.default_rng(generator().integers(2**63) if seed is None else seed)
    return rng.random(original_parameter(module, name).shape)


def gradient(module, name, stats):
    """|g|, g the mean gradient over the batches in ``stats``."""
    return np.abs(_stats_for(module, name, stats, "gradient").mean)


def squared_gradient(module, name, stats):
    """sum over batches b of g_b^2."""
    return _stats_for(module, name, stats, "squared_gradient").sum_sq.copy()


def taylor(module, name, stats):
    """|w * g|, g the mean gradient: the first-order change in loss if w were set to 0."""
    g = _stats_for(module, name, stats, "taylor").mean
    return np.abs(effective_weight(module, name) * g)


def slice_norms(weight, n, dim, caller="ln_norm"):
    """The L_n norm of each slice ``weight[..., i, ...]`` along ``dim`` (all other axes):
    (sum |w|^n)^(1/n) for n > 0, max |w| for n = inf. One value per slice."""
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or not n > 0:
        raise ValueError(f"{caller}: n must be a number > 0 (or inf), got {n!r}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) \
            or not -weight.ndim <= dim < weight.ndim:
        raise ValueError(f"{caller}: dim {dim!r} is out of range for a weight of shape "
                         f"{weight.shape}")
    rows = np.moveaxis(weight, dim, 0).reshape(weight.shape[dim], -1)
    return np.linalg.norm(rows, ord=n, axis=1)


def ln_norm(weight, n, dim):
    """``slice_norms`` broadcast back to ``weight``'s shape: every entry scores as the L_n
    norm of its slice along ``dim`` (dim=0 of a Linear weight: its output neuron; of a Conv2d
    weight: its filter)."""
    weight = backend.to_device(weight.data if isinstance(weight, Tensor) else
                               np.asarray(weight), "cpu")
    norms = slice_norms(weight, n, dim)
    shape = [1] * weight.ndim
    shape[dim] = -1
    return np.broadcast_to(norms.reshape(shape), weight.shape).copy()
