"""Structured surgery: ``shrink(model, example_input)`` physically removes pruned channels.

Structured pruning (``ln_structured(..., dim=0)``, or zeroing filters by hand) only zeroes
whole output slices of a weight: a Conv2d filter ``W[c]`` or a Linear row ``W[c]``. The layer
still computes them. ``shrink`` returns a new, smaller dense model with the same outputs: the
zero channels are cut out of their layer (the *producer* P), out of the batch norms after it,
and their inputs are cut out of the next Conv2d or Linear (the *consumer* Q). This is the
surgery of Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017), made exact by
folding what the removed channels still contribute into Q's bias.

    shrunk = shrink(model, x[:2])            # any input of the right shape: it fixes the shapes
    shrunk, report = shrink(model, x[:2], return_report=True)
    print(report)                            # channels removed, zero ones kept and why

The math. With ``W_P[c] = 0`` channel c of P outputs its bias everywhere: ``z_c = b_c`` (a
constant map, the same for every input). The layers between P and Q work on each channel
separately (ReLU and friends, pooling, dropout and batch norm in eval mode), so the map that
reaches Q for channel c is ``a_c = g(b_c)``, also the same for every input. ``shrink`` finds it
by pushing a tensor filled with the biases through those layers. Then:

* Q = Linear (after a Flatten of (C, H, W), channel c owns the columns
  ``J_c = c*H*W ... (c+1)*H*W - 1``; directly after P, ``J_c = {c}``):

      y = W_Q x + b_Q = W_Q[:, kept] x_kept + (b_Q + W_Q[:, J_c] a_c)

  so dropping the columns J_c and adding ``W_Q[:, J_c] @ a_c`` to the bias is exact.
* Q = Conv2d with padding 0: every output reads a full window of valid inputs, so if a_c is
  the constant alpha_c the channel adds ``alpha_c * sum_{kh,kw} W_Q[o, c, kh, kw]`` to every
  output o, whatever the position: fold it into ``b_Q[o]``.
* Q = Conv2d with padding > 0: windows at the border also read padding zeros, so the
  contribution shrinks near the border and no bias can stand in for it. Removal is exact only
  when ``a_c = 0`` (e.g. ReLU of a negative bias); otherwise channel c is kept (and the report
  says why). Before any Conv2d, a channel whose ``a_c`` is not constant over the image is
  kept too (average pooling with padding counts the padding zeros).

The outputs of the model's last layer are never removed, and a layer always keeps at least one
channel. Equality holds in eval mode (batch norm uses its running statistics, dropout is the
identity); in training mode a constant channel would normalise to beta, so the pruned and
shrunk models differ there: fine-tune the shrunk one (with a new optimizer: it has new,
smaller Parameters).

Only chains are handled: the model's leaf modules, run in order, each taking the previous
one's output (Sequential, LeNet5, MLP). ``shrink`` traces one forward pass of
``example_input`` with forward hooks to find that order and the shapes, and raises a ValueError
naming the module where the model is not such a chain (a layer run twice, a residual add, a
functional op between layers) or where an unknown layer sits between a producer and its
consumer.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.nn.layers import (GELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d,
                                Conv2d, Dropout, Flatten, Identity, LeakyReLU, Linear, MaxPool2d,
                                ReLU, Sigmoid, Tanh)
from minigrad.nn.module import Parameter
from minigrad.prune.reparam import pruned_names, remove
from minigrad.report import format_table
from minigrad.tensor import Tensor

# Layers that act on each channel separately, so a pruned channel stays a fixed map through them.
PER_CHANNEL = (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Dropout, Identity, MaxPool2d, AvgPool2d,
               AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, Flatten)
BATCH_NORMS = (BatchNorm1d, BatchNorm2d)


@dataclass
class TracedLayer:
    """One leaf module as the example forward pass ran it."""
    name: str
    module: object
    input_shape: tuple
    output_shape: tuple


@dataclass
class LayerShrink:
    """What ``shrink`` did to one layer with zero output channels."""
    name: str
    channels: int                              # before
    removed: list                              # channel indices cut out
    kept: dict = field(default_factory=dict)   # zero channel -> why it stayed
    consumer: str = None                       # the next Conv2d/Linear (None: model output)

    def kept_summary(self):
        """'channels: reason; ...', one entry per reason, or None when no zero channel stayed."""
        by_reason = {}
        for channel, why in self.kept.items():
            by_reason.setdefault(why, []).append(str(channel))
        return "; ".join(f"{', '.join(cs)}: {why}" for why, cs in by_reason.items()) or None


@dataclass
class ShrinkReport:
    """What ``shrink(..., return_report=True)`` did: one LayerShrink per layer that had zero
    output channels, and the parameter counts; ``print(report)`` shows it as a table."""
    layers: list
    parameters_before: int
    parameters_after: int

    def __str__(self):
        rows = [(s.name, s.channels, s.channels - len(s.removed), len(s.removed),
                 s.kept_summary(), s.consumer)
                for s in self.layers]
        table = format_table(["layer", "channels", "left", "removed", "zero but kept", "next"],
                             rows)
        return (f"{table}\nparameters: {self.parameters_before} -> {self.parameters_after} "
                f"({self.parameters_after / self.parameters_before:.1%})")


@dataclass
class Surgery:
    """The cut for one producer: its zero channels, where they go, what they add downstream."""
    producer: TracedLayer
    batch_norms: list      # (TracedLayer, columns per channel) between producer and consumer
    consumer: TracedLayer  # None when the channels are outputs of the model
    group: int             # columns of the consumer's input owned by one channel
    constants: object      # a_c for every channel: (C, H, W) before a Conv2d, (C*group,) else
    report: LayerShrink


def shrink(model, example_input, return_report=False):
    """A smaller dense copy of ``model`` without its zero output channels (see the module
    docstring); ``model`` is not changed. With ``return_report=True`` returns
    ``(new_model, ShrinkReport)``."""
    new = copy.deepcopy(model)
    modes = {name: module.training for name, module in new.named_modules()}
    new.eval()
    new.zero_grad()  # gradients of the old shapes would not fit the new weights
    for module in new.modules():
        make_permanent(module)
    chain = trace_chain(new, example_input)
    for layer in chain:  # cutting a channel out of a group would change the grouping
        if getattr(layer.module, "groups", 1) != 1:
            raise ValueError(f"shrink: layer {layer.name!r} ({type(layer.module).__name__}) "
                             f"has groups={layer.module.groups}; only groups=1 is supported")
    surgeries = [plan_surgery(chain, i) for i, layer in enumerate(chain)
                 if isinstance(layer.module, (Conv2d, Linear)) and zero_channels(layer.module)]
    for surgery in surgeries:
        cut(surgery)
    for name, module in new.named_modules():
        module.training = modes[name]
    if not return_report:
        return new
    return new, ShrinkReport([s.report for s in surgeries], parameter_count(model),
                             parameter_count(new))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def make_permanent(module):
    """Bake every pruned tensor of ``module`` into a plain Parameter (``prune.remove``)."""
    for name in pruned_names(module):
        remove(module, name)


def zero_channels(module):
    """Output channels (Conv2d filters, Linear rows) whose weights are all zero."""
    weight = module.weight.data
    flat = weight.reshape(weight.shape[0], -1)
    return [int(c) for c in backend.to_device(
        backend.array_module(flat).flatnonzero(~flat.any(axis=1)), "cpu")]


def trace_chain(model, example_input):
    """Run ``example_input`` once and return the leaf modules in execution order, checking
    that each one runs once and takes the previous one's output."""
    names = {id(m): name for name, m in model.named_modules()
             if next(m.children(), None) is None}
    calls = []
    handles = [m.register_forward_hook(lambda mod, args, out: calls.append((mod, args, out)))
               for m in model.modules() if id(m) in names]
    try:
        with no_grad():
            output = model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    if not calls:
        raise ValueError(f"shrink: {type(model).__name__} ran no layers on the example input")
    chain, previous = [], None
    for module, args, out in calls:
        name = names[id(module)]
        if any(layer.module is module for layer in chain):
            raise ValueError(f"shrink: layer {name!r} ({type(module).__name__}) runs more than "
                             "once per forward pass; shrink handles only chains of layers")
        if previous is not None and (len(args) != 1 or args[0] is not previous[2]):
            raise ValueError(
                f"shrink: the input of {name!r} ({type(module).__name__}) is not the output of "
                f"{names[id(previous[0])]!r}: the model computes something between them (a "
                "residual add, a reshape, a functional op); shrink handles only chains of layers")
        chain.append(TracedLayer(name, module, tuple(args[0].shape), tuple(out.shape)))
        previous = (module, args, out)
    if output is not calls[-1][2]:
        raise ValueError(f"shrink: the model's output is not the output of its last layer "
                         f"{chain[-1].name!r}; shrink handles only chains of layers")
    return chain


