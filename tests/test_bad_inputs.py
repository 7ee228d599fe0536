"""Bad inputs and faults that must give clear errors: a graph used after an optimizer step,
NaNs in max pooling, layer arguments out of PyTorch's limits, unbatched inputs, damaged and
crafted checkpoints (fuzzed), and saves killed mid-write."""

import io
import json
import os
import signal
import struct
import time
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, compress, nn, optim, quant, serialization
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.models import LeNet5
from minigrad.nn import functional as F


# ----------------------------------------------------------------------------- 1. optimizers
def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


OPTIMIZERS = [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW, optim.NAdam]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_backward_after_an_optimizer_step_is_refused_naming_the_op(make):
    model = mlp()
    opt = make(model.parameters(), lr=0.1)
    x, y = mg.randn(2, 4), mg.tensor([0, 2])
    F.cross_entropy(model(x), y).backward()  # every parameter has a .grad: step changes all
    loss = F.cross_entropy(model(x), y)
    opt.step()
    with pytest.raises(RuntimeError, match=r"^backward of Linear: its input 1 \(shape \(3, 5\)\), "
                                           r"saved for the gradient, was modified by an "
                                           r"in-place operation: it is at version 1, the "
                                           r"gradient needs version 0"):
        loss.backward()


@pytest.mark.parametrize("make", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_each_step_counts_one_change_of_each_parameter_with_a_gradient(make):
    model = mlp()
    opt = make(model.parameters(), lr=0.1)
    F.cross_entropy(model(mg.randn(2, 4)), mg.tensor([0, 2])).backward()
    model[2].bias.grad = None  # skipped by the step: not changed, not counted
    opt.step()
    opt.step()
    assert [p._version for p in model.parameters()] == [2, 2, 2, 0]


# ----------------------------------------------------------------------------- 2. NaN pooling
NAN = float("nan")
NAN_IMAGE = np.array([[[[1, NAN, 3, NAN, 0],
                        [5, 2, NAN, 0, 1],
                        [1, 2, 3, 4, 4],
                        [4, 3, 2, 1, 9],
                        [NAN, 0, 7, 7, 1]]]], dtype=np.float32)
POOLINGS = {"k2": dict(kernel_size=2), "k2s1": dict(kernel_size=2, stride=1),
            "k3s2p1": dict(kernel_size=3, stride=2, padding=1),
            "k2d2ceil": dict(kernel_size=2, dilation=2, ceil_mode=True)}


def torch_nan_pooling(torch, settings):
    x = torch.tensor(NAN_IMAGE, requires_grad=True)
    out, indices = torch.nn.functional.max_pool2d(x, return_indices=True, **settings)
    out.backward(torch.arange(out.numel(), dtype=torch.float32).reshape(out.shape) + 1)
    return {"out": out, "indices": indices, "grad": x.grad}


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("name", POOLINGS)
def test_max_pooling_propagates_nan_as_torch(name, kernels, torch_reference, monkeypatch):
    expected = torch_reference(f"nan_max_pool_{name}",
                               lambda torch: torch_nan_pooling(torch, POOLINGS[name]))
    monkeypatch.setattr(backend, "_cpu_kernels", backend.kernel_set(kernels))
    x = mg.tensor(NAN_IMAGE, requires_grad=True)
    out, indices = F.max_pool2d(x, return_indices=True, **POOLINGS[name])
    out.backward(mg.arange(out.numel(), dtype=mg.float32).reshape(out.shape) + 1)
    np.testing.assert_array_equal(out.numpy(), expected["out"])  # NaN where torch has NaN
    np.testing.assert_array_equal(indices.numpy(), expected["indices"])
    np.testing.assert_array_equal(x.grad.numpy(), expected["grad"])


def test_both_cpu_kernel_sets_pick_the_last_nan_of_a_window():
    x = np.array([[[[1, NAN, 3, NAN]]]], dtype=np.float64)  # one window of four
    for kernels in (numpy_ref, numba_cpu):
        out, winner = kernels.max_pool2d_forward(x, (1, 4), (1, 4), (0, 0), (1, 1))
        assert np.isnan(out).all() and winner.tolist() == [[[[3]]]]


# ----------------------------------------------------------------------------- 3. layers
@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(1, 1, 3, stride=0), "Conv2d: stride must be positive, got (0, 0)"),
    (lambda: nn.Conv2d(1, 1, 3, dilation=0), "Conv2d: dilation must be positive, got (0, 0)"),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1),
     "Conv2d: padding must be non-negative, got (-1, -1)"),
    (lambda: nn.Conv2d(1, 1, 0), "Conv2d: kernel_size must be positive, got (0, 0)"),
    (lambda: nn.Conv1d(1, 1, 3, stride=0), "Conv1d: stride must be positive, got (0,)"),
    (lambda: nn.Conv1d(1, 1, 0), "Conv1d: kernel_size must be positive, got (0,)"),
    (lambda: nn.Conv1d(1, 1, 3, padding=-1), "Conv1d: padding must be non-negative, got (-1,)"),
    (lambda: nn.Conv1d(1, 1, 3, dilation=0), "Conv1d: dilation must be positive, got (0,)"),
    (lambda: nn.ConvTranspose2d(1, 1, 3, stride=0),
     "ConvTranspose2d: stride must be positive, got (0, 0)"),
    (lambda: nn.ConvTranspose2d(1, 1, 0),
     "ConvTranspose2d: kernel_size must be positive, got (0, 0)"),
    (lambda: nn.ConvTranspose2d(1, 1, 3, padding=-1),
     "ConvTranspose2d: padding must be non-negative, got (-1, -1)"),
    (lambda: nn.ConvTranspose2d(1, 1, 3, output_padding=-1),
     "ConvTranspose2d: output_padding must be non-negative, got (-1, -1)"),
    (lambda: nn.MaxPool2d(0), "MaxPool2d: kernel_size must be positive, got 0"),
    (lambda: nn.MaxPool2d(2, stride=0), "MaxPool2d: stride must be positive, got 0"),
    (lambda: nn.MaxPool2d(2, padding=-1), "MaxPool2d: padding must be non-negative, got -1"),
    (lambda: nn.MaxPool2d(2, dilation=(1, 0)),
     "MaxPool2d: dilation must be positive, got (1, 0)"),
    (lambda: nn.AvgPool2d(0), "AvgPool2d: kernel_size must be positive, got 0"),
    (lambda: nn.AvgPool2d(2, stride=0), "AvgPool2d: stride must be positive, got 0"),
    (lambda: nn.AvgPool1d(2, padding=-1), "AvgPool1d: padding must be non-negative, got (-1,)"),
    (lambda: nn.Linear(-1, 3), "Linear: in_features must be non-negative, got -1"),
    (lambda: nn.Conv2d(2, -4, 3), "Conv2d: out_channels must be non-negative, got -4"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_layer_arguments_out_of_torch_limits_are_refused_by_name(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


@pytest.mark.parametrize("call, message", [
    (lambda x, w: F.conv2d(x, w, stride=0), "conv2d: stride must be positive, got (0, 0)"),
    (lambda x, w: F.conv2d(x, w, padding=(0, -1)),
     "conv2d: padding must be non-negative, got (0, -1)"),
    (lambda x, w: F.conv_transpose2d(x, w, dilation=0),
     "conv_transpose2d: dilation must be positive, got (0, 0)"),
    (lambda x, w: F.max_pool2d(x, 0), "max_pool2d: kernel_size must be positive, got (0, 0)"),
    (lambda x, w: F.avg_pool2d(x, 2, stride=0), "avg_pool2d: stride must be positive, got (0, 0)"),
])
def test_functional_window_arguments_out_of_limits_are_refused_by_name(call, message):
    with pytest.raises(ValueError) as error:
        call(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3))
    assert str(error.value) == message


def torch_linear_without_inputs(torch):
    layer = torch.nn.Linear(0, 3)
    return {"out": layer(torch.zeros(2, 0)), "bias": layer.bias}


def test_linear_with_no_input_features_gives_its_zero_bias_as_torch(torch_reference):
    expected = torch_reference("linear_0_3", torch_linear_without_inputs)
    layer = nn.Linear(0, 3)
    np.testing.assert_array_equal(layer.bias.numpy(), expected["bias"])
    np.testing.assert_array_equal(layer(mg.zeros(2, 0)).numpy(), expected["out"])


UNBATCHED = [
    ("Conv2d", lambda: nn.Conv2d(2, 4, 3, padding=1), (2, 5, 5), (4, 5, 5)),
    ("Conv1d", lambda: nn.Conv1d(2, 4, 3), (2, 6), (4, 4)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 2, stride=2), (2, 3, 3), (3, 6, 6)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (2, 5, 5), (2, 2, 2)),
    ("MaxPool1d", lambda: nn.MaxPool1d(2), (2, 5), (2, 2)),
    ("AvgPool2d", lambda: nn.AvgPool2d(2, stride=1), (2, 4, 4), (2, 3, 3)),
]


