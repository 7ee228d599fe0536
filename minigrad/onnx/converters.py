"""From a trace (``minigrad.onnx.trace``) to ONNX nodes: one converter per Function class.

``CONVERTERS`` maps each op to a small function ``converter(graph, traced) -> name`` that emits
the ONNX nodes computing the op's output from its inputs (``graph.inputs(traced)``, the ONNX
names of its input arrays) and returns the name of that output; ``graph`` is a ``TraceGraph``,
the trace's view of ``GraphBuilder`` (unique names, nodes, initializers), which the quantized
graphs (``minigrad.onnx.quantized``) build on too. The converters mirror what
minigrad's forward computes, step for step where ONNX has no single operator, so the two
agree to float32 rounding. ``graph_from_trace`` walks the trace in order; an op with no
converter is a NotImplementedError naming the op and the module path it ran in.

Every converter emits operators of the default domain available from opset 13 (ReduceSum's
axes input, per-axis Softmax) onwards; GELU uses ONNX's Gelu from opset 20, layer norm needs
LayerNormalization (opset 17).
"""

import math

import numpy as np

from minigrad.ops import (activation, binary, linalg, nn, normalization, reduce, rounding, shape,
                          unary)

DEFAULT_OPSET = 17  # what export and quantized_graph write unless told
MIN_OPSET = 13  # ReduceSum's axes input, per-axis Softmax and QuantizeLinear, Clip on uint8


def check_opset(opset, caller):
    """ValueError when ``opset`` is below ``MIN_OPSET``, the oldest the graphs here use."""
    if opset < MIN_OPSET:
        raise ValueError(f"{caller}: opset {opset} is below the lowest supported, {MIN_OPSET}")


class GraphBuilder:
    """The nodes and initializers of a graph under construction, every name in it unique;
    the float path (``TraceGraph``) and the quantized one (``minigrad.onnx.quantized``) both
    build on it."""

    def __init__(self, taken=()):
        self.nodes, self.initializers = [], []
        self.used = set(taken)  # no node or initializer takes these (the graph's input, ...)

    def unique(self, name):
        """``name``, or ``name_1``, ``name_2``, ... if it is taken."""
        candidate, n = name, 0
        while candidate in self.used:
            n += 1
            candidate = f"{name}_{n}"
        self.used.add(candidate)
        return candidate

    def constant(self, array, name):
        """A new initializer holding ``array`` (its dtype kept); returns its (unique) name."""
        from onnx import numpy_helper
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type, inputs, scope, outputs=1, **attributes):
        """Append one ``op_type`` node named "<scope>/<op_type>" on ``inputs`` (value names);
        returns the name of its output (a list of ``outputs`` names when more than one)."""
        from onnx import helper
        name = self.unique(f"{scope}/{op_type}")
        names = [self.unique(f"{name}_output") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name,
                                           **attributes))
        return names[0] if outputs == 1 else names

    def name_output(self, value, name):
        """Give ``value`` the graph output name ``name``: renamed wherever it is used when a
        node makes it, else (a value that is not a node's output) through an Identity."""
        if not any(value in node.output for node in self.nodes):
            from onnx import helper
            self.nodes.append(helper.make_node("Identity", [value], [name],
                                               name=self.unique(f"{name}/Identity")))
            return
        for node in self.nodes:
            for names in (node.input, node.output):
                for i, used in enumerate(names):
                    if used == value:
                        names[i] = name


