"""Data: datasets, the DataLoader that batches them, transforms, MNIST and synthetic sets.

    from minigrad.data import MNIST, DataLoader
    loader = DataLoader(MNIST(train=True), batch_size=64, shuffle=True)
    for x, y in loader:       # x float32 (64, 1, 28, 28) in [0, 1], y int64 (64,)
        ...

Modules: ``dataset`` (Dataset, TensorDataset, TransformedDataset, Subset, random_split),
``loader`` (DataLoader, default_collate), ``transforms`` (ToTensor, ScaleToUnit, Normalize,
Compose, RandomShift), ``mnist`` (read_idx, MNIST, FashionMNIST), ``synthetic``
(make_linear_regression, make_spirals, make_moons).

A validation set cut from the training data: ``train, val = random_split(data, [0.9, 0.1])``.
"""

from minigrad.data import synthetic, transforms
from minigrad.data.dataset import (Dataset, Subset, TensorDataset, TransformedDataset,
                                   random_split)
from minigrad.data.loader import DataLoader, default_collate
from minigrad.data.mnist import MNIST, FashionMNIST, read_idx

__all__ = ["Dataset", "TensorDataset", "TransformedDataset", "Subset", "random_split",
           "DataLoader", "default_collate", "MNIST", "FashionMNIST", "read_idx", "transforms",
           "synthetic"]
