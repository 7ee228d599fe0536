"""``minigrad.onnx.export`` of float models: each exported file passes ``onnx.checker`` and, run
in ONNX Runtime, gives minigrad's outputs to 1e-5 (float32) at batch 1 and at a batch of 7,
whether the trace was made at batch 1 or at batch 7."""

import importlib
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is an optional extra: pip install -e \".[onnx]\"")
ort = pytest.importorskip("onnxruntime",
                          reason="onnxruntime is an optional extra: pip install -e \".[onnx]\"")
from onnx import numpy_helper  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.onnx as mg_onnx  # noqa: E402
from minigrad import nn, prune  # noqa: E402
from minigrad.models import MLP, LeNet5, ViT  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def randomize_batchnorm(model, seed=0):
    """Running statistics and affine parameters away from their defaults (0, 1, 1, 0), so an
    exported batch norm that ignored one of them would show."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.data[...] = rng.normal(0, 0.5, n)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, n)
            module.weight.data[...] = rng.normal(1, 0.3, n)
            module.bias.data[...] = rng.normal(0, 0.3, n)
    return model


def outputs_of(model, x):
    with mg.no_grad():
        out = model(mg.tensor(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def export_at(model, sample_shape, tmp_path, trace_batch, **export_args):
    """Export ``model`` traced at a random input of batch ``trace_batch``; returns the
    ModelProto and the path, whose file ``onnx.checker`` has passed."""
    rng = np.random.default_rng(trace_batch)
    example = mg.tensor(rng.normal(size=(trace_batch,) + sample_shape).astype(np.float32))
    path = tmp_path / "model.onnx"
    proto = mg_onnx.export(model, example, path, **export_args)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return proto, path


def run_at_batches(model, sample_shape, path):
    """(ONNX Runtime's outputs, minigrad's outputs) at batches 1 and 7."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(10)
    runs = []
    for batch in (1, 7):
        x = rng.normal(size=(batch,) + sample_shape).astype(np.float32)
        runs.append((session.run(None, {input_name: x}), outputs_of(model, x)))
    return runs


def exported_and_run(model, sample_shape, tmp_path, trace_batch, **export_args):
    """``export_at``, then ``run_at_batches``: the ModelProto and the runs."""
    proto, path = export_at(model, sample_shape, tmp_path, trace_batch, **export_args)
    return proto, run_at_batches(model, sample_shape, path)


def assert_runs_equal(runs):
    for got, want in runs:
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, **TOLERANCE)


class BatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class GroupedCNN(nn.Module):
    """A grouped convolution, a depthwise one and a pointwise one, then global pooling."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, stride=2, groups=8), nn.ReLU(),
            nn.Conv2d(8, 6, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))

    def forward(self, x):
        return self.body(x)


MODELS = {
    "lenet5": (lambda: LeNet5(), (1, 28, 28)),
    "mlp": (lambda: randomize_batchnorm(MLP([784, 300, 100, 10], dropout=0.3, batchnorm=True)),
            (1, 28, 28)),
    "batchnorm_cnn": (lambda: randomize_batchnorm(BatchNormCNN()), (1, 28, 28)),
    "grouped_cnn": (lambda: GroupedCNN(), (4, 12, 12)),
    "vit": (lambda: ViT(dim=32, depth=2, heads=4, mlp_dim=64), (1, 28, 28)),
    "deit": (lambda: ViT(dim=16, depth=1, heads=2, mlp_dim=32, distillation=True), (1, 28, 28)),
}


@pytest.mark.parametrize("trace_batch", [1, 7])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_equals_minigrad(name, trace_batch, tmp_path):
    mg.manual_seed(0)
    make, sample_shape = MODELS[name]
    model = make().eval()
    proto, runs = exported_and_run(model, sample_shape, tmp_path, trace_batch)
    assert_runs_equal(runs)
    (graph_input,) = proto.graph.input
    assert graph_input.name == "input" and proto.graph.output[0].name == "output"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(sample_shape)
    assert proto.opset_import[0].version == 17


def initializers(proto):
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def test_weights_are_initializers_under_their_state_dict_names(tmp_path):
    mg.manual_seed(0)
    model = LeNet5().eval()
    proto, _ = exported_and_run(model, (1, 28, 28), tmp_path, 1)
    stored = initializers(proto)
    assert set(model.state_dict()) <= set(stored)
    for name, tensor in model.state_dict().items():  # a conv bias is Conv's input B, (O,)
        np.testing.assert_array_equal(stored[name], tensor.numpy(), strict=True)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 3 and ops.count("MaxPool") == 2


def test_a_pruned_model_exports_its_masked_weights_with_their_zeros(tmp_path):
    mg.manual_seed(0)
    model = LeNet5().eval()
    layers = [model.features[0], model.features[3], model.classifier[1]]
    for layer in layers:
        prune.l1_unstructured(layer, "weight", amount=0.6)
    proto, runs = exported_and_run(model, (1, 28, 28), tmp_path, 1)
    assert_runs_equal(runs)
    stored = initializers(proto)
    assert not [name for name in stored if "weight_orig" in name or "weight_mask" in name]
    for path, layer in zip(["features.0", "features.3", "classifier.1"], layers):
        weight = stored[f"{path}.weight"]
        expected = layer.weight.numpy()
        assert (weight == 0).sum() == (expected == 0).sum() == round(0.6 * expected.size)
        np.testing.assert_array_equal(weight, expected)


class LayerZoo(nn.Module):
    """Most layers and activations of minigrad in one forward, on (N, 3, 9, 9) images."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2)
        self.up = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.max = nn.MaxPool2d(2, ceil_mode=True)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        h = F.leaky_relu(self.conv(x), 0.2)                  # (N, 6, 5, 5)
        up = self.up(h)                                       # (N, 4, 10, 10)
        h = (F.elu(up) + F.selu(h).mean(dim=(1, 2, 3), keepdim=True)
             + F.celu(up, 0.5).sum(dim=(2, 3), keepdim=True))
        pooled = self.max(F.gelu(self.avg(h))) * F.sigmoid(F.adaptive_avg_pool2d(h, (3, 3)))
        t = F.silu(pooled).transpose(1, 3)                    # (N, 3, 3, 4)
        t = self.fc(F.hardswish(t)) - F.gelu(t.sum(dim=-1, keepdim=True), approximate="tanh")
        t = mg.cat([F.tanh(t), F.softplus(t, beta=2.0), F.relu6(t)], dim=-1).reshape(len(t), -1)
        return F.softmax(t, dim=1), F.log_softmax(t, dim=-1)


@pytest.mark.parametrize("opset", [17, 20])
def test_a_zoo_of_layers_and_two_outputs(opset, tmp_path):
    mg.manual_seed(0)
    proto, runs = exported_and_run(LayerZoo().eval(), (3, 9, 9), tmp_path, 7, opset=opset,
                                   output_names=["probs", "log_probs"])
    assert_runs_equal(runs)
    assert [o.name for o in proto.graph.output] == ["probs", "log_probs"]
    assert ("Gelu" in [n.op_type for n in proto.graph.node]) == (opset >= 20)


class Cumulative(nn.Module):
    def forward(self, x):
        return x.cumsum(1)


class NormsAndSlices(nn.Module):
    """Layer norm without an affine part and over two axes, and every kind of basic index:
    an int (negative too), a strided slice, a reversed one, an ellipsis."""

    def __init__(self):
        super().__init__()
        self.plain = nn.LayerNorm(6, elementwise_affine=False)
        self.wide = nn.LayerNorm((5, 6), eps=1e-3)

    def forward(self, x):
        x = self.wide(self.plain(x))                      # (N, 5, 6)
        return (x[:, -1], x[:, 1:5:2, ::-2], x[..., 0], x[:, ::-1, 2:3])