class TraceGraph(GraphBuilder):
    """The graph of a trace: the ONNX name of every array of the trace seen so far, and its
    batch-dependent axes."""

    def __init__(self, trace, opset, input_name, output_names):
        super().__init__({input_name, *output_names})
        self.trace, self.opset, self.input_name = trace, opset, input_name
        self.names = {id(trace.input): input_name}
        self.dynamic = {id(trace.input): frozenset({0})}
        self.batch_axes = {id(trace.input): frozenset({0})}
        self.folded = {id(t.output): t for t in trace.ops if t.folded}
        self._batch_size = None

    def value(self, array, dtype=None):
        """The ONNX name of ``array``: the graph input, an op's output, or an initializer
        made the first time it is asked for (named parameters and buffers under their
        state_dict names). An unnamed floating-point constant is stored as ``dtype``."""
        key = id(array)
        if key not in self.names:
            name = self.trace.names.get(key)
            if name is None:
                name = self._constant_name(self.folded.get(key))
                if dtype is not None and np.asarray(array).dtype.kind == "f":
                    array = np.asarray(array).astype(dtype)
            self.names[key] = self.constant(np.asarray(array), name)
        return self.names[key]

    def _constant_name(self, folded):
        """The name of a constant: a folded reshape of a parameter keeps the parameter's
        name (the same values, e.g. a conv bias as (1, O, 1, 1)); another folded op's output
        is named after the op and its module; anything else is "constant"."""
        if folded is None:
            return "constant"
        source = self.trace.names.get(id(folded.inputs[0]))
        if folded.op is shape.Reshape and source is not None:
            return source
        return f"{folded.path or 'model'}/{folded.op.__name__}"

    def inputs(self, traced):
        """The ONNX names of the inputs of ``traced``; unnamed float constants take the dtype
        of its output, as minigrad's numbers do."""
        return [self.value(a, np.asarray(traced.output).dtype) for a in traced.inputs]

    def int64s(self, values, traced, what):
        """An int64 initializer (a shape, axes, pads) for ``traced``; returns its name."""
        return self.constant(np.asarray(values, dtype=np.int64),
                             f"{traced.path or 'model'}/{what}")

    def scalar(self, value, traced):
        """A 0-d initializer of the dtype of ``traced``'s output; NotImplementedError when
        that dtype is not floating point and cannot hold ``value`` exactly (a bound -0.5 on
        integers would become 0, and x > 0 is not x > -0.5)."""
        dtype = np.asarray(traced.output).dtype
        stored = np.asarray(value, dtype=dtype)
        if dtype.kind != "f" and stored != value:
            raise refuse(traced, f"its {dtype} output cannot take the constant {value!r}")
        return self.constant(stored, f"{traced.path or 'model'}/{traced.op.__name__}_constant")

    def emit(self, op_type, inputs, traced, **attributes):
        """Append one node in the scope of ``traced``'s module; returns its output's name."""
        return self.node(op_type, inputs, traced.path or "model", **attributes)

    def batch_size(self):
        """The graph input's axis 0 at run time, a 1-element int64 tensor: Shape, then Slice
        [0:1] (made once)."""
        if self._batch_size is None:
            shape_of_input = self.node("Shape", [self.input_name], "batch")
            start = self.constant(np.array([0], np.int64), "batch/start")
            end = self.constant(np.array([1], np.int64), "batch/end")
            self._batch_size = self.node("Slice", [shape_of_input, start, end], "batch")
        return self._batch_size


def refuse(traced, why):
    """NotImplementedError naming the op, its module path and why it cannot be exported."""
    return NotImplementedError(f"onnx.export: no ONNX form for {traced.where()}: {why}")


# ----------------------------------------------------------------------------- layers
def _image_pads(padding, extra=(0, 0)):
    """ONNX pads [top, left, bottom, right]: ``padding`` on both sides, ``extra`` more at the
    end (what ceil_mode's last windows reach)."""
    return [padding[0], padding[1], padding[0] + extra[0], padding[1] + extra[1]]


def _fused_relu(graph, traced, out):
    """A Relu after the layer's node when the op ran with its ReLU fused (``relu=True``)."""
    return graph.emit("Relu", [out], traced) if traced.attrs.get("relu", False) else out


def _conv(graph, traced):
    """Conv(x, W[, B]): a bias input is ONNX Conv's third input, B of shape (O,)."""
    stride, padding, dilation = traced.node.geometry[:3]
    out = graph.emit("Conv", graph.inputs(traced), traced, strides=list(stride),
                     pads=_image_pads(padding), dilations=list(dilation),
                     group=int(traced.attrs.get("groups", 1)),
                     kernel_shape=list(np.shape(traced.inputs[1])[2:]))
    return _fused_relu(graph, traced, out)


