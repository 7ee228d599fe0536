"""Data: the IDX reader (every element type, gzipped or raw, every malformed-file error), the
real MNIST / Fashion-MNIST files and the bundled subset, DataLoader batching and its
reproducible, resumable shuffling, transforms, download from a local mirror with md5 checks,
the synthetic data sets, and Subset / random_split; PyTorch's habits: the DataLoader's worker
options, torchvision's ToTensor and the raw image a user's MNIST transform receives."""

import gzip
import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (MNIST, DataLoader, Dataset, FashionMNIST, Subset, TensorDataset,
                           TransformedDataset, default_collate, random_split, read_idx)
from minigrad.data.mnist import BUNDLED_SUBSET, MNIST_MEAN, MNIST_STD, normalized_mnist
from minigrad.data.synthetic import make_linear_regression, make_moons, make_spirals
from minigrad.data.transforms import Compose, Normalize, RandomShift, ScaleToUnit, ToTensor

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}


def idx_bytes(array, type_code=None):
    """The IDX encoding of ``array``, written here by hand (independent of ``read_idx``)."""
    code = IDX_CODES[array.dtype.type] if type_code is None else type_code
    header = struct.pack(">I", (code << 8) | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path, payload):
    """Write bytes, gzipped when the name ends in .gz; returns the path."""
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def needs_shared(folder):
    path = SHARED_DATA / folder
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} is not there (the shared "
                              f"data folder beside the repository)")


# ----------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", list(IDX_CODES))
def test_read_idx_round_trips_every_type(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4) * 37 - 100).reshape(2, 3, 4).astype(dtype)  # 8-bit types wrap
    loaded = read_idx(write_file(tmp_path / f"a.idx{suffix}", idx_bytes(array)))
    assert loaded.shape == (2, 3, 4) and loaded.dtype == dtype
    assert loaded.dtype.isnative and loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


def test_read_idx_header_is_big_endian(tmp_path):
    # Written byte by byte: magic 0x00000C01 (int32, 1 dim), size 2, values 1 and 258.
    raw = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2])
    np.testing.assert_array_equal(read_idx(write_file(tmp_path / "b.idx", raw)), [1, 258])


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("corrupt, message", [
    (lambda raw: b"\x01\x02" + raw[2:], "bad magic number 0x01020801"),
    (lambda raw: raw[:2] + b"\x0A" + raw[3:], "unknown element type 0x0A"),
    (lambda raw: raw[:-1], "is truncated: shape (5,) of uint8 needs 5 data bytes, the file has 4"),
    (lambda raw: raw + b"\x00\x00", "has 2 trailing bytes after the 5 data bytes"),
    (lambda raw: raw[:6], "truncated: the header declares 1 dimensions"),
    (lambda raw: raw[:3], "has 3 bytes, too few for the 4-byte magic number"),
])
def test_read_idx_rejects_malformed_files(tmp_path, corrupt, message, suffix):
    raw = corrupt(idx_bytes(np.arange(5, dtype=np.uint8)))
    path = write_file(tmp_path / f"bad.idx{suffix}", raw)
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        read_idx(path)
    assert message in str(error.value)


def test_read_idx_rejects_a_broken_gzip_stream(tmp_path):
    path = tmp_path / "broken.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8)))[:-10])
    with pytest.raises(ValueError, match="is not a valid gzip file"):
        read_idx(path)


# ----------------------------------------------------------------------------- real data
def md5_of(path):
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@needs_shared("mnist")
def test_md5_tables_match_the_shared_files():
    for dataset, folder in ((MNIST, "mnist"), (FashionMNIST, "fashion-mnist")):
        for name, expected in dataset.md5.items():
            assert md5_of(SHARED_DATA / folder / name) == expected, name


