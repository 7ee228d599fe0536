"""From a float model to an integer one: static and dynamic post-training quantization (PTQ),
quantization-aware training (QAT), and a per-layer choice of bits.

Static PTQ (Jacob et al. 2018; PyTorch's eager-mode workflow):

    prepared = quant.prepare(model, quant.default_qconfig())   # a copy: BN folded, observers
    for x, _ in calibration_batches: prepared(x)               # observers record ranges
    qmodel = quant.convert(prepared)                           # integer weights and kernels
    logits = qmodel(x)                                         # Quantize -> int8 ... -> DeQuantize

QAT: ``prepared = quant.prepare_qat(model, qconfig)``, train ``prepared`` with any optimizer
(its parameters are the float model's), optionally ``prepared.freeze_observers()`` for the last
epochs, then ``quant.convert(prepared)``. Dynamic: ``quant.quantize_dynamic(model)``.

Scope: chains of layers (``nn.Sequential``, ``LeNet5``, ``MLP``): the model's leaf modules,
in registration order, must be what its forward pass runs, each on the previous one's output
(checked on the first batch). Supported: Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, Flatten,
Dropout, Identity, and BatchNorm1d/2d right after a Linear/Conv2d (folded into it,
``fuse``). A ReLU right after a Conv2d/Linear is fused into it.

Conventions (``QConfig``):

* weights: symmetric, signed, restricted to [-(2^(b-1) - 1), 2^(b-1) - 1] (zero point 0), per
  output channel (axis 0) by default; fewer than 8 bits are held in int8 arrays.
* activations: affine, unsigned, [0, 2^b - 1] (uint8 for b = 8), so ReLU outputs use the whole
  grid; the range comes from the observer (``MinMaxObserver`` for PTQ,
  ``MovingAverageMinMaxObserver`` inside ``FakeQuantize`` for QAT).
* ``bits`` may be 2..16 (ValueError otherwise), but the integer kernels take at most 8-bit
  codes: ``convert`` refuses wider layers (fake quantization can still study them).

Where quantization happens: the model input, and the output of every Conv2d/Linear (after its
fused ReLU). Pooling, ReLU, flatten and dropout keep their input's scale and zero point.

Mixed precision: ``qconfig`` may be a dict {layer name: QConfig}, names as in
``model.named_modules()`` (e.g. "features.0"), with "" for the default of every other layer:
``{"": default_qconfig(8), "classifier.5": default_qconfig(4)}``. A layer's QConfig sets its
weight bits and the bits of its output activation.

QAT folds batch norm first (with the running statistics), so the network trains without it;
this is simpler than PyTorch's ConvBn modules, which keep normalizing batches during QAT.
Weights are fake-quantized with ranges from their current values at every step (per channel,
straight-through gradient); activations through ``FakeQuantize`` modules.
"""

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from minigrad import nn
from minigrad.autograd import no_grad
from minigrad.backend.fixed_point import INT8_MAX_TERMS
from minigrad.nn import functional as F
from minigrad.nn.attention import MultiheadAttention
from minigrad.nn.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten,
                                Identity, Linear, MaxPool2d, ReLU)
from minigrad.quant.attention import (projection_inputs, quantization_sites, quantized_site,
                                      replaced)
from minigrad.quant.fake_quant import FakeQuantize, fake_quantize
from minigrad.quant.fuse import fuse_conv_bn, fuse_linear_bn
from minigrad.quant.observers import (MinMaxObserver, MovingAverageMinMaxObserver, Observer,
                                      PerChannelMinMaxObserver)
from minigrad.quant.qparams import check_bits, check_finite
from minigrad.quant.quantized import (DeQuantize, DynamicQuantizedLinear, QuantizedAvgPool2d,
                                      QuantizedConv2d, QuantizedFlatten, QuantizedLinear,
                                      QuantizedMaxPool2d, QuantizedModel, QuantizedReLU,
                                      Quantize)
from minigrad.report import format_table
from minigrad.tensor import Tensor

SUPPORTED = (Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, Flatten, Dropout, Identity, BatchNorm1d,
             BatchNorm2d)