def _conv_transpose(graph, traced):
    """ConvTranspose(x, W[, B]), the bias as its third input, as Conv's."""
    stride, padding, dilation = traced.node.geometry[:3]
    output_padding = traced.attrs.get("output_padding", (0, 0))
    out = graph.emit("ConvTranspose", graph.inputs(traced), traced, strides=list(stride),
                     pads=_image_pads(padding), dilations=list(dilation),
                     group=int(traced.attrs.get("groups", 1)),
                     output_padding=list(output_padding),
                     kernel_shape=list(np.shape(traced.inputs[1])[2:]))
    return _fused_relu(graph, traced, out)


def _extra_padding(traced):
    """Rows and columns the pooling op padded the input with below and right (ceil_mode)."""
    full_hw, x_hw = traced.node.args[0][2:], np.shape(traced.inputs[0])[2:]
    return tuple(f - n for f, n in zip(full_hw, x_hw))


def _max_pool(graph, traced):
    _, kernel, stride, padding, dilation = traced.node.args
    return graph.emit("MaxPool", graph.inputs(traced), traced, kernel_shape=list(kernel),
                      strides=list(stride), pads=_image_pads(padding, _extra_padding(traced)),
                      dilations=list(dilation))


def _avg_pool(graph, traced):
    """The kernel's mean over KH*KW (padding counted, as minigrad's kernel), then the op's
    per-position rescaling for ceil_mode, count_include_pad=False or divisor_override."""
    _, kernel, stride, padding = traced.node.args
    mean = graph.emit("AveragePool", graph.inputs(traced), traced, kernel_shape=list(kernel),
                      strides=list(stride), pads=_image_pads(padding, _extra_padding(traced)),
                      count_include_pad=1)
    if traced.node.scale is None:
        return mean
    scale = graph.constant(np.asarray(traced.node.scale), f"{traced.path or 'model'}/avg_scale")
    return graph.emit("Mul", [mean, scale], traced)


def _linear(graph, traced):
    """Gemm(x, W, b, transB=1) for an (N, in) input, W kept in its (out, in) layout; MatMul
    with the transposed weight (and Add) for inputs of other ranks."""
    names = graph.inputs(traced)
    if np.ndim(traced.inputs[0]) == 2:
        return _fused_relu(graph, traced, graph.emit("Gemm", names, traced, transB=1))
    out = graph.emit("MatMul", [names[0], graph.emit("Transpose", [names[1]], traced)], traced)
    if len(names) > 2:
        out = graph.emit("Add", [out, names[2]], traced)
    return _fused_relu(graph, traced, out)


# ----------------------------------------------------------------------------- elementwise
def _simple(op_type):
    """A converter emitting one ONNX node of ``op_type`` on the op's inputs."""
    return lambda graph, traced: graph.emit(op_type, graph.inputs(traced), traced)


def _add_or_sub(op_type):
    """a + alpha b (a - alpha b): alpha b first when alpha is not 1."""
    def convert(graph, traced):
        a, b = graph.inputs(traced)
        alpha = traced.attrs.get("alpha", 1)
        if alpha != 1:
            b = graph.emit("Mul", [b, graph.scalar(alpha, traced)], traced)
        return graph.emit(op_type, [a, b], traced)
    return convert


def _maximum(graph, traced):
    return graph.emit("Max" if traced.attrs.get("take_max", True) else "Min",
                      graph.inputs(traced), traced)


def _clip(graph, traced):
    """Clip(x, lo, hi) (clip, hardtanh); an absent bound is an empty input name, as ONNX
    allows."""
    bounds = [traced.attrs.get(key) for key in ("lo", "hi")]
    names = ["" if b is None else graph.scalar(b, traced) for b in bounds]
    return graph.emit("Clip", graph.inputs(traced)[:1] + names, traced)


