"""nn.utils.parametrize: a tensor computed from stored ones. Gradients reach the stored
original (against PyTorch too), cached() computes once, remove_parametrizations with
leave_parametrized True and False, state_dict round trips, storage_bytes of every kind
(pruning mask, k-means, binary, ternary, power of two, float16), and errors that name the
module and the tensor."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, prune, quant
from minigrad.nn.utils.parametrize import (Parametrization, cached, is_parametrized,
                                           register_parametrization, remove_parametrizations)
from minigrad.prune.reparam import PruningMask
from minigrad.quant.low_bit import (BinaryWeight, Float16Weight, PowerOfTwoWeight,
                                    TernaryWeight)
from minigrad.quant.weight_sharing import KMeansSharing

WEIGHT = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]], dtype=np.float32)
UPSTREAM = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)


class Square(Parametrization):
    """weight = orig * orig, counting its calls."""

    def __init__(self):
        self.calls = 0

    def forward(self, orig):
        self.calls += 1
        return orig * orig


class Masked(Parametrization):
    """weight = orig * mask, with a mask buffer stored next to the original."""

    def __init__(self, mask):
        self.mask = mask

    def right_inverse(self, tensor):
        return {"orig": tensor, "mask": mg.tensor(self.mask)}

    def forward(self, orig, mask):
        return orig * mask


class Transposed(Parametrization):
    def forward(self, orig):
        return orig.transpose(1, 0)


def linear():
    layer = nn.Linear(3, 2)
    layer.weight.data[...] = WEIGHT
    layer.bias.data[...] = [0.1, -0.2]
    return layer


def backward(layer):
    (layer(mg.tensor(X)) * mg.tensor(UPSTREAM)).sum().backward()


# --------------------------------------------------------------------------- registering
def test_the_original_is_stored_in_place_and_the_weight_computed_from_it():
    layer = linear()
    weight = layer.weight
    register_parametrization(layer, "weight", Square())
    assert layer.weight_orig is weight  # the same object: an optimizer keeps training it
    assert [n for n, _ in layer.named_parameters()] == ["weight_orig", "bias"]
    assert list(layer.state_dict()) == ["weight_orig", "bias"]
    np.testing.assert_array_equal(layer.weight.numpy(), WEIGHT**2)
    weight.data[0, 0] = 3.0  # never stale: computed at every access
    assert layer.weight.numpy()[0, 0] == 9.0
    assert is_parametrized(layer) and is_parametrized(layer, "weight")
    assert not is_parametrized(layer, "bias") and not is_parametrized(nn.Linear(2, 2))


def test_gradient_flows_to_the_original():
    layer = register_parametrization(linear(), "weight", Square())
    backward(layer)
    # dL/dW = UPSTREAM^T X and W = orig^2, so dL/dorig = 2 orig * UPSTREAM^T X.
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), 2 * WEIGHT * (UPSTREAM.T @ X),
                               rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.numpy(), UPSTREAM.sum(axis=0))


def torch_square_parametrized(torch):
    """A PyTorch Linear(3, 2) like ``linear()`` whose weight is parametrized as
    original * original (torch.nn.utils.parametrize)."""
    from torch.nn.utils import parametrize as torch_parametrize

    class TorchSquare(torch.nn.Module):
        def forward(self, x):
            return x * x

    theirs = torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(WEIGHT))
        theirs.bias.copy_(torch.tensor([0.1, -0.2]))
    return torch_parametrize.register_parametrization(theirs, "weight", TorchSquare())


def torch_parametrize_results(torch):
    """PyTorch's numbers for ``torch_square_parametrized``: the weight (``weight``), the
    gradient of the original for the loss of ``backward`` (``orig_grad``), and the weight that
    remove_parametrizations leaves (``removed_leave=<leave_parametrized>``)."""
    from torch.nn.utils import parametrize as torch_parametrize

    theirs = torch_square_parametrized(torch)
    (theirs(torch.tensor(X)) * torch.tensor(UPSTREAM)).sum().backward()
    results = {"weight": theirs.weight, "orig_grad": theirs.parametrizations.weight.original.grad}
    for leave in (True, False):
        other = torch_square_parametrized(torch)
        torch_parametrize.remove_parametrizations(other, "weight", leave_parametrized=leave)
        results[f"removed_leave={leave}"] = other.weight
    return results


def test_values_gradients_and_removal_match_torch(torch_reference):
    expected = torch_reference("square", torch_parametrize_results)
    ours = register_parametrization(linear(), "weight", Square())
    backward(ours)
    np.testing.assert_allclose(ours.weight.numpy(), expected["weight"])
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), expected["orig_grad"], rtol=1e-6)
    for leave in (True, False):
        mine = register_parametrization(linear(), "weight", Square())
        remove_parametrizations(mine, "weight", leave_parametrized=leave)
        np.testing.assert_allclose(mine.weight.numpy(), expected[f"removed_leave={leave}"])
        assert isinstance(mine.weight, nn.Parameter)


def test_a_module_with_forward_can_be_the_parametrization():
    class Doubled(nn.Module):
        def forward(self, orig):
            return orig * 2

    layer = register_parametrization(linear(), "weight", Doubled())
    np.testing.assert_array_equal(layer.weight.numpy(), 2 * WEIGHT)
    # Without storage_bytes, what it stores is counted as it is: weight_orig's 6 floats.
    assert quant.model_size(layer).rows[0].bytes["weight"] == 24


def test_a_buffer_can_be_parametrized_and_stays_a_buffer():
    bn = nn.BatchNorm1d(3)
    register_parametrization(bn, "running_var", Square())
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var_orig",
                                                  "num_batches_tracked"]
    bn.running_var_orig.data[...] = 3.0
    np.testing.assert_array_equal(bn.running_var.numpy(), [9.0, 9.0, 9.0])
    remove_parametrizations(bn, "running_var")
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    assert not isinstance(bn.running_var, nn.Parameter) and bn.running_var.numpy()[0] == 9.0


# --------------------------------------------------------------------------- cached
def test_cached_computes_each_tensor_once():
    square = Square()
    layer = register_parametrization(linear(), "weight", square)
    square.calls = 0
    for _ in range(3):
        layer.weight
    assert square.calls == 3
    with cached():
        first = layer.weight
        assert layer.weight is first and layer(mg.tensor(X)) is not None
        with cached():  # nested: the same cache
            assert layer.weight is first
        assert square.calls == 4
        layer.weight_orig.data[...] = 1.0  # not seen inside the block
        np.testing.assert_array_equal(layer.weight.numpy(), WEIGHT**2)
    assert square.calls == 4
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones((2, 3)))  # cache cleared
    assert square.calls == 5


def test_a_weight_read_twice_in_cached_is_one_graph_node():
    square = Square()
    layer = register_parametrization(linear(), "weight", square)
    with cached():
        (layer.weight + layer.weight).sum().backward()
    assert square.calls == 2  # one at registration (the shape check), one in the block
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), 2 * 2 * WEIGHT)


# --------------------------------------------------------------------------- removing
def test_remove_leaving_the_parametrized_value_keeps_the_same_parameter():
    layer = linear()
    weight = layer.weight
    register_parametrization(layer, "weight", Masked(np.array([[1, 0, 1], [0, 1, 1]], "f4")))
    assert list(layer.state_dict()) == ["weight_orig", "bias", "weight_mask"]
    remove_parametrizations(layer, "weight", leave_parametrized=True)
    assert layer.weight is weight and not is_parametrized(layer)
    assert list(layer.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.numpy(), WEIGHT * [[1, 0, 1], [0, 1, 1]])


def test_remove_without_leaving_it_gives_back_the_original():
    layer = register_parametrization(linear(), "weight", Masked(np.zeros((2, 3), "f4")))
    remove_parametrizations(layer, "weight", leave_parametrized=False)
    np.testing.assert_array_equal(layer.weight.numpy(), WEIGHT)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_remove_without_an_original_is_refused_and_changes_nothing():
    layer = quant.kmeans_share(linear(), bits=1)
    with pytest.raises(ValueError, match="'weight' of Linear is stored as weight_centroids, "
                                         "weight_indices, none of which is the original"):
        remove_parametrizations(layer, "weight", leave_parametrized=False)
    assert list(layer.state_dict()) == ["weight_centroids", "bias", "weight_indices"]
    remove_parametrizations(layer, "weight")  # the computed value: a new Parameter
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert len(np.unique(layer.weight.numpy())) == 2


# --------------------------------------------------------------------------- state_dict
def test_state_dict_round_trip_into_a_parametrized_module(tmp_path):
    mask = np.array([[1, 1, 0], [0, 1, 1]], "f4")
    source = register_parametrization(linear(), "weight", Masked(mask))
    source.weight_orig.data *= 2
    mg.save(source.state_dict(), tmp_path / "state.npz")
    mg.manual_seed(3)
    target = register_parametrization(nn.Linear(3, 2), "weight", Masked(np.ones((2, 3), "f4")))
    target.load_state_dict(mg.load(tmp_path / "state.npz"))
    np.testing.assert_array_equal(target.weight_mask.numpy(), mask)
    np.testing.assert_array_equal(target.weight.numpy(), 2 * WEIGHT * mask)  # no forward yet
    np.testing.assert_array_equal(target(mg.tensor(X)).numpy(), source(mg.tensor(X)).numpy())
    with pytest.raises(ValueError, match="missing keys: weight_mask$"):
        target.load_state_dict({"weight_orig": WEIGHT, "bias": np.zeros(2, "f4")})


# --------------------------------------------------------------------------- storage bytes
def model_bytes(module, name="weight"):
    """The nonzero entries of ``storage_bytes`` of ``module.<name>``'s parametrization."""
    entry = module.parametrizations[name]
    counts = entry.parametrization.storage_bytes(*entry.stored_tensors(module))
    return {key: value for key, value in counts.items() if value}