def plan_surgery(chain, index):
    """Follow producer ``chain[index]`` through per-channel layers to its consumer and decide
    which of its zero channels can go."""
    producer = chain[index]
    zero = zero_channels(producer.module)
    channels = producer.output_shape[1]
    if isinstance(producer.module, Linear) and len(producer.output_shape) != 2:
        raise ValueError(f"shrink: Linear {producer.name!r} has a {len(producer.output_shape)}-D "
                         "output; only (N, features) outputs can be shrunk")
    rest = chain[index + 1:]
    if not any(isinstance(layer.module, (Conv2d, Linear)) for layer in rest):
        report = LayerShrink(producer.name, channels, [], {c: "output of the model" for c in zero})
        return Surgery(producer, [], None, 1, None, report)
    between, batch_norms, group = [], [], 1
    for layer in rest:
        module = layer.module
        if isinstance(module, (Conv2d, Linear)):
            return decide(producer, zero, between, batch_norms, layer, group)
        if not isinstance(module, PER_CHANNEL):
            raise ValueError(f"shrink: layer {layer.name!r} ({type(module).__name__}) between "
                             f"{producer.name!r} and the next Conv2d/Linear is not known to act "
                             "on each channel separately")
        if isinstance(module, Flatten):
            group *= flattened_group(layer)
        if isinstance(module, BATCH_NORMS):
            batch_norms.append((layer, group))
        between.append(module)