def _rounding(op_type):
    """Floor or Ceil of a float input; of an integer one, the input itself (ONNX's Floor and
    Ceil take floats only)."""
    def convert(graph, traced):
        kind = np.asarray(traced.inputs[0]).dtype.kind
        return graph.emit(op_type if kind == "f" else "Identity", graph.inputs(traced), traced)
    return convert


def _rsqrt(graph, traced):
    return graph.emit("Reciprocal", [graph.emit("Sqrt", graph.inputs(traced), traced)], traced)


def _cast(graph, traced):
    from onnx import helper
    to = helper.np_dtype_to_tensor_dtype(np.asarray(traced.output).dtype)
    return graph.emit("Cast", graph.inputs(traced), traced, to=to)


# ----------------------------------------------------------------------------- activations
def _leaky_relu(graph, traced):
    return graph.emit("LeakyRelu", graph.inputs(traced), traced,
                      alpha=float(traced.attrs.get("negative_slope", 0.01)))


def _threshold(graph, traced):
    """x where x > threshold, else value."""
    (x,) = graph.inputs(traced)
    above = graph.emit("Greater", [x, graph.scalar(traced.attrs.get("threshold", 0.0), traced)],
                       traced)
    return graph.emit("Where", [above, x, graph.scalar(traced.attrs.get("value", 0.0), traced)],
                      traced)


def _shrink(bias_is_lambd):
    """Softshrink (bias = lambd) and Hardshrink (bias 0) are ONNX's Shrink."""
    def convert(graph, traced):
        lambd = float(traced.attrs.get("lambd", 0.5))
        return graph.emit("Shrink", graph.inputs(traced), traced, lambd=lambd,
                          bias=lambd if bias_is_lambd else 0.0)
    return convert


def _elu(graph, traced):
    """ELU, SELU and CELU, the three forms minigrad's ELU op takes (alpha, scale, input
    scale); other combinations have no ONNX operator."""
    alpha, scale, input_scale = (float(traced.attrs.get(k, 1.0))
                                 for k in ("alpha", "scale", "input_scale"))
    names = graph.inputs(traced)
    if scale == 1 and input_scale == 1:
        return graph.emit("Elu", names, traced, alpha=alpha)
    if input_scale == 1 and (alpha, scale) == (activation.SELU_ALPHA, activation.SELU_SCALE):
        return graph.emit("Selu", names, traced, alpha=alpha, gamma=scale)
    if scale == 1 and math.isclose(input_scale, 1 / alpha):
        return graph.emit("Celu", names, traced, alpha=alpha)
    raise refuse(traced, f"alpha={alpha}, scale={scale}, input_scale={input_scale} is not "
                         "ELU, SELU or CELU")


def _gelu(graph, traced):
    """Gelu from opset 20; before, its formula: x (1 + erf(x / sqrt 2)) / 2, or with
    approximate="tanh" x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), as minigrad computes
    it."""
    (x,) = graph.inputs(traced)
    approximate = traced.attrs.get("approximate", "none")
    if graph.opset >= 20:
        return graph.emit("Gelu", [x], traced, approximate=approximate)
    c = graph.scalar
    if approximate == "tanh":
        cube = graph.emit("Mul", [graph.emit("Mul", [x, x], traced), x], traced)
        inner = graph.emit("Add", [x, graph.emit("Mul", [cube, c(0.044715, traced)], traced)],
                           traced)
        u2 = graph.emit("Mul", [inner, c(2 * math.sqrt(2 / math.pi), traced)], traced)
        return graph.emit("Mul", [x, graph.emit("Sigmoid", [u2], traced)], traced)
    erf = graph.emit("Erf", [graph.emit("Div", [x, c(math.sqrt(2), traced)], traced)], traced)
    cdf = graph.emit("Mul", [graph.emit("Add", [erf, c(1.0, traced)], traced), c(0.5, traced)],
                     traced)
    return graph.emit("Mul", [x, cdf], traced)


