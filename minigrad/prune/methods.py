"""Pruning methods, under PyTorch's names: each decides which entries to zero and hands the
new mask to ``reparam.set_mask``.

    l1_unstructured       the ``amount`` remaining entries with the lowest score (|w| by default)
    random_unstructured   ``amount`` remaining entries chosen at random
    threshold             every remaining entry with |w| < threshold
    global_unstructured   the lowest-scoring entries of several tensors ranked together, so
                          layers with many small weights lose more of them
    ln_structured         whole slices along ``dim`` (filters, neurons) with the smallest
                          L_n norm

``amount`` counts what is still *remaining*, as in PyTorch: a float in [0, 1] prunes
round(amount * remaining) entries (slices for ``ln_structured``; Python's ``round``, half to
even), an int prunes exactly that many. Already pruned entries never count and are never
brought back, so repeated calls compound: 0.5 then 0.5 leaves 25% of the weights. 1.0 (a
float) prunes everything left, 1 (an int) a single entry.

Ties in the scores are broken by position: the entry with the lower flat index (across the
tensors in the order given, for ``global_unstructured``) is pruned first.

Every method takes ``optimizer=None``; given one, it also zeroes ``<name>_orig`` and the
optimizer's state at the pruned entries (``mask_optimizer_state``), so they cannot regrow
after ``remove``.
"""

import numbers

import numpy as np

from minigrad import backend
from minigrad.prune.importance import magnitude, random, slice_norms
from minigrad.prune.reparam import (check_optimizer_holds, check_prunable, current_mask,
                                    set_mask)
from minigrad.tensor import Tensor


def count_to_prune(amount, remaining, what="entries"):
    """How many of ``remaining`` entries (or slices) ``amount`` prunes; ValueError when it is
    out of range: a float outside [0, 1], a negative int or one above ``remaining``."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise ValueError(f"amount must be an int or a float, got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if not 0 <= amount <= remaining:
            raise ValueError(f"amount={amount} {what} to prune, but {remaining} {what} remain "
                             "unpruned (an int amount must be in [0, remaining])")
        return int(amount)
    if not 0 <= amount <= 1:  # written so that NaN is refused too
        raise ValueError(f"amount={amount} must be a fraction in [0, 1] (of the {remaining} "
                         f"remaining {what}) or a non-negative int")
    return round(amount * remaining)


def importance_scores(module, name, importance, caller):
    """The score array for ``module.<name>``: ``importance`` may be None (magnitude), a
    scorer ``f(module, name)`` or an array / Tensor of the parameter's shape."""
    check_prunable(module, name, caller)
    if importance is None:
        importance = magnitude
    scores = importance(module, name) if callable(importance) else importance
    scores = backend.to_device(scores.data if isinstance(scores, Tensor) else
                               np.asarray(scores), "cpu")
    shape = current_mask(module, name).shape
    if scores.shape != shape:
        raise ValueError(f"{caller}: importance scores of shape {scores.shape} for {name!r} "
                         f"of {type(module).__name__}, which has shape {shape}")
    return scores


def prune_lowest(scores, mask, count):
    """``mask`` with its ``count`` remaining (nonzero) entries of lowest score set to 0."""
    remaining = np.flatnonzero(mask)
    lowest = remaining[np.argsort(scores.ravel()[remaining], kind="stable")[:count]]
    new_mask = mask.copy()
    new_mask.ravel()[lowest] = 0
    return new_mask


def l1_unstructured(module, name, amount, importance=None, optimizer=None):
    """Prune the ``amount`` remaining entries of ``module.<name>`` with the lowest importance
    (default ``magnitude``, |w|: the L1 criterion). Returns ``module``."""
    scores = importance_scores(module, name, importance, "l1_unstructured")
    mask = current_mask(module, name)
    count = count_to_prune(amount, int(np.count_nonzero(mask)))
    return set_mask(module, name, prune_lowest(scores, mask, count), optimizer)