WEIGHTED = (Conv2d, Linear)
FOLDS = {BatchNorm2d: (Conv2d, fuse_conv_bn), BatchNorm1d: (Linear, fuse_linear_bn)}


@dataclass(frozen=True)
class QConfig:
    """How to quantize one layer (see the module docstring for the conventions).

    ``activation_observer`` / ``weight_observer``: None for the defaults, or a factory called
    with the quantizer's keywords (``bits=, signed=False`` for activations; ``bits=,
    symmetric=True, signed=True, restricted=True`` for weights), e.g. ``HistogramObserver``.
    The activation observer must be per-tensor; the weight observer must define
    ``reset_min_max_vals()`` (every built-in one does): it follows the weight's current values.
    """

    activation_bits: int = 8
    weight_bits: int = 8
    per_channel: bool = True
    activation_observer: Optional[Callable] = None
    weight_observer: Optional[Callable] = None

    def __post_init__(self):
        check_bits(self.activation_bits)
        check_bits(self.weight_bits)

    def make_activation_observer(self, qat=False):
        """A per-tensor observer for an activation (ValueError for a per-channel one: the
        integer layers take one scale and zero point per activation)."""
        default = MovingAverageMinMaxObserver if qat else MinMaxObserver
        observer = (self.activation_observer or default)(bits=self.activation_bits, signed=False)
        if observer.axis is not None:
            raise ValueError(f"QConfig: activation_observer must be per-tensor, got "
                             f"{type(observer).__name__} (ch_axis={observer.axis})")
        return observer

    def make_weight_observer(self):
        default = PerChannelMinMaxObserver if self.per_channel else MinMaxObserver
        return (self.weight_observer or default)(bits=self.weight_bits, symmetric=True,
                                                 signed=True, restricted=True)

    def weight_qparams(self, weight):
        """Symmetric QParams for ``weight`` (an array) from a fresh weight observer."""
        return current_qparams(self.make_weight_observer(), weight)


def current_qparams(observer, array):
    """The QParams of ``array`` alone: ``observer`` forgets what it saw before, observes
    ``array`` and keeps its range (a weight's quantizer follows the weight's current values)."""
    observer.reset_min_max_vals()
    observer(array)
    return observer.calculate_qparams()


def default_qconfig(bits=8, per_channel=True):
    """``bits``-bit weights (per channel or per tensor) and ``bits``-bit activations."""
    return QConfig(activation_bits=bits, weight_bits=bits, per_channel=per_channel)


@dataclass
class Step:
    """One layer of the prepared chain; ``site`` indexes its activation quantizer
    (Conv2d/Linear only) and ``relu`` is the ReLU fused into it."""
    name: str
    module: object
    qconfig: QConfig = None
    site: int = None
    relu: object = None


# ----------------------------------------------------------------------------- planning
def _leaves(model):
    return [(name, m) for name, m in model.named_modules()
            if next(m.children(), None) is None]


def _layer_qconfigs(leaves, qconfig):
    """{leaf name: QConfig} for the Conv2d/Linear leaves, and the default (for the input)."""
    if qconfig is None or isinstance(qconfig, QConfig):
        default, per_layer = qconfig or default_qconfig(), {}
    elif isinstance(qconfig, dict):
        per_layer = dict(qconfig)
        default = per_layer.pop("", None) or default_qconfig()
        names = [name for name, m in leaves if isinstance(m, WEIGHTED)]
        unknown = sorted(set(per_layer) - set(names))
        if unknown:
            raise ValueError(f"qconfig names layers the model does not have: {unknown}; its "
                             f"Conv2d/Linear layers are {names} (and \"\" sets the default)")
    else:
        raise TypeError(f"qconfig must be a QConfig, a dict {{layer name: QConfig}} or None, "
                        f"got {type(qconfig).__name__}")
    for value in [default, *per_layer.values()]:
        if not isinstance(value, QConfig):
            raise TypeError(f"qconfig: expected QConfig values, got {type(value).__name__}")
    return {name: per_layer.get(name, default) for name, _ in leaves}, default


