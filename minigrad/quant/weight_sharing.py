"""k-means weight sharing, the "trained quantization" of Deep Compression (Han, Mao & Dally
2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization
and Huffman Coding", section 3).

The n weights of one layer are clustered into k = 2^bits clusters (one codebook per layer);
every weight is then replaced by the centroid of its cluster, so the layer stores an index of
``bits`` bits per weight plus the k float32 centroids:

    compression = 32 n / (n bits + 32 k)       (n = 10,000 and bits = 4: 7.9x)

Clustering is Lloyd's algorithm in one dimension, minimising the within-cluster sum of squares
sum_j sum_{w in C_j} (w - c_j)^2:

    assign:  C_j = {w : c_j is the nearest centroid}      (a tie goes to the lower centroid)
    update:  c_j = mean(C_j)                              (an empty cluster keeps c_j)

repeated until no weight changes cluster (deterministic: no random restarts). In 1-D with
sorted centroids the clusters are intervals between the midpoints (c_j + c_{j+1}) / 2, and
each new centroid stays inside its interval, so the centroids stay sorted and distinct.

Initialization matters (Han et al., figure 4 and table 7). ``init="linear"`` spaces the k
centroids evenly between the smallest and the largest weight: unlike random (Forgy) or
density-based initialization it keeps centroids out in the tails, where the few large
weights, which matter most, live; the paper found it the most accurate. ``"density"`` spaces
them evenly in the weights' cumulative distribution (quantiles) and ``"random"`` picks k
distinct weights with ``minigrad.random``'s generator.

Fine-tuning the centroids. After ``kmeans_share`` the weight is computed at every access (a
parametrization, ``KMeansSharing``) as ``weight = weight_centroids[weight_indices]``: a
gather (``getitem`` with an integer array), whose backward *adds* the gradients of all
positions that read the same element. So

    dL/dc_j = sum over the weights w_i in cluster j of dL/dw_i

which is exactly the update of Han et al. (figure 3: gradients grouped by cluster and summed).
Any optimizer then trains the k centroids only; the indices are a buffer and never change, so
the layer keeps at most k distinct weight values.

Pruned weights (Deep Compression prunes first): a tensor pruned with ``minigrad.prune`` has
its pruning made permanent, and its zero entries stay out of the clustering. They get index 0
and a buffer ``weight_mask`` of 0s and 1s, so ``weight = weight_centroids[weight_indices] *
weight_mask``: they stay exactly 0 and send no gradient to any centroid. (An unpruned weight
with exact zeros is treated the same way: zero entries are "pruned".)

Storage (``storage_bytes``, used by ``accounting.model_size``): the indices bit-packed,
ceil(n bits / 8) bytes; the codebook, k centroids at 4 bytes; a bitmap of the pruned entries,
ceil(n / 8) bytes, when some are. That is the simple dense layout ``model_size`` reports;
Deep Compression's own storage (the nonzeros only, at relative indices, both streams
Huffman-coded) is ``minigrad.compress``, whose byte counts are smaller.
"""

import math

import numpy as np

from minigrad import backend
from minigrad.nn.module import Parameter
from minigrad.nn.utils.parametrize import Parametrization
from minigrad.quant.low_bit import check_bit_width
from minigrad.quant.qparams import check_finite
from minigrad.quant.weight_reparam import remove_format, store_as
from minigrad.random import generator
from minigrad.tensor import Tensor

INITS = ("linear", "density", "random")
MIN_BITS, MAX_BITS = 1, 16
MAX_ITERATIONS = 1000  # Lloyd converges in far fewer; this only guards float round-off cycles


def initial_centroids(values, k, init="linear"):
    """k sorted, distinct starting centroids for the 1-D array ``values`` (float64).

    "linear" and "density" need two distinct values at least (k may exceed their number:
    the extra clusters start empty); "random" picks k distinct values, so needs k of them."""
    if init not in INITS:
        raise ValueError(f"kmeans: init must be one of {INITS}, got {init!r}")
    distinct = np.unique(values)
    needed = k if init == "random" else 2
    if len(distinct) < needed:
        raise ValueError(f"kmeans: init={init!r} with {k} clusters needs at least {needed} "
                         f"distinct (nonzero) weights, got {len(distinct)}")
    if init == "linear":
        return np.linspace(distinct[0], distinct[-1], k)
    if init == "density":  # interpolating strictly increasing values: strictly increasing
        return np.quantile(distinct, np.linspace(0, 1, k))
    return np.sort(generator().choice(distinct, size=k, replace=False))


def assign_clusters(values, centroids):
    """The index of the nearest of the sorted ``centroids`` for each value; a value exactly
    halfway goes to the lower one."""
    midpoints = (centroids[:-1] + centroids[1:]) / 2
    return np.searchsorted(midpoints, values, side="left")


