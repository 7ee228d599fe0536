"""Sensitivity analysis: how much each layer can lose on its own.

For every layer, and every sparsity s in a list, prune only that layer's weights to s (by
magnitude, no retraining) in a copy of the model and score the copy. Layers whose score holds
up to high sparsity are redundant and can be pruned hard; layers whose score falls early
(often the first convolution and the last classifier layer, which have few weights) need a
gentle touch. Han et al. (2015) chose per-layer thresholds from exactly these curves.
"""

import copy

from minigrad import nn
from minigrad.prune.schedules import prune_to


def prunable_layers(model):
    """Names of the model's Linear and Conv2d modules, in order."""
    return [name for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, nn.Conv2d))]


def sensitivity_analysis(model, score, sparsities, layers=None, name="weight",
                         importance=None):
    """{layer name: [(sparsity, score), ...]} for each of ``layers`` (default: every Linear
    and Conv2d), pruning ``<layer>.<name>`` alone to each sparsity in a deep copy of
    ``model``; ``score(model_copy)`` evaluates a copy (e.g. validation accuracy). The model
    itself is not changed."""
    modules = dict(model.named_modules())
    layers = prunable_layers(model) if layers is None else list(layers)
    unknown = [layer for layer in layers if layer not in modules]
    if unknown:
        raise ValueError(f"sensitivity_analysis: no modules named {unknown} (the model has "
                         f"{prunable_layers(model)})")
    curves = {}
    for layer in layers:
        curves[layer] = []
        for target in sparsities:
            trial = copy.deepcopy(model)
            prune_to([(dict(trial.named_modules())[layer], name)], target, importance)
            curves[layer].append((target, score(trial)))
    return curves