def test_layer_norm_and_basic_indexing_equal_onnx_runtime(tmp_path):
    mg.manual_seed(0)
    model = NormsAndSlices().eval()
    nn.init.normal_(model.wide.weight)
    nn.init.normal_(model.wide.bias)
    proto, runs = exported_and_run(model, (5, 6), tmp_path, trace_batch=3)
    assert_runs_equal(runs)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("LayerNormalization") == 2 and ops.count("Slice") == 4
    assert ops.count("Squeeze") == 2


def test_rms_norm_index_arrays_and_layer_norm_below_opset_17_are_refused(tmp_path):
    with pytest.raises(NotImplementedError, match=r"op RMSNormFunction \(in module '0'"):
        mg_onnx.export(nn.Sequential(nn.RMSNorm(4)).eval(), mg.randn(2, 4), tmp_path / "a.onnx")
    with pytest.raises(NotImplementedError, match="LayerNormalization from opset 17, asked "
                                                  "for opset 13"):
        mg_onnx.export(nn.Sequential(nn.LayerNorm(4)).eval(), mg.randn(2, 4),
                       tmp_path / "b.onnx", opset=13)

    class Picks(nn.Module):
        def forward(self, x):
            return x[:, [0, 2]]
    with pytest.raises(NotImplementedError, match="indexing with arrays has no converter"):
        mg_onnx.export(Picks().eval(), mg.randn(2, 4), tmp_path / "c.onnx")


def test_an_op_without_an_onnx_form_is_an_error_naming_it_and_its_module(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), Cumulative(), nn.ReLU()).eval()
    with pytest.raises(NotImplementedError, match=r"op CumSum \(in module '1', a Cumulative\)"):
        mg_onnx.export(model, mg.randn(2, 4), tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


class ScalesByBatch(nn.Module):
    def forward(self, x):
        return x * len(x)


def test_a_value_computed_from_the_batch_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"ScalesByBatch\) reads the constant 2\.0 at batch 2 "
                                         r"and 3\.0 at batch 3"):
        mg_onnx.export(ScalesByBatch().eval(), mg.randn(2, 4), tmp_path / "model.onnx")


def test_training_mode_warns_exports_eval_and_is_restored(tmp_path):
    mg.manual_seed(0)
    model = randomize_batchnorm(MLP([784, 30, 10], dropout=0.5, batchnorm=True))
    model.layers[2].eval()  # the batch norm: a mixture of modes comes back as it was
    modes = [m.training for m in model.modules()]
    assert modes.count(False) == 1
    with pytest.warns(UserWarning, match=r"eval mode.*training mode.*: MLP, layers, layers\.0, "
                                         r"layers\.1, layers\.3, layers\.4, layers\.5$"):
        _, path = export_at(model, (1, 28, 28), tmp_path, 7)
    assert [m.training for m in model.modules()] == modes
    # the graph computes eval mode: running statistics, no dropout
    assert_runs_equal(run_at_batches(model.eval(), (1, 28, 28), path))


def test_without_onnx_import_works_and_export_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # "import onnx" now raises ImportError
    module = importlib.reload(mg_onnx)
    try:
        with pytest.raises(ImportError, match=r'pip install -e "\.\[onnx\]"'):
            module.export(LeNet5(), mg.randn(1, 1, 28, 28), tmp_path / "model.onnx")
    finally:
        monkeypatch.undo()
        importlib.reload(mg_onnx)


def test_bad_arguments_are_refused(tmp_path):
    model = nn.Linear(3, 2).eval()
    with pytest.raises(ValueError, match="opset 12 is below the lowest supported, 13"):
        mg_onnx.export(model, mg.randn(2, 3), tmp_path / "m.onnx", opset=12)
    with pytest.raises(ValueError, match="returns 1 outputs, output_names has 2"):
        mg_onnx.export(model, mg.randn(2, 3), tmp_path / "m.onnx", output_names=["a", "b"])
    with pytest.raises(ValueError, match="needs a batch axis 0"):
        mg_onnx.export(model, mg.tensor(1.0), tmp_path / "m.onnx")