@pytest.mark.parametrize("name, make, shape, out_shape", UNBATCHED, ids=[c[0] for c in UNBATCHED])
def test_an_unbatched_sample_is_taken_as_a_batch_of_one_as_torch(name, make, shape, out_shape):
    mg.manual_seed(1)
    layer, x = make(), mg.randn(*shape)
    out = layer(x)
    assert out.shape == out_shape  # PyTorch's shapes for these layers and inputs
    np.testing.assert_array_equal(out.numpy(), layer(x.unsqueeze(0)).numpy()[0])


def test_unbatched_max_pooling_with_indices_drops_the_batch_dim_of_both():
    x = mg.randn(2, 4, 4)
    out, indices = nn.MaxPool2d(2, return_indices=True)(x)
    assert out.shape == indices.shape == (2, 2, 2)


# ----------------------------------------------------------------------------- 4. checkpoints
def assert_refused_as_corrupt(load, path):
    with pytest.raises(ValueError) as error:
        load(path)
    assert repr(os.fspath(path)) in str(error.value)
    assert "truncated or corrupt" in str(error.value)


def fuzz_offsets(size, count, seed):
    """Every offset of the first 200 bytes and the last 200 (the zip's central directory, the
    compressed file's preamble and header), and ``count`` seeded ones in between."""
    rng = np.random.default_rng(seed)
    edges = set(range(min(size, 200))) | set(range(max(0, size - 200), size))
    return sorted(edges | set(rng.integers(0, size, count).tolist()))


