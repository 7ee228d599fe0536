"""Transforms: functions applied to images as they are read, to one item ``(C, H, W)`` or to a
whole batch ``(B, C, H, W)`` of NumPy arrays alike (``ToTensor`` takes one image).

    ToTensor()             torchvision's: an image (H, W), (H, W, C) or (C, H, W) to (C, H, W),
                           uint8 0..255 to float32 in [0, 1]
    ScaleToUnit()          x -> x / 255             uint8 0..255 to float32 in [0, 1]
    Normalize(mean, std)   x -> (x - mean_c) / std_c  per channel c
    Compose([t1, t2])      x -> t2(t1(x))
    RandomShift(s, fill)   x[h, w] -> x[h - dy, w - dx], (dy, dx) uniform in [-s, s]^2, the
                           uncovered border set to ``fill`` (torchvision: RandomCrop(size,
                           padding=s, fill=fill))

Normalizing with the training set's mean and standard deviation gives inputs with mean 0 and
standard deviation 1, the scale that weight initialisations such as Kaiming's assume.

As in torchvision, a dataset hands its raw image (MNIST: uint8, 28 x 28) to a user's transform,
so a pipeline starts with ``ToTensor()``, e.g. ``Compose([ToTensor(), Normalize((0.1307,),
(0.3081,))])``. Every transform returns a NumPy array, not a Tensor: the DataLoader makes the
Tensors when it stacks a batch.
"""

import numpy as np

from minigrad import random as mg_random


def _check_item_or_batch(name, x):
    """The image transforms take one item (C, H, W) or a batch (B, C, H, W)."""
    if x.ndim not in (3, 4):
        hint = " (an image (H, W)? start with ToTensor())" if x.ndim == 2 else ""
        raise ValueError(f"{name} expects an item (C, H, W) or a batch (B, C, H, W), got shape "
                         f"{x.shape}{hint}")


CHANNEL_COUNTS = (1, 3, 4)  # gray, RGB, RGBA: the sizes a channel axis of an image has


class ToTensor:
    """One image to channels-first ``(C, H, W)``, as torchvision's ``ToTensor``: uint8 pixels
    0..255 become float32 in [0, 1] (x / 255); any other dtype keeps its values and dtype, only
    the layout changes (torchvision's rule too).

    Layouts: ``(H, W)`` (grayscale, such as MNIST's raw images) gives ``(1, H, W)``;
    ``(H, W, C)``, torchvision's reading of a 3-d array, gives ``(C, H, W)``. An array already
    ``(C, H, W)`` is kept as it is, recognised when its first axis has 1, 3 or 4 entries and its
    last has not, so ``(1, 28, 28)`` stays ``(1, 28, 28)`` where torchvision would read it as
    a 28 x 1 image of 28 channels."""

    def __call__(self, image):
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[None]
        elif image.ndim != 3:
            raise ValueError(f"ToTensor expects one image (H, W), (H, W, C) or (C, H, W), got "
                             f"shape {image.shape} (a batch? apply it to each image)")
        elif not (image.shape[0] in CHANNEL_COUNTS and image.shape[-1] not in CHANNEL_COUNTS):
            image = image.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        image = np.ascontiguousarray(image)
        if image.dtype == np.uint8:
            return image.astype(np.float32) / np.float32(255)
        return image

    def __repr__(self):
        return "ToTensor()"


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
        _check_item_or_batch("Normalize", x)
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


class RandomShift:
    """Move each image by a random whole number of pixels (dy, dx), each uniform in
    [-max_shift, max_shift]: ``out[h, w] = x[h - dy, w - dx]``, and ``fill`` where that falls
    outside the image. Every image of a batch gets its own shift, all channels the same one.

    It is torchvision's ``RandomCrop(size, padding=max_shift, fill=fill)``: pad by
    ``max_shift`` on every side, then cut a window of the original size at a random offset.
    The "jittered" digits of Hinton et al. (2015) are shifts of up to 2 pixels. ``fill`` is
    the background value, 0 for raw pixels but ``(0 - mean) / std`` after Normalize.
    ``seed``: an own generator, so the shifts repeat from run to run; None draws from
    minigrad's global generator (``minigrad.manual_seed``)."""

    def __init__(self, max_shift, fill=0.0, seed=None):
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) \
                or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an int >= 0, got {max_shift!r}")
        self.max_shift, self.fill = int(max_shift), float(fill)
        self.rng = None if seed is None else np.random.default_rng(seed)

    def __call__(self, x):
        _check_item_or_batch("RandomShift", x)
        batch = x if x.ndim == 4 else x[None]
        n, _, height, width = batch.shape
        s = self.max_shift
        rng = mg_random.generator() if self.rng is None else self.rng
        # Offsets into the padded image: o = s - shift, so o uniform in [0, 2s].
        oy, ox = rng.integers(0, 2 * s + 1, size=(2, n))
        padded = np.pad(batch, ((0, 0), (0, 0), (s, s), (s, s)), constant_values=self.fill)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(2, 3))
        # windows[i, c, oy, ox] is the (height, width) window at that offset.
        shifted = np.ascontiguousarray(windows[np.arange(n), :, oy, ox])  # np.pad kept the dtype
        return shifted if x.ndim == 4 else shifted[0]

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift}, fill={self.fill})"