def fold_batch_norms(model):
    """Fold every BatchNorm right after a Conv2d/Linear into it (in place); the BatchNorm is
    replaced by an Identity, so the leaves keep their names."""
    previous = (None, None)
    for name, module in _leaves(model):
        if type(module) in FOLDS:
            layer_type, fuse = FOLDS[type(module)]
            if not isinstance(previous[1], layer_type):
                raise ValueError(f"quantization: {type(module).__name__} {name!r} does not "
                                 f"follow a {layer_type.__name__}, so it cannot be folded")
            model.set_submodule(previous[0], fuse(previous[1], module))
            model.set_submodule(name, Identity())
        previous = (name, module)


def plan_steps(model, qconfig):
    """Check the layers, and list the steps of the chain with their QConfigs."""
    leaves = _leaves(model)
    for name, module in leaves:
        if not isinstance(module, SUPPORTED):
            raise ValueError(
                f"quantization: layer {name or '(the model)'!r} ({type(module).__name__}) is not "
                f"supported; a quantized model is a chain of "
                f"{', '.join(t.__name__ for t in SUPPORTED)}")
        if getattr(module, "groups", 1) != 1:  # the int8 convolution kernel has no groups
            raise ValueError(f"quantization: layer {name!r} ({type(module).__name__}) has "
                             f"groups={module.groups}; only groups=1 is supported")
    configs, default = _layer_qconfigs(leaves, qconfig)
    fold_batch_norms(model)
    steps, sites = [], 0
    for name, module in _leaves(model):
        if isinstance(module, Identity):
            continue
        after_layer = steps and steps[-1].site is not None and steps[-1].relu is None
        if isinstance(module, ReLU) and after_layer:
            steps[-1].relu = module
        elif isinstance(module, WEIGHTED):
            steps.append(Step(name, module, configs[name], sites))
            sites += 1
        else:
            steps.append(Step(name, module))
    if not any(step.site is not None for step in steps):
        raise ValueError("quantization: the model has no Conv2d or Linear layer to quantize")
    return steps, default


# ----------------------------------------------------------------------------- prepared model
class PreparedModel(nn.Module):
    """The float model (batch norms folded) run as its chain of steps, with an activation
    quantizer at the input and after every Conv2d/Linear (+ReLU): observers for calibration
    (``prepare``), ``FakeQuantize`` modules for QAT (``prepare_qat``). ``weight_sites[i]`` is
    the weight observer of the i-th Conv2d/Linear, sized from its weight at prepare (per
    channel: C = the output channels), holding the range of the weight at the last forward.
    So ``state_dict()`` has every statistic at its final shape from the start: a checkpoint
    loads into a freshly prepared model, which ``convert`` turns into the same integer model.
    ``parameters()`` are the float model's, so any optimizer trains it."""

    def __init__(self, model, steps, input_site, sites, weight_sites, qat):
        super().__init__()
        self.model, self.input_site, self.sites = model, input_site, nn.ModuleList(sites)
        self.weight_sites = nn.ModuleList(weight_sites)
        self.steps, self.qat, self.chain_checked = steps, qat, False

    def forward(self, x):
        quantized_input = self.quantize_site(self.input_site, x, "the model input")
        if not self.chain_checked:
            self.check_chain(x)
        x = quantized_input
        for step in self.steps:
            if step.site is None:
                x = step.module(x)
                continue
            weight_qp = self.weight_qparams(step, step.module.weight.data)
            if self.qat:
                x = self.fake_quantized_layer(step.module, x, weight_qp)
            else:
                x = step.module(x)
            if step.relu is not None:
                x = step.relu(x)
            x = self.quantize_site(self.sites[step.site], x, f"the output of {step.name!r}")
        return x

    @staticmethod
    def quantize_site(site, x, where):
        check_finite(x.data if isinstance(x, Tensor) else x, where, "quantization",
                     "in the calibration or training data? Quantization ranges need finite "
                     "values")
        return site(x)

    def weight_qparams(self, step, weight):
        """The QParams of ``weight`` (the current weight array of ``step``'s layer), recorded
        in the layer's weight site."""
        _check_weights(step.name, step.module)
        return current_qparams(self.weight_sites[step.site], weight)

    @staticmethod
    def fake_quantized_layer(layer, x, weight_qp):
        """``layer`` with its weight fake-quantized by ``weight_qp`` (straight-through
        gradient)."""
        weight = fake_quantize(layer.weight, weight_qp)
        if isinstance(layer, Linear):
            return F.linear(x, weight, layer.bias)
        return F.conv2d(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation)

    def check_chain(self, x):
        """Run the float model once and check its forward pass is exactly our chain."""
        expected = _leaves(self.model)
        calls = []
        handles = [m.register_forward_hook(lambda mod, args, out: calls.append((mod, args, out)))
                   for _, m in expected]
        try:
            with no_grad():
                output = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        ran = [mod for mod, _, _ in calls]
        for i, (name, module) in enumerate(expected):
            feeds_on = i == 0 or (i < len(calls) and calls[i][1][0] is calls[i - 1][2])
            if i >= len(ran) or ran[i] is not module or not feeds_on:
                raise ValueError(
                    f"quantization: layer {name!r} ({type(module).__name__}) is not run in "
                    "order on the previous layer's output; only chains of layers (Sequential, "
                    "LeNet5, MLP) can be quantized")
        if len(ran) != len(expected) or output is not calls[-1][2]:
            raise ValueError("quantization: the model computes something besides its chain of "
                             "layers (a layer run twice, or an op after the last layer)")
        self.chain_checked = True

    def freeze_observers(self):
        """Stop updating the activation ranges (QAT); a static PTQ model ignores this."""
        for site in [self.input_site, *self.sites]:
            if isinstance(site, FakeQuantize):
                site.disable_observer()
        return self