def layer_60():
    """Linear(10, 6): 60 weights, 240 bytes in float32, no zeros."""
    mg.manual_seed(0)
    layer = nn.Linear(10, 6)
    layer.weight.data[...] = ((np.arange(60) - 29.5) / 30).reshape(6, 10)
    return layer


@pytest.mark.parametrize("parametrize, expected", [
    (lambda m: register_parametrization(m, "weight", PruningMask()), {"values": 240}),
    (lambda m: prune.l1_unstructured(m, "weight", 0.5), {"values": 240}),  # dense with zeros
    (lambda m: register_parametrization(m, "weight", KMeansSharing(bits=2)),
     {"values": 15, "codebook": 16}),  # 60 x 2 bits; 4 float32 centroids
    (lambda m: quant.kmeans_share(prune.l1_unstructured(m, "weight", 0.5), bits=3),
     {"values": 23, "codebook": 32, "other": 8}),  # ceil(180 / 8); 8 centroids; bitmap
    (lambda m: register_parametrization(m, "weight", BinaryWeight()), {"values": 8, "scale": 4}),
    (lambda m: register_parametrization(m, "weight", BinaryWeight(scaled=False)),
     {"values": 8}),
    (lambda m: register_parametrization(m, "weight", TernaryWeight()),
     {"values": 15, "scale": 4}),
    (lambda m: register_parametrization(m, "weight", PowerOfTwoWeight(bits=3)),
     {"values": 23, "scale": 1}),  # ceil(60 * 3 / 8), the exponent p_max
    (lambda m: register_parametrization(m, "weight", Float16Weight()), {"values": 120}),
    (lambda m: register_parametrization(m, "weight", Square()), {"values": 240}),  # default
], ids=["mask", "pruned", "kmeans", "kmeans_pruned", "binary", "binary_unscaled", "ternary",
        "power_of_two", "float16", "default"])