@needs_shared("mnist")
def test_full_mnist_shapes_and_label_counts():
    train = MNIST(SHARED_DATA / "mnist", train=True)
    test = MNIST(SHARED_DATA / "mnist", train=False)
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == np.uint8
    assert train.targets.dtype == np.int64
    assert np.bincount(train.targets).tolist() == MNIST_TRAIN_COUNTS
    assert test.data.shape == (10000, 28, 28)
    assert np.bincount(test.targets).tolist() == MNIST_TEST_COUNTS
    assert train.data.min() == 0 and train.data.max() == 255


@needs_shared("fashion-mnist")
def test_full_fashion_mnist_has_6000_of_each_class():
    train = FashionMNIST(SHARED_DATA / "fashion-mnist", train=True)
    assert train.data.shape == (60000, 28, 28)
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert len(train.classes) == 10 and train.classes[9] == "Ankle boot"


def test_bundled_subset_is_small_uint8_and_stratified():
    assert BUNDLED_SUBSET.stat().st_size < 3_000_000
    train, test = MNIST(train=True), MNIST(train=False)
    assert len(train) >= 10_000 and len(test) == 2_000
    for subset, full_counts in ((train, MNIST_TRAIN_COUNTS), (test, MNIST_TEST_COUNTS)):
        assert subset.data.dtype == np.uint8 and subset.data.shape == (len(subset), 28, 28)
        assert subset.targets.dtype == np.int64
        exact_shares = len(subset) * np.array(full_counts) / sum(full_counts)
        assert np.all(np.abs(np.bincount(subset.targets) - exact_shares) < 1)
    # Shuffled, not sorted by class: the first 100 training images hold every digit.
    assert set(train.targets[:100].tolist()) == set(range(10))


@needs_shared("mnist")
def test_bundled_images_are_real_mnist_images_with_their_labels():
    full = MNIST(SHARED_DATA / "mnist", train=False)
    label_of = {image.tobytes(): label for image, label in zip(full.data, full.targets)}
    subset = MNIST(train=False)
    assert [label_of[image.tobytes()] for image in subset.data] == subset.targets.tolist()
    assert len({image.tobytes() for image in subset.data}) == len(subset)  # no repeats


def test_mnist_items_and_batches_have_a_channel_axis_and_are_scaled():
    data = MNIST(train=False)
    x, y = data[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == data.targets[3]
    np.testing.assert_array_equal(x[0], data.data[3] / np.float32(255))
    xb, yb = data.get_batch([3, 0, 7])
    assert xb.shape == (3, 1, 28, 28) and xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb[0], x)
    np.testing.assert_array_equal(yb, data.targets[[3, 0, 7]])


