"""Recording one forward pass of a Module through the engine: what ``minigrad.onnx.export``
turns into an ONNX graph.

The tracer is an op observer of the engine (``autograd.register_op_observer``): every op
forward is recorded, in order, as a ``TracedOp`` holding its Function class, its node (the
attributes forward left there, such as Conv2d's ``geometry``), the keyword arguments forward
was called with, its input arrays, its output array, and the path of the module it ran in
("features.0"; forward pre- and post-hooks on every module keep a stack of paths). Tracing
the engine rather than the module tree means a ``forward`` may compose its children freely.

Both export paths record a model in eval mode (``run_in_eval_mode``: a UserWarning names the
modules that were training, whose modes are put back afterwards).

Values are identified by array identity, so the trace keeps every array it saw alive:

* the example input's array is the graph input;
* an array an op produced is that op's output;
* a parameter or buffer array is named by its ``state_dict`` name; a parametrized weight (a
  pruning mask, ``weight = weight_orig * weight_mask``) is computed once inside
  ``parametrize.cached()``, so its array is named by the tensor's name ("features.0.weight");
* any other array an op reads (a number, a constant built inside forward) is a constant.

The batch axis. The model is traced twice, at the example's batch B and at B + 1 (the example
with one more sample: the first one times 1.5 plus noise from a fixed-seed generator): an
output axis whose size differs between the two traces depends on the batch
(``TracedOp.dynamic``), and is the batch itself (``TracedOp.batch``) where its size is B in
one trace and B + 1 in the other; every other size is fixed. A reshape target or broadcast
shape can then keep exactly its batch-dependent axis symbolic, which one trace at B = 1 could
not tell apart from a size-1 axis. The two traces must run the same ops and read the same
constants, or the model's graph depends on its batch size and export refuses it.

Constant folding. An op none of whose inputs depends on the graph input (the reshape of a
batch-norm statistic, a mask times a weight) has been evaluated already: ``TracedOp.folded``
marks it, and its output is a constant of the graph, provided its shape does not depend on
the batch. One that does (a class token ``cls.expand(len(x), 1, D)``) is a value of the
graph, as is every op reading it; only BroadcastTo may make such a value from constants
alone (the converter takes the batch from the input's shape at run time): any other op is a
ValueError naming it, as is a folded output whose values differ between the two traces.

What a trace cannot see (as ``torch.jit.trace`` warns): Python control flow on the values
of a tensor (``if x.sum() > 0``, a loop over ``int(x.max())``) is recorded as the branch the
example took. The second trace, on different data, turns a different branch into an error
when it runs different ops, but a branch both examples take alike is exported as if it were
the only one, silently.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from minigrad import autograd
from minigrad.autograd import no_grad
from minigrad.backend import device_of
from minigrad.nn.utils.parametrize import cached
from minigrad.ops.shape import BroadcastTo


@dataclass(eq=False)
class TracedOp:
    """One op forward of the trace. ``folded``: the output is a constant (no input depends on
    the graph input, and its shape does not depend on the batch). ``dynamic``: the output axes
    whose size depends on the batch; ``batch``: those of them whose size is the batch."""

    op: type
    node: object
    attrs: dict
    inputs: tuple
    output: object
    path: str
    module: object
    folded: bool = False
    dynamic: frozenset = frozenset()
    batch: frozenset = frozenset()

    def where(self):
        """"op Conv2d (in module 'features.0', a Conv2d)", for error messages."""
        place = f"module {self.path!r}" if self.path else "the model itself"
        return f"op {self.op.__name__} (in {place}, a {type(self.module).__name__})"


@dataclass(eq=False)
class Trace:
    """A recorded forward pass: the graph input array, the ops in order, the output arrays,
    and the names of parameter and buffer arrays ({id(array): name}); ``arrays`` keeps every
    named array alive, so no id is reused while the trace exists."""

    input: object
    ops: list
    outputs: tuple
    names: dict
    arrays: list


def run_in_eval_mode(model, run, stacklevel):
    """``run()`` with ``model`` in eval mode, every module's mode put back afterwards; a
    UserWarning (``stacklevel`` counted from the caller) names the modules that were in
    training mode, whose active dropout or batch statistics the graph will not have."""
    training = [path or type(model).__name__ for path, m in model.named_modules() if m.training]
    if training:
        warnings.warn(f"onnx.export: exporting in eval mode; these modules were in training "
                      f"mode and are put back in it afterwards: {', '.join(training)}",
                      UserWarning, stacklevel=stacklevel + 1)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return run()
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)


def _module_paths(model, stack):
    """Forward pre- and post-hooks on every module of ``model`` that push and pop (path,
    module) on ``stack``; returns their handles."""
    def enter(path):
        def pre_hook(module, args):
            stack.append((path, module))
        return pre_hook

    def leave(module, args, output):
        stack.pop()

    handles = []
    for path, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(path)))
        handles.append(module.register_forward_hook(leave))
    return handles


def _named_arrays(model):
    """{id(array): name} of every parameter and buffer, and of every parametrized tensor as
    computed in the current ``cached()`` block; and the arrays, to keep them alive."""
    named = [(name, t) for name, t in model.named_parameters()]
    named += [(name, t) for name, t in model.named_buffers()]
    for path, module in model.named_modules():
        for tensor_name in module.parametrizations:
            named.append((f"{path}.{tensor_name}" if path else tensor_name,
                          getattr(module, tensor_name)))
    named = [(name, t) for name, t in named if t is not None]
    return {id(t.data): name for name, t in named}, [t.data for _, t in named]


def _outputs(model, result):
    """The model's output arrays: one Tensor, or a tuple or list of them."""
    results = result if isinstance(result, (tuple, list)) else (result,)
    if not results or not all(isinstance(r, autograd.TensorBase) for r in results):
        raise TypeError(f"onnx.export: {type(model).__name__}.forward must return a Tensor or a "
                        f"tuple of Tensors, got {type(result).__name__}")
    return tuple(r.data for r in results)


