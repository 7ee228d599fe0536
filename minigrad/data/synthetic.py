"""Small synthetic data sets for first experiments, returned as Tensors.

    make_linear_regression   y = X w + b + noise * e,  e ~ N(0, 1)
    make_spirals             class k's points (r sin t, r cos t), r in [0, 1] and t in
                             [4k, 4k + 4], t jittered by noise * N(0, 1) (the CS231n spirals)
    make_moons               two interleaving half circles: (cos t, sin t) and
                             (1 - cos t, 0.5 - sin t), t in [0, pi], plus noise * N(0, 1)
                             on each coordinate (scikit-learn's make_moons)

Each takes ``seed``: an int gives its own generator; None draws from minigrad's global
generator, so ``minigrad.manual_seed`` makes it repeatable. Classification samples come
shuffled, so slicing off the first rows gives every class.
"""

import numpy as np

from minigrad import random as mg_random
from minigrad.tensor import Tensor


def _generator(seed):
    return mg_random.generator() if seed is None else np.random.default_rng(seed)


def _check_positive(name, **sizes):
    for key, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name}: {key} must be at least 1, got {value}")


def _shuffled_tensors(x, y, rng):
    order = rng.permutation(len(y))
    return Tensor(x[order].astype(np.float32)), Tensor(y[order].astype(np.int64))


def make_linear_regression(n=100, n_features=1, noise=0.1, seed=None):
    """Returns ``(X, y, true_w, true_b)``: X float32 (n, n_features) from N(0, 1), y float32
    (n,), the weights true_w float32 (n_features,) and the bias true_b (a float), both from
    N(0, 1)."""
    _check_positive("make_linear_regression", n=n, n_features=n_features)
    rng = _generator(seed)
    x = rng.standard_normal((n, n_features))
    true_w, true_b = rng.standard_normal(n_features), float(rng.standard_normal())
    y = x @ true_w + true_b + noise * rng.standard_normal(n)
    return (Tensor(x.astype(np.float32)), Tensor(y.astype(np.float32)),
            Tensor(true_w.astype(np.float32)), true_b)


def make_spirals(n_per_class=100, n_classes=2, noise=0.2, seed=None):
    """Returns ``(X, y)``: X float32 (n_per_class * n_classes, 2), y int64 class labels."""
    _check_positive("make_spirals", n_per_class=n_per_class, n_classes=n_classes)
    rng = _generator(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    angle = 4.0 * y + np.tile(np.linspace(0.0, 4.0, n_per_class), n_classes)
    angle += noise * rng.standard_normal(len(y))
    x = radius[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    return _shuffled_tensors(x, y, rng)


def make_moons(n=200, noise=0.1, seed=None):
    """Returns ``(X, y)``: X float32 (n, 2), y int64; n // 2 points on the upper moon (class 0),
    the rest on the lower one (class 1)."""
    _check_positive("make_moons", n=n)
    rng = _generator(seed)
    n_outer = n // 2
    t_outer, t_inner = np.linspace(0.0, np.pi, n_outer), np.linspace(0.0, np.pi, n - n_outer)
    x = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                        np.stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)])
    x += noise * rng.standard_normal(x.shape)
    y = np.repeat([0, 1], [n_outer, n - n_outer])
    return _shuffled_tensors(x, y, rng)
