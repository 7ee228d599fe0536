"""ONNX graphs of minigrad's quantized models: a static-PTQ ``QuantizedModel``
(``quant.convert``) and a model with ``DynamicQuantizedLinear`` layers
(``quant.quantize_dynamic``).

Form: ONNX's integer operators, which carry minigrad's integers (weight codes, per-channel
weight scales along axis 0, int32 bias codes, each activation's scale and uint8 zero point)
and, like minigrad's executor, sum exact int32 accumulators; only the requantization of an
accumulator is float32 arithmetic. The QDQ form (DequantizeLinear -> float Conv/Gemm ->
QuantizeLinear) leaves the result to the runtime: unfused, the sums are float32 sums of
products; ONNX Runtime's default optimizations fuse it into QLinearConv with int8 weights,
which on an AVX2 CPU got 57% of a random 3x3 convolution's codes wrong (next
paragraph). Layer by layer (W_u = W_q + 128, see below):

    Quantize           QuantizeLinear(x, s, z)                                   [Clip]
    QuantizedConv2d    QLinearConv(x_q, s_x, z_x, W_u, s_w, 128, s_y, z_y, b_q)  [Clip]
    QuantizedLinear    MatMulInteger(x_q, W_u^T, z_x, 128) + b_q = acc   (int32)
                       -> DequantizeLinear(acc, s_x s_w) -> QuantizeLinear(s_y, z_y)  [Clip]
    QuantizedMaxPool2d [Pad with the pad code] -> MaxPool on the uint8 codes
    QuantizedAvgPool2d [Pad with z] -> Cast float -> AveragePool -> Round -> Cast uint8
    QuantizedReLU      Clip(x_q, min=z)
    QuantizedFlatten   Reshape (0 copies the leading axes, so the batch stays dynamic)
    DeQuantize         DequantizeLinear(x_q, s, z)
    DynamicQuantizedLinear
                       DynamicQuantizeLinear(x) -> (x_q, s_x, z_x)
                       -> MatMulInteger(x_q, W_u^T, z_x, 128) -> Cast float -> Mul(s_x s_w) [+ b]

Weights travel as uint8 with zero point 128, W_u = W_q + 128 (the same real values,
s_w (W_u - 128) = s_w W_q): on x86 CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels
add pairs of products in saturating int16 (AVX2's vpmaddubsw), and 2 * 255 * 127 > 32767;
with int8 weights, 14% of a 5x5 convolution's codes came out wrong on random inputs, by up
to 124 (measured with ONNX Runtime 1.32 on an AVX2 CPU). Its uint8 x
uint8 kernels sum exactly. QLinearMatMul is not used: it has no bias input, and the bias
must join the int32 accumulator before the rounding. [Clip] clamps the codes to
[qmin, qmax] where that is not all of uint8: a ReLU fused as qmin = z_y > 0, or activations
of fewer than 8 bits (the integer operators saturate to [0, 255] only).

Rounding, against minigrad's integer executor (``backend/fixed_point.py``), which rounds
acc M0 2^-31-n exactly, half to even (M0 2^-31-n is M = s_x s_w / s_y within 2^-31):

* QLinearConv: ONNX Runtime forms M = s_x s_w / s_y in float32 and rounds float32(acc) * M
  half to even; the Linear's DequantizeLinear/QuantizeLinear pair rounds (acc s_x s_w) / s_y
  the same way. Those few float32 roundings leave the product within about 2^-22 |acc M| of
  the exact one, so a code can differ only where acc M lies that close to a half-integer
  (below 2^-14 for an 8-bit output), and then by one. Measured: 1 code in 1.5 million on
  random 3x3 convolutions, and 5 of the 20,000 logit codes of an int8 LeNet-5 on the bundled
  MNIST test set (``tests/test_onnx_quantized.py``), with equal predictions.
* QuantizeLinear divides, x / s, where minigrad multiplies by the float32 reciprocal,
  x (1/s), as PyTorch does: the two can round a value lying within a float32 ulp of a
  half-integer to neighbouring codes (none of the 1.6 million MNIST test pixels does).
* Max pooling, ReLU, flatten and padding act on codes: exact. Average pooling sums at most a
  few thousand uint8 codes in float32 (exact), divides, and Round rounds half to even as
  minigrad's ``rint``; a mean that is not a tie lies at least 1/(2 k_h k_w) from one, far
  beyond float32's error, so the codes are equal.
* DequantizeLinear computes (x_q - z) s in float32, as minigrad's ``dequantize``: equal.
* Dynamic: DynamicQuantizeLinear's scale (max(x_max, 0) - min(x_min, 0)) / 255 and zero point
  round(-min / s) are minigrad's (for any input that is not all zeros), but it divides by s
  as QuantizeLinear does, so an input code can differ by one, which moves output o by
  s_x s_w,o |W_q[o, k]| <= s_x max_k |W[o, k]| per such code; the rest is float32 rounding
  of s_x s_w acc + b (minigrad multiplies in float64, then rounds once to float32): within
  1e-6 max |y| (measured 7e-8 on an MLP).

The graph is assembled with the float path's ``converters.GraphBuilder`` (unique names,
nodes, initializers), under the same opset rules (``converters.check_opset``).

``onnx`` is imported inside the functions: importing this module does not need it.
"""

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn.layers import Dropout, Flatten, Identity, ReLU
from minigrad.nn.module import Module
from minigrad.onnx.converters import DEFAULT_OPSET, GraphBuilder, check_opset
from minigrad.onnx.trace import run_in_eval_mode
from minigrad.quant.quantized import (DeQuantize, DynamicQuantizedLinear, QuantizedAvgPool2d,
                                      QuantizedConv2d, QuantizedFlatten, QuantizedLinear,
                                      QuantizedMaxPool2d, QuantizedModel, QuantizedReLU,
                                      Quantize)
