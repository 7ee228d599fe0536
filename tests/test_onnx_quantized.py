"""Quantized models in ONNX (``minigrad.onnx.quantized``) run in ONNX Runtime against minigrad's
integer executor: the int8 LeNet-5 on the bundled MNIST test set, per-tensor and per-channel
weights, fused and separate ReLUs, average pooling, narrow activations, dynamic quantization,
and the errors."""

import importlib
import sys
from collections import OrderedDict

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is an optional extra: pip install -e \".[onnx]\"")
ort = pytest.importorskip("onnxruntime",
                          reason="onnxruntime is an optional extra: pip install -e \".[onnx]\"")

import minigrad as mg  # noqa: E402
from minigrad import nn, quant  # noqa: E402
from minigrad.data import DataLoader  # noqa: E402
from minigrad.data.mnist import normalized_mnist  # noqa: E402
from minigrad.models import MLP, LeNet5  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.onnx import quantized as onnx_quantized  # noqa: E402
from minigrad.onnx.quantized import WEIGHT_OFFSET, is_quantized, quantized_graph  # noqa: E402
from minigrad.optim import SGD  # noqa: E402
from minigrad.quant.quantized import (DeQuantize, QuantizedAvgPool2d, QuantizedConv2d,  # noqa: E402
                                      QuantizedModel, QuantizedReLU, Quantize)
from minigrad.train import fit  # noqa: E402


# ----------------------------------------------------------------------------- helpers
def run_onnx(proto, x, tmp_path=None):
    """Check ``proto`` and run it in ONNX Runtime on ``x`` (from a file when ``tmp_path``)."""
    onnx.checker.check_model(proto)
    source = proto.SerializeToString()
    if tmp_path is not None:
        source = str(tmp_path / "model.onnx")
        onnx.save(proto, source)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.asarray(x, np.float32)})[0]


def output_codes(qmodel, logits):
    """The uint8 codes behind dequantized logits: (q - z) s is exact enough in float32 that
    round(y / s) + z gives q back."""
    dequantize = qmodel.dequantize
    return (np.rint(logits / np.float32(dequantize.scale)) + dequantize.zero_point).astype(int)


def code_differences(qmodel, x, tmp_path=None):
    """|ONNX Runtime codes - minigrad's integer executor's codes| of the model's output."""
    proto = quantized_graph(qmodel, x[:1])
    ours = output_codes(qmodel, qmodel(x).numpy())
    theirs = output_codes(qmodel, run_onnx(proto, x, tmp_path))
    return np.abs(theirs - ours), proto


def converted(model, calibration, qconfig=None):
    prepared = quant.prepare(model, qconfig)
    with mg.no_grad():
        prepared(mg.tensor(calibration))
    return quant.convert(prepared)


def dynamic_quantized(model):
    """``quant.quantize_dynamic(model)`` in eval mode: its new DynamicQuantizedLinear layers
    start in training mode, which ``quantized_graph`` would warn about."""
    return quant.quantize_dynamic(model, verbose=False).eval()


def ops(proto):
    return [node.op_type for node in proto.graph.node]


def initializer(proto, name):
    return next(onnx.numpy_helper.to_array(t) for t in proto.graph.initializer if t.name == name)


@pytest.fixture(scope="module")
def mnist():
    """A LeNet-5 trained for one epoch on 6,000 bundled images (about 2 s; 91.9% test accuracy
    with either CPU kernel set, where lr 0.05 gave 84-92% depending on the BLAS kernels), 512
    calibration images, and the 2,000 bundled test images with their labels."""
    mg.manual_seed(0)
    train = normalized_mnist(limit=6000)
    model = LeNet5()
    fit(model, DataLoader(train, batch_size=32, shuffle=True),
        SGD(model.parameters(), lr=0.01, momentum=0.9), F.cross_entropy, 1, progress=False)
    test = normalized_mnist(train=False)
    x, y = test.get_batch(np.arange(len(test)))
    calibration = train.get_batch(np.arange(512))[0]
    return model.eval(), np.asarray(calibration), np.asarray(x), np.asarray(y)