def _silu(graph, traced):
    (x,) = graph.inputs(traced)
    return graph.emit("Mul", [x, graph.emit("Sigmoid", [x], traced)], traced)


def _mish(graph, traced):
    """x tanh(softplus(x))."""
    (x,) = graph.inputs(traced)
    return graph.emit("Mul", [x, graph.emit("Tanh", [graph.emit("Softplus", [x], traced)],
                                            traced)], traced)


def _log_sigmoid(graph, traced):
    """log sigmoid(x) = -softplus(-x)."""
    (x,) = graph.inputs(traced)
    return graph.emit("Neg", [graph.emit("Softplus", [graph.emit("Neg", [x], traced)], traced)],
                      traced)


def _softplus(graph, traced):
    """softplus(beta x) / beta, and x itself where beta x > threshold (PyTorch's rule)."""
    (x,) = graph.inputs(traced)
    beta, threshold = traced.attrs.get("beta", 1.0), traced.attrs.get("threshold", 20.0)
    bx = x if beta == 1 else graph.emit("Mul", [x, graph.scalar(beta, traced)], traced)
    soft = graph.emit("Softplus", [bx], traced)
    if beta != 1:
        soft = graph.emit("Div", [soft, graph.scalar(beta, traced)], traced)
    linear = graph.emit("Greater", [bx, graph.scalar(threshold, traced)], traced)
    return graph.emit("Where", [linear, x, soft], traced)


def _softmax(op_type):
    return lambda graph, traced: graph.emit(op_type, graph.inputs(traced), traced,
                                            axis=int(traced.node.axis))


# ----------------------------------------------------------------------------- shapes
def _reshape(graph, traced):
    """Reshape to the traced shape with its batch-dependent axis as -1 (the other sizes are
    fixed), so the graph takes any batch."""
    target = list(np.shape(traced.output))
    if len(traced.dynamic) > 1:
        raise refuse(traced, f"the output shape {tuple(target)} has several axes that depend "
                             f"on the batch ({sorted(traced.dynamic)})")
    for axis in traced.dynamic:
        target[axis] = -1
    return graph.emit("Reshape", [graph.inputs(traced)[0],
                                  graph.int64s(target, traced, "shape")], traced)


def _permute(graph, traced):
    return graph.emit("Transpose", graph.inputs(traced), traced, perm=list(traced.node.axes))


def _broadcast_to(graph, traced):
    """Expand to the traced shape. On a batch-dependent axis the input already has, the
    target says 1 (Expand keeps the input's size there); one the input does not have must be
    the batch itself (a class token expanded to (len(x), 1, D)), taken at run time from the
    graph input's shape: the target is then Concat(fixed sizes, batch, fixed sizes)."""
    target = list(np.shape(traced.output))
    source = graph.dynamic.get(id(traced.inputs[0]), frozenset())
    offset = len(target) - np.ndim(traced.inputs[0])
    batch_axes = []
    for axis in sorted(traced.dynamic):
        if axis - offset in source:
            target[axis] = 1
        elif axis in traced.batch:
            batch_axes.append(axis)
        else:
            raise refuse(traced, f"it broadcasts to axis {axis}, whose size depends on the "
                                 "batch but is not the batch, and that its input does not have")
    if not batch_axes:
        shape_name = graph.int64s(target, traced, "shape")
    else:
        pieces, start = [], 0
        for axis in batch_axes:
            if axis > start:
                pieces.append(graph.int64s(target[start:axis], traced, "shape"))
            pieces.append(graph.batch_size())
            start = axis + 1
        if start < len(target):
            pieces.append(graph.int64s(target[start:], traced, "shape"))
        shape_name = graph.emit("Concat", pieces, traced, axis=0)
    return graph.emit("Expand", [graph.inputs(traced)[0], shape_name], traced)


def _concatenate(graph, traced):
    return graph.emit("Concat", graph.inputs(traced), traced, axis=int(traced.node.axis))