def flattened_group(layer):
    """How many features one channel becomes in Flatten(1, -1): H*W for (N, C, H, W)."""
    module, ndim = layer.module, len(layer.input_shape)
    if module.start_dim != 1 or module.end_dim not in (-1, ndim - 1):
        raise ValueError(f"shrink: Flatten {layer.name!r} must flatten axes 1..-1 to keep "
                         f"channels together, got start_dim={module.start_dim}, "
                         f"end_dim={module.end_dim}")
    return int(np.prod(layer.input_shape[2:], dtype=np.int64))


def decide(producer, zero, between, batch_norms, consumer, group):
    """Which zero channels of ``producer`` can go into ``consumer`` exactly (module docstring):
    all before a Linear; before a Conv2d only those whose map a_c is constant, and zero too
    when the conv pads."""
    module = consumer.module
    if isinstance(module, Linear) and len(consumer.input_shape) != 2:
        raise ValueError(f"shrink: Linear {consumer.name!r} gets a {len(consumer.input_shape)}-D "
                         f"input from {producer.name!r}: put a Flatten between them")
    constants = channel_constants(producer, between)
    kept = {}
    if isinstance(module, Conv2d):
        for c in zero:
            a = constants[c]
            if module.padding != (0, 0) and bool(a.any()):
                kept[c] = (f"constant {float(a.max()):.3g} meets the zero padding of "
                           f"{consumer.name!r}")
            elif float(a.max() - a.min()) > 1e-6 * max(1.0, float(abs(a).max())):
                kept[c] = "its map is not constant over the image"
    removed = [c for c in zero if c not in kept]
    if removed and len(removed) == producer.output_shape[1]:
        kept[removed.pop(0)] = "a layer keeps at least one channel"
    report = LayerShrink(producer.name, producer.output_shape[1], removed, kept, consumer.name)
    return Surgery(producer, batch_norms, consumer, group, constants, report)