@pytest.fixture(scope="module")
def random_inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((64, 1, 12, 12)).astype(np.float32),
            rng.standard_normal((200, 1, 12, 12)).astype(np.float32))


# ----------------------------------------------------------------------------- static PTQ
def test_int8_lenet5_in_onnx_runtime_predicts_as_the_integer_executor(mnist, tmp_path):
    model, calibration, x, y = mnist
    qmodel = converted(model, calibration)
    differences, proto = code_differences(qmodel, x, tmp_path)  # traced at batch 1, run at 2,000
    integer_predictions = qmodel(x).numpy().argmax(axis=1)
    assert (integer_predictions == y).mean() > 0.85  # a trained model: predictions mean something
    ort_logits = run_onnx(proto, x)
    assert np.array_equal(ort_logits.argmax(axis=1), integer_predictions)
    # Measured: at most a few of the 20,000 logit codes differ, each by one (float32
    # requantization in ONNX Runtime).
    assert differences.max() <= 1
    assert (differences > 0).mean() <= 1e-3
    assert ops(proto).count("QLinearConv") == 2 and ops(proto).count("MatMulInteger") == 3
    assert "Clip" not in ops(proto)  # 8 bits, fused ReLUs with z = 0: saturation is enough


def test_initializers_carry_the_integer_model(mnist):
    model, calibration, x, _ = mnist
    qmodel = converted(model, calibration)
    proto = quantized_graph(qmodel, x[:2])
    conv, fc = qmodel.features_3, qmodel.classifier_1
    weight = initializer(proto, "features_3.weight_u8").astype(np.int16) - WEIGHT_OFFSET
    assert np.array_equal(weight, conv.weight_q)
    assert np.array_equal(initializer(proto, "features_3.weight_scale"), conv.weight_scale)
    assert initializer(proto, "features_3.weight_scale").shape == (16,)  # per channel, axis 0
    assert np.array_equal(initializer(proto, "features_3.bias_q"), conv.bias_q)
    assert initializer(proto, "features_3.bias_q").dtype == np.int32
    assert initializer(proto, "features_3.output_scale") == np.float32(conv.output_scale)
    assert initializer(proto, "features_3.input_zero_point") == conv.input_zero_point
    fc_weight = initializer(proto, "classifier_1.weight_u8_t").T.astype(np.int16)
    assert np.array_equal(fc_weight - WEIGHT_OFFSET, fc.weight_q)
    assert initializer(proto, "quantize.scale") == np.float32(qmodel.quantize.scale)
    assert initializer(proto, "quantize.zero_point").dtype == np.uint8
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, 28, 28]


def test_per_tensor_weights(mnist):
    model, calibration, x, _ = mnist
    qmodel = converted(model, calibration, quant.default_qconfig(per_channel=False))
    differences, proto = code_differences(qmodel, x[:500])
    assert initializer(proto, "features_0.weight_scale").shape == ()
    assert differences.max() <= 1 and (differences > 0).mean() <= 1e-3


def test_narrow_activations_are_clipped_to_their_range(mnist):
    model, calibration, x, _ = mnist
    qmodel = converted(model, calibration, quant.default_qconfig(4))  # codes in [0, 15]
    differences, proto = code_differences(qmodel, x[:500])
    assert ops(proto).count("Clip") == 6  # the input and the five layers' outputs
    assert differences.max() <= 1 and (differences > 0).mean() <= 1e-3


def test_fused_relu_with_a_positive_zero_point_clamps_at_it(random_inputs):
    """A ReLU fused as qmin = z_y > 0: QLinearConv saturates at 0, the Clip at z_y."""
    rng = np.random.default_rng(1)
    weight_q = rng.integers(-127, 128, (4, 1, 3, 3)).astype(np.int8)
    conv = QuantizedConv2d(weight_q, np.full(4, 0.01, np.float32), 8,
                           rng.integers(-500, 500, 4).astype(np.int32), 0.02, 128, 0.05, 40,
                           40, 255, True, padding=(1, 1))
    qmodel = QuantizedModel(OrderedDict([
        ("quantize", Quantize(0.02, 128, 0, 255)), ("conv", conv),
        ("dequantize", DeQuantize(0.05, 40, 0, 255))]))
    x = random_inputs[1]
    differences, proto = code_differences(qmodel, x)
    assert "Clip" in ops(proto)
    assert output_codes(qmodel, run_onnx(proto, x)).min() == 40
    assert differences.max() <= 1 and (differences > 0).mean() <= 1e-3


