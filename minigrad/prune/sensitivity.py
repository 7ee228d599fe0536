"""Sensitivity analysis: how much each layer can lose on its own.

For every layer, and every sparsity s in a list, prune only that layer's weights to s (by
magnitude, no retraining) in a copy of the model and score the copy. Layers whose score holds
up to high sparsity are redundant and can be pruned hard; layers whose score falls early
(often the first convolution and the last classifier layer, which have few weights) need a
gentle touch. Han et al. (2015) chose per-layer thresholds from exactly these curves. The
sweep itself is ``minigrad.sensitivity.sensitivity_sweep``.
"""

from minigrad.prune.schedules import prune_to
from minigrad.sensitivity import sensitivity_sweep


def sensitivity_analysis(model, score, sparsities, layers=None, name="weight",
                         importance=None):
    """{layer name: [(sparsity, score), ...]} for each of ``layers`` (default: every Linear
    and Conv2d), pruning ``<layer>.<name>`` alone to each sparsity in a deep copy of
    ``model``; ``score(model_copy)`` evaluates a copy (e.g. validation accuracy). The model
    itself is not changed."""
    def prune_layer(layer, target):
        prune_to([(layer, name)], target, importance)

    return sensitivity_sweep(model, score, sparsities, prune_layer, layers,
                             "sensitivity_analysis")