def _pad(graph, traced):
    """Constant padding: ONNX pads are all the befores, then all the afters (negative
    crops, as minigrad's widths)."""
    widths = traced.node.widths
    pads = [before for before, _ in widths] + [after for _, after in widths]
    return graph.emit("Pad", [graph.inputs(traced)[0], graph.int64s(pads, traced, "pads"),
                              graph.scalar(traced.attrs.get("value", 0.0), traced)], traced)


def _sum(graph, traced):
    axes = list(traced.node.axes)
    if not axes:
        return graph.emit("Identity", graph.inputs(traced), traced)
    return graph.emit("ReduceSum", [graph.inputs(traced)[0],
                                    graph.int64s(axes, traced, "axes")], traced,
                      keepdims=int(bool(traced.node.keepdims)))


def _layer_norm(graph, traced):
    """LayerNormalization(x, scale, bias) over the last ``normalized_ndim`` axes (opset 17 on);
    an absent weight is a scale of ones, as ONNX's Scale input is required."""
    if graph.opset < 17:
        raise refuse(traced, f"ONNX has LayerNormalization from opset 17, asked for "
                             f"opset {graph.opset}")
    x, *affine = graph.inputs(traced)
    ndim = traced.attrs.get("normalized_ndim", 1)
    if not traced.node.has_weight:
        ones = np.ones(np.shape(traced.output)[-ndim:], np.asarray(traced.output).dtype)
        affine.insert(0, graph.constant(ones, f"{traced.path or 'model'}/scale"))
    return graph.emit("LayerNormalization", [x, *affine], traced, axis=-ndim,
                      epsilon=float(traced.attrs.get("eps", 1e-5)))