def record(model, example):
    """One forward pass of ``model`` on the Tensor ``example`` (under no_grad), recorded."""
    ops, stack = [], []

    def observe(node, phase, arrays, call):
        result = call()
        if phase == "forward":
            path, module = stack[-1] if stack else ("", model)
            ops.append(TracedOp(type(node), node, dict(node.attrs), tuple(arrays), result,
                                path, module))
        return result

    handles = _module_paths(model, stack)
    handles.append(autograd.register_op_observer(observe))
    try:
        with no_grad(), cached():
            outputs = _outputs(model, model(example))
            names, arrays = _named_arrays(model)
    finally:
        for handle in handles:
            handle.remove()
    return Trace(example.data, ops, outputs, names, arrays + [example.data])


def _mark_folded(trace, other):
    """Set ``folded`` on every op of ``trace`` whose output is a constant: none of its inputs
    depends on the graph input, and its shape does not depend on the batch (``dynamic`` set).
    ValueError for an op that makes a batch-dependent shape from constants alone, unless it
    is a BroadcastTo, and for a folded output whose values differ in ``other``."""
    live = {id(trace.input)}
    for traced, seen in zip(trace.ops, other.ops):
        reads_live = any(id(a) in live for a in traced.inputs)
        traced.folded = not reads_live and not traced.dynamic
        if not traced.folded:
            live.add(id(traced.output))
        if traced.dynamic and not reads_live and traced.op is not BroadcastTo:
            raise ValueError(f"onnx.export: {traced.where()} makes an output whose axes "
                             f"{sorted(traced.dynamic)} depend on the batch from constants "
                             f"alone (shape {np.shape(traced.output)} at batch "
                             f"{len(trace.input)}); only expand/broadcast_to of a constant to "
                             "the batch is exported")
        if traced.folded and not np.array_equal(traced.output, seen.output, equal_nan=True):
            raise ValueError(f"onnx.export: {traced.where()} computes a constant that differs "
                             f"between batch {len(trace.input)} and {len(other.input)} (an "
                             "argument computed from the batch size, len(x))")


