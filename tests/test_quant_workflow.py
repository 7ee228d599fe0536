"""The quantization workflow: prepare / calibrate / convert (static PTQ), quantize_dynamic,
prepare_qat, mixed precision, batch-norm folding, and the errors. The central check: the
integer executor (Numba or NumPy kernels) equals the float64 fake-quant simulation bit for bit.
"""

import re
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, nn, optim, quant
from minigrad.data import DataLoader, TensorDataset
from minigrad.models import LeNet5, MLP
from minigrad.nn import functional as F
from minigrad.train import evaluate
from minigrad.quant import (QConfig, convert, default_qconfig, fuse_conv_bn, fuse_linear_bn,
                            prepare, prepare_qat, quantize_dynamic, simulate)


def images(n=8, seed=0, shape=(1, 28, 28)):
    return mg.tensor(np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32))


def lenet(seed=0):
    mg.manual_seed(seed)
    return LeNet5().eval()


def randomize_batch_norm(bn, rng):
    c = bn.num_features
    bn.running_mean.data[...] = rng.normal(0, 0.5, c)
    bn.running_var.data[...] = rng.uniform(0.5, 2, c)
    bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
    bn.bias.data[...] = rng.normal(0, 0.2, c)


def mixed_model():
    """Every supported layer kind: BN to fold, average pooling with padding, a lone ReLU,
    dropout, a Linear without bias."""
    mg.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2, padding=1),
        nn.Conv2d(4, 6, 3, stride=2, bias=False), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Linear(12, 5, bias=False))
    rng = np.random.default_rng(2)
    randomize_batch_norm(model[1], rng)
    randomize_batch_norm(model[10], rng)
    return model.eval()


def calibrated(model, qconfig=None, batches=2, shape=(1, 28, 28)):
    prepared = prepare(model, qconfig)
    for seed in range(batches):
        prepared(images(16, seed, shape))
    return prepared


@pytest.fixture(params=["numba", "numpy"])
def kernel_set(request):
    previous = backend.kernels("cpu").__name__.rsplit(".", 1)[-1]
    backend.set_cpu_kernels(request.param)
    yield request.param
    backend.set_cpu_kernels("numba" if previous == "numba_cpu" else "numpy")


# ----------------------------------------------------------------------------- bit exactness
@pytest.mark.parametrize("per_channel", [True, False])
def test_integer_executor_equals_fake_quant_simulation_bit_for_bit(kernel_set, per_channel):
    qmodel = convert(calibrated(lenet(), default_qconfig(per_channel=per_channel)))
    x = images(8, seed=5)
    assert np.array_equal(qmodel(x).numpy(), simulate(qmodel, x).numpy())


def test_every_layer_kind_and_mixed_precision_bit_for_bit(kernel_set):
    model = mixed_model()
    qconfig = {"": default_qconfig(8), "9": QConfig(weight_bits=4, activation_bits=6),
               "11": default_qconfig(4, per_channel=False)}
    qmodel = convert(calibrated(model, qconfig, shape=(1, 12, 12)))
    x = images(8, seed=7, shape=(1, 12, 12))
    assert np.array_equal(qmodel(x).numpy(), simulate(qmodel, x).numpy())
    fc = qmodel._modules["9"]
    assert fc.weight_bits == 4 and fc.weight_q.dtype == np.int8
    assert np.abs(fc.weight_q).max() <= 7 and fc.qmax == 63
    # Close to the float model too (a coarse check: 4-bit layers are in there).
    with mg.no_grad():
        reference = model(x).numpy()
    assert np.abs(qmodel(x).numpy() - reference).max() < 0.25 * np.abs(reference).max()


def test_layer_by_layer_codes_match_the_kernel_sets():
    qmodel = convert(calibrated(lenet()))
    x = qmodel._modules["quantize"](images(4))
    for layer in list(qmodel)[1:-1]:
        codes = layer(x)
        assert np.array_equal(codes, layer.forward_reference(x)), type(layer).__name__
        x = codes


