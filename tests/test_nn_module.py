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


# ----------------------------------------------------------------- PyTorch's Module methods
def tree():
    """Block's tensors, nested one level deeper: a Sequential holding a Block and a Linear."""
    return nn.Sequential(Block(), nn.Linear(4, 2))


def test_traversal_parameters_buffers_children_modules():
    model = tree()
    assert [n for n, _ in model.named_children()] == ["0", "1"]
    assert [type(m).__name__ for m in model.children()] == ["Block", "Linear"]
    assert [type(m).__name__ for m in model.modules()] == [
        "Sequential", "Block", "Linear", "BatchNorm1d", "Linear"]  # depth first, as PyTorch
    assert len(list(model.parameters())) == 7 and list(model.parameters(recurse=False)) == []
    assert list(model[1].parameters(recurse=False)) == [model[1].weight, model[1].bias]
    assert [b.shape for b in model.buffers()] == [(), (2,), (4,), (4,), ()]
    assert list(model.buffers(recurse=False)) == []


def test_requires_grad_freezes_and_unfreezes_every_parameter_and_returns_self():
    model = tree()
    assert model[0].requires_grad_(False) is model[0]
    assert [p.requires_grad for p in model.parameters()] == [False] * 5 + [True] * 2
    model(mg.randn(5, 3)).sum().backward()
    assert [p.grad is None for p in model.parameters()] == [True] * 5 + [False] * 2
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_zero_grad_to_none_or_to_zeros():
    layer = nn.Linear(3, 2)
    layer(mg.randn(4, 3)).sum().backward()
    grad = layer.weight.grad
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is grad and np.all(grad.numpy() == 0)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def dtypes(model):
    return [str(t.dtype).removeprefix("torch.") for t in model.state_dict().values()]


@pytest.mark.parametrize("convert", ["half", "double", "float", "type-float64", "type-int32",
                                     "to-float64", "to-float16"])
def test_dtype_conversions_follow_torch(convert, torch_reference):
    def apply(lib, model):
        name, _, dtype = convert.partition("-")
        if name == "type":  # every tensor, integer buffers included: freeze for an int type
            return model.requires_grad_(dtype.startswith("float")).type(getattr(lib, dtype))
        return getattr(model, name)(*([getattr(lib, dtype)] if dtype else []))

    def torch_dtypes(torch):
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        assert apply(torch, model) is model
        return {"dtypes": np.array(dtypes(model))}

    expected = torch_reference(convert, torch_dtypes)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    weight = model[0].weight
    assert apply(np, model) is model
    assert dtypes(model) == expected["dtypes"].tolist()
    assert model[0].weight is weight  # in place: an optimizer keeps the same Parameters


def test_casting_casts_gradients_and_keeps_training_with_the_same_optimizer():
    model = nn.Linear(3, 2)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    model(mg.randn(4, 3)).sum().backward()
    model.double()
    assert model.weight.grad.dtype == np.float64
    opt.step()
    assert model.weight.dtype == np.float64
    out = model(mg.randn(4, 3, dtype=np.float64))
    assert out.dtype == np.float64
    before = model.weight.numpy().copy()
    opt.zero_grad()
    out.sum().backward()
    opt.step()
    assert not np.array_equal(model.weight.numpy(), before)


def test_to_takes_a_device_a_dtype_both_or_a_tensor():
    model = nn.Linear(2, 2)
    assert model.to("cpu") is model and model.weight.device == "cpu"
    model.to("cpu", np.float64)
    assert model.weight.dtype == np.float64
    model.to(dtype=np.float16, device="cpu", non_blocking=True)
    assert model.bias.dtype == np.float16
    model.to(mg.zeros(1))
    assert model.weight.dtype == np.float32 and model.cpu() is model
    with pytest.raises(TypeError, match="Module.to only accepts floating-point dtypes, got int64"):
        model.to(np.int64)
    with pytest.raises(ValueError, match="unknown device .gpu."):
        model.to("gpu")
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['memory'\]"):
        model.to(memory="x")
    with pytest.raises(TypeError, match="parameter 'weight' requires grad"):
        model.type(np.int64)
    assert model.weight.dtype == np.float32  # refused before anything changed