from minigrad.tensor import Tensor

CODE_RANGE = (0, 255)  # what the uint8 integer operators saturate to
WEIGHT_OFFSET = 128  # int8 weight codes travel as uint8 with this zero point (module docstring)


def is_quantized(model):
    """True for a ``quant.convert`` result (``QuantizedModel``) or a model holding
    ``DynamicQuantizedLinear`` layers (``quant.quantize_dynamic``)."""
    return isinstance(model, QuantizedModel) or (
        isinstance(model, Module)
        and any(isinstance(m, DynamicQuantizedLinear) for m in model.modules()))


def quantized_graph(model, example_input, opset=DEFAULT_OPSET, input_names=("input",),
                    output_names=("output",)):
    """The ONNX model (``onnx.ModelProto``) of a quantized chain, in the form of the module
    docstring. ``example_input`` (float, batch first) is run through ``model`` once to find the
    chain's order and its shapes; a dynamically quantized model runs in eval mode (one in
    training mode is a UserWarning naming its training modules, which are put back in their
    modes afterwards, as ``export`` does). The graph input's axis 0 is the dynamic axis
    "batch".

    NotImplementedError names the module path and class of a layer with no ONNX form here;
    ValueError for a model that is not quantized, an opset below
    ``converters.MIN_OPSET`` (13), or more than one name."""
    import onnx
    from onnx import TensorProto, helper

    if not is_quantized(model):
        raise ValueError(f"quantized_graph: {type(model).__name__} is not a quantized model "
                         "(quant.convert or quant.quantize_dynamic); export float models with "
                         "minigrad.onnx.export")
    check_opset(opset, "quantized_graph")
    if len(input_names) != 1 or len(output_names) != 1:
        raise ValueError(f"quantized_graph: a chain has one input and one output, got "
                         f"input_names={list(input_names)}, output_names={list(output_names)}")
    example = Tensor(np.asarray(example_input.numpy() if isinstance(example_input, Tensor)
                                else example_input, np.float32))
    if example.ndim < 1:
        raise ValueError("quantized_graph: example_input needs a batch axis, got a scalar")
    graph = GraphBuilder({*input_names, *output_names})
    value = input_names[0]
    if isinstance(model, QuantizedModel):  # integer layers: the same in either mode
        steps, output_shape = trace_chain(model, example)
    else:
        steps, output_shape = run_in_eval_mode(model, lambda: trace_chain(model, example),
                                               stacklevel=2)
    for path, module, shape in steps:
        emit = EMITTERS.get(type(module))
        if emit is None:
            raise NotImplementedError(
                f"quantized_graph: module {path!r} ({type(module).__name__}) has no ONNX form "
                f"here; a quantized chain may hold "
                f"{', '.join(sorted(cls.__name__ for cls in EMITTERS))}")
        value = emit(graph, module, value, path, shape)
    graph.name_output(value, output_names[0])
    onnx_graph = helper.make_graph(
        graph.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_names[0], TensorProto.FLOAT,
                                       ["batch", *example.shape[1:]])],
        [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT,
                                       ["batch", *output_shape[1:]])],
        graph.initializers)
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="minigrad")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def trace_chain(model, example):
    """([(module path, module, input shape)], output shape): the leaf modules in the order
    ``model`` runs them on ``example``. NotImplementedError unless each one takes the previous
    one's output and the last one's output is the model's."""
    leaves = [(path, m) for path, m in model.named_modules() if next(m.children(), None) is None]
    calls = []
    handles = [m.register_forward_hook(
        lambda module, args, output, path=path: calls.append((path, module, args, output)))
        for path, m in leaves]
    try:
        with no_grad():
            output = model(example)
    finally:
        for handle in handles:
            handle.remove()
    for i, (path, module, args, _) in enumerate(calls):
        fed = example if i == 0 else calls[i - 1][3]
        if len(args) != 1 or args[0] is not fed:
            raise NotImplementedError(
                f"quantized_graph: module {path!r} ({type(module).__name__}) does not run on "
                "the previous layer's output; only chains of layers (Sequential, LeNet5, MLP) "
                "export")
    if not calls or output is not calls[-1][3]:
        raise NotImplementedError(f"quantized_graph: {type(model).__name__} computes something "
                                  "after its last layer; only chains of layers export")
    return [(path, module, args[0].shape) for path, module, args, _ in calls], output.shape


