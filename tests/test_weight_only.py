"""minigrad.quant.weight_only: int4 group codes in range on adversarial groups, packing, the
layer against its fake-quantized float simulation and PyTorch's per-channel fake quantizer,
the s/2 error bound, exact sizes, accuracy of a quantized MNIST model; and int8
``quantize_dynamic`` on nested Linears against its fake-quantized simulation."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, quant
from minigrad.data.mnist import normalized_mnist
from minigrad.nn import functional as F


def normal(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def fake_quant_by_formula(weight, group_size):
    """s (clamp(round(w / s) + z, 0, 15) - z) per group, s and z by the module's formula,
    in float64."""
    groups = weight.astype(np.float64).reshape(-1, group_size)
    low = np.minimum(groups.min(axis=1, keepdims=True), 0)
    high = np.maximum(groups.max(axis=1, keepdims=True), 0)
    scale = np.maximum((high - low) / 15, np.finfo(np.float32).eps)
    zero = np.clip(np.rint(-low / scale), 0, 15)
    codes = np.clip(np.rint(groups / scale) + zero, 0, 15)
    return (scale * (codes - zero)).reshape(weight.shape)


def adversarial_weight():
    """Groups of 32: constant, one huge outlier, all negative, all zero, tiny, mixed."""
    rows = [np.full(32, 0.7), normal(32, 1, 0.01), -np.abs(normal(32, 2)) - 1, np.zeros(32),
            normal(32, 3, 1e-30), normal(32, 4)]
    rows[1][5] = 1e4
    return np.stack(rows).astype(np.float32).reshape(3, 64)


def test_codes_stay_in_range_and_error_is_at_most_half_a_step():
    weight = adversarial_weight()
    codes, scale, zero_point = quant.quantize_groups(weight, group_size=32)
    assert codes.dtype == np.uint8 and scale.shape == (3, 2) and zero_point.shape == (3, 2)
    assert codes.min() >= 0 and codes.max() <= 15 and zero_point.max() <= 15
    assert zero_point[1, 0] == 15 and codes[1, :32].min() == 0  # all negative: z at the top
    assert zero_point[0, 0] == 0 and np.all(codes[0, :32] == 15)  # constant 0.7: the top code
    deq = quant.dequantize_groups(codes, scale, zero_point)
    error = np.abs(deq - weight).reshape(6, 32)
    assert np.all(error <= scale.reshape(6, 1) / 2 * (1 + 1e-6))
    assert deq[0, 0] == pytest.approx(0.7, rel=1e-6) and np.all(deq[1, 32:] == 0)
    np.testing.assert_allclose(deq, fake_quant_by_formula(weight, 32), rtol=1e-6, atol=1e-30)


def test_random_weights_dequantize_within_half_a_step():
    weight = normal((16, 256), 5, 0.05)
    codes, scale, zero_point = quant.quantize_groups(weight)  # 128 a group
    error = np.abs(quant.dequantize_groups(codes, scale, zero_point) - weight)
    bound = np.repeat(scale, 128, axis=1) / 2
    assert np.all(error <= bound * (1 + 1e-6)) and error.max() > 0.9 * bound.min()


def test_pack_unpack_round_trip_and_nibble_order():
    np.testing.assert_array_equal(quant.pack_int4([1, 2, 15, 0]), [0x21, 0x0F])
    np.testing.assert_array_equal(quant.pack_int4([3, 4, 5]), [0x43, 0x05])  # odd: 0 pad
    rng = np.random.default_rng(0)
    for shape in [(3, 7), (2, 8), (5,)]:
        codes = rng.integers(0, 16, shape).astype(np.uint8)
        packed = quant.pack_int4(codes)
        assert packed.dtype == np.uint8 and packed.shape[-1] == (shape[-1] + 1) // 2
        np.testing.assert_array_equal(quant.unpack_int4(packed, shape[-1]), codes)
    with pytest.raises(ValueError, match=re.escape("codes must lie in [0, 15], got [0, 16]")):
        quant.pack_int4([0, 16])
    with pytest.raises(ValueError, match="4 bytes hold 8 codes, cannot give 9"):
        quant.unpack_int4(np.zeros(4, np.uint8), 9)


def linear_with(weight, bias):
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data[...], layer.bias.data[...] = weight, bias
    return layer


def test_layer_equals_its_fake_quantized_simulation_and_passes_gradients():
    weight, bias, x = normal((10, 96), 6, 0.1), normal(10, 7), normal((4, 96), 8)
    layer = quant.WeightOnlyInt4Linear.from_float(linear_with(weight, bias), group_size=32)
    inputs = mg.tensor(x, requires_grad=True)
    out = layer(inputs)
    fake = fake_quant_by_formula(weight, 32)
    np.testing.assert_allclose(out.numpy(), x @ fake.T + bias, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    np.testing.assert_allclose(inputs.grad.numpy(), np.ones((4, 10)) @ fake, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(layer.weight_q, quant.quantize_groups(weight, 32)[0])


def test_layer_matches_torch_per_channel_fake_quantize(torch_reference):
    weight, bias, x = normal((8, 128), 9, 0.1), normal(8, 10), normal((3, 128), 11)

    def compute(torch):
        from torch.ao.quantization.observer import PerChannelMinMaxObserver
        groups = torch.tensor(weight).reshape(-1, 64)
        observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8, quant_min=0,
                                            quant_max=15, qscheme=torch.per_channel_affine)
        observer(groups)
        scale, zero_point = observer.calculate_qparams()
        fake = torch.fake_quantize_per_channel_affine(groups, scale, zero_point.int(), 0, 0, 15)
        inputs = torch.tensor(x, requires_grad=True)
        out = torch.nn.functional.linear(inputs, fake.reshape(8, 128), torch.tensor(bias))
        (out ** 2).sum().backward()
        return {"scale": scale.float(), "zero_point": zero_point, "out": out,
                "grad_input": inputs.grad}

    expected = torch_reference("int4_group64", compute)
    layer = quant.WeightOnlyInt4Linear.from_float(linear_with(weight, bias), group_size=64)
    np.testing.assert_array_equal(layer.weight_scale.numpy().ravel(), expected["scale"])
    zero_point = quant.unpack_int4(layer.weight_zero_point.numpy(), 2)
    np.testing.assert_array_equal(zero_point.ravel(), expected["zero_point"])
    inputs = mg.tensor(x, requires_grad=True)
    out = layer(inputs)
    (out ** 2).sum().backward()
    np.testing.assert_allclose(out.numpy(), expected["out"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inputs.grad.numpy(), expected["grad_input"], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("shape, group_size, parts", [
    ((64, 256), 128, (8192, 512, 64, 256)),   # 2 groups a row: 1 byte of zero points
    ((64, 256), 32, (8192, 2048, 256, 256)),
    ((10, 96), 32, (480, 120, 20, 40))])      # 3 groups a row: 2 bytes (one nibble padded)
def test_size_is_packed_codes_scales_zero_points_and_bias(shape, group_size, parts):
    mg.manual_seed(0)
    float_layer = nn.Linear(shape[1], shape[0])
    layer = quant.WeightOnlyInt4Linear.from_float(float_layer, group_size)
    size = quant.model_size(layer)
    by_category = size.by_category()
    assert tuple(by_category[k] for k in ("weight", "scale", "zero_point", "bias")) == parts
    assert size.total == sum(parts) and size.rows[0].weight_bits == 4
    assert quant.model_size(float_layer).total == 4 * (shape[0] * shape[1] + shape[0])


def mnist_batches():
    """The bundled MNIST subset, the 24x24 centre (576 = 9 * 64 pixels)."""
    x, y = normalized_mnist(train=True, limit=3000).arrays
    x_test, y_test = normalized_mnist(train=False, limit=1000).arrays
    return (x[:, :, 2:26, 2:26], y), (x_test[:, :, 2:26, 2:26], y_test)


def accuracy(model, x, y):
    with mg.no_grad():
        return float(np.mean(np.argmax(model(mg.tensor(x)).numpy(), axis=1) == y))


def test_quantized_mnist_model_keeps_its_accuracy_and_is_6_9x_smaller():
    (x, y), (x_test, y_test) = mnist_batches()
    mg.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(576, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        for batch in np.array_split(rng.permutation(len(x)), 30):
            loss = F.cross_entropy(model(mg.tensor(x[batch])), mg.tensor(y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    quantized = quant.quantize_weight_only(model, group_size=64)
    assert [type(m).__name__ for m in quantized] == ["Flatten", "WeightOnlyInt4Linear", "ReLU",
                                                     "WeightOnlyInt4Linear"]
    assert isinstance(model[1], nn.Linear)  # the float model is untouched
    dense, int4 = accuracy(model, x_test, y_test), accuracy(quantized, x_test, y_test)
    assert dense > 0.88 and abs(dense - int4) <= 0.01, (dense, int4)
    float_bytes, int4_bytes = quant.model_size(model).total, quant.model_size(quantized).total
    assert (float_bytes, int4_bytes) == (300584, 43394)  # 6.9x smaller


def test_quantize_weight_only_names_the_layer_whose_inputs_do_not_divide():
    model = nn.Sequential(nn.Linear(256, 100), nn.ReLU(), nn.Linear(100, 10))
    with pytest.raises(ValueError, match=re.escape(
            "group_size=128 must be a positive int dividing in_features=100 (groups of "
            "consecutive input columns); layer '2'")):
        quant.quantize_weight_only(model)
    with pytest.raises(ValueError, match="bits must be an integer in 2..4"):
        quant.quantize_weight_only(nn.Linear(128, 4), bits=8)
    alone = quant.quantize_weight_only(nn.Linear(128, 4), bits=3)
    assert isinstance(alone, quant.WeightOnlyInt4Linear) and alone.weight_q.max() <= 7


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(12, 16), nn.ReLU())
        self.head = nn.Sequential(nn.Sequential(nn.Linear(16, 5)))

    def forward(self, x):
        return self.head(self.encoder(x))


def test_quantize_dynamic_on_nested_linears_equals_its_fake_quantized_simulation():
    mg.manual_seed(1)
    model = Block()
    dynamic = quant.quantize_dynamic(model, verbose=False)
    assert isinstance(dynamic.encoder[0], quant.DynamicQuantizedLinear)
    assert isinstance(dynamic.head[0][0], quant.DynamicQuantizedLinear)

    def simulated_linear(x, layer):
        """uint8 affine input from this batch's range, int8 symmetric per-channel weight."""
        low, high = min(x.min(), 0), max(x.max(), 0)
        s_x = np.float32((high - low) / 255)
        z_x = np.clip(np.rint(-low / s_x), 0, 255)
        x_fq = s_x * (np.clip(np.rint(x / s_x) + z_x, 0, 255) - z_x)
        w = layer.weight.numpy().astype(np.float64)
        s_w = (np.abs(w).max(axis=1, keepdims=True) / 127).astype(np.float32)
        w_fq = s_w * np.clip(np.rint(w / s_w), -127, 127)
        return x_fq @ w_fq.T + layer.bias.numpy()

    x = normal((6, 12), 12)
    hidden = np.maximum(simulated_linear(x.astype(np.float64), model.encoder[0]), 0)
    expected = simulated_linear(hidden.astype(np.float32).astype(np.float64), model.head[0][0])
    with mg.no_grad():
        np.testing.assert_allclose(dynamic(mg.tensor(x)).numpy(), expected, rtol=1e-5,
                                   atol=1e-5)
