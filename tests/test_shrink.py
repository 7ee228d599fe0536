"""prune.shrink: the shrunk model computes the same outputs with fewer parameters, the input
model is untouched, biases of removed channels are folded where exact (and channels kept where
not), and structures shrink cannot handle raise a ValueError naming the layer."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune
from minigrad.models import MLP, LeNet5
from minigrad.nn.utils.parametrize import is_parametrized
from minigrad.prune.shrink import shrink

RNG = np.random.default_rng(0)


def images(shape):
    return mg.tensor(RNG.standard_normal(shape).astype(np.float32))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def snapshot(model):
    return {name: t.data.copy() for name, t in model.state_dict().items()}


def assert_same_outputs(original, shrunk, x):
    modes = original.training, shrunk.training
    original.eval(), shrunk.eval()
    with mg.no_grad():
        np.testing.assert_allclose(shrunk(x).data, original(x).data, rtol=1e-5, atol=1e-5)
    original.train(modes[0]), shrunk.train(modes[1])


def zero_filters(layer, channels, bias=0.5):
    """Zero whole output slices by hand, with nonzero biases (alternating sign) so the removed
    channels still send a constant downstream and folding is exercised."""
    layer.weight.data[channels] = 0
    layer.bias.data[channels] = [bias if i % 2 == 0 else -bias for i in range(len(channels))]


def pruned_lenet():
    mg.manual_seed(0)
    model = LeNet5()
    zero_filters(model.features[0], [0, 2, 4])
    zero_filters(model.features[3], list(range(0, 16, 2)))
    return model


# LeNet-5 with 3 of 6 and 8 of 16 filters left: conv1 3*25+3, conv2 8*3*25+8,
# fc1 (8*5*5)*120+120, fc2 120*84+84, fc3 84*10+10.
LENET_HALF = 78 + 608 + 24120 + 10164 + 850


def test_lenet_half_filters_same_outputs_fewer_parameters():
    model = pruned_lenet()
    before = snapshot(model)
    shrunk, report = shrink(model, images((2, 1, 28, 28)), return_report=True)
    assert_same_outputs(model, shrunk, images((16, 1, 28, 28)))
    assert parameter_count(model) == 61706 and parameter_count(shrunk) == LENET_HALF
    assert (report.parameters_before, report.parameters_after) == (61706, LENET_HALF)
    assert f"parameters: 61706 -> {LENET_HALF}" in str(report)
    conv1, conv2, fc1 = shrunk.features[0], shrunk.features[3], shrunk.classifier[1]
    assert conv1.weight.shape == (3, 1, 5, 5) and conv1.out_channels == 3
    assert conv2.weight.shape == (8, 3, 5, 5) and (conv2.in_channels, conv2.out_channels) == (3, 8)
    assert fc1.weight.shape == (120, 200) and fc1.in_features == 200
    assert [(s.name, s.removed) for s in report.layers] == [
        ("features.0", [0, 2, 4]), ("features.3", list(range(0, 16, 2)))]
    # the input model is unchanged, down to its training flag
    after = snapshot(model)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert model.features[0].out_channels == 6 and model.training and shrunk.training


def test_removed_biases_are_folded_into_the_next_layer():
    """The removed channels still send their (activated) biases on: the next layers' biases
    change by exactly what those constants contributed."""
    model = pruned_lenet()
    shrunk = shrink(model, images((2, 1, 28, 28)))
    kept_filters = list(range(1, 16, 2))
    conv2_before = model.features[3].bias.data[kept_filters]
    conv2_after = shrunk.features[3].bias.data
    # conv1 channels 0 and 4 have bias +0.5 (ReLU and max-pool keep 0.5), channel 2 has -0.5 (0)
    taps = model.features[3].weight.data[kept_filters][:, [0, 4]].sum(axis=(1, 2, 3))
    np.testing.assert_allclose(conv2_after - conv2_before, 0.5 * taps, rtol=1e-5, atol=1e-6)
    assert not np.allclose(shrunk.classifier[1].bias.data, model.classifier[1].bias.data)


def test_reparametrized_model_gives_plain_parameters():
    mg.manual_seed(1)
    model = LeNet5()
    for layer, channels in ((model.features[0], [1, 3, 5]), (model.features[3], range(8))):
        mask = np.ones(layer.weight.shape, dtype=np.float32)
        mask[list(channels)] = 0
        prune.custom_from_mask(layer, "weight", mask)
    shrunk = shrink(model, images((2, 1, 28, 28)))
    assert_same_outputs(model, shrunk, images((8, 1, 28, 28)))
    assert parameter_count(shrunk) == LENET_HALF
    for layer in (shrunk.features[0], shrunk.features[3]):
        assert set(layer._parameters) == {"weight", "bias"} and not layer._buffers
        assert isinstance(layer.weight, nn.Parameter) and not is_parametrized(layer)
    assert "features.0.weight_orig" in model.state_dict()  # the original keeps its pruning


def test_model_pruned_by_ln_structured():
    """The pruning core's structured pruning (masks), then shrink."""
    from minigrad.prune.methods import ln_structured

    mg.manual_seed(6)
    model = LeNet5()
    ln_structured(model.features[0], "weight", 0.5, n=1, dim=0)
    ln_structured(model.features[3], "weight", 0.5, n=1, dim=0)
    ln_structured(model.classifier[1], "weight", 0.25, n=2, dim=0)
    shrunk = shrink(model, images((2, 1, 28, 28)))
    assert_same_outputs(model, shrunk, images((8, 1, 28, 28)))
    assert [m.weight.shape for m in shrunk.modules() if isinstance(m, nn.Linear)] == [
        (90, 200), (84, 90), (10, 84)]
    assert parameter_count(shrunk) == 78 + 608 + 200 * 90 + 90 + 90 * 84 + 84 + 850
    assert list(shrunk.state_dict())[:2] == ["features.0.weight", "features.0.bias"]


