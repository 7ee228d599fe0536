"""What compression buys and what it costs: real model sizes, signal-to-quantization-noise
ratios, and a per-layer bit-width sensitivity sweep.

Size (``model_size``): the bytes inference needs, module by module, by kind of storage:

    weight      the layer's weight values, or the codes standing for them (integer weights,
                k-means indices, sign bits); sub-byte codes are counted bit-packed,
                ceil(n bits / 8), the size a file needs (np.packbits), not an in-memory byte
    codebook    k-means centroids
    scale       quantization scales (and binary / ternary alphas)
    zero_point  quantization zero points
    bias        biases
    other       everything else inference reads: batch-norm statistics and affine
                parameters, the bitmap of pruned entries of a shared weight, ...

A module reports its own storage (never its children's: they have rows of their own) by
the first of:

1. a method ``storage_bytes() -> dict[str, int]`` with keys from the list above (the
   protocol for layers with storage of their own, such as integer-quantized layers);
2. otherwise: each parametrized tensor (pruned, k-means, binary, ternary, power of two,
   float16: ``minigrad.nn.utils.parametrize``) by its parametrization's ``storage_bytes``,
   instead of what it stores; every other parameter and persistent buffer, and every array,
   Tensor or object with ``nbytes`` held as a plain attribute (``weight_q``, a CSR weight),
   at its size. The column is chosen by the attribute's name: "scale" or "zero_point" in it,
   else "bias..." and "weight..." prefixes, else other.

Only what inference needs is counted, so the parametrizations count: a pruned weight dense
(its mask is bookkeeping: ``prune.remove`` bakes it in; store it sparse with
``prune.to_sparse`` to save the zeros), binary and ternary weights at their bits (the
real-valued ``weight_orig`` is for training only). Not counted either: observers
(calibration statistics), ``FakeQuantize``'s on/off switches, batch norm's
``num_batches_tracked``, non-persistent buffers, and Python numbers kept as attributes.
``bits/weight`` is 8 * weight bytes / number of weights.

SQNR (signal-to-quantization-noise ratio), in decibels:

    SQNR = 10 log10( sum ref^2 / sum (ref - q)^2 )

Each bit of a uniform quantizer adds about 6.02 dB (the noise power of a step s is s^2 / 12
and halving s divides it by 4). ``layer_sqnr`` compares the output of every Linear and Conv2d
of a float model with the same-named layer of its quantized copy, on one input.

Sensitivity (``bit_width_sensitivity``): for every layer and every bit width, fake-quantize
that layer's weights alone (per-channel symmetric, in a deep copy) and score the copy. Layers
whose score holds up at few bits can take them in a mixed-precision model; the sweep of
``prune.sensitivity_analysis`` with bits instead of sparsity (``minigrad.sensitivity``).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.quant.observers import Observer
from minigrad.quant.qparams import calculate_qparams, check_finite, dequantize, quantize
from minigrad.quant.weight_reparam import PRUNED, stored_as
from minigrad.report import format_table
from minigrad.sensitivity import sensitivity_sweep, weight_layers
from minigrad.tensor import Tensor

CATEGORIES = ("weight", "codebook", "scale", "zero_point", "bias", "other")
# Buffers inference never reads: FakeQuantize's switches, batch norm's batch counter (used
# only for momentum=None averaging while training).
BOOKKEEPING_BUFFERS = ("observer_enabled", "fake_quant_enabled", "num_batches_tracked")


def category(name):
    """The column an attribute named ``name`` is counted in."""
    if "zero_point" in name:
        return "zero_point"
    if "scale" in name:
        return "scale"
    for prefix in ("bias", "weight"):
        if name.startswith(prefix):
            return prefix
    return "other"


def array_bytes(value):
    """Bytes of an array, a Tensor, or an object with an integer ``nbytes`` such as a CSR
    matrix (None for anything else)."""
    if isinstance(value, Tensor):
        value = value.data
    nbytes = getattr(value, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, (int, np.integer)) else None


def _default_storage(module):
    """{category: bytes} of a module without ``storage_bytes`` (see the module docstring)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    skipped = set(BOOKKEEPING_BUFFERS)
    for name, entry in module.parametrizations.items():
        count = getattr(entry.parametrization, "storage_bytes", None)
        if count is None:  # a parametrization that does not say: its stored tensors count
            continue
        skipped.update(entry.stored)
        for key, size in count(*entry.stored_tensors(module)).items():
            counts[category(name) if key == "values" else key] += size
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    for name, value in [*own, *vars(module).items()]:
        size = None if name in skipped or value is None else array_bytes(value)
        if size is not None:
            counts[category(name)] += size
            skipped.add(name)  # a tensor that is a buffer and an attribute counts once
    return counts


def _weight_count(module):
    for name in ("weight", "weight_q"):
        value = getattr(module, name, None)
        if hasattr(value, "shape"):
            return math.prod(value.shape)
    return None


def _weight_format(module):
    entry = module.parametrizations.get("weight")
    if entry is not None:
        describe = getattr(entry.parametrization, "storage_format", None)
        return (type(entry.parametrization).__name__ if describe is None
                else describe(*entry.stored_tensors(module)))
    weight = getattr(module, "weight", None)
    if isinstance(weight, Tensor):
        return str(weight.dtype)
    return getattr(module, "storage_kind", None)


@dataclass
class LayerSize:
    """One module's storage: ``bytes`` maps each of ``CATEGORIES`` to a byte count."""

    name: str
    module_type: str
    weight_format: object
    weight_bits: object
    bytes: dict = field(default_factory=dict)

    @property
    def total(self):
        return sum(self.bytes.values())