def _constants(trace):
    """For each op, its inputs that are constants: neither the graph input, an op's output,
    nor a named parameter or buffer."""
    made = {id(trace.input)} | {id(t.output) for t in trace.ops}
    return [[a for a in t.inputs if id(a) not in made and id(a) not in trace.names]
            for t in trace.ops]


def _describe(array):
    """A constant in an error message: its value when it has one, else its shape."""
    return repr(array.item()) if array.size == 1 else f"of shape {array.shape}"


def mark_dynamic(trace, other):
    """Set ``dynamic``, ``batch`` and ``folded`` on the ops of ``trace`` from ``other``, the
    same model traced at another batch size; ValueError naming the op where the two traces
    differ in their ops or constants (the graph would depend on the batch size)."""
    if [t.op for t in trace.ops] != [t.op for t in other.ops]:
        raise ValueError(f"onnx.export: the model runs different ops at batch "
                         f"{len(trace.input)} and {len(other.input)}; its graph depends on the "
                         "batch size, which ONNX cannot express here")
    for traced, seen, constants, other_constants in zip(
            trace.ops, other.ops, _constants(trace), _constants(other)):
        for a, b in zip(constants, other_constants):
            if a.shape != b.shape or not np.array_equal(a, b):
                raise ValueError(f"onnx.export: {traced.where()} reads the constant "
                                 f"{_describe(a)} at batch {len(trace.input)} and "
                                 f"{_describe(b)} at batch {len(other.input)}: a value "
                                 "computed from the batch size (a mean over the batch axis, "
                                 "len(x)) cannot be exported")
        shape, other_shape = np.shape(traced.output), np.shape(seen.output)
        if len(shape) != len(other_shape):
            raise ValueError(f"onnx.export: {traced.where()} returns {len(shape)} dims at "
                             f"batch {len(trace.input)} and {len(other_shape)} at batch "
                             f"{len(other.input)}")
        traced.dynamic = frozenset(axis for axis, (n, m) in enumerate(zip(shape, other_shape))
                                   if n != m)
        traced.batch = frozenset(axis for axis in traced.dynamic
                                 if (shape[axis], other_shape[axis])
                                 == (len(trace.input), len(other.input)))
    _mark_folded(trace, other)


def _extra_sample(x):
    """A sample for the second trace: the first one times 1.5 plus noise from a fixed-seed
    generator (deterministic), so a branch on the data has a chance to show as different ops.
    Non-float inputs (indices) repeat the first sample, which any other value could put out
    of range."""
    first = x[:1]
    if x.dtype.kind != "f":
        return first
    scale = float(np.abs(first).max()) or 1.0
    noise = np.random.default_rng(0).standard_normal(first.shape)
    return (first * 1.5 + 0.5 * scale * noise).astype(x.dtype)


def trace_model(model, example):
    """``model`` traced at the batch of ``example`` (a Tensor, batch axis 0), with the
    batch-dependent axes of every op output marked from a second trace at one more sample
    (``_extra_sample``)."""
    if example.ndim == 0 or example.shape[0] == 0:
        raise ValueError(f"onnx.export: the example input needs a batch axis 0 with at least "
                         f"one sample, got shape {tuple(example.shape)}")
    if device_of(example.data) != "cpu":
        raise ValueError(f"onnx.export: the model and the example input must be on the CPU, "
                         f"got an input on {device_of(example.data)!r}: model.to('cpu')")
    trace = record(model, example)
    bigger = example._wrap(np.concatenate([example.data, _extra_sample(example.data)]))
    mark_dynamic(trace, record(model, bigger))
    return trace