def _check_weights(name, layer, names=("weight", "bias")):
    for what in names:
        value = getattr(layer, what)
        if value is not None:
            check_finite(value.data, f"the {what} of layer {name!r}", "quantization")


def _prepare(model, qconfig, qat):
    model = copy.deepcopy(model).train(qat)
    steps, default = plan_steps(model, qconfig)
    for step in steps:
        if step.site is not None:
            _check_weights(step.name, step.module)

    def site(config):
        observer = config.make_activation_observer(qat)
        return FakeQuantize(observer) if qat else observer

    layers = [step for step in steps if step.site is not None]
    sites = [site(step.qconfig) for step in layers]
    weight_sites = [step.qconfig.make_weight_observer().allocate(step.module.weight.shape)
                    for step in layers]
    return PreparedModel(model, steps, site(default), sites, weight_sites, qat).train(qat)


def prepare(model, qconfig=None):
    """A copy of ``model`` ready for calibration (see the module docstring); ``model`` is not
    changed. Run calibration batches through the result, then ``convert`` it."""
    return _prepare(model, qconfig, qat=False)


def prepare_qat(model, qconfig=None):
    """A copy of ``model`` in training mode with fake-quantized weights and activations; train
    it, then ``convert`` it."""
    return _prepare(model, qconfig, qat=True)


# ----------------------------------------------------------------------------- convert
def _site_qparams(site, where):
    observer = site.observer if isinstance(site, FakeQuantize) else site
    if not isinstance(observer, Observer) or not observer.has_data():
        raise ValueError(f"convert: no range recorded for {where}: run calibration batches "
                         "through the prepared model first (prepared(x) on a few batches)")
    return site.qparams() if isinstance(site, FakeQuantize) else site.calculate_qparams()


def _pass_through(module, qp):
    """The code-domain twin of a layer that keeps its input's (s, z); None: drop it."""
    if isinstance(module, MaxPool2d):
        if module.dilation not in (1, (1, 1)) or module.ceil_mode or module.return_indices:
            raise ValueError("convert: MaxPool2d with dilation, ceil_mode or return_indices "
                             "is not supported")
        return QuantizedMaxPool2d(module.kernel_size, module.stride, module.padding, qp.qmin)
    if isinstance(module, AvgPool2d):
        if (module.ceil_mode or not module.count_include_pad
                or module.divisor_override is not None):
            raise ValueError("convert: AvgPool2d with ceil_mode, count_include_pad=False or "
                             "divisor_override is not supported")
        return QuantizedAvgPool2d(module.kernel_size, module.stride, module.padding,
                                  int(qp.zero_point))
    if isinstance(module, Flatten):
        return QuantizedFlatten(module.start_dim, module.end_dim)
    if isinstance(module, ReLU):
        return QuantizedReLU(int(qp.zero_point))
    return None  # Dropout: the identity at inference