def test_separate_relu_and_max_pool_run_on_codes(random_inputs):
    calibration, x = random_inputs
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    qmodel = converted(model, calibration)
    relu = next(m for m in qmodel if isinstance(m, QuantizedReLU))
    assert relu.zero_point > 0  # ReLU after pooling is not fused: it clamps at z on the codes
    differences, proto = code_differences(qmodel, x)
    assert {"Pad", "MaxPool", "Clip"} <= set(ops(proto))
    assert differences.max() <= 1 and (differences > 0).mean() <= 1e-3


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_average_pooling_on_codes_equals_minigrad(kernel, stride, padding):
    """Averaging codes rounds half to even in both (2x2 windows make exact ties); the padding
    is the zero point."""
    rng = np.random.default_rng(kernel + padding)
    zero_point = 77
    qmodel = QuantizedModel(OrderedDict([
        ("quantize", Quantize(0.03, zero_point, 0, 255)),
        ("pool", QuantizedAvgPool2d(kernel, stride, padding, zero_point)),
        ("dequantize", DeQuantize(0.03, zero_point, 0, 255))]))
    x = rng.standard_normal((16, 3, 9, 9)).astype(np.float32) * 3
    differences, proto = code_differences(qmodel, x)
    assert "AveragePool" in ops(proto) and ("Pad" in ops(proto)) == (padding > 0)
    codes = qmodel.quantize(x).astype(np.float64)
    assert np.any(np.abs(codes[..., :2, :2].sum(axis=(-2, -1)) / 4 % 1 - 0.5) == 0)  # ties
    assert differences.max() == 0


def test_average_pooling_in_a_converted_model(random_inputs):
    calibration, x = random_inputs
    mg.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, 2, 1),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    qmodel = converted(model, calibration)
    differences, proto = code_differences(qmodel, x)
    assert "AveragePool" in ops(proto)
    assert differences.max() <= 1 and (differences > 0).mean() <= 1e-3


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opsets(opset, random_inputs):
    calibration, x = random_inputs
    mg.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 10 * 10, 4)).eval()
    qmodel = converted(model, calibration)
    proto = quantized_graph(qmodel, x[:1], opset=opset)
    assert proto.opset_import[0].version == opset
    logits = run_onnx(proto, x)
    assert np.abs(output_codes(qmodel, logits) - output_codes(qmodel, qmodel(x).numpy())).max() <= 1


# ----------------------------------------------------------------------------- dynamic
def test_dynamic_mlp_within_float32_rounding_of_minigrad(mnist):
    """Bound: |ORT - minigrad| <= 1e-6 max |y| while every input code agrees (DynamicQuantize
    Linear divides by s_x, minigrad multiplies by 1/s_x; a code that differs would move
    output o by up to s_x max_k |W[o, k]|). Measured: 7e-8 max |y| on the test set."""
    _, _, x, _ = mnist
    mg.manual_seed(0)
    model = MLP([784, 300, 100, 10], dropout=0.2).eval()
    dynamic = dynamic_quantized(model)
    proto = quantized_graph(dynamic, x[:1])
    assert ops(proto).count("DynamicQuantizeLinear") == 3
    assert ops(proto).count("MatMulInteger") == 3 and "Relu" in ops(proto)
    flat = x.reshape(len(x), -1)
    qp = quant.calculate_qparams(flat.min(), flat.max(), bits=8, signed=False)
    by_division = np.clip(np.rint(flat / qp.scale) + qp.zero_point, 0, 255)
    assert np.array_equal(by_division, quant.quantize(flat, qp))  # the first layer's codes agree
    for batch in (1, 7, len(x)):
        ours = dynamic(mg.tensor(x[:batch])).numpy()
        theirs = run_onnx(proto, x[:batch])
        assert np.abs(theirs - ours).max() <= 1e-6 * np.abs(ours).max()