@dataclass
class ModelSize:
    """``rows``: a LayerSize per module that stores something; ``total``: bytes in all."""

    rows: list

    @property
    def total(self):
        return sum(row.total for row in self.rows)

    def by_category(self):
        return {key: sum(row.bytes[key] for row in self.rows) for key in CATEGORIES}

    def table(self):
        """The rows and a "total" line as aligned text."""
        lines = [[row.name, row.module_type, row.weight_format, row.weight_bits,
                  *(row.bytes[key] for key in CATEGORIES), row.total] for row in self.rows]
        totals = self.by_category()
        lines.append(["total", None, None, None, *(totals[key] for key in CATEGORIES),
                      self.total])
        return format_table(["layer", "module", "format", "bits/weight", *CATEGORIES, "bytes"],
                            lines, [None, None, None, ".3g"] + [",d"] * (len(CATEGORIES) + 1))


def layer_size(name, module):
    """The LayerSize of ``module`` alone (its children not included)."""
    if hasattr(module, "storage_bytes"):
        reported = module.storage_bytes()
        unknown = set(reported) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"model_size: {type(module).__name__}.storage_bytes() returned "
                             f"unknown keys {sorted(unknown)}; use {CATEGORIES}")
        counts = {key: int(reported.get(key, 0)) for key in CATEGORIES}
    else:
        counts = _default_storage(module)
    n = _weight_count(module)
    bits = 8 * counts["weight"] / n if n and counts["weight"] else None
    return LayerSize(name or "(model)", type(module).__name__, _weight_format(module), bits,
                     counts)


def model_size(model):
    """A ``ModelSize``: per module the bytes inference needs by category (``.rows``,
    ``.table()``), and ``.total``. See the module docstring for what is counted."""
    rows = [layer_size(name, module) for name, module in model.named_modules()
            if not isinstance(module, Observer)]
    return ModelSize([row for row in rows if row.total])


# --------------------------------------------------------------------------- SQNR
def _float64(value):
    if hasattr(value, "dequantize"):  # a quantized output: compare the values it stands for
        value = value.dequantize()
    if isinstance(value, Tensor):
        value = value.data
    return np.asarray(backend.to_device(value, "cpu"), dtype=np.float64)


def sqnr(reference, quantized):
    """10 log10(sum ref^2 / sum (ref - q)^2) in dB, in float64; inf when they are equal.
    Arrays, Tensors, or objects with ``dequantize()``."""
    ref, q = _float64(reference), _float64(quantized)
    if ref.shape != q.shape:
        raise ValueError(f"sqnr: reference of shape {ref.shape} and quantized of shape "
                         f"{q.shape} differ")
    noise = np.sum((ref - q) ** 2)
    if noise == 0:
        return math.inf
    return float(10 * np.log10(np.sum(ref**2) / noise))


def _record_outputs(model, names):
    outputs, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:
        def keep(module, args, output, name=name):
            outputs[name] = output
        handles.append(modules[name].register_forward_hook(keep))
    return outputs, handles


def layer_sqnr(float_model, quantized_model, x):
    """{layer: SQNR in dB} of the output of every Linear and Conv2d of ``float_model``
    against the module of the same name in ``quantized_model``, both run on ``x`` (without
    gradients). Layers the quantized model lacks, or that did not run, are left out."""
    quantized_names = dict(quantized_model.named_modules())
    names = [name for name in weight_layers(float_model) if name in quantized_names]
    if not names:
        raise ValueError(f"layer_sqnr: no Linear or Conv2d of the float model has a namesake "
                         f"in the quantized model (float layers: {weight_layers(float_model)})")
    reference, ref_handles = _record_outputs(float_model, names)
    quantized, q_handles = _record_outputs(quantized_model, names)
    try:
        with no_grad():
            float_model(x)
            quantized_model(x)
    finally:
        for handle in ref_handles + q_handles:
            handle.remove()
    return {name: sqnr(reference[name], quantized[name]) for name in names
            if name in reference and name in quantized}


# --------------------------------------------------------------------------- sensitivity
def fake_quantize_weight(module, bits, name="weight"):
    """Replace ``module.<name>`` by its ``bits``-bit per-channel (axis 0) symmetric
    quantization, in place: s = max|w_c| / (2^(bits-1) - 1) per output channel, the
    restricted grid -(2^(bits-1) - 1) .. 2^(bits-1) - 1 (so 2 bits is ternary). A pruned
    tensor's ``<name>_orig`` is quantized (0 stays 0). Returns ``module``."""
    kind = stored_as(module, name)
    if kind not in (None, PRUNED):
        raise ValueError(f"fake_quantize_weight: {name!r} of {type(module).__name__} is stored "
                         f"as {kind} already")
    param = getattr(module, name) if kind is None else \
        module.parametrizations[name].original(module)
    w = check_finite(backend.to_device(param.data, "cpu"),
                     f"{name!r} of {type(module).__name__}", "fake_quantize_weight")
    largest = np.abs(w.reshape(len(w), -1)).max(axis=1)
    qp = calculate_qparams(-largest, largest, bits, symmetric=True, restricted=True, axis=0)
    param.data[...] = backend.to_device(dequantize(quantize(w, qp), qp), param.device)
    return module


def bit_width_sensitivity(model, score, bits_list, layers=None, quantize_layer=None):
    """{layer name: [(bits, score), ...]}: for each of ``layers`` (default: every Linear and
    Conv2d) and each bit width, ``quantize_layer(layer_copy, bits)`` (default
    ``fake_quantize_weight``) in a deep copy of ``model``, then ``score(model_copy)``. The
    model itself is not changed. Per-layer bits for a mixed-precision model can be read off
    the curves."""
    quantize_layer = fake_quantize_weight if quantize_layer is None else quantize_layer
    return sensitivity_sweep(model, score, bits_list, quantize_layer, layers,
                             "bit_width_sensitivity")