# ----------------------------------------------------------------------------- emitters
def _constant(graph, path, what, array):
    """An initializer named "<path>.<what>" (the module's path in the model) holding
    ``array``, its dtype kept."""
    return graph.constant(np.asarray(array), f"{path}.{what}" if path else what)


def _clamp_codes(graph, codes, path, qmin, qmax):
    """Clip(codes, qmin, qmax) when [qmin, qmax] is narrower than uint8."""
    if (qmin, qmax) == CODE_RANGE:
        return codes
    return graph.node("Clip", [codes, _constant(graph, path, "qmin", np.uint8(qmin)),
                               _constant(graph, path, "qmax", np.uint8(qmax))], path)


def _check_uint8_codes(layer, path):
    """Quantize/DeQuantize take any [qmin, qmax]; the graph's activations are uint8 (the
    quantized layers check their own output range)."""
    if not CODE_RANGE[0] <= layer.qmin < layer.qmax <= CODE_RANGE[1]:
        raise NotImplementedError(f"quantized_graph: module {path!r} ({type(layer).__name__}) "
                                  f"has codes in [{layer.qmin}, {layer.qmax}]; the ONNX integer "
                                  "operators here take uint8 activations")


def _quantize(graph, layer, x, path, shape):
    _check_uint8_codes(layer, path)
    codes = graph.node("QuantizeLinear", [x, _constant(graph, path, "scale", np.float32(
        layer.scale)), _constant(graph, path, "zero_point", np.uint8(layer.zero_point))], path)
    return _clamp_codes(graph, codes, path, layer.qmin, layer.qmax)


def _dequantize(graph, layer, x, path, shape):
    _check_uint8_codes(layer, path)
    return graph.node("DequantizeLinear", [x, _constant(graph, path, "scale", np.float32(
        layer.scale)), _constant(graph, path, "zero_point", np.uint8(layer.zero_point))], path)


def _activation_qparams(graph, layer, path, which):
    """Initializers for the (scale, zero point) of ``which`` ("input" or "output")."""
    scale, zero_point = getattr(layer, f"{which}_scale"), getattr(layer, f"{which}_zero_point")
    return [_constant(graph, path, f"{which}_scale", np.float32(scale)),
            _constant(graph, path, f"{which}_zero_point", np.uint8(zero_point))]


def offset_weights(weight_q):
    """int8 weight codes as uint8 with zero point 128: w = s_w w_q = s_w (w_u - 128)."""
    return (weight_q.astype(np.int16) + WEIGHT_OFFSET).astype(np.uint8)


def _matmul_integer(graph, x, x_zero_point, weight_q, path):
    """int32 x_q W_q^T - z_x sum_k W_q, as MatMulInteger on the offset uint8 weights."""
    return graph.node("MatMulInteger", [
        x, _constant(graph, path, "weight_u8_t", offset_weights(weight_q).T), x_zero_point,
        _constant(graph, path, "weight_zero_point", np.uint8(WEIGHT_OFFSET))], path)


def _conv(graph, layer, x, path, shape):
    ph, pw = layer.padding
    weight_scale = layer.weight_scale  # float32, () or (C,)
    inputs = [x, *_activation_qparams(graph, layer, path, "input"),
              _constant(graph, path, "weight_u8", offset_weights(layer.weight_q)),
              _constant(graph, path, "weight_scale", weight_scale),
              _constant(graph, path, "weight_zero_point",
                             np.full(weight_scale.shape, WEIGHT_OFFSET, np.uint8)),
              *_activation_qparams(graph, layer, path, "output"),
              _constant(graph, path, "bias_q", layer.bias_q)]
    codes = graph.node("QLinearConv", inputs, path, kernel_shape=list(layer.weight_q.shape[2:]),
                       strides=list(layer.stride), pads=[ph, pw, ph, pw],
                       dilations=list(layer.dilation), group=1)
    return _clamp_codes(graph, codes, path, layer.qmin, layer.qmax)


