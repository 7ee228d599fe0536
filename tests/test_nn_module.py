"""Module: registration, traversal, modes, hooks, state_dict and its refusals, repr."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("calls", mg.tensor(0))
        self.register_buffer("scratch", mg.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


def test_assignment_registers_parameters_buffers_and_submodules():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == [
        "scale", "fc.weight", "fc.bias", "norm.weight", "norm.bias"]
    assert [n for n, _ in block.named_buffers()] == [
        "calls", "scratch", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert [n for n, _ in block.named_modules()] == ["", "fc", "norm"]
    assert [type(m).__name__ for m in block.children()] == ["Linear", "BatchNorm1d"]
    assert block.note == "plain attribute" and "note" not in block.state_dict()


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2


def test_reassigning_and_deleting_attributes():
    block = Block()
    with pytest.raises(TypeError, match="cannot assign Tensor to 'scale'"):
        block.scale = mg.ones(4)
    block.calls = mg.tensor(5)
    assert block.state_dict()["calls"].item() == 5
    del block.scale
    assert "scale" not in dict(block.named_parameters())
    block.scale = mg.ones(4)  # now a plain attribute, as pruning's reparametrization needs
    assert "scale" not in dict(block.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        block.missing


def test_train_eval_apply_zero_grad():
    block = Block()
    assert block.eval() is block and not block.training and not block.norm.training
    block.train()
    assert block.fc.training
    visited = []
    block.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "BatchNorm1d", "Block"]  # PyTorch order: children first
    block(mg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_forward_hooks_can_read_and_replace_and_be_removed():
    layer = nn.Linear(2, 2)
    seen = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    out = layer(mg.ones(3, 2))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy(), (3, 2)))
    assert seen == [(3, 2)]
    pre.remove()
    post.remove()
    layer(mg.ones(3, 2))
    assert seen == [(3, 2)]


def test_state_dict_round_trip_gives_identical_outputs():
    mg.manual_seed(0)
    source, target = Block(), Block()
    source(mg.randn(6, 3))  # changes the running statistics
    target.load_state_dict(source.state_dict())
    x = mg.randn(4, 3)
    source.eval()
    target.eval()
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())
    assert "scratch" not in source.state_dict()


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("fc.weight"), "missing keys: fc.weight"),
    (lambda s: s.__setitem__("extra", np.zeros(1)), "unexpected keys: extra"),
    (lambda s: s.__setitem__("fc.bias", np.zeros(5)),
     r"shape mismatch for fc.bias: checkpoint has \(5,\), model has \(4,\)"),
])
def test_load_state_dict_refuses_and_changes_nothing(change, message):
    model = Block()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = {k: np.full(v.shape, 7, dtype=v.dtype) for k, v in model.state_dict().items()}
    change(state)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])


def test_non_strict_load_reports_missing_and_unexpected():
    model = nn.Linear(2, 2)
    missing, unexpected = model.load_state_dict({"weight": np.zeros((2, 2)), "other": 1},
                                                strict=False)
    assert missing == ["bias"] and unexpected == ["other"]
    assert (model.weight.numpy() == 0).all()


def test_load_keeps_parameter_identity_and_dtype():
    model = nn.Linear(2, 2)
    weight = model.weight
    model.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert model.weight is weight and weight.dtype == np.float32


def test_repr_shows_the_tree():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert repr(model) == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, "
                           "bias=True)\n  (1): ReLU()\n)")


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    layers.append(nn.ReLU())
    assert len(layers) == 3 and isinstance(layers[2], nn.ReLU)
    assert len(list(layers.parameters())) == 4
    table = nn.ModuleDict({"a": nn.Linear(1, 1)})
    table["b"] = nn.Linear(1, 2)
    assert list(table.keys()) == ["a", "b"] and "b" in table
    assert [n for n, _ in table.named_parameters()] == ["a.weight", "a.bias", "b.weight",
                                                        "b.bias"]
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    assert len(seq) == 3 and isinstance(seq[1:][0], nn.ReLU)
    assert seq(mg.ones(4, 2)).shape == (4, 1)


def test_state_dict_saved_to_disk_loads_into_a_fresh_model(tmp_path):
    from minigrad.models import LeNet5

    mg.manual_seed(0)
    model = LeNet5()
    path = str(tmp_path / "lenet.npz")
    mg.save(model.state_dict(), path)
    mg.manual_seed(1)
    fresh = LeNet5()
    x = mg.randn(3, 1, 28, 28)
    assert not np.array_equal(fresh(x).numpy(), model(x).numpy())
    fresh.load_state_dict(mg.load(path))
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_replacing_an_entry_keeps_its_place():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    model.add_module("1", nn.Tanh())
    model.set_submodule("2", nn.Linear(3, 4))
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear"]
    assert model.get_submodule("2").out_features == 4 and model.get_submodule("") is model
    layer = model[0]
    layer.weight = nn.Parameter(np.zeros((3, 2), np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    block = Block()
    block.register_buffer("calls", mg.tensor(7), persistent=False)
    assert [n for n, _ in block.named_buffers(recurse=False)] == ["calls", "scratch"]
    assert "calls" not in block.state_dict()
    block.register_module("extra", nn.ReLU())
    assert [n for n, _ in block.named_children()] == ["fc", "norm", "extra"]


def test_submodule_paths_and_errors():
    outer = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert isinstance(outer.get_submodule("0.1"), nn.ReLU)
    outer.set_submodule("0.1", nn.Sigmoid())
    assert isinstance(outer[0][1], nn.Sigmoid)
    with pytest.raises(AttributeError, match="Sequential has no submodule '5' \\(path '0.5.x'\\)"):
        outer.get_submodule("0.5.x")
    with pytest.raises(TypeError, match="'x' must be a Module or None, got int"):
        outer.add_module("x", 3)
    with pytest.raises(KeyError, match="without '.'"):
        outer.add_module("a.b", nn.ReLU())