def _get_item(graph, traced):
    """Basic indexing by ints and slices: one Slice over the indexed axes (an int i as i:i+1),
    then a Squeeze of the int axes. Index arrays and None are refused, as are slices of an
    axis whose size depends on the batch (other than the whole of it)."""
    if traced.node.advanced:
        raise refuse(traced, "indexing with arrays has no converter (only ints and slices)")
    index, sizes = list(traced.node.basic), np.shape(traced.inputs[0])
    if any(entry is None for entry in index):
        raise refuse(traced, "indexing with None (a new axis) has no converter")
    ellipsis = index.index(Ellipsis)
    index[ellipsis:ellipsis + 1] = [slice(None)] * (len(sizes) - len(index) + 1)
    dynamic = graph.dynamic.get(id(traced.inputs[0]), frozenset())
    starts, ends, axes, steps, squeezed = [], [], [], [], []
    for axis, (entry, size) in enumerate(zip(index, sizes)):
        if entry == slice(None):
            continue
        if axis in dynamic:
            raise refuse(traced, f"it indexes axis {axis}, whose size depends on the batch")
        if isinstance(entry, slice):
            start, stop, step = entry.indices(size)
        else:
            start = int(entry) % size
            stop, step = start + 1, 1
            squeezed.append(axis)
        if step < 0 and stop < 0:  # ran past the front: ONNX's "to the start" end
            stop = -size - 1
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    name = graph.inputs(traced)[0]
    if axes:
        name = graph.emit("Slice", [name, *(graph.int64s(v, traced, what) for v, what in (
            (starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps")))], traced)
    if squeezed:
        name = graph.emit("Squeeze", [name, graph.int64s(squeezed, traced, "axes")], traced)
    return name if axes else graph.emit("Identity", [name], traced)


CONVERTERS = {
    nn.Conv2d: _conv,
    nn.ConvTranspose2d: _conv_transpose,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.Linear: _linear,
    linalg.MatMul: _simple("MatMul"),
    binary.Add: _add_or_sub("Add"),
    binary.Sub: _add_or_sub("Sub"),
    binary.Mul: _simple("Mul"),
    binary.Div: _simple("Div"),
    binary.Pow: _simple("Pow"),
    binary.Maximum: _maximum,
    binary.Where: _simple("Where"),
    unary.Neg: _simple("Neg"),
    unary.Exp: _simple("Exp"),
    unary.Log: _simple("Log"),
    unary.Sqrt: _simple("Sqrt"),
    unary.Rsqrt: _rsqrt,
    unary.Reciprocal: _simple("Reciprocal"),
    unary.Abs: _simple("Abs"),
    unary.Sign: _simple("Sign"),
    unary.Erf: _simple("Erf"),
    unary.Sin: _simple("Sin"),
    unary.Cos: _simple("Cos"),
    unary.Clip: _clip,
    unary.Clone: _simple("Identity"),
    unary.Cast: _cast,
    rounding.Floor: _rounding("Floor"),
    rounding.Ceil: _rounding("Ceil"),
    activation.ReLU: _simple("Relu"),
    activation.Sigmoid: _simple("Sigmoid"),
    activation.Tanh: _simple("Tanh"),
    activation.Softsign: _simple("Softsign"),
    activation.Hardtanh: _clip,
    activation.Threshold: _threshold,
    activation.Softshrink: _shrink(bias_is_lambd=True),
    activation.Hardshrink: _shrink(bias_is_lambd=False),
    activation.LeakyReLU: _leaky_relu,
    activation.ELU: _elu,
    activation.GELU: _gelu,
    activation.SiLU: _silu,
    activation.Mish: _mish,
    activation.LogSigmoid: _log_sigmoid,
    activation.Softplus: _softplus,
    activation.Softmax: _softmax("Softmax"),
    activation.LogSoftmax: _softmax("LogSoftmax"),
    shape.Reshape: _reshape,
    shape.Permute: _permute,
    shape.BroadcastTo: _broadcast_to,
    shape.Concatenate: _concatenate,
    shape.Pad: _pad,
    shape.GetItem: _get_item,
    reduce.Sum: _sum,
    normalization.LayerNormFunction: _layer_norm,
}


# ----------------------------------------------------------------------------- the graph
def _value_info(name, array, dynamic, batch):
    """A typed graph input or output: its axes whose size is the batch named "batch", its
    other batch-dependent axes (4B after a reshape(-1)) left unnamed, the rest fixed."""
    from onnx import helper
    array = np.asarray(array)
    dims = ["batch" if axis in batch else None if axis in dynamic else n
            for axis, n in enumerate(array.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype),
                                         dims)


def graph_from_trace(trace, opset, input_name, output_names, graph_name):
    """The ``onnx.GraphProto`` computing ``trace``'s outputs from its input."""
    from onnx import helper
    graph = TraceGraph(trace, opset, input_name, output_names)
    for traced in trace.ops:
        if traced.folded:
            continue  # its output, where used, is an initializer (TraceGraph.value)
        converter = CONVERTERS.get(traced.op)
        if converter is None:
            raise refuse(traced, "this op has no converter in minigrad.onnx.converters")
        graph.names[id(traced.output)] = converter(graph, traced)
        graph.dynamic[id(traced.output)] = traced.dynamic
        graph.batch_axes[id(traced.output)] = traced.batch
    outputs = []
    for array, name in zip(trace.outputs, output_names):
        computed = graph.names.get(id(array))
        if computed is None or id(array) in graph.folded or computed == input_name or (
                computed in {i.name for i in graph.initializers}):
            raise ValueError(f"onnx.export: output {name!r} is not computed from the input "
                             "by the traced ops (it is the input itself or a constant)")
        if computed in [o.name for o in outputs]:  # one array returned twice
            computed = graph.emit("Identity", [computed], trace.ops[-1])
        graph.name_output(computed, name)
        key = id(array)
        graph.names[key] = name
        outputs.append(_value_info(name, array, graph.dynamic.get(key, frozenset()),
                                   graph.batch_axes.get(key, frozenset())))
    inputs = [_value_info(input_name, trace.input, {0}, {0})]
    return helper.make_graph(graph.nodes, graph_name, inputs, outputs, graph.initializers)