def damaged_copies(data, path, seed):
    """``path`` rewritten with one byte of ``data`` changed at each fuzz offset in turn (each
    byte changed to a seeded random other value), yielding the offset."""
    rng = np.random.default_rng(seed)
    for offset in fuzz_offsets(len(data), 300, seed):
        damaged = bytearray(data)
        damaged[offset] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(damaged))
        yield offset


def fuzz_load(load, state_of, path, seed):
    """Damage ``path`` at many offsets; every load either refuses with the loader's error or
    (a byte no reader looks at, such as a zip timestamp) gives the original state back.
    Returns the number of refusals."""
    original, refused = state_of(load(path)), 0
    for _ in damaged_copies(path.read_bytes(), path, seed):
        try:
            state = state_of(load(path))
        except ValueError as error:
            assert repr(os.fspath(path)) in str(error) and "truncated or corrupt" in str(error)
            refused += 1
            continue
        assert state.keys() == original.keys()
        for key in original:
            np.testing.assert_array_equal(state[key], original[key])
    return refused


def arrays_of(state):
    return {key: np.asarray(value.numpy() if isinstance(value, mg.Tensor) else value)
            for key, value in state.items()}


def test_damaged_checkpoints_are_refused_at_every_offset_and_the_model_is_untouched(tmp_path):
    model = mlp()
    path = tmp_path / "model.npz"
    mg.save(model.state_dict(), path)
    before = arrays_of(model.state_dict())
    refused = fuzz_load(serialization.load, arrays_of, path, seed=0)

    def load_into_model(p):
        model.load_state_dict(serialization.load(p))
        return arrays_of(model.state_dict())

    for _ in damaged_copies((tmp_path / "model.npz").read_bytes(), path, seed=1):
        try:
            load_into_model(path)
        except ValueError:
            pass
        for key, value in arrays_of(model.state_dict()).items():
            np.testing.assert_array_equal(value, before[key])
    assert refused > 300  # most bytes are guarded (CRC-32s, sizes, names, the signature)


