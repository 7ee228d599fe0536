"""Datasets: what a DataLoader reads from.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample, usually a
tuple ``(x, y)`` of NumPy arrays or scalars. A dataset may also have ``get_batch(indices)``,
returning the whole batch at once as a tuple of arrays (one fancy-indexing call instead of
``len(indices)`` Python calls); the DataLoader uses it when it is there.
"""

import numpy as np

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