def test_mnist_loader_yields_float_images_and_int64_labels():
    loader = DataLoader(MNIST(train=False), batch_size=64, shuffle=True, seed=1)
    x, y = next(iter(loader))
    assert isinstance(x, mg.Tensor) and x.shape == (64, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (64,) and y.dtype == np.int64
    assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0
    assert len(loader) == 32  # ceil(2000 / 64)


def test_missing_file_says_which_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        MNIST(tmp_path, train=True)
    message = str(error.value)
    assert str(tmp_path / "train-images-idx3-ubyte") in message
    assert "download=True" in message and MNIST.url in message


def test_fashion_mnist_without_root_asks_for_one():
    with pytest.raises(ValueError, match=r"pass root.*shared/data/fashion-mnist"):
        FashionMNIST()


# ----------------------------------------------------------------------------- download
def build_mirror(folder, n=7):
    """A local mirror with the four (small, gzipped) MNIST files; returns their md5 table."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    md5s = {}
    for images_name, labels_name in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                                     ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for name, array in ((images_name, images), (labels_name, labels)):
            path = write_file(folder / f"{name}.gz", idx_bytes(array))
            md5s[path.name] = md5_of(path)
    return md5s


def test_download_from_a_local_mirror(tmp_path, monkeypatch):
    md5s = build_mirror(tmp_path / "mirror")
    monkeypatch.setattr(MNIST, "url", (tmp_path / "mirror").as_uri() + "/")
    monkeypatch.setattr(MNIST, "md5", md5s)
    root = tmp_path / "root"
    data = MNIST(root, train=False, download=True)
    assert sorted(p.name for p in root.iterdir()) == sorted(md5s)  # all four, no temp files
    for name in md5s:
        assert md5_of(root / name) == md5s[name]
    mirrored = read_idx(tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data.data, mirrored)
    # Files already present are not fetched again: this works with the mirror gone.
    for path in (tmp_path / "mirror").iterdir():
        path.unlink()
    assert len(MNIST(root, train=True, download=True)) == 7


def test_download_with_a_wrong_md5_saves_nothing(tmp_path, monkeypatch):
    md5s = build_mirror(tmp_path / "mirror")
    md5s["train-images-idx3-ubyte.gz"] = "0" * 32
    monkeypatch.setattr(MNIST, "url", (tmp_path / "mirror").as_uri() + "/")
    monkeypatch.setattr(MNIST, "md5", md5s)
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz has md5 [0-9a-f]{32}, "
                                         r"expected 0{32}"):
        MNIST(root, download=True)
    assert list(root.iterdir()) == []


def test_download_from_an_unreachable_mirror_names_the_url(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "url", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(OSError, match="could not fetch .*nowhere/train-images"):
        MNIST(tmp_path / "root", download=True)
    assert list((tmp_path / "root").iterdir()) == []


def test_raw_uncompressed_files_are_read_too(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    write_file(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([4, 1], np.uint8)))
    data = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(data.data, images)
    assert data.targets.tolist() == [4, 1]


def test_mismatched_images_and_labels_are_refused(tmp_path):
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(3, 28, 28\) do not match .* shape \(2,\)"):
        MNIST(tmp_path, train=False)


# ----------------------------------------------------------------------------- DataLoader
def numbered(n):
    """Sample i is (i as a 2-vector of float32, label i): batches show which samples they hold."""
    return TensorDataset(np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1),
                         np.arange(n, dtype=np.int64))


def epoch_labels(loader):
    return [y.numpy().tolist() for _, y in loader]


def test_tensor_dataset_needs_a_common_first_dimension():
    with pytest.raises(ValueError, match=r"same first dimension, got shapes \[\(4, 2\), \(3,\)\]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    data = TensorDataset(mg.arange(4), np.ones((4, 3)))
    assert len(data) == 4 and data[2][0] == 2
    assert [a.shape for a in data.get_batch([0, 3])] == [(2,), (2, 3)]


def test_batches_shapes_dtypes_len_and_drop_last():
    loader = DataLoader(numbered(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert epoch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropping = DataLoader(numbered(10), batch_size=4, drop_last=True)
    assert len(dropping) == 2 and epoch_labels(dropping) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(numbered(8), batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(numbered(3), batch_size=0)


def test_each_epoch_is_a_permutation_and_epochs_differ():
    loader = DataLoader(numbered(50), batch_size=8, shuffle=True, seed=3)
    orders = [sum(epoch_labels(loader), []) for _ in range(3)]
    for order in orders:
        assert sorted(order) == list(range(50))
    assert orders[0] != orders[1] != orders[2] != orders[0]
    for k, order in enumerate(orders):  # exactly the documented order
        assert order == np.random.default_rng([3, k]).permutation(50).tolist()


def test_shuffling_is_reproducible_with_manual_seed():
    def first_epochs(seed):
        mg.manual_seed(seed)
        loader = DataLoader(numbered(30), batch_size=7, shuffle=True)
        return [epoch_labels(loader) for _ in range(2)]

    assert first_epochs(0) == first_epochs(0)
    assert first_epochs(0) != first_epochs(1)


def test_state_dict_resumes_the_data_order():
    mg.manual_seed(0)
    uninterrupted = DataLoader(numbered(20), batch_size=6, shuffle=True)
    orders = [epoch_labels(uninterrupted) for _ in range(4)]

    mg.manual_seed(0)
    interrupted = DataLoader(numbered(20), batch_size=6, shuffle=True)
    for _ in range(2):
        list(interrupted)
    state = interrupted.state_dict()
    assert state == {"seed": uninterrupted.seed, "epoch": 2}

    mg.manual_seed(99)  # a different seed: the order must come from the state alone
    resumed = DataLoader(numbered(20), batch_size=6, shuffle=True)
    resumed.load_state_dict(state)
    assert [epoch_labels(resumed) for _ in range(2)] == orders[2:]
    with pytest.raises(ValueError, match="expected the keys 'seed' and 'epoch'"):
        resumed.load_state_dict({"epoch": 1})


def test_an_unshuffled_loader_draws_no_random_numbers():
    mg.manual_seed(5)
    expected = mg.randn(3).numpy()
    mg.manual_seed(5)
    loader = DataLoader(numbered(4), batch_size=2)
    np.testing.assert_array_equal(mg.randn(3).numpy(), expected)
    assert loader.state_dict() == {"seed": None, "epoch": 0}


class ItemByItem(Dataset):
    """No get_batch: the loader must fall back to __getitem__ and collate."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.full(3, index, dtype=np.float32), index, 0.5 * index


def test_per_item_fallback_collates_like_get_batch():
    items = list(DataLoader(ItemByItem(9), batch_size=4, shuffle=True, seed=2))
    batched = list(DataLoader(numbered(9), batch_size=4, shuffle=True, seed=2))
    for (x, label, half), (_, y) in zip(items, batched):
        assert x.shape == (len(y), 3) and x.dtype == np.float32
        np.testing.assert_array_equal(label.numpy(), y.numpy())
        assert label.dtype == np.int64 and half.dtype == np.float32  # Python number rules
        np.testing.assert_array_equal(half.numpy(), 0.5 * y.numpy())


def test_custom_collate_fn_is_used_and_default_collate_checks_shapes():
    def sums(samples):
        return sum(float(x.sum()) for x, _ in samples)

    assert list(DataLoader(numbered(4), batch_size=2, collate_fn=sums)) == [2.0, 10.0]
    single = default_collate([np.array([1, 2]), np.array([3, 4])])
    assert single.shape == (2, 2) and single.numpy().tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match=r"field 0 .* different shapes \[\(2,\), \(3,\)\]"):
        default_collate([(np.zeros(2), 1), (np.zeros(3), 2)])


