"""ONNX export of minigrad models, PyTorch's ``torch.onnx.export`` for this framework:

    import minigrad.onnx
    minigrad.onnx.export(model, example_input, "model.onnx")   # opset 17, batch axis dynamic

How: one forward pass of the model on ``example_input`` is recorded op by op through the
engine (``trace.py``), then each op becomes ONNX nodes (``converters.py``). Parameters and
buffers are initializers under their ``state_dict`` names; an op that depends on the weights
alone (a batch-norm statistic reshaped, a pruning mask applied) is computed during the trace
and stored as an initializer. The graph input is ``input_names[0]`` ("input") with its axis 0
named "batch", so the file runs at any batch size; the outputs are ``output_names``, an axis
of theirs named "batch" where its size is the batch, unnamed where it depends on the batch
otherwise (the 4B of a (B, 4) input flattened).

The ops and what they become (every other op is a NotImplementedError naming it and the
module path it ran in):

    Conv2d / ConvTranspose2d   Conv / ConvTranspose (strides, pads, dilations, group), the
                               bias their third input where the op takes it (else an Add, as
                               minigrad adds it); a fused ReLU (relu=True) a Relu after
    Linear                     Gemm(transB=1) on (N, in) inputs, else MatMul + Add; a
                               fused ReLU a Relu after
    MaxPool2d                  MaxPool (ceil_mode as explicit end padding)
    AvgPool2d                  AveragePool(count_include_pad=1) times the op's divisor
                               correction (count_include_pad=False, ceil_mode, divisor_override)
    MatMul (adaptive_avg_pool2d, interpolate "bilinear": constant matrices)   MatMul
    Add Sub Mul Div Pow Maximum Where Neg Exp Log Sqrt Rsqrt Reciprocal Abs Sign Erf Sin Cos
    Clip Floor Ceil Clone Cast  the ONNX operator of the same meaning
    ReLU Sigmoid Tanh Softsign LeakyReLU Hardtanh (relu6, hardsigmoid) Threshold
    Softshrink Hardshrink ELU SELU CELU Softmax LogSoftmax
                               Relu Sigmoid Tanh Softsign LeakyRelu Clip Where Shrink Elu
                               Selu Celu Softmax LogSoftmax (with their attributes); on
                               integers, a bound the dtype cannot hold (threshold -0.5) is
                               refused, and Floor and Ceil are Identity
    GELU SiLU Mish LogSigmoid Softplus   Gelu (opset >= 20), else their formulas
    Reshape (flatten, view, squeeze, unsqueeze)   Reshape, -1 on the batch axis
    Permute (transpose)        Transpose
    BroadcastTo (expand)       Expand; a constant expanded to the batch (a class token,
                               cls.expand(len(x), 1, D)) takes it from Shape(input)
    Concatenate                Concat
    Pad (constant)             Pad
    Sum (sum, mean)            ReduceSum (mean: times 1/n)
    batch norm in eval         Sub, Div, Mul, Add with the folded statistics
    dropout in eval            nothing (minigrad's eval dropout runs no op)

A model in training mode (float or dynamically quantized) is exported in eval mode with a
UserWarning naming the modules that were training, and put back in its modes afterwards
(torch.onnx exports in eval by default too). A pruned model exports its effective weights
(``weight_orig * weight_mask``) with their zeros as plain dense initializers, so the file is
as large as the unpruned model's
(4 bytes a float32 weight; no external data). Quantized models (``quant.convert``,
``quant.quantize_dynamic``) are exported by ``minigrad.onnx.quantized`` with ONNX's integer
operators.

``onnx`` is an optional extra (``pip install -e ".[onnx]"``), imported only when a model is
exported, so ``import minigrad.onnx`` works without it. docs/onnx.md has the details.
"""

from minigrad.onnx.converters import DEFAULT_OPSET
from minigrad.serialization import atomic_write


def require_onnx(caller):
    """The ``onnx`` module; ImportError saying how to install it when it is missing."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"{caller} needs the onnx package, an optional extra of minigrad: "
                          'pip install -e ".[onnx]"') from None
    return onnx


def save_model(proto, path):
    """Write the ``onnx.ModelProto`` ``proto`` to ``path`` atomically (a temporary file in
    the same folder, renamed over ``path``: a crash leaves the previous file whole)."""
    atomic_write(path, lambda file: file.write(proto.SerializeToString()), "onnx.save_model")


def export(model, example_input, path, opset=DEFAULT_OPSET, input_names=("input",),
           output_names=("output",)):
    """Write ``model`` as an ONNX file at ``path``, traced on ``example_input`` (a Tensor or
    array whose axis 0 is the batch, made dynamic); returns the ``onnx.ModelProto``, which
    ``onnx.checker.check_model`` accepts.

    ``input_names``: the one graph input's name; ``output_names``: the names of the outputs
    of ``forward`` (a Tensor, or a tuple of them), in order; outputs beyond them are named
    "output_1", "output_2", ... by their index. ``opset``: the default domain's version,
    at least ``converters.MIN_OPSET`` (13). Refused: an op with no ONNX form
    (NotImplementedError naming it and the module path), a model whose ops or constants
    change with the batch size (ValueError).
    """
    from minigrad.onnx import converters, quantized
    from minigrad.tensor import as_tensor
    onnx = require_onnx("onnx.export")
    converters.check_opset(opset, "onnx.export")
    if len(input_names) != 1:
        raise ValueError(f"onnx.export: a model has one input here, got input_names "
                         f"{list(input_names)}")
    example = as_tensor(example_input)
    if quantized.is_quantized(model):
        proto = quantized.quantized_graph(model, example, opset, input_names, output_names)
    else:
        proto = _float_graph(onnx, model, example, opset, input_names[0], list(output_names))
    save_model(proto, path)
    return proto


def _float_graph(onnx, model, example, opset, input_name, output_names):
    """The ModelProto of a float model, traced in eval mode (the modes restored after)."""
    from onnx import helper

    from minigrad.onnx.converters import graph_from_trace
    from minigrad.onnx.trace import run_in_eval_mode, trace_model
    trace = run_in_eval_mode(model, lambda: trace_model(model, example), stacklevel=3)
    if len(output_names) > len(trace.outputs):
        raise ValueError(f"onnx.export: {type(model).__name__} returns {len(trace.outputs)} "
                         f"outputs, output_names has {len(output_names)}: {output_names}")
    output_names += [f"output_{i}" for i in range(len(output_names), len(trace.outputs))]
    graph = graph_from_trace(trace, opset, input_name, output_names, type(model).__name__)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="minigrad")
    onnx.checker.check_model(proto, full_check=True)
    return proto