def test_mlp_zero_neurons_and_output_neurons_kept():
    mg.manual_seed(2)
    model = MLP([20, 16, 12, 5], dropout=0.2)
    hidden1, hidden2, out = (m for m in model.layers if isinstance(m, nn.Linear))
    zero_filters(hidden1, [0, 5, 6, 15], bias=0.3)
    zero_filters(hidden2, [1, 2, 3], bias=0.2)
    zero_filters(out, [4])
    shrunk, report = shrink(model, images((3, 20)), return_report=True)
    assert_same_outputs(model, shrunk, images((10, 20)))
    widths = [(m.in_features, m.out_features) for m in shrunk.layers if isinstance(m, nn.Linear)]
    assert widths == [(20, 12), (12, 9), (9, 5)]
    assert parameter_count(shrunk) == 20 * 12 + 12 + 12 * 9 + 9 + 9 * 5 + 5
    assert report.layers[-1].removed == [] and 4 in report.layers[-1].kept


def conv_bn_relu_conv():
    mg.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 6), nn.BatchNorm1d(6), nn.Tanh(),
                          nn.Linear(6, 2))
    for bn in (model[1], model[6]):
        n = bn.num_features
        bn.weight.data[...] = RNG.uniform(0.5, 1.5, n)
        bn.bias.data[...] = RNG.standard_normal(n)
        bn.running_mean.data[...] = RNG.standard_normal(n)
        bn.running_var.data[...] = RNG.uniform(0.5, 2.0, n)
    zero_filters(model[0], [1, 4, 5, 7], bias=0.7)
    zero_filters(model[5], [0, 3])
    return model


def test_conv_bn_relu_conv_shrinks_batch_norms():
    model = conv_bn_relu_conv()
    shrunk = shrink(model, images((2, 3, 8, 8)))
    assert_same_outputs(model, shrunk, images((5, 3, 8, 8)))
    bn2d, bn1d = shrunk[1], shrunk[6]
    assert bn2d.num_features == 4 and bn1d.num_features == 4
    for bn in (bn2d, bn1d):
        assert all(t.shape == (4,) for t in (bn.weight, bn.bias, bn.running_mean,
                                             bn.running_var))
    assert shrunk[3].weight.shape == (4, 4, 3, 3) and shrunk[5].weight.shape == (4, 64)
    assert shrunk[8].weight.shape == (2, 4)
    assert parameter_count(shrunk) == (4 * 27 + 4) + 8 + (4 * 36 + 4) + (4 * 64 + 4) + 8 + 10


@pytest.mark.parametrize("activation, kept", [(nn.ReLU, [1]), (nn.Identity, [0, 1])])
def test_next_conv_with_padding_keeps_channels_with_a_nonzero_constant(activation, kept):
    """Channel 0 has bias -1: after ReLU it is exactly 0, so it can go even though the next conv
    pads; channel 1 (bias +1) reaches the padded border as 1 and must stay."""
    mg.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), activation(), nn.Conv2d(4, 3, 3, padding=1))
    model[0].weight.data[:2] = 0
    model[0].bias.data[:2] = [-1.0, 1.0]
    shrunk, report = shrink(model, images((1, 2, 9, 9)), return_report=True)
    assert_same_outputs(model, shrunk, images((4, 2, 9, 9)))
    assert sorted(report.layers[0].kept) == kept
    assert shrunk[0].out_channels == shrunk[2].in_channels == 4 - (2 - len(kept))


def test_non_constant_map_is_kept_before_a_conv():
    """Average pooling with padding counts the zeros at the border: a constant channel stops
    being constant, which no bias of the next conv can stand for."""
    mg.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AvgPool2d(2, padding=1), nn.Conv2d(3, 2, 2))
    zero_filters(model[0], [0, 1])
    shrunk, report = shrink(model, images((1, 1, 9, 9)), return_report=True)
    assert_same_outputs(model, shrunk, images((3, 1, 9, 9)))
    assert report.layers[0].removed == [] and sorted(report.layers[0].kept) == [0, 1]
    assert "0, 1: its map is not constant over the image" in str(report)


def test_a_layer_keeps_one_channel():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    zero_filters(model[0], [0, 1, 2])
    shrunk = shrink(model, images((2, 4)))
    assert_same_outputs(model, shrunk, images((5, 4)))
    assert shrunk[0].weight.shape == (1, 4) and shrunk[2].weight.shape == (2, 1)


def test_shrunk_model_trains():
    shrunk = shrink(pruned_lenet(), images((2, 1, 28, 28)))
    loss = shrunk(images((4, 1, 28, 28))).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in shrunk.parameters())


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act = nn.Linear(3, 3), nn.ReLU()

    def forward(self, x):
        return self.fc(self.act(self.fc(x)))


@pytest.mark.parametrize("model, shape, message", [
    (Residual(), (1, 2, 5, 5), "output of its last layer 'conv2'"),
    (Twice(), (2, 3), "'fc' .* runs more than once"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1), nn.Conv2d(2, 2, 3)), (1, 1, 7, 7),
     "layer '1' \\(Softmax\\) between '0'"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(5, 3)), (1, 1, 7, 7), "put a Flatten"),
])
def test_unsupported_structures_raise(model, shape, message):
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    first.weight.data[0] = 0
    with pytest.raises(ValueError, match=message):
        shrink(model, images(shape))


def test_functional_op_between_layers_raises():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

        def forward(self, x):
            return self.b(mg.nn.functional.relu(self.a(x)))

    with pytest.raises(ValueError, match="input of 'b' .* is not the output of 'a'"):
        shrink(Functional(), images((2, 3)))
