"""MNIST and Fashion-MNIST: the IDX file reader, the two datasets, and their download.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) stores one n-dimensional
array, every number big-endian:

    bytes 0-3          magic number 0x0000TTNN: two zero bytes, the element type TT,
                       the number of dimensions NN
                       TT: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                           0x0E float64
    next 4*NN bytes    the size of each dimension, one uint32 each
    the rest           the elements in row-major order (last index fastest)

MNIST's image files have magic 0x00000803 (uint8, 3 dimensions: N, 28, 28) and its label files
0x00000801 (uint8, 1 dimension: N); Fashion-MNIST uses the same files and names. Either may be
gzipped (``.gz``), as they are distributed.

``MNIST(root=None)`` reads a class-stratified subset bundled with minigrad
(``mnist_subset.npz``, built by ``scripts/make_mnist_subset.py``), so lessons run without a
download. ``download=True`` fetches the four files from the public mirror in ``url``, checks
each one's md5 and only then moves it into ``root``.
"""

import gzip
import hashlib
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from minigrad.data.dataset import Dataset, TensorDataset, TransformedDataset
from minigrad.data.transforms import Normalize, ScaleToUnit

IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
SPLIT_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
BUNDLED_SUBSET = Path(__file__).with_name("mnist_subset.npz")
# Mean and standard deviation of MNIST's training pixels (after scaling to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


# ----------------------------------------------------------------------------- IDX files
def _read_bytes(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            return file.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"read_idx: {path} is not a valid gzip file ({err})") from err


def read_idx(path):
    """The array stored in the IDX file ``path`` (gzipped when the name ends in ``.gz``), in
    native byte order. Raises ValueError naming the file when it is not a well-formed IDX file."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"read_idx: {path} has {len(raw)} bytes, too few for the 4-byte magic "
                         f"number")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic >> 16:
        raise ValueError(f"read_idx: {path} has bad magic number 0x{magic:08X}; an IDX file "
                         f"starts with two zero bytes (0x0000TTNN)")
    type_code, ndim = magic >> 8, magic & 0xFF
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_TYPES)
        raise ValueError(f"read_idx: {path} has unknown element type 0x{type_code:02X} "
                         f"(known: {known})")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"read_idx: {path} is truncated: the header declares {ndim} dimensions "
                         f"({header_size} header bytes) but the file has {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = IDX_TYPES[type_code]
    expected, found = math.prod(shape) * dtype.itemsize, len(raw) - header_size
    if found < expected:
        raise ValueError(f"read_idx: {path} is truncated: shape {shape} of {dtype.name} needs "
                         f"{expected} data bytes, the file has {found}")
    if found > expected:
        raise ValueError(f"read_idx: {path} has {found - expected} trailing bytes after the "
                         f"{expected} data bytes of shape {shape}")
    array = np.frombuffer(raw, dtype, count=math.prod(shape), offset=header_size)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


# ----------------------------------------------------------------------------- download
def _fetch_verified(url, destination, expected_md5):
    """Download ``url`` to ``destination`` through a temporary file in the same folder, so
    ``destination`` appears (by an atomic rename) only once its md5 is known to be right."""
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".",
                                         suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_md5:
            raise ValueError(f"download: {url} has md5 {digest.hexdigest()}, expected "
                             f"{expected_md5}; the download is corrupt or the mirror serves "
                             f"another file, so nothing was saved")
        os.replace(temporary, destination)
    except urllib.error.URLError as err:
        raise OSError(f"download: could not fetch {url} ({err.reason})") from err
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def download_idx_files(root, url, md5s):
    """Fetch every file of ``md5s`` (name -> md5) from ``url`` into ``root``, skipping files
    that are already there (gzipped or not)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, expected_md5 in md5s.items():
        if not (root / name).exists() and not (root / name.removesuffix(".gz")).exists():
            _fetch_verified(url + name, root / name, expected_md5)