def compressed_model():
    mg.manual_seed(0)
    model = LeNet5()
    for module in (model.features[0], model.classifier[-1]):
        quant.kmeans_share(module, bits=3)
    return model


def test_damaged_compressed_files_are_refused_at_every_offset(tmp_path):
    path = tmp_path / "lenet.mgdc"
    compress.save_compressed(compressed_model(), path)
    refused = fuzz_load(compress.load_compressed, lambda c: c.state_dict(), path, seed=2)
    assert refused == len(fuzz_offsets(path.stat().st_size, 300, 2))  # the CRC guards all


def rewritten_npz(path, metadata=None, entries=None):
    """A zip like ``np.savez`` writes, with raw entry bytes: ``entries`` {name: bytes}."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (entries or {}).items():
            archive.writestr(name, data)
        if metadata is not None:
            archive.writestr("metadata.npy", npy_bytes(np.frombuffer(
                json.dumps(metadata).encode(), dtype=np.uint8)))


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_header_claiming_terabytes_is_refused_before_anything_is_allocated(tmp_path):
    huge = io.BytesIO()  # a .npy header claiming 4 TiB of float32, then 16 bytes
    np.lib.format.write_array_header_1_0(
        huge, {"descr": "<f4", "fortran_order": False, "shape": (1099511627776,)})
    huge.write(bytes(16))
    path = tmp_path / "huge.npz"
    tree = {"type": "array", "entry": "a0", "dtype": "<f4", "shape": [1099511627776]}
    rewritten_npz(path, {"format": "minigrad", "version": 1, "tree": tree},
                  {"a0.npy": huge.getvalue()})
    with pytest.raises(ValueError, match=r"huge.npz' is truncated or corrupt \(entry 'a0.npy' "
                                         r"claims 4398046511104 bytes of float32 "
                                         r"\(1099511627776,\), but holds 16\)"):
        serialization.load(path)


def test_deeply_nested_metadata_is_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.npz"
    text = json.dumps({"format": "minigrad", "version": 1, "tree": {}})
    deep = text.replace('"tree": {}', '"tree": ' + '{"type": "list", "items": [' * 100_000
                        + "null" + "]}" * 100_000)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.npy", npy_bytes(np.frombuffer(deep.encode(), np.uint8)))
    assert_refused_as_corrupt(serialization.load, path)
    shallow = tmp_path / "shallow.npz"
    rewritten_npz(shallow, {"format": "minigrad", "version": 1,
                            "tree": node_of_depth(serialization.MAX_DEPTH + 5)})
    with pytest.raises(ValueError, match=r"metadata nests deeper than 200 levels"):
        serialization.load(shallow)


def node_of_depth(depth):
    node = None
    for _ in range(depth):
        node = {"type": "list", "items": [node]}
    return node


@pytest.mark.parametrize("method", [99, 12, 14, 8])  # unknown, bzip2, lzma, deflate
def test_a_damaged_compression_method_field_is_refused_as_corrupt(tmp_path, method):
    path = tmp_path / "state.npz"
    mg.save({"w": mg.ones(100)}, path)
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last entry's central directory record
    data[central + 10:central + 12] = struct.pack("<H", method)
    path.write_bytes(bytes(data))
    assert_refused_as_corrupt(serialization.load, path)


def test_a_compressed_file_with_a_damaged_header_size_is_refused_as_corrupt(tmp_path):
    path = tmp_path / "lenet.mgdc"
    compress.save_compressed(compressed_model(), path)
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01  # the header length, which the CRC does not cover: zlib.error inside
    path.write_bytes(bytes(data))
    assert_refused_as_corrupt(compress.load_compressed, path)
    data[5] ^= 0x01
    data[8] ^= 0x40  # a header length past the end of the file
    path.write_bytes(bytes(data))
    assert_refused_as_corrupt(compress.load_compressed, path)


def test_tensor_to_an_unknown_device_names_it():
    with pytest.raises(ValueError, match=r"^unknown device 'tpu': expected one of"):
        mg.zeros(2).to("tpu")


# ----------------------------------------------------------------------------- 5. killed saves
def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".minigrad-tmp"))


def kill_saves(path, state, kills, seed, save, check):
    """Start ``kills`` forked children that save ``state`` to ``path`` over and over, SIGKILL
    each at a seeded random moment of its first saves, and ``check()`` the file after each."""
    rng = np.random.default_rng(seed)
    for _ in range(kills):
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: save until killed
            try:
                os.write(ready_write, b"x")
                while True:
                    save(state, path)
            finally:
                os._exit(1)
        os.read(ready_read, 1)
        os.close(ready_read)
        os.close(ready_write)
        time.sleep(float(rng.uniform(0, 0.05)))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        check()


def test_saves_killed_mid_write_leave_the_previous_file_and_the_next_save_cleans_up(
        tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    big = {"w": np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32)}
    mg.save(big, path)
    kill_saves(path, big, kills=20, seed=3, save=mg.save,  # the old and new file are alike
               check=lambda: np.testing.assert_array_equal(mg.load(path)["w"], big["w"]))
    left = temporaries(tmp_path)
    assert len(left) >= 5, f"only {len(left)} of 20 kills landed during a write"
    mg.save(big, path)  # a fresh save keeps the young temporaries (they may be still writing)
    assert temporaries(tmp_path) == left
    monkeypatch.setattr(serialization, "STALE_TEMPORARY_AGE_S", 0.0)
    (tmp_path / ".notes.txt.0123abcd.tmp").write_bytes(b"not ours")
    mg.save(big, path)
    assert temporaries(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == [".notes.txt.0123abcd.tmp", "big.npz"]
    np.testing.assert_array_equal(mg.load(path)["w"], big["w"])


def test_killed_compressed_saves_leave_the_previous_file_and_are_cleaned_up(
        tmp_path, monkeypatch):
    path = tmp_path / "lenet.mgdc"
    model = compressed_model()
    compress.save_compressed(model, path)
    expected = compress.load_compressed(path).state_dict()

    def check():
        loaded = compress.load_compressed(path).state_dict()
        for key in expected:
            np.testing.assert_array_equal(loaded[key], expected[key])

    kill_saves(path, model, kills=5, seed=4, save=compress.save_compressed, check=check)
    monkeypatch.setattr(serialization, "STALE_TEMPORARY_AGE_S", 0.0)
    compress.save_compressed(model, path)
    assert temporaries(tmp_path) == []


def test_module_to_an_unknown_device_names_it():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nn.Linear(2, 2).to("tpu")
    assert nn.Linear(2, 2).to("float64").weight.dtype == np.float64


def test_fan_based_init_of_a_zero_element_tensor_warns_and_changes_nothing():
    from minigrad.nn import init

    weight = mg.zeros(3, 0)
    for initializer in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
                        init.xavier_normal_):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            assert initializer(weight) is weight


def test_a_compressed_entry_is_refused_before_it_is_inflated(tmp_path):
    """A deflate bomb (a small file that inflates to gigabytes) never gets inflated: minigrad
    writes its entries stored, so a compressed one is refused from the zip's directory."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.npy", b"\0" * 10_000_000)
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match="truncated or corrupt .*'metadata.npy' is compressed"):
        mg.load(path)
