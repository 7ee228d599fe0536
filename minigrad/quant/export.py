"""Saving a converted (integer) model and loading it without the float model.

    quant.save_quantized(qmodel, "lenet_int8.npz")
    qmodel = quant.load_quantized("lenet_int8.npz")     # runs the integer path, same outputs

The file is a ``minigrad.serialization`` .npz (atomic write, nothing unpickled on load) holding

    {"format": "minigrad.quantized_model", "version": 1,
     "layers": [{"name": "features_0", "type": "QuantizedConv2d", "state": {...}}, ...]}

where each layer's ``state`` is what its constructor takes: integer arrays (int8 weight codes,
int32 biases), the float32 weight scales, and Python numbers (input and output scales and zero
points, code ranges, bits, geometry). The fixed-point multipliers are recomputed from the
scales on load, by the same function, so they are the same integers.
"""

from collections import OrderedDict

from minigrad import serialization
from minigrad.quant.quantized import LAYER_TYPES, DeQuantize, Quantize, QuantizedModel

FORMAT = "minigrad.quantized_model"
VERSION = 1


def save_quantized(qmodel, path):
    """Write a ``QuantizedModel`` (from ``convert`` or ``load_quantized``) to ``path``."""
    if not isinstance(qmodel, QuantizedModel):
        raise TypeError(f"save_quantized: expected a converted QuantizedModel, got "
                        f"{type(qmodel).__name__}")
    layers = [{"name": name, "type": type(layer).__name__, "state": layer.state()}
              for name, layer in qmodel.named_children()]
    serialization.save({"format": FORMAT, "version": VERSION, "layers": layers}, path)


def load_quantized(path):
    """The ``QuantizedModel`` saved at ``path``; ValueError naming the reason for a file that
    is corrupt, not a quantized model, from a newer version, or has an unknown layer."""
    content = serialization.load(path)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"load_quantized: {path!r} is not a quantized model (a minigrad file "
                         f"without \"format\": \"{FORMAT}\"; save one with save_quantized)")
    if content.get("version") not in range(1, VERSION + 1):
        raise ValueError(f"load_quantized: {path!r} has version {content.get('version')!r}; "
                         f"this minigrad reads versions 1 to {VERSION}")
    layers = OrderedDict()
    for entry in content.get("layers") or []:
        name, kind = entry.get("name"), entry.get("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"load_quantized: {path!r}: layer {name!r} has unknown type "
                             f"{kind!r}")
        try:
            layers[name] = LAYER_TYPES[kind](**entry["state"])
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"load_quantized: {path!r}: layer {name!r} ({kind}) has a bad "
                             f"state: {error}") from error
    modules = list(layers.values())
    if len(modules) < 2 or type(modules[0]) is not Quantize or type(modules[-1]) is not DeQuantize:
        raise ValueError(f"load_quantized: {path!r}: a quantized model runs from Quantize to "
                         "DeQuantize")
    return QuantizedModel(layers).eval()