def convert(prepared):
    """The integer model (``QuantizedModel``) of a calibrated ``prepare`` or trained
    ``prepare_qat`` model: Quantize, quantized layers, DeQuantize."""
    if not isinstance(prepared, PreparedModel):
        raise TypeError(f"convert: expected the model returned by prepare() or prepare_qat(), "
                        f"got {type(prepared).__name__}")
    qp = _site_qparams(prepared.input_site, "the model input")
    layers = [("quantize", Quantize(qp.scale, qp.zero_point, qp.qmin, qp.qmax))]
    for step in prepared.steps:
        if step.site is None:
            layer = _pass_through(step.module, qp)
        else:
            out_qp = _site_qparams(prepared.sites[step.site], f"the output of {step.name!r}")
            layer_type = QuantizedConv2d if isinstance(step.module, Conv2d) else QuantizedLinear
            weight_qp = prepared.weight_qparams(step, step.module.weight.numpy())
            layer = layer_type.from_float(step.module, qp, out_qp, weight_qp,
                                          relu=step.relu is not None, name=step.name)
            qp = out_qp
        if layer is not None:
            layers.append((step.name.replace(".", "_"), layer))
    layers.append(("dequantize", DeQuantize(qp.scale, qp.zero_point, qp.qmin, qp.qmax)))
    return QuantizedModel(OrderedDict(layers)).eval()


def simulate(qmodel, x):
    """``qmodel`` (a converted model) in float64 fake-quantization arithmetic, each layer's
    ``forward_reference``: the same outputs as ``qmodel(x)``, bit for bit."""
    if not isinstance(qmodel, QuantizedModel):
        raise TypeError(f"simulate: expected a converted QuantizedModel, got "
                        f"{type(qmodel).__name__}")
    for layer in qmodel:
        x = layer.forward_reference(x)
    return x


# ----------------------------------------------------------------------------- dynamic
def quantize_dynamic(model, verbose=True):
    """A copy of ``model`` whose Linear layers hold int8 weights (per channel) and quantize
    their input per batch at run time (``DynamicQuantizedLinear``), as do the q, k, v and
    output projections of every MultiheadAttention (``QuantizedMultiheadAttention``);
    other layers stay float. Any model structure works. Prints which layers were converted
    and why others were not (``verbose=False``: silent)."""
    model = copy.deepcopy(model).eval()
    weight_qparams = default_qconfig().weight_qparams
    rows = []
    sites = [(name, m) for name, m in quantization_sites(model, nn.Module)
             if isinstance(m, MultiheadAttention) or next(m.children(), None) is None]
    for name, module in sites:
        kind = type(module).__name__
        if isinstance(module, (Linear, MultiheadAttention)):
            if isinstance(module, MultiheadAttention):
                _check_weights(name or kind, module, ("in_proj_weight", "in_proj_bias"))
                _check_weights(f"{name}.out_proj" if name else "out_proj", module.out_proj)
                why = "int8 q, k, v and out projections per channel, uint8 inputs per batch"
            else:
                _check_weights(name or kind, module)
                why = "int8 weights per channel, uint8 input per batch"
            inputs = max(projection_inputs(module))  # the longest dot product
            if inputs > INT8_MAX_TERMS:
                rows.append((name, kind, "no", f"{inputs} inputs could overflow the int32 "
                             f"accumulator (at most {INT8_MAX_TERMS})"))
                continue
            model = replaced(model, name, quantized_site(module, lambda w, b: (
                DynamicQuantizedLinear.from_arrays(w, b, weight_qparams(w)))))
            rows.append((name, kind, "yes", why))
        elif next(module.parameters(recurse=False), None) is not None:
            rows.append((name, kind, "no", "dynamic quantization converts Linear layers only "
                         "(and MultiheadAttention's)"))
        else:
            rows.append((name, kind, "no", "no weights: runs in float"))
    if verbose:
        print(format_table(["layer", "type", "converted", "why"], rows))
    return model