# ----------------------------------------------------------------------------- transforms
def test_scale_to_unit():
    out = ScaleToUnit()(np.array([[[0, 51, 255]]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[[0.0, 0.2, 1.0]]], dtype=np.float32))
    with pytest.raises(TypeError, match="expects uint8 pixels 0..255, got dtype float32"):
        ScaleToUnit()(out)


def test_normalize_per_channel_on_items_and_batches():
    normalize = Normalize(mean=(1.0, 2.0), std=(2.0, 4.0))
    item = np.stack([np.full((2, 2), 5.0), np.full((2, 2), 10.0)]).astype(np.float32)
    np.testing.assert_array_equal(normalize(item)[:, 0, 0], [2.0, 2.0])  # (5-1)/2, (10-2)/4
    batch = np.stack([item, 2 * item])
    out = normalize(batch)
    assert out.shape == (2, 2, 2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 1, 1], [[2.0, 2.0], [4.5, 4.5]])
    with pytest.raises(ValueError, match=r"2 mean/std values for input of shape \(3, 2, 2\)"):
        normalize(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(TypeError, match="apply ScaleToUnit first"):
        normalize(np.zeros((2, 2, 2), np.uint8))


def test_compose_applies_in_order():
    transform = Compose([ScaleToUnit(), Normalize((0.5,), (0.25,))])
    out = transform(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    np.testing.assert_allclose(out, [[[-2.0, 2.0], [-1.2, -0.4]]], rtol=1e-6)


def shifted_by_loops(image, dy, dx, fill):
    """out[h, w] = image[h - dy, w - dx] where that is inside the image, else fill."""
    out = np.full_like(image, fill)
    _, height, width = image.shape
    for h in range(height):
        for w in range(width):
            if 0 <= h - dy < height and 0 <= w - dx < width:
                out[:, h, w] = image[:, h - dy, w - dx]
    return out


def test_random_shift_moves_each_image_by_its_own_shift_and_fills_the_border():
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((300, 2, 6, 7)).astype(np.float32)
    out = RandomShift(2, fill=-9.0, seed=1)(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    seen = set()
    for image, shifted in zip(batch, out):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(shifted, shifted_by_loops(image, dy, dx, -9.0))]
        assert len(matches) == 1  # one shift, the same for both channels
        seen.add(matches[0])
    assert len(seen) == 25  # every shift in [-2, 2]^2 occurs among 300 images
    item = RandomShift(1, seed=3)(batch[0])
    assert item.shape == (2, 6, 7)
    assert any(np.array_equal(item, shifted_by_loops(batch[0], dy, dx, 0.0))
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_random_shift_is_reproducible_and_zero_is_the_identity():
    batch = np.random.default_rng(0).standard_normal((50, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(RandomShift(2, seed=5)(batch), RandomShift(2, seed=5)(batch))
    mg.manual_seed(7)
    first = RandomShift(2)(batch)
    mg.manual_seed(7)
    np.testing.assert_array_equal(RandomShift(2)(batch), first)
    np.testing.assert_array_equal(RandomShift(0)(batch), batch)
    with pytest.raises(ValueError, match="max_shift must be an int >= 0, got -1"):
        RandomShift(-1)
    with pytest.raises(ValueError, match=r"got shape \(8, 8\)"):
        RandomShift(1)(batch[0, 0])


def test_transformed_dataset_transforms_inputs_only_per_item_and_per_batch():
    x = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
    y = np.array([0, 1, 2, 3])
    data = TransformedDataset(TensorDataset(x, y), lambda images: -images)
    assert len(data) == 4
    image, label = data[2]
    np.testing.assert_array_equal(image, -x[2])
    assert label == 2
    images, labels = data.get_batch([3, 0])
    np.testing.assert_array_equal(images, -x[[3, 0]])
    np.testing.assert_array_equal(labels, [3, 0])
    batches = list(DataLoader(data, batch_size=2))
    np.testing.assert_array_equal(batches[1][0].numpy(), -x[2:])
    assert not hasattr(TransformedDataset(ItemByItem(3), abs), "get_batch")
    with pytest.raises(TypeError, match="transform must be callable, got int"):
        TransformedDataset(data, 3)


# ----------------------------------------------------------------------------- synthetic
def test_linear_regression_without_noise_is_exactly_linear():
    x, y, w, b = make_linear_regression(n=50, n_features=3, noise=0.0, seed=0)
    assert x.shape == (50, 3) and y.shape == (50,) and w.shape == (3,)
    assert x.dtype == y.dtype == np.float32 and isinstance(b, float)
    np.testing.assert_allclose(y.numpy(), x.numpy() @ w.numpy() + b, rtol=1e-5, atol=1e-5)
    _, noisy, _, _ = make_linear_regression(n=2000, noise=0.5, seed=0)
    x1, _, w1, b1 = make_linear_regression(n=2000, noise=0.5, seed=0)
    residual = noisy.numpy() - (x1.numpy()[:, 0] * w1.numpy()[0] + b1)
    assert residual.std() == pytest.approx(0.5, rel=0.05)


def test_spirals_shapes_labels_and_radii():
    x, y = make_spirals(n_per_class=40, n_classes=3, noise=0.0, seed=0)
    assert x.shape == (120, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y.numpy()).tolist() == [40, 40, 40]
    radii = np.linalg.norm(x.numpy(), axis=1)
    for k in range(3):  # each arm's radii run evenly from 0 to 1
        np.testing.assert_allclose(np.sort(radii[y.numpy() == k]), np.linspace(0, 1, 40),
                                   atol=1e-6)


def test_moons_lie_on_their_half_circles_without_noise():
    x, y = make_moons(n=201, noise=0.0, seed=0)
    x, y = x.numpy(), y.numpy()
    assert x.shape == (201, 2) and np.bincount(y).tolist() == [100, 101]
    np.testing.assert_allclose(np.linalg.norm(x[y == 0], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(x[y == 1] - [1.0, 0.5], axis=1), 1.0, atol=1e-6)
    assert np.all(x[y == 0, 1] >= -1e-6) and np.all(x[y == 1, 1] <= 0.5 + 1e-6)


def test_synthetic_seed_none_follows_manual_seed():
    mg.manual_seed(7)
    first = make_moons(n=20)[0].numpy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(make_moons(n=20)[0].numpy(), first)
    assert not np.array_equal(make_moons(n=20)[0].numpy(), first)
    np.testing.assert_array_equal(make_spirals(seed=4)[0].numpy(), make_spirals(seed=4)[0].numpy())


# ----------------------------------------------------------------------------- Subset, random_split
class RecordsBatches(TensorDataset):
    """A TensorDataset that remembers the indices of each get_batch call."""

    def __init__(self, arrays):
        super().__init__(*arrays)
        self.calls = []

    def get_batch(self, indices):
        self.calls.append(np.asarray(indices).tolist())
        return super().get_batch(indices)


def test_subset_indexes_through_and_keeps_the_get_batch_fast_path():
    subset = Subset(numbered(10), [7, 2, 5])
    assert len(subset) == 3 and subset[0][1] == 7 and subset[-1][1] == 5
    np.testing.assert_array_equal(subset.get_batch([2, 0])[1], [5, 7])
    assert epoch_labels(DataLoader(subset, batch_size=2)) == [[7, 2], [5]]
    nested = Subset(subset, [2, 1])  # a subset of a subset maps indices twice
    assert nested.get_batch([0, 1])[1].tolist() == [5, 2]

    recording = RecordsBatches(numbered(6).arrays)
    assert epoch_labels(DataLoader(Subset(recording, [4, 3, 1]), batch_size=3)) == [[4, 3, 1]]
    assert recording.calls == [[4, 3, 1]]  # one vectorized call, not three __getitem__ calls

    by_item = Subset(ItemByItem(5), [3, 1])
    assert not hasattr(by_item, "get_batch")  # the loader must fall back to collate
    x, label, _ = next(iter(DataLoader(by_item, batch_size=2)))
    assert label.numpy().tolist() == [3, 1] and x.shape == (2, 3)


@pytest.mark.parametrize("lengths, sizes", [
    ([3, 7], [3, 7]), ([0, 10], [0, 10]), ([0.8, 0.2], [8, 2]), ([0.25, 0.75], [3, 7]),
    ([1 / 3] * 3, [4, 3, 3]), ([0.5, 0.5, 0.0], [5, 5, 0])])
def test_random_split_sizes_disjoint_and_covering(lengths, sizes):
    splits = random_split(numbered(10), lengths, seed=0)
    assert [len(s) for s in splits] == sizes
    labels = [s.get_batch(np.arange(len(s)))[1].tolist() for s in splits]
    assert sorted(sum(labels, [])) == list(range(10))  # disjoint and covering
    assert all(isinstance(s, Subset) for s in splits)


@pytest.mark.filterwarnings("ignore:Length of split at index")  # PyTorch's, for the 0 split
@pytest.mark.parametrize("n", [7, 10, 101])
@pytest.mark.parametrize("fractions", [[0.8, 0.2], [0.1, 0.3, 0.6], [1 / 3] * 3, [0.7, 0.3, 0]])
def test_fraction_remainder_rule_matches_torch(n, fractions, torch_reference):
    expected = torch_reference(f"random_split-{n}-{fractions}", lambda torch: {
        "sizes": [len(s) for s in torch.utils.data.random_split(range(n), fractions)]})
    sizes = [len(s) for s in random_split(numbered(n), fractions, seed=0)]
    assert sizes == expected["sizes"].tolist()


def test_random_split_is_deterministic_for_a_seed():
    def split_labels(seed):
        return [s.indices.tolist() for s in random_split(numbered(20), [15, 5], seed=seed)]

    assert split_labels(3) == split_labels(3) and split_labels(3) != split_labels(4)
    order = np.random.default_rng(3).permutation(20).tolist()  # exactly the documented rule
    assert split_labels(3) == [order[:15], order[15:]]
    mg.manual_seed(1)
    first = split_labels(None)
    mg.manual_seed(1)
    assert split_labels(None) == first


@pytest.mark.parametrize("lengths, message", [
    ([3, 4], "lengths [3, 4] sum to 7, but the dataset size is 10"),
    ([6, 6], "lengths [6, 6] sum to 12, but the dataset size is 10"),
    ([12, -2], "lengths [12, -2] sum to 10, but the dataset size is 10"),
    ([0.5, 0.4], "lengths [0.5, 0.4] sum to 0.9, but the dataset size is 10"),
    ([1.5, -0.5], "fraction 1.5 at index 0 of [1.5, -0.5] is not between 0 and 1 (dataset "
                  "size 10)"),
])
def test_random_split_bad_lengths_name_the_lengths_and_the_size(lengths, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        random_split(numbered(10), lengths, seed=0)


# ----------------------------------------------------------------------------- PyTorch's habits
def test_loader_takes_torchs_worker_options_single_process():
    mg.manual_seed(0)
    plain = epoch_labels(DataLoader(numbered(10), batch_size=4, shuffle=True, drop_last=True))
    mg.manual_seed(0)
    options = dict(batch_size=4, shuffle=True, drop_last=True, num_workers=0, pin_memory=False,
                   timeout=0, worker_init_fn=lambda worker_id: 1 / 0, persistent_workers=False,
                   prefetch_factor=None, collate_fn=None, sampler=None)
    assert epoch_labels(DataLoader(numbered(10), **options)) == plain  # worker_init_fn unused
    with pytest.warns(UserWarning, match="num_workers=4, pin_memory=True do nothing here"):
        loader = DataLoader(numbered(10), batch_size=4, num_workers=4, pin_memory=True,
                            persistent_workers=True, prefetch_factor=2, timeout=5)
    assert epoch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert epoch_labels(DataLoader(numbered(3), shuffle=None)) == [[0], [1], [2]]
    with pytest.raises(TypeError, match="positional"):
        DataLoader(numbered(3), 1, False, None)  # torch's 4th argument is the sampler


@pytest.mark.parametrize("options, message", [
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"timeout": -1}, "timeout option should be non-negative"),
    ({"prefetch_factor": 2}, "prefetch_factor option could only be specified in multiprocessing"),
    ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ({"seed": 1, "generator": np.random.default_rng(0)}, "give seed or generator, not both"),
])
def test_loader_refuses_what_torch_refuses(options, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(numbered(4), shuffle=True, **options)


def test_loader_generator_gives_the_shuffling_seed():
    def first_epoch(generator_seed):
        loader = DataLoader(numbered(20), batch_size=5, shuffle=True,
                            generator=np.random.default_rng(generator_seed))
        return loader.seed, epoch_labels(loader)

    seed, labels = first_epoch(3)
    assert seed == int(np.random.default_rng(3).integers(2**63))
    assert first_epoch(3) == (seed, labels) and first_epoch(4)[1] != labels
    mg.manual_seed(0)
    before = mg.randn(2).numpy()
    mg.manual_seed(0)
    first_epoch(5)  # drew from its own generator, not minigrad's
    np.testing.assert_array_equal(mg.randn(2).numpy(), before)
    with pytest.raises(TypeError, match=r"generator must be a numpy.random.Generator .*, got int"):
        DataLoader(numbered(4), shuffle=True, generator=0)


def torchvision_to_tensor(torch, image):
    """torchvision.transforms.ToTensor on an ndarray, step by step as its source does it."""
    if image.ndim == 2:
        image = image[:, :, None]
    tensor = torch.from_numpy(image.transpose((2, 0, 1))).contiguous()
    return tensor.to(torch.float32).div(255) if tensor.dtype == torch.uint8 else tensor


TO_TENSOR_SHAPES = [(5, 7), (5, 7, 1), (5, 7, 3), (4, 6, 4), (2, 2, 3)]


@pytest.mark.parametrize("shape", TO_TENSOR_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_to_tensor_matches_torchvision(shape, dtype, torch_reference):
    image = np.random.default_rng(0).integers(0, 256, size=shape).astype(dtype)
    expected = torch_reference(f"to_tensor-{shape}-{np.dtype(dtype).name}", lambda torch: {
        "out": torchvision_to_tensor(torch, image).numpy()})["out"]
    out = ToTensor()(image)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_to_tensor_keeps_channels_first_images_and_refuses_batches():
    image = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    chw = np.concatenate([image[:1], image[:1], image[:1]])  # (3, 5, 6): RGB, channels first
    np.testing.assert_array_equal(ToTensor()(chw), chw / np.float32(255))
    np.testing.assert_array_equal(ToTensor()(image[:1]), image[:1] / np.float32(255))
    with pytest.raises(ValueError, match=r"one image .* got shape \(4, 1, 5, 6\)"):
        ToTensor()(np.zeros((4, 1, 5, 6), np.uint8))
    with pytest.raises(ValueError, match=r"got shape \(5, 6\) \(an image \(H, W\)\? start "
                                         r"with ToTensor\(\)\)"):
        Normalize((0.5,), (0.5,))(np.zeros((5, 6), np.float32))


def test_mnist_user_transform_receives_the_raw_uint8_image():
    received = []
    data = MNIST(train=False, transform=lambda image: received.append(image) or image.sum(),
                 target_transform=lambda label: 10 * label)
    x, y = data[5]
    assert len(received) == 1 and received[0].dtype == np.uint8 and received[0].shape == (28, 28)
    np.testing.assert_array_equal(received[0], data.data[5])
    assert received[0].max() > 200  # 0..255, not scaled
    assert x == data.data[5].sum() and y == 10 * data.targets[5]
    xb, yb = data.get_batch([5, 0])
    assert xb.tolist() == [x, data.data[0].sum()] and yb.tolist() == [y, 10 * data.targets[0]]


def test_mnist_with_torchvision_normalization(torch_reference):
    indices = [0, 7, 123]
    data = MNIST(train=False, transform=Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]))

    def torchvision_normalized(torch):
        images = [torchvision_to_tensor(torch, data.data[i]).sub_(torch.tensor([0.1307])[:, None,
                  None]).div_(torch.tensor([0.3081])[:, None, None]) for i in indices]
        return {"images": torch.stack(images).numpy()}

    expected = torch_reference("mnist-normalized", torchvision_normalized)["images"]
    for i, index in enumerate(indices):
        x, y = data[index]
        assert x.dtype == np.float32 and x.shape == (1, 28, 28) and y == data.targets[index]
        np.testing.assert_allclose(x, expected[i], rtol=1e-6, atol=1e-6)
    xb, _ = next(iter(DataLoader(data, batch_size=3)))
    assert xb.shape == (3, 1, 28, 28) and xb.dtype == np.float32
    np.testing.assert_allclose(xb.numpy()[0], expected[0], rtol=1e-6, atol=1e-6)
    assert expected.min() < -0.4 and expected.max() > 2.5  # normalized, not [0, 1]


def test_normalized_mnist_is_scaled_then_standardized_in_one_call_per_batch():
    data, raw = normalized_mnist(train=False), MNIST(train=False)
    images, labels = data.get_batch([3, 9])
    expected = (raw.data[[3, 9]][:, None] / np.float32(255) - np.float32(MNIST_MEAN)) \
        / np.float32(MNIST_STD)
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_allclose(images, expected, rtol=1e-6)
    np.testing.assert_array_equal(labels, raw.targets[[3, 9]])
    np.testing.assert_array_equal(data[3][0], images[0])
    assert len(data) == len(raw) and len(normalized_mnist(train=False, limit=50)) == 50