def test_storage_bytes_of_every_kind(parametrize, expected):
    layer = layer_60()
    parametrize(layer)
    assert model_bytes(layer) == expected
    size = quant.model_size(layer)  # the accounting sums exactly these, plus the bias
    assert size.rows[0].bytes == {**dict.fromkeys(quant.accounting.CATEGORIES, 0), "bias": 24,
                                  **{"weight" if k == "values" else k: v
                                     for k, v in expected.items()}}


# --------------------------------------------------------------------------- errors
def unchanged(layer):
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert not is_parametrized(layer) and list(layer.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.numpy(), WEIGHT)


def test_a_shape_changing_parametrization_is_refused_unless_unsafe():
    layer = linear()
    with pytest.raises(ValueError, match=r"register_parametrization: Transposed makes 'weight' "
                                         r"of Linear of shape \(3, 2\) and dtype float32, but "
                                         r"it has shape \(2, 3\) and dtype float32 \(pass "
                                         r"unsafe=True"):
        register_parametrization(layer, "weight", Transposed())
    unchanged(layer)
    register_parametrization(layer, "weight", Transposed(), unsafe=True)
    assert layer.weight.shape == (3, 2)


def test_clear_errors_name_the_module_and_the_tensor():
    layer = linear()
    with pytest.raises(ValueError, match="Linear has no parameter or buffer 'wieght' "
                                         r"\(it has: weight, bias\)"):
        register_parametrization(layer, "wieght", Square())
    with pytest.raises(ValueError, match="remove_parametrizations: 'weight' of Linear is not "
                                         r"parametrized \(its parametrized tensors: none\)"):
        remove_parametrizations(layer, "weight")

    class ReturnsArray(Parametrization):
        def forward(self, orig):
            return orig.numpy()

    with pytest.raises(TypeError, match="ReturnsArray returns ndarray for 'weight' of Linear"):
        register_parametrization(layer, "weight", ReturnsArray())
    layer.weight_orig = 1.0  # a plain attribute in the way of what would be stored
    with pytest.raises(ValueError, match="Linear already has an attribute 'weight_orig', which "
                                         "parametrizing 'weight' needs"):
        register_parametrization(layer, "weight", Square())
    del layer.weight_orig
    unchanged(layer)

    register_parametrization(layer, "weight", Square())
    with pytest.raises(ValueError, match="'weight' of Linear is already parametrized by Square"):
        register_parametrization(layer, "weight", Square())
    with pytest.raises(AttributeError, match=r"cannot assign to 'weight' of Linear: it is "
                                             r"parametrized \(computed from weight_orig\)"):
        layer.weight = nn.Parameter(WEIGHT)
    with pytest.raises(AttributeError, match="cannot delete 'weight' of Linear"):
        del layer.weight
    with pytest.raises(AttributeError, match="cannot replace 'weight' of Linear"):
        layer.register_buffer("weight", mg.tensor(WEIGHT))
