"""Datasets: what a DataLoader reads from.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample, usually a
tuple ``(x, y)`` of NumPy arrays or scalars. A dataset may also have ``get_batch(indices)``,
returning the whole batch at once as a tuple of arrays (one fancy-indexing call instead of
``len(indices)`` Python calls); the DataLoader uses it when it is there.

``TransformedDataset`` applies a transform to the inputs of a dataset as they are read
(random augmentation of arrays already in memory); ``Subset`` views some samples of a dataset
by index; ``random_split`` cuts a dataset into disjoint random Subsets (e.g. training and
validation sets), with ``torch.utils.data``'s rules.
"""

import math

import numpy as np

from minigrad import random as mg_random
from minigrad.tensor import Tensor


class Dataset:
    """Base class: subclasses implement ``__getitem__`` and ``__len__``, and may add
    ``get_batch(indices) -> tuple of arrays`` for fast batching."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _as_numpy(value):
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: item i is
    ``(arrays[0][i], arrays[1][i], ...)``. Accepts Tensors or anything ``np.asarray`` takes."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_numpy(t) for t in tensors)
        shapes = [a.shape for a in self.arrays]
        if any(len(shape) == 0 for shape in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(f"TensorDataset: all arrays need the same first dimension, "
                             f"got shapes {shapes}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices):
        indices = np.asarray(indices)
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order: item i is
    ``dataset[indices[i]]``. Has ``get_batch`` exactly when ``dataset`` has it, mapping batch
    indices through ``indices`` so the DataLoader keeps its one-call fast path."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if hasattr(dataset, "get_batch"):
            # An instance attribute, not a method: the DataLoader looks for get_batch with
            # getattr, and a Subset of a dataset without it must not seem to have one.
            self.get_batch = self._get_batch

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def _get_batch(self, indices):
        return self.dataset.get_batch(self.indices[np.asarray(indices)])


class TransformedDataset(Dataset):
    """``dataset`` with ``transform`` applied to the first field of every sample as it is
    read: item i is ``(transform(x_i), *rest_i)``. A random transform (``RandomShift``) thus
    gives a new view of each image every epoch. Has ``get_batch`` exactly when ``dataset``
    has it, and then transforms the whole batch in one call.

        shifted = TransformedDataset(TensorDataset(x, y), transforms.RandomShift(2))"""

    def __init__(self, dataset, transform):
        if not callable(transform):
            raise TypeError(f"TransformedDataset: transform must be callable, got "
                            f"{type(transform).__name__}")
        self.dataset, self.transform = dataset, transform
        if hasattr(dataset, "get_batch"):  # as in Subset: only when the dataset has one
            self.get_batch = self._get_batch

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, *rest = self.dataset[index]
        return (self.transform(x), *rest)

    def _get_batch(self, indices):
        x, *rest = self.dataset.get_batch(indices)
        return (self.transform(x), *rest)


def _lengths_from_fractions(fractions, n):
    """PyTorch's rule: floor(n * f) samples for each fraction f, then the remainder handed out
    one by one to the splits in order (round-robin)."""
    for i, fraction in enumerate(fractions):
        if not 0 <= fraction <= 1:
            raise ValueError(f"random_split: fraction {fraction} at index {i} of {fractions} "
                             f"is not between 0 and 1 (dataset size {n})")
    lengths = [int(math.floor(n * fraction)) for fraction in fractions]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    return lengths


def random_split(dataset, lengths, seed=None):
    """Split ``dataset`` into ``len(lengths)`` disjoint Subsets that together cover it, in a
    random order: with ``perm = default_rng(seed).permutation(len(dataset))``, split k holds
    ``perm[l_0 + ... + l_{k-1} : l_0 + ... + l_k]``.

        train, val = random_split(TensorDataset(x, y), [0.8, 0.2], seed=0)

    ``lengths``: sample counts summing to ``len(dataset)``, or fractions summing to 1 (as in
    PyTorch: floor(n * f) each, the remainder spread one by one from the first split, so 10
    samples split [0.25, 0.75] give 3 and 7). ``seed``: an int for a split of its own; None
    draws the seed from minigrad's generator, so ``minigrad.manual_seed`` makes it repeatable.
    """
    lengths, n = list(lengths), len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _lengths_from_fractions(lengths, n)
    if any(length < 0 or length != int(length) for length in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, but the "
                         f"dataset size is {n}; give non-negative counts that sum to {n}, "
                         "or fractions that sum to 1")
    if seed is None:
        seed = int(mg_random.generator().integers(2**63))
    order = np.random.default_rng(seed).permutation(n)
    ends = np.cumsum([int(length) for length in lengths], dtype=np.int64)
    return [Subset(dataset, order[end - int(length):end]) for end, length in zip(ends, lengths)]