def test_float_fake_quant_model_within_one_output_step_of_integer_model():
    """The float32 QAT model (FakeQuantize with the same qparams) and the integer one differ by
    one output step at most, at a few percent of the outputs: the float model adds the bias
    unrounded (the integer one rounds it to the accumulator's grid s_x s_w), multiplies by the
    real M (not its 31-bit fixed-point value) and rounds float32 sums, so a value close to a
    rounding boundary can fall on either side, and the change of one code can move the next
    layers' results. ``simulate`` is the bit-exact float twin."""
    prepared = prepare_qat(lenet())
    for seed in range(3):
        prepared(images(16, seed))
    prepared.eval()
    qmodel = convert(prepared)
    x = images(32, seed=9)
    with mg.no_grad():
        fake = prepared(x).numpy()
    step = qmodel._modules["dequantize"].scale
    difference = np.abs(qmodel(x).numpy() - fake) / step
    assert difference.max() <= 1.01
    assert np.mean(difference < 0.01) > 0.9


def test_static_ptq_is_close_to_the_float_model():
    model = lenet()
    qmodel = convert(calibrated(model))
    x = images(16, seed=3)
    with mg.no_grad():
        reference = model(x).numpy()
    assert np.abs(qmodel(x).numpy() - reference).max() < 0.05 * np.abs(reference).max()
    assert isinstance(qmodel._modules["features_0"], quant.QuantizedConv2d)
    assert qmodel._modules["features_0"].relu and qmodel._modules["features_0"].qmin == \
        qmodel._modules["features_0"].output_zero_point


def test_evaluate_runs_an_integer_model_and_agrees_with_its_outputs():
    qmodel = convert(calibrated(lenet()))
    assert not list(qmodel.parameters())  # integer codes are buffers: nothing to train
    x = images(32, seed=4)
    predictions = qmodel(x).numpy().argmax(axis=1)
    labels = predictions.copy()
    labels[:8] = (labels[:8] + 1) % 10  # exactly 8 of 32 made wrong
    loader = DataLoader(TensorDataset(x.numpy(), labels), batch_size=10)
    assert evaluate(qmodel, loader)["accuracy"] == pytest.approx(24 / 32)


def test_model_size_of_int8_lenet_is_about_a_quarter():
    model = lenet()
    qmodel = convert(calibrated(model))
    ratio = quant.model_size(qmodel).total / quant.model_size(model).total
    assert ratio <= 0.26
    four_bit = convert(calibrated(model, {"": default_qconfig(8),
                                          "classifier.1": QConfig(weight_bits=4)}))
    fc1 = four_bit._modules["classifier_1"]
    assert fc1.storage_bytes()["weight"] == 400 * 120 // 2
    assert quant.model_size(four_bit).total < quant.model_size(qmodel).total - 20000


# ----------------------------------------------------------------------------- batch norm
def test_fuse_conv_bn_equals_conv_then_bn_in_eval_mode():
    mg.manual_seed(0)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5)
    randomize_batch_norm(bn, np.random.default_rng(0))
    bn.eval()
    x = images(4, shape=(3, 6, 6))
    fused = fuse_conv_bn(conv, bn)
    with mg.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), bn(conv(x)).numpy(), rtol=1e-5, atol=1e-5)
    assert conv.bias is None  # the input layer is unchanged


def test_fuse_linear_bn_and_wrong_pairs():
    mg.manual_seed(0)
    linear, bn = nn.Linear(6, 4), nn.BatchNorm1d(4)
    randomize_batch_norm(bn, np.random.default_rng(1))
    bn.eval()
    x = images(5, shape=(6,))
    with mg.no_grad():
        np.testing.assert_allclose(fuse_linear_bn(linear, bn)(x).numpy(), bn(linear(x)).numpy(),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="BatchNorm2d"):
        fuse_conv_bn(nn.Conv2d(1, 4, 3), bn)
    with pytest.raises(ValueError, match="channels"):
        fuse_conv_bn(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(4))


