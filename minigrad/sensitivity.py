"""Per-layer sensitivity: change one layer at a time and see what the model loses.

For every layer and every setting s in a list (a sparsity, a bit width, ...), a deep copy of
the model gets ``change_layer(layer_copy, s)`` on that layer alone, and ``score(model_copy)``
measures it (validation accuracy, minus the loss, ...):

    curves[layer] = [(s_1, score_1), (s_2, score_2), ...]

Layers whose score holds up at aggressive settings are redundant and can be compressed hard;
layers whose score falls early (often the first convolution and the last classifier layer,
which have few weights) need a gentle touch. Han et al. (2015, "Learning both Weights and
Connections for Efficient Neural Networks") chose per-layer pruning thresholds from these
curves; with bit widths instead of sparsities they give a mixed-precision model's bits.
``prune.sensitivity_analysis`` and ``quant.bit_width_sensitivity`` are this sweep.
"""

import copy

from minigrad.nn.layers import Conv2d, Linear


def weight_layers(model):
    """Names of the model's Linear and Conv2d modules, in order."""
    return [name for name, module in model.named_modules()
            if isinstance(module, (Linear, Conv2d))]


def sensitivity_sweep(model, score, settings, change_layer, layers=None,
                      caller="sensitivity_sweep"):
    """{layer name: [(setting, score), ...]} for each of ``layers`` (default: every Linear and
    Conv2d): ``change_layer(layer, setting)`` in a deep copy of ``model``, then
    ``score(model_copy)``. The model itself is not changed; ``caller`` names the function in
    error messages."""
    modules = dict(model.named_modules())
    layers = weight_layers(model) if layers is None else list(layers)
    unknown = [layer for layer in layers if layer not in modules]
    if unknown:
        raise ValueError(f"{caller}: no modules named {unknown} (the model has "
                         f"{weight_layers(model)})")
    curves = {}
    for layer in layers:
        curves[layer] = []
        for setting in settings:
            trial = copy.deepcopy(model)
            change_layer(trial.get_submodule(layer), setting)
            curves[layer].append((setting, score(trial)))
    return curves