def test_dynamic_bare_linear_without_bias():
    rng = np.random.default_rng(3)
    mg.manual_seed(3)
    dynamic = dynamic_quantized(nn.Linear(20, 6, bias=False))
    x = rng.standard_normal((5, 20)).astype(np.float32)
    proto = quantized_graph(dynamic, x)
    assert "Add" not in ops(proto)
    ours = dynamic(mg.tensor(x)).numpy()
    assert np.abs(run_onnx(proto, x) - ours).max() <= 1e-6 * np.abs(ours).max()


# ----------------------------------------------------------------------------- errors
def test_is_quantized():
    mg.manual_seed(0)
    model = LeNet5().eval()
    calibration = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    assert is_quantized(converted(model, calibration))
    assert is_quantized(quant.quantize_dynamic(model, verbose=False))
    assert is_quantized(quant.quantize_dynamic(nn.Linear(3, 2), verbose=False))
    assert not is_quantized(model)
    assert not is_quantized(quant.prepare(model))


def test_unsupported_module_raises_naming_it():
    mg.manual_seed(0)
    dynamic = dynamic_quantized(
        nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)))
    with pytest.raises(NotImplementedError, match=r"module '1' \(Tanh\)"):
        quantized_graph(dynamic, np.ones((2, 8), np.float32))


def test_flattening_the_batch_axis_raises_naming_the_module():
    mg.manual_seed(0)
    dynamic = dynamic_quantized(nn.Sequential(nn.Flatten(0), nn.Linear(8, 2)))
    with pytest.raises(NotImplementedError, match=r"module '0' \(Flatten\).*batch axis"):
        quantized_graph(dynamic, np.ones((1, 8), np.float32))


class Doubling(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.second(self.first(x) * 2)


def test_a_model_that_is_not_a_chain_raises():
    mg.manual_seed(0)
    dynamic = dynamic_quantized(Doubling())
    with pytest.raises(NotImplementedError, match=r"module 'second' \(DynamicQuantizedLinear\) "
                                                  "does not run on the previous layer's output"):
        quantized_graph(dynamic, np.ones((3, 4), np.float32))


def test_bad_arguments():
    mg.manual_seed(0)
    with pytest.raises(ValueError, match="LeNet5 is not a quantized model"):
        quantized_graph(LeNet5().eval(), np.ones((1, 1, 28, 28), np.float32))
    dynamic = dynamic_quantized(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="opset 12 is below the lowest supported, 13"):
        quantized_graph(dynamic, np.ones((1, 3), np.float32), opset=12)
    with pytest.raises(ValueError, match="one input and one output"):
        quantized_graph(dynamic, np.ones((1, 3), np.float32), input_names=("a", "b"))


def test_names_of_input_and_output():
    mg.manual_seed(0)
    dynamic = dynamic_quantized(nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)))
    proto = quantized_graph(dynamic, np.ones((1, 3), np.float32), input_names=["x"],
                            output_names=["logits"])
    assert [v.name for v in proto.graph.input] == ["x"]
    assert [v.name for v in proto.graph.output] == ["logits"]
    assert proto.graph.node[-1].output[0] == "logits"  # Dropout at inference adds no node


def test_training_mode_warns_exports_eval_and_is_restored():
    """An active Dropout would be exported as nothing: warned about, as the float path does."""
    mg.manual_seed(0)
    dynamic = dynamic_quantized(nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3)))
    dynamic[1].train()
    x = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"eval mode.*training mode.*: 1$"):
        proto = quantized_graph(dynamic, x[:1])
    assert dynamic[1].training and not dynamic[0].training
    ours = dynamic.eval()(mg.tensor(x)).numpy()
    assert np.abs(run_onnx(proto, x) - ours).max() <= 1e-6 * np.abs(ours).max()


def test_import_does_not_need_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # "import onnx" now raises ImportError
    importlib.reload(onnx_quantized)
    assert onnx_quantized.is_quantized(LeNet5()) is False
    monkeypatch.undo()
    importlib.reload(onnx_quantized)