def channel_constants(producer, between):
    """a_c: what each channel of ``producer`` would become downstream if its weights were zero,
    i.e. its bias pushed through the per-channel layers (the model is in eval mode)."""
    module = producer.module
    shape = (2,) + producer.output_shape[1:]  # 2, not 1: batch norm without running stats
    xp = backend.array_module(module.weight.data)
    bias = (module.bias.data if module.bias is not None
            else xp.zeros(shape[1], dtype=module.weight.dtype))
    x = Tensor(xp.broadcast_to(bias.reshape((1, -1) + (1,) * (len(shape) - 2)), shape).copy())
    with no_grad():
        for layer in between:
            x = layer(x)
    return x.data[0].astype(np.float64)


def cut(surgery):
    """Apply one planned surgery to the (copied) modules, in place."""
    removed = surgery.report.removed
    if not removed:
        return
    producer = surgery.producer.module
    kept = keep_index(surgery.producer.output_shape[1], removed, 1)
    slice_parameters(producer, ["weight", "bias"], kept)
    if isinstance(producer, Conv2d):
        producer.out_channels = len(kept)
    else:
        producer.out_features = len(kept)
    for layer, group in surgery.batch_norms:
        bn = layer.module
        columns = keep_index(surgery.producer.output_shape[1], removed, group)
        slice_parameters(bn, ["weight", "bias", "running_mean", "running_var"], columns)
        bn.num_features = len(columns)
    cut_consumer_inputs(surgery)


def cut_consumer_inputs(surgery):
    """Drop the removed channels' inputs of the consumer; fold what they added into its bias."""
    consumer, group, removed = surgery.consumer.module, surgery.group, surgery.report.removed
    weight = consumer.weight.data
    xp = backend.array_module(weight)
    if isinstance(consumer, Conv2d):
        gone = xp.asarray(removed)
        alphas = surgery.constants[gone, 0, 0]  # each removed map is one constant (see decide)
        fold = weight[:, gone].astype(np.float64).sum(axis=(2, 3)) @ alphas
    else:
        gone = xp.asarray([c * group + k for c in removed for k in range(group)])
        fold = weight[:, gone].astype(np.float64) @ surgery.constants[gone]
    kept = backend.to_device(keep_index(surgery.producer.output_shape[1], removed, group),
                             consumer.weight.device)
    consumer.weight.data = weight[:, kept].copy()
    if consumer.bias is not None:
        consumer.bias.data = (consumer.bias.data + fold).astype(weight.dtype)
    elif bool(fold.any()):
        consumer.bias = Parameter(fold.astype(weight.dtype))
    if isinstance(consumer, Conv2d):
        consumer.in_channels = len(kept)
    else:
        consumer.in_features = len(kept)


def keep_index(channels, removed, group):
    """The indices that survive along a channel axis: the ``group`` columns of each channel
    that is not removed (group > 1 after a Flatten)."""
    gone = set(removed)
    return np.array([c * group + k for c in range(channels) if c not in gone
                     for k in range(group)], dtype=np.int64)


def slice_parameters(module, names, index):
    """Keep ``index`` along axis 0 of each named parameter or buffer (skipping absent ones)."""
    for name in names:
        tensor = getattr(module, name, None)
        if tensor is not None:
            tensor.data = tensor.data[backend.to_device(index, tensor.device)].copy()