def test_prepare_folds_batch_norm_and_leaves_the_model_alone():
    model = mixed_model()
    prepared = prepare(model)
    assert isinstance(model[1], nn.BatchNorm2d)  # the original is untouched
    assert isinstance(prepared.model[1], nn.Identity)
    x = images(4, shape=(1, 12, 12))
    with mg.no_grad():
        np.testing.assert_allclose(prepared(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- dynamic
def test_quantize_dynamic_converts_linear_layers_and_says_why_not_others(capsys):
    model = lenet()
    dynamic = quantize_dynamic(model)
    table = capsys.readouterr().out
    assert "classifier.1" in table and "Linear layers only" in table
    assert isinstance(dynamic.classifier[1], quant.DynamicQuantizedLinear)
    assert isinstance(dynamic.features[0], nn.Conv2d) and isinstance(model.classifier[1], nn.Linear)
    x = images(8, seed=4)
    with mg.no_grad():
        reference, out = model(x).numpy(), dynamic(x).numpy()
    assert np.abs(out - reference).max() < 0.03 * np.abs(reference).max()
    assert quant.model_size(dynamic).total < 0.5 * quant.model_size(model).total
    alone = quantize_dynamic(nn.Linear(5, 3), verbose=False)
    assert isinstance(alone, quant.DynamicQuantizedLinear) and capsys.readouterr().out == ""
    assert not any(m.training for m in [*dynamic.modules(), alone])  # the copy is in eval mode


# ----------------------------------------------------------------------------- QAT
def test_qat_trains_freezes_and_converts():
    mg.manual_seed(3)
    model = MLP([16, 32, 4])
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal((64, 16)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 4, 64))
    prepared = prepare_qat(model, default_qconfig(4))
    optimizer = optim.Adam(prepared.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(prepared(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert prepared.model.layers[1].weight.grad is not None
    prepared.freeze_observers()
    frozen = prepared.sites[0].scale.numpy().copy()
    prepared(x * 10)
    assert np.array_equal(prepared.sites[0].scale.numpy(), frozen)
    qmodel = convert(prepared.eval())
    assert np.isclose(qmodel._modules["layers_1"].output_scale, float(frozen))
    assert qmodel._modules["layers_1"].weight_bits == 4
    assert np.array_equal(qmodel(x).numpy(), simulate(qmodel, x).numpy())


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bits", [1, 17, 0, 2.5])
def test_bits_outside_2_to_16_are_refused(bits):
    with pytest.raises(ValueError, match="bits"):
        QConfig(weight_bits=bits)
    with pytest.raises(ValueError, match="bits"):
        default_qconfig(bits)


def test_convert_refuses_codes_wider_than_the_kernels():
    with pytest.raises(ValueError, match="at most 8 bits"):
        convert(calibrated(lenet(), default_qconfig(12)))


def test_convert_without_calibration_says_what_to_do():
    with pytest.raises(ValueError, match="run calibration batches"):
        convert(prepare(lenet()))
    with pytest.raises(TypeError, match="prepare"):
        convert(lenet())


def test_nan_or_inf_in_weights_or_calibration_data_names_the_place():
    model = lenet()
    model.classifier[3].weight.data[0, 0] = np.nan
    weight_message = re.escape("quantization: the weight of layer 'classifier.3' contains 1 "
                               "NaN or inf value (of 10080); quantization needs finite values")
    with pytest.raises(ValueError, match=weight_message):
        prepare(model)
    with pytest.raises(ValueError, match=weight_message):
        quantize_dynamic(model, verbose=False)
    prepared = prepare(lenet())
    x = images(4)
    x.data[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape(
            "quantization: the model input contains 1 NaN or inf value (of 3136); in the "
            "calibration or training data? Quantization ranges need finite values")):
        prepared(x)
    model = lenet()
    model.features[0].weight.data[...] = 3e38  # finite, but the conv's sums overflow to inf
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            ValueError, match="the output of 'features.0' contains [0-9]+ NaN or inf values"):
        prepare(model)(images(4))


def test_unsupported_layers_and_non_chains_are_refused_by_name():
    with pytest.raises(ValueError, match="'1'.*Sigmoid"):
        prepare(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()))
    with pytest.raises(ValueError, match="does not follow"):
        prepare(nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 4)))
    with pytest.raises(ValueError, match="layers the model does not have"):
        prepare(lenet(), {"classifier.9": default_qconfig()})

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x)) + x

    with pytest.raises(ValueError, match="chain"):
        prepare(Residual())(images(2, shape=(4,)))

    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(OrderedDict(b=nn.Linear(4, 4), a=nn.Linear(4, 4)))

        def forward(self, x):
            return self.layers.b(self.layers.a(x))

    with pytest.raises(ValueError, match="not run in order"):
        prepare(Reversed())(images(2, shape=(4,)))


@pytest.mark.parametrize("pool, option", [
    (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
    (nn.MaxPool2d(2, return_indices=True), "return_indices"),
    (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
    (nn.AvgPool2d(2, padding=1, count_include_pad=False), "count_include_pad"),
    (nn.AvgPool2d(2, divisor_override=3), "divisor_override")])
def test_convert_refuses_pooling_options_the_integer_kernels_lack(pool, option):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), pool)
    prepared = prepare(model)
    prepared(images(2, shape=(1, 7, 7)))
    with pytest.raises(ValueError, match=option):
        convert(prepared)