# ----------------------------------------------------------------------------- the batch axis
class ClassToken(nn.Module):
    """A ViT's class token: a (1, 1, D) parameter expanded to the batch, before the tokens."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Parameter(mg.randn(1, 1, 4))
        self.proj = nn.Linear(4, 4)

    def forward(self, x):  # x: (B, T, 4)
        return self.proj(mg.cat([self.cls.expand(len(x), 1, 4), x], dim=1))


@pytest.mark.parametrize("trace_batch", [1, 2])
def test_a_constant_expanded_to_the_batch_takes_the_batch_at_run_time(trace_batch, tmp_path):
    mg.manual_seed(0)
    model = ClassToken().eval()
    proto, path = export_at(model, (3, 4), tmp_path, trace_batch)
    stored = initializers(proto)
    np.testing.assert_array_equal(stored["cls"], model.cls.numpy())  # one token, not B of them
    assert [name for name, a in stored.items() if a.ndim == 3] == ["cls"]
    assert {"Shape", "Expand"} <= {node.op_type for node in proto.graph.node}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for batch in (1, 2, 5, 7):
        x = rng.normal(size=(batch, 3, 4)).astype(np.float32)
        (got,) = session.run(None, {"input": x})
        (want,) = outputs_of(model, x)
        assert got.shape == want.shape == (batch, 4, 4)
        np.testing.assert_allclose(got, want, **TOLERANCE)


class Lambda(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def test_an_op_on_a_constant_expanded_to_the_batch_is_exported_as_an_op(tmp_path):
    """cumsum over the expanded ones is 1, 2, ..., B: a value of the graph, not an initializer
    of the traced B (which would give wrong values at another batch); CumSum has no converter."""
    model = Lambda(lambda x: x * mg.ones(1, 1).expand(len(x), 1).cumsum(0)).eval()
    with pytest.raises(NotImplementedError, match=r"op CumSum \(in the model itself"):
        mg_onnx.export(model, mg.randn(1, 1), tmp_path / "model.onnx")


@pytest.mark.parametrize("function, message", [
    (lambda x: x + mg.zeros(8, 3)[:len(x)],
     r"op GetItem .* makes an output whose axes \[0\] depend on the batch from constants alone"),
    (lambda x: x + F.leaky_relu(-mg.ones(3), 0.1 * len(x)),
     r"op LeakyReLU .* computes a constant that differs between batch 2 and 3"),
])
def test_a_constant_computed_from_the_batch_size_is_refused(function, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        mg_onnx.export(Lambda(function).eval(), mg.randn(2, 3), tmp_path / "model.onnx")


def test_only_an_axis_that_is_the_batch_is_named_batch(tmp_path):
    """(B, 4).reshape(-1) is 4B long and reshape(2, -1) is (2, 2B): unnamed, not "batch"."""
    model = Lambda(lambda x: (x.reshape(-1), x * 2, x.reshape(2, -1))).eval()
    proto, path = export_at(model, (4,), tmp_path, 2)
    dims = [[d.dim_param or d.dim_value or None for d in o.type.tensor_type.shape.dim]
            for o in proto.graph.output]
    assert dims == [[None], ["batch", 4], [2, None]]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (2, 6):  # reshape(2, -1) needs an even batch
        x = np.random.default_rng(batch).normal(size=(batch, 4)).astype(np.float32)
        assert_runs_equal([(session.run(None, {"input": x}), outputs_of(model, x))])


class BranchesOnData(nn.Module):
    """Python control flow on the values: which ops run depends on the data."""

    def forward(self, x):
        values = x.numpy()
        return x.exp() if values.max() > values[0].max() else F.relu(x)


def test_a_branch_on_the_data_shows_in_the_second_trace(tmp_path):
    """Traced at batch 1 the branch is relu; the second trace's extra sample is not a copy of
    the first, so there the branch is exp and export refuses (a copy would hide it)."""
    with pytest.raises(ValueError, match="runs different ops at batch 1 and 2"):
        mg_onnx.export(BranchesOnData().eval(), mg.randn(1, 5), tmp_path / "model.onnx")


# ----------------------------------------------------------------------------- fused layers
class FusedLayers(nn.Module):
    """The fused forms of the layer ops (bias as an input, relu=True), called directly."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(2 * 8 * 8, 5)
        self.fc3d = nn.Linear(5, 3)

    def forward(self, x):  # x: (B, 3, 4, 4)
        from minigrad.ops import nn as ops
        h = ops.Conv2d.apply(x, self.conv.weight, self.conv.bias, stride=(1, 1),
                             padding=(1, 1), relu=True)
        h = ops.ConvTranspose2d.apply(h, self.up.weight, self.up.bias, stride=(2, 2),
                                      relu=True)
        h = ops.Linear.apply(h.flatten(1), self.fc.weight, self.fc.bias, relu=True)
        return ops.Linear.apply(h.reshape(len(h), 1, 5), self.fc3d.weight, self.fc3d.bias,
                                relu=True)