def kmeans_1d(values, k, init="linear", max_iterations=MAX_ITERATIONS):
    """Lloyd's algorithm on the 1-D array ``values``: (centroids, labels), float64 centroids
    sorted ascending, ``labels[i]`` the cluster of ``values[i]``. Stops when no label
    changes. NaN or inf in ``values`` raise ValueError."""
    values = check_finite(np.asarray(values, dtype=np.float64).ravel(), "the input", "kmeans_1d")
    centroids = initial_centroids(values, k, init)
    labels = assign_clusters(values, centroids)
    for _ in range(max_iterations):
        counts = np.bincount(labels, minlength=k)
        sums = np.bincount(labels, weights=values, minlength=k)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        new_labels = assign_clusters(values, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels


class KMeansSharing(Parametrization):
    """``weight = weight_centroids[weight_indices]`` (times ``weight_mask`` when some entries
    are pruned); ``right_inverse`` runs the clustering."""

    kind = "kmeans"

    def __init__(self, bits, init="linear"):
        self.bits, self.init = bits, init

    def right_inverse(self, weight):
        """{"centroids": Parameter (k,), "indices": the weight's shape, ["mask"]}: the zero
        (pruned) weights stay out of the clustering, with index 0 and mask 0."""
        values = backend.to_device(weight.data, "cpu")
        kept = values != 0
        centroids, labels = kmeans_1d(values[kept], 2**self.bits, self.init)
        indices = np.zeros(values.shape, dtype=index_dtype(self.bits))
        indices[kept] = labels

        def on_device(array):
            return Tensor(backend.to_device(array, weight.device))

        stored = {"centroids": Parameter(on_device(centroids.astype(values.dtype))),
                  "indices": on_device(indices)}
        if not kept.all():
            stored["mask"] = on_device(kept.astype(values.dtype))
        return stored

    def forward(self, centroids, indices, mask=None):
        weight = centroids[indices]
        return weight if mask is None else weight * mask

    def storage_bytes(self, centroids, indices, mask=None):
        n = indices.data.size
        return {"values": math.ceil(n * self.bits / 8),
                "codebook": int(centroids.data.nbytes),
                "other": 0 if mask is None else math.ceil(n / 8)}


def index_dtype(bits):
    return np.uint8 if bits <= 8 else np.uint16


def kmeans_share(module, name="weight", bits=4, init="linear"):
    """Share the weights of ``module.<name>`` among k = 2^bits centroids (Deep Compression).

    Adds the Parameter ``<name>_centroids`` (k,), sorted, and the buffer ``<name>_indices``
    (the weight's shape, uint8 up to 8 bits); zero (pruned) weights stay 0, out of the
    clustering, with a buffer ``<name>_mask``. ``module.<name>`` becomes
    ``centroids[indices]``, computed at every access, so training updates the centroids
    by the summed gradients of their weights. The old Parameter is gone: build the optimizer
    for fine-tuning after this call. Returns ``module``; NaN or inf in the weight raise
    ValueError (nothing is changed).
    """
    bits = check_bit_width(bits, MIN_BITS, MAX_BITS, "kmeans_share", "k = 2^bits clusters")
    return store_as(module, name, KMeansSharing(bits, init), "kmeans_share")


def remove_sharing(module, name="weight"):
    """Make the sharing of ``module.<name>`` permanent: a plain Parameter again, holding
    ``centroids[indices]`` (training then moves each weight on its own). ValueError when
    the tensor is not shared. Returns ``module``."""
    return remove_format(module, name, (KMeansSharing.kind,), "remove_sharing")


def shared_tensors(module, name="weight", caller="shared_tensors"):
    """{"centroids", "indices" and, with pruned entries, "mask": Tensor} of the k-means shared
    ``module.<name>``; ValueError when it is not shared."""
    entry = module.parametrizations.get(name)
    if entry is None or not isinstance(entry.parametrization, KMeansSharing):
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is not shared")
    return {stored[len(name) + 1:]: tensor
            for stored, tensor in zip(entry.stored, entry.stored_tensors(module))}


def codebook(module, name="weight"):
    """(centroids, indices) of the shared ``module.<name>`` as NumPy arrays."""
    shared = shared_tensors(module, name, "codebook")
    return (backend.to_device(shared["centroids"].data, "cpu"),
            backend.to_device(shared["indices"].data, "cpu"))


def shared_modules(model):
    """(name, module, KMeansSharing) for every module of ``model`` whose weight is k-means
    shared."""
    for name, module in model.named_modules():
        entry = module.parametrizations.get("weight")
        if entry is not None and isinstance(entry.parametrization, KMeansSharing):
            yield name, module, entry.parametrization


def centroid_param_groups(model, centroid_lr):
    """Optimizer parameter groups for fine-tuning a k-means-shared ``model``.

    A centroid's gradient is the sum of its cluster's weight gradients: thousands of them in
    a large Linear, a handful in a small convolution, so one learning rate for all would be
    too large for one layer or too small for another. Each shared tensor's centroids get
    ``centroid_lr * k / n`` (k centroids, n shared weights, the pruned zeros not counted): a
    step of ``centroid_lr`` times the cluster's *mean* gradient (for clusters of equal size).
    Every other parameter (biases, unshared layers) goes in a last group at the optimizer's
    own learning rate."""
    groups, shared = [], set()
    for _, module, _ in shared_modules(model):
        tensors = shared_tensors(module)
        centroids, mask = tensors["centroids"], tensors.get("mask")
        n = tensors["indices"].numel() if mask is None else int(mask.data.sum())
        groups.append({"params": [centroids], "lr": centroid_lr * centroids.numel()
                       / max(n, 1)})
        shared.add(id(centroids))
    if not groups:
        raise ValueError("centroid_param_groups: no layer of the model is k-means shared")
    rest = [p for p in model.parameters() if id(p) not in shared]
    return groups + ([{"params": rest}] if rest else [])