def _linear(graph, layer, x, path, shape):
    # s_x enters through s_x s_w below; z_x is MatMulInteger's zero point of A
    x_zero_point = _constant(graph, path, "input_zero_point", np.uint8(layer.input_zero_point))
    acc = _matmul_integer(graph, x, x_zero_point, layer.weight_q, path)
    acc = graph.node("Add", [acc, _constant(graph, path, "bias_q", layer.bias_q)], path)
    # acc s_x s_w, the layer's real output, then quantized to (s_y, z_y)
    accumulator_scale = layer.accumulator_scale().astype(np.float32)
    real = graph.node("DequantizeLinear", [acc, _constant(
        graph, path, "accumulator_scale", accumulator_scale)], path, axis=1)
    codes = graph.node("QuantizeLinear", [real, *_activation_qparams(graph, layer, path,
                                                                     "output")], path)
    return _clamp_codes(graph, codes, path, layer.qmin, layer.qmax)


def _padded_codes(graph, layer, x, path):
    """x_q padded with the layer's pad code, as ``QuantizedPool2d.padded``."""
    ph, pw = layer.padding
    if (ph, pw) == (0, 0):
        return x
    pads = np.array([0, 0, ph, pw, 0, 0, ph, pw], np.int64)
    return graph.node("Pad", [x, _constant(graph, path, "pads", pads),
                              _constant(graph, path, "pad_code", np.uint8(layer.pad_code))], path)


def _max_pool(graph, layer, x, path, shape):
    return graph.node("MaxPool", [_padded_codes(graph, layer, x, path)], path,
                      kernel_shape=list(layer.kernel_size), strides=list(layer.stride))


def _avg_pool(graph, layer, x, path, shape):
    from onnx import TensorProto
    codes = graph.node("Cast", [_padded_codes(graph, layer, x, path)], path,
                       to=TensorProto.FLOAT)
    mean = graph.node("AveragePool", [codes], path, kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride))
    return graph.node("Cast", [graph.node("Round", [mean], path)], path, to=TensorProto.UINT8)


def _relu_on_codes(graph, layer, x, path, shape):
    zero_point = _constant(graph, path, "zero_point", np.uint8(layer.zero_point))
    return graph.node("Clip", [x, zero_point], path)


def _flatten(graph, layer, x, path, shape):
    """Reshape to [0] * start + [-1] + the kept trailing sizes: 0 copies an axis, so the batch
    axis stays whatever the input's is."""
    start, end = layer.start_dim % len(shape), layer.end_dim % len(shape)
    if start == 0:
        raise NotImplementedError(f"quantized_graph: module {path!r} ({type(layer).__name__}) "
                                  "flattens the batch axis (start_dim=0), which a graph with a "
                                  "dynamic batch cannot express")
    target = np.array([0] * start + [-1] + list(shape[end + 1:]), np.int64)
    return graph.node("Reshape", [x, _constant(graph, path, "shape", target)], path)


def _relu(graph, layer, x, path, shape):
    return graph.node("Relu", [x], path)


def _identity(graph, layer, x, path, shape):
    return x  # Identity, and Dropout at inference


def _dynamic_linear(graph, layer, x, path, shape):
    from onnx import TensorProto
    codes, x_scale, x_zero_point = graph.node("DynamicQuantizeLinear", [x], path, outputs=3)
    acc = _matmul_integer(graph, codes, x_zero_point, layer.weight_q, path)
    weight_scale = _constant(graph, path, "weight_scale", layer.weight_scale)
    scale = graph.node("Mul", [x_scale, weight_scale], path)
    y = graph.node("Mul", [graph.node("Cast", [acc], path, to=TensorProto.FLOAT), scale], path)
    if layer.bias is None:
        return y
    return graph.node("Add", [y, _constant(graph, path, "bias", layer.bias)], path)


EMITTERS = {
    Quantize: _quantize, DeQuantize: _dequantize, QuantizedConv2d: _conv,
    QuantizedLinear: _linear, QuantizedMaxPool2d: _max_pool, QuantizedAvgPool2d: _avg_pool,
    QuantizedReLU: _relu_on_codes, QuantizedFlatten: _flatten,
    # around the DynamicQuantizedLinear layers of a dynamically quantized model, in float
    DynamicQuantizedLinear: _dynamic_linear, Flatten: _flatten, ReLU: _relu,
    Identity: _identity, Dropout: _identity,
}