def test_fused_bias_and_relu_are_the_nodes_inputs_and_a_relu(tmp_path):
    mg.manual_seed(0)
    model = FusedLayers().eval()
    with mg.no_grad():
        model.conv.bias.data[...] = np.linspace(-1, 1, 4)  # some channels cut off by the ReLU
    proto, runs = exported_and_run(model, (3, 4, 4), tmp_path, 1)
    assert_runs_equal(runs)
    assert runs[1][1][0].min() == 0  # the last ReLU cut something off
    nodes = {node.op_type: node for node in proto.graph.node}
    assert list(nodes["Conv"].input) == ["input", "conv.weight", "conv.bias"]
    assert list(nodes["ConvTranspose"].input)[1:] == ["up.weight", "up.bias"]
    assert initializers(proto)["conv.bias"].shape == (4,)
    assert [node.op_type for node in proto.graph.node].count("Relu") == 4
    assert "Add" in nodes  # the 3-d Linear: MatMul, Add, Relu


# ----------------------------------------------------------------------------- integer inputs
def test_a_bound_an_integer_cannot_hold_is_refused(tmp_path):
    """Cast to int64, -0.5 would become 0, and x > 0 is not x > -0.5 (at x = 0)."""
    model = Lambda(lambda x: F.threshold((x * 3).long(), -0.5, 7)).eval()
    with pytest.raises(NotImplementedError,
                       match=r"op Threshold .*int64 output cannot take the constant -0\.5"):
        mg_onnx.export(model, mg.randn(2, 3), tmp_path / "model.onnx")


def test_integer_bounds_on_integers(tmp_path):
    model = Lambda(lambda x: F.threshold((x * 3).long(), 0, 7) + (x * 3).long().clip(-2, 2))
    proto, runs = exported_and_run(model.eval(), (5,), tmp_path, 2)
    assert_runs_equal(runs)
    assert runs[1][1][0].dtype == np.int64
    assert {"Clip", "Greater", "Where"} <= {node.op_type for node in proto.graph.node}


def test_floor_and_ceil_of_integers_are_the_integers(tmp_path):
    model = Lambda(lambda x: (x * 3).long().floor() + (x * 3).long().ceil()).eval()
    proto, runs = exported_and_run(model, (5,), tmp_path, 2)
    assert_runs_equal(runs)
    assert runs[1][1][0].dtype == np.int64 and np.abs(runs[1][1][0]).max() > 0
    ops = [node.op_type for node in proto.graph.node]
    assert "Floor" not in ops and "Ceil" not in ops