# ----------------------------------------------------------------------------- datasets
class MNIST(Dataset):
    """Handwritten digits 0-9, 28x28 grayscale.

    ``root``: the folder with the four IDX files (``train-images-idx3-ubyte`` etc., raw or
    ``.gz``); None reads the subset bundled with minigrad. ``train``: the training or the test
    split. ``download``: fetch missing files from ``url`` into ``root`` first.

    ``data`` holds the uint8 images (N, 28, 28), ``targets`` the int64 labels (N,). Without a
    ``transform`` an item is ``(image[None] / 255, label)``: float32 (1, 28, 28) in [0, 1].
    As in torchvision, a ``transform`` receives the raw image instead, uint8 0..255 of shape
    (28, 28) (torchvision's PIL image), so it starts with ``ToTensor()`` to get float32
    (1, 28, 28) in [0, 1]:

        MNIST(transform=Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]))

    and ``target_transform`` receives the label. ``get_batch`` returns the items of many
    indices stacked: one vectorized call without transforms, one transform call per image with.
    """

    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    md5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
           "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
           "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
           "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]
    folder = "mnist"  # its folder in the project's shared data, for error messages
    bundled = BUNDLED_SUBSET

    def __init__(self, root=None, train=True, download=False, transform=None,
                 target_transform=None):
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        if root is None:
            if download:
                raise ValueError(f"{type(self).__name__}: download=True needs root, the folder "
                                 f"to save the files in")
            self.data, self.targets = self._load_bundled()
        else:
            if download:
                download_idx_files(root, self.url, self.md5)
            self.data, self.targets = self._load_idx(Path(root))

    def _load_bundled(self):
        name = type(self).__name__
        if self.bundled is None:
            raise ValueError(f"{name}: no copy is bundled with minigrad; pass root, the folder "
                             f"with its four IDX files (e.g. root='../shared/data/{self.folder}'), "
                             f"with download=True to fetch them from {self.url}")
        if not self.bundled.exists():
            raise FileNotFoundError(f"{name}: the bundled subset {self.bundled} is missing; "
                                    f"rebuild it with `python scripts/make_mnist_subset.py`, or "
                                    f"pass root, a folder with the IDX files")
        split = "train" if self.train else "test"
        with np.load(self.bundled) as subset:
            return subset[f"{split}_images"], subset[f"{split}_labels"].astype(np.int64)

    def _find(self, root, name):
        for path in (root / name, root / f"{name}.gz"):
            if path.exists():
                return path
        raise FileNotFoundError(f"{type(self).__name__}: {root / name}.gz (or uncompressed "
                                f"{name}) not found; pass download=True to fetch the four "
                                f"files, or download them from {self.url} into {root}")

    def _load_idx(self, root):
        image_path, label_path = (self._find(root, name) for name in SPLIT_FILES[self.train])
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(f"{type(self).__name__}: images {image_path} of shape {images.shape} "
                             f"do not match labels {label_path} of shape {labels.shape}")
        return images, labels.astype(np.int64)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        image, label = self.data[index], self.targets[index]
        image = ScaleToUnit()(image[None]) if self.transform is None else self.transform(image)
        return image, label if self.target_transform is None else self.target_transform(label)

    def get_batch(self, indices):
        images, labels = self.data[np.asarray(indices)], self.targets[np.asarray(indices)]
        if self.transform is None:
            images = ScaleToUnit()(images[:, None])
        else:
            images = np.stack([self.transform(image) for image in images])
        if self.target_transform is not None:
            labels = np.stack([self.target_transform(label) for label in labels])
        return images, labels

    def __repr__(self):
        source = "bundled subset" if self.root is None else str(self.root)
        split = "train" if self.train else "test"
        return f"{type(self).__name__}({split}, {len(self)} images, from {source})"


class FashionMNIST(MNIST):
    """Zalando's clothing images (Xiao et al. 2017, https://github.com/zalandoresearch/
    fashion-mnist): the same files, shapes and API as ``MNIST``, ten clothing classes.
    Nothing is bundled, so ``root`` is required."""

    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    md5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
           "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
           "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
           "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    folder = "fashion-mnist"
    bundled = None


def normalized_mnist(root=None, train=True, limit=None):
    """MNIST as the lessons feed it to a network: pixels scaled to [0, 1], then standardized,
    x <- (x - MNIST_MEAN) / MNIST_STD, so inputs have mean ~0 and variance ~1. A
    TransformedDataset, so a batch is normalized in one call (``MNIST(transform=...)`` would
    make one call per image); ``limit`` keeps only the first ``limit`` images, as an in-memory
    TensorDataset (the bundled subset is stratified and the original files are in no
    particular order, so a prefix holds every digit about equally)."""
    dataset = TransformedDataset(MNIST(root, train=train), Normalize((MNIST_MEAN,), (MNIST_STD,)))
    if limit is None:
        return dataset
    return TensorDataset(*dataset.get_batch(np.arange(min(limit, len(dataset)))))