def random_unstructured(module, name, amount, seed=None, optimizer=None):
    """Prune ``amount`` remaining entries chosen uniformly at random (``seed``: see
    ``importance.random``). Returns ``module``."""
    check_prunable(module, name, "random_unstructured")
    return l1_unstructured(module, name, amount, random(module, name, seed), optimizer)


def threshold(module, name, threshold, optimizer=None):
    """Prune every remaining entry of ``module.<name>`` with |w| < ``threshold``."""
    check_prunable(module, name, "threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not threshold >= 0:
        raise ValueError(f"threshold: the threshold must be a number >= 0, got {threshold!r}")
    mask = current_mask(module, name)
    return set_mask(module, name, mask * (magnitude(module, name) >= threshold), optimizer)


def _global_scores(pairs, importance):
    """One score array per (module, name): from the scorer, or from the dict entry."""
    if not isinstance(importance, dict):
        return [importance_scores(m, n, importance, "global_unstructured") for m, n in pairs]
    missing = [f"{type(m).__name__}.{n}" for m, n in pairs if (m, n) not in importance]
    if missing:
        raise ValueError(f"global_unstructured: the importance dict has no scores for "
                         f"{', '.join(missing)} (scores of different kinds cannot be ranked "
                         "together, so there is no fallback)")
    return [importance_scores(m, n, importance[m, n], "global_unstructured") for m, n in pairs]


def global_unstructured(parameters, amount, importance=None, optimizer=None):
    """Rank the remaining entries of all ``parameters`` (a list of (module, name)) together
    and prune the ``amount`` lowest-scoring ones: exactly round(amount * remaining) in total
    for a float. ``importance``: None (magnitude), a scorer ``f(module, name)``, or a dict
    {(module, name): scores}."""
    pairs = list(parameters)
    if not pairs:
        raise ValueError("global_unstructured: no parameters given")
    if len({(id(m), n) for m, n in pairs}) != len(pairs):
        raise ValueError("global_unstructured: a (module, name) pair is listed twice")
    scores = _global_scores(pairs, importance)
    masks = [current_mask(m, n) for m, n in pairs]
    flat_mask = np.concatenate([mask.ravel() for mask in masks])
    count = count_to_prune(amount, int(np.count_nonzero(flat_mask)))
    flat_mask = prune_lowest(np.concatenate([s.ravel() for s in scores]), flat_mask, count)
    for module, name in pairs if optimizer is not None else ():
        check_optimizer_holds(optimizer, module, name)  # before anything changes
    ends = np.cumsum([mask.size for mask in masks])
    for (module, name), mask, piece in zip(pairs, masks, np.split(flat_mask, ends[:-1])):
        set_mask(module, name, piece.reshape(mask.shape), optimizer)


def ln_structured(module, name, amount, n, dim, importance=None, optimizer=None):
    """Prune whole slices of ``module.<name>`` along ``dim`` (dim=0: output neurons of a
    Linear, filters of a Conv2d): the ``amount`` remaining slices with the smallest L_n norm
    of their scores (default the weights themselves). A slice remains while its mask is not
    all 0; ``amount`` counts slices. Returns ``module``."""
    scores = importance_scores(module, name, importance, "ln_structured")
    mask = current_mask(module, name)
    if mask.ndim < 2:
        raise ValueError(f"ln_structured: {name!r} of {type(module).__name__} has shape "
                         f"{mask.shape}; structured pruning needs at least 2 dimensions")
    norms = slice_norms(scores * mask, n, dim, "ln_structured")
    alive = slice_norms(mask, 1, dim, "ln_structured") > 0
    remaining = np.flatnonzero(alive)
    count = count_to_prune(amount, len(remaining), "slices")
    lowest = remaining[np.argsort(norms[remaining], kind="stable")[:count]]
    new_mask = mask.copy()
    index = [slice(None)] * mask.ndim
    index[dim] = lowest
    new_mask[tuple(index)] = 0
    return set_mask(module, name, new_mask, optimizer)
