"""Transforms: functions applied to images as they are read, to one item ``(C, H, W)`` or to a
whole batch ``(B, C, H, W)`` of NumPy arrays alike.

    ScaleToUnit()          x -> x / 255             uint8 0..255 to float32 in [0, 1]
    Normalize(mean, std)   x -> (x - mean_c) / std_c  per channel c
    Compose([t1, t2])      x -> t2(t1(x))

Normalizing with the training set's mean and standard deviation gives inputs with mean 0 and
standard deviation 1, the scale that weight initialisations such as Kaiming's assume.
"""

import numpy as np


class ScaleToUnit:
    """uint8 pixels 0..255 to float32 in [0, 1]: ``x / 255``."""

    def __call__(self, x):
        if x.dtype != np.uint8:
            raise TypeError(f"ScaleToUnit expects uint8 pixels 0..255, got dtype {x.dtype} "
                            f"(already scaled?)")
        return x.astype(np.float32) / np.float32(255)

    def __repr__(self):
        return "ScaleToUnit()"


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel c: axis 0 of an item ``(C, H, W)``, axis 1 of
    a batch ``(B, C, H, W)``. One value for ``mean`` and ``std`` applies to every channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean has {len(self.mean)} values but std has "
                             f"{len(self.std)}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def __call__(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"Normalize expects an item (C, H, W) or a batch (B, C, H, W), "
                             f"got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"Normalize expects floating-point input, got dtype {x.dtype} "
                            f"(apply ScaleToUnit first)")
        channels = x.shape[-3]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"Normalize: {len(self.mean)} mean/std values for input of shape "
                             f"{x.shape} with {channels} channels")
        # Shape (C, 1, 1) lines up with the channel axis of (C, H, W) and of (B, C, H, W).
        mean, std = self.mean.reshape(-1, 1, 1), self.std.reshape(-1, 1, 1)
        return ((x - mean) / std).astype(x.dtype, copy=False)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose:
    """Apply transforms one after another, first to last."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self):
        return f"Compose({self.transforms!r})"
