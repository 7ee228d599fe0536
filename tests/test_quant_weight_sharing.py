"""minigrad.quant.weight_sharing: Deep Compression's k-means weight sharing. Lloyd's algorithm
against hand-worked examples, sorted distinct centroids that every weight equals, centroid
gradients that are the sums of their weights' gradients, fine-tuning that moves the
centroids only, pruned zeros that stay zero, and clear errors."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim, prune
from minigrad.nn import functional as F
from minigrad.nn.utils.parametrize import is_parametrized
from minigrad.quant import (centroid_param_groups, codebook, kmeans_1d, kmeans_share,
                            remove_sharing)
from minigrad.quant.weight_sharing import initial_centroids

HAND_VALUES = np.array([-1.0, -0.9, 0.1, 0.2, 0.95, 1.0])


def linear(n_in=12, n_out=5, seed=0):
    mg.manual_seed(seed)
    return nn.Linear(n_in, n_out)


def inputs(n_in=12, n=7, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)).astype(np.float32)


def sum_gradient_by_hand(x, upstream):
    """dL/dW of L = sum(upstream * (x W^T + b)) is upstream^T x."""
    return upstream.T @ x


def test_linear_init_spaces_centroids_evenly_between_min_and_max():
    np.testing.assert_allclose(initial_centroids(HAND_VALUES, 4), [-1, -1 / 3, 1 / 3, 1])
    np.testing.assert_allclose(initial_centroids(HAND_VALUES, 2), [-1, 1])


def test_lloyd_matches_the_hand_worked_examples():
    # k=2: [-1, 1] -> clusters {-1, -0.9}, {0.1, 0.2, 0.95, 1}; their means are stable.
    centroids, labels = kmeans_1d(HAND_VALUES, 2)
    np.testing.assert_allclose(centroids, [-0.95, 0.5625])
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1, 1])
    # k=4: the cluster at -1/3 starts empty and keeps its place; the others move to means.
    centroids, labels = kmeans_1d(HAND_VALUES, 4)
    np.testing.assert_allclose(centroids, [-0.95, -1 / 3, 0.15, 0.975])
    np.testing.assert_array_equal(labels, [0, 0, 2, 2, 3, 3])


def test_a_value_halfway_between_centroids_goes_to_the_lower_one():
    centroids, labels = kmeans_1d([0.0, 1.0, 2.0], 2)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_allclose(centroids, [0.5, 2.0])


def test_shared_weights_are_sorted_distinct_centroids_each_nearest_its_weight():
    layer = linear(30, 20)
    original = layer.weight.data.copy()
    kmeans_share(layer, bits=4)
    centroids, indices = codebook(layer)
    assert centroids.shape == (16,) and centroids.dtype == np.float32
    assert indices.shape == original.shape and indices.dtype == np.uint8
    assert np.all(np.diff(centroids) > 0)
    np.testing.assert_array_equal(layer.weight.data, centroids[indices])
    distance = np.abs(original[..., None] - centroids)  # to every centroid
    chosen = np.take_along_axis(distance, indices[..., None].astype(np.intp), -1)[..., 0]
    np.testing.assert_array_equal(chosen, distance.min(axis=-1))
    # Each centroid is the mean of its cluster (Lloyd has converged).
    for j in range(16):
        np.testing.assert_allclose(centroids[j], original[indices == j].mean(), rtol=1e-5)


def test_parameters_become_centroids_in_place_of_the_weight():
    layer = kmeans_share(linear(), bits=2)
    assert [name for name, _ in layer.named_parameters()] == ["weight_centroids", "bias"]
    assert list(layer.state_dict()) == ["weight_centroids", "bias", "weight_indices"]
    assert layer.weight_centroids.shape == (4,)


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    layer = kmeans_share(linear(), bits=3)
    x = inputs()
    upstream = np.random.default_rng(2).standard_normal((7, 5)).astype(np.float32)
    (layer(mg.tensor(x)) * mg.tensor(upstream)).sum().backward()
    weight_grad = sum_gradient_by_hand(x, upstream)
    _, indices = codebook(layer)
    expected = np.bincount(indices.ravel(), weights=weight_grad.ravel(), minlength=8)
    np.testing.assert_allclose(layer.weight_centroids.grad.numpy(), expected, rtol=1e-4,
                               atol=1e-5)


def test_fine_tuning_moves_the_centroids_only_and_keeps_k_values():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    for layer in (model[0], model[2]):
        kmeans_share(layer, bits=2)
    indices = [layer.weight_indices.data.copy() for layer in (model[0], model[2])]
    centroids = [layer.weight_centroids.data.copy() for layer in (model[0], model[2])]
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = mg.tensor(inputs(6, 16)), mg.tensor(np.arange(16) % 3)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model(x)  # refresh the weights from the last update
    assert losses[-1] < losses[0]
    for layer, before_indices, before_centroids in zip((model[0], model[2]), indices, centroids):
        np.testing.assert_array_equal(layer.weight_indices.data, before_indices)
        assert not np.allclose(layer.weight_centroids.data, before_centroids)
        assert len(np.unique(layer.weight.data)) == 4
        np.testing.assert_array_equal(layer.weight.data,
                                      layer.weight_centroids.data[before_indices])


def test_pruned_zeros_stay_zero_and_out_of_the_clustering():
    layer = prune.l1_unstructured(linear(20, 10), "weight", amount=0.6)
    effective = layer.weight.data.copy()
    kmeans_share(layer, bits=3)
    pruned = effective == 0
    assert pruned.sum() == 120
    np.testing.assert_array_equal(layer.weight_mask.data, (~pruned).astype(np.float32))
    expected, _ = kmeans_1d(effective[~pruned], 8)
    np.testing.assert_allclose(layer.weight_centroids.data, expected, rtol=1e-6)
    assert np.all(layer.weight.data[pruned] == 0)
    assert not prune.is_pruned(layer)  # the pruning was made permanent first

    x = inputs(20)
    upstream = np.ones((7, 10), dtype=np.float32)
    optimizer = optim.Adam(layer.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        (layer(mg.tensor(x)) * mg.tensor(upstream)).sum().backward()
        optimizer.step()
    weight_grad = sum_gradient_by_hand(x, upstream) * ~pruned
    indices = layer.weight_indices.data
    np.testing.assert_allclose(layer.weight_centroids.grad.numpy(),
                               np.bincount(indices.ravel(), weight_grad.ravel(), 8), rtol=1e-4)
    layer(mg.tensor(x))
    assert np.all(layer.weight.data[pruned] == 0)
    assert len(np.unique(layer.weight.data[~pruned])) <= 8


def test_remove_sharing_keeps_the_values_as_a_plain_parameter():
    layer = kmeans_share(linear(), bits=2)
    x = mg.tensor(inputs())
    shared_output = layer(x).numpy()
    remove_sharing(layer)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert not is_parametrized(layer)
    np.testing.assert_array_equal(layer(x).numpy(), shared_output)
    assert len(np.unique(layer.weight.data)) == 4


def test_state_dict_round_trip_into_a_shared_model():
    source = kmeans_share(linear(seed=0), bits=2)
    target = kmeans_share(linear(seed=5), bits=2)
    target.load_state_dict(source.state_dict())
    x = mg.tensor(inputs())
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())


def test_conv2d_sharing_runs_the_convolution_with_shared_weights():
    mg.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3)
    kmeans_share(conv, bits=3)
    x = mg.randn(2, 2, 5, 5)
    centroids, indices = codebook(conv)
    expected = F.conv2d(x, mg.tensor(centroids[indices]), conv.bias)
    # The hook's weight holds exactly these values and conv2d runs on the same shapes, with
    # the same kernels: the very same computation, so bit-exact.
    np.testing.assert_array_equal(conv(x).numpy(), expected.numpy())


def test_density_and_random_initializations_are_sorted_and_distinct():
    values = np.random.default_rng(0).standard_normal(200)
    density = initial_centroids(values, 8, "density")
    assert np.all(np.diff(density) > 0)
    np.testing.assert_allclose(density[[0, -1]], [values.min(), values.max()])
    mg.manual_seed(3)
    first = initial_centroids(values, 8, "random")
    mg.manual_seed(3)
    np.testing.assert_array_equal(initial_centroids(values, 8, "random"), first)
    assert np.all(np.diff(first) > 0) and np.all(np.isin(first, values))
    centroids, _ = kmeans_1d(values, 8, "density")
    assert np.all(np.diff(centroids) > 0)


@pytest.mark.parametrize("bits", [0, 17, 2.5, True, "4"])
def test_bad_bits_are_refused(bits):
    with pytest.raises(ValueError, match="bits must be an integer in 1..16"):
        kmeans_share(linear(), bits=bits)


def test_clear_errors():
    with pytest.raises(ValueError, match="init must be one of"):
        kmeans_share(linear(), init="forgy")
    with pytest.raises(ValueError, match="no parameter 'weights'"):
        kmeans_share(linear(), "weights")
    layer = kmeans_share(linear(), bits=2)
    with pytest.raises(ValueError, match="already stored as kmeans"):
        kmeans_share(layer, bits=2)
    with pytest.raises(ValueError, match="is a plain tensor, not kmeans"):
        remove_sharing(linear())
    with pytest.raises(ValueError, match="needs at least 16 distinct"):
        kmeans_1d([0.1, 0.2, 0.3], 16, "random")
    constant = nn.Linear(3, 2)
    constant.weight.data[...] = 0.5
    with pytest.raises(ValueError, match="needs at least 2 distinct"):
        kmeans_share(constant, bits=1)
    with pytest.raises(ValueError, match="is not shared"):
        codebook(linear())


def test_centroid_groups_scale_the_step_to_the_mean_gradient_of_a_cluster():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 5))
    prune.l1_unstructured(model[0], "weight", amount=0.75)  # 300 of 1,200 weights kept
    prune.remove(model[0], "weight")
    kmeans_share(model[0], bits=3)
    with pytest.raises(ValueError, match="no layer of the model is k-means shared"):
        centroid_param_groups(nn.Linear(3, 2), 0.1)
    groups = centroid_param_groups(model, 0.1)
    assert groups[0]["params"] == [model[0].weight_centroids]
    assert groups[0]["lr"] == pytest.approx(0.1 * 8 / 300)
    rest = {id(p) for p in groups[1]["params"]}
    assert rest == {id(model[0].bias), id(model[2].weight), id(model[2].bias)}
    assert len(groups) == 2 and "lr" not in groups[1]
