"""save / load: round trip of a nested state, refusal of damaged and foreign files, and
atomic writes that leave the previous file untouched when saving fails."""

import json
import os
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad.serialization import load, save


def nested_state():
    return {
        "model": {
            "weight": mg.randn(3, 4),
            "bias": mg.zeros(4, dtype=np.float64),
            "running_count": np.array(7, dtype=np.int64),  # a 0-d array
            "mask": np.array([True, False, True]),
        },
        "optimizer": {
            "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "nesterov": False,
                              "name": "all", "clip": None}],
            "state": {"0": {"step": 12, "exp_avg": np.arange(6, dtype=np.float32).reshape(2, 3)}},
        },
        "step": np.int64(12),
        "history": [1.5, 0.75, float("inf")],
        "empty": ((), [], {}),
    }


def assert_same(loaded, original):
    """Equal values and the same types all the way down."""
    assert type(loaded) is type(original)
    if isinstance(original, dict):
        assert list(loaded) == list(original)
        for key in original:
            assert_same(loaded[key], original[key])
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original)
        for item, expected in zip(loaded, original):
            assert_same(item, expected)
    elif isinstance(original, mg.Tensor):
        assert not loaded.requires_grad and loaded.dtype == original.dtype
        np.testing.assert_array_equal(loaded.numpy(), original.numpy())
    elif isinstance(original, (np.ndarray, np.generic)):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        np.testing.assert_array_equal(loaded, original)
    else:
        assert loaded == original


def test_round_trip_keeps_values_and_types(tmp_path):
    state = nested_state()
    state["model"]["weight"].requires_grad_()
    save(state, tmp_path / "state.npz")
    assert_same(load(tmp_path / "state.npz"), state)


def test_saves_at_exactly_the_path_given(tmp_path):
    save({"x": 1}, tmp_path / "checkpoint.bin")
    assert os.listdir(tmp_path) == ["checkpoint.bin"]  # np.savez alone would add ".npz"
    assert load(str(tmp_path / "checkpoint.bin")) == {"x": 1}


def test_file_is_an_npz_readable_without_pickle(tmp_path):
    save({"w": mg.ones(2)}, tmp_path / "state.npz")
    with np.load(tmp_path / "state.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["a0", "metadata"]
        header = json.loads(archive["metadata"].tobytes())
    assert header["format"] == "minigrad" and header["version"] == 1
    assert header["tree"]["items"]["w"] == {"type": "tensor", "entry": "a0", "dtype": "<f4",
                                            "shape": [2]}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "state.npz"
    save(nested_state(), path)
    return path


def rewrite_metadata(path, edit):
    """Rewrite the file at ``path`` with its metadata JSON passed through ``edit``."""
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    header = edit(json.loads(entries["metadata"].tobytes()))
    entries["metadata"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as file:
        np.savez(file, **entries)


def test_truncated_file_is_refused_wherever_it_is_cut(saved):
    data = saved.read_bytes()
    for length in [10, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1]:
        saved.write_bytes(data[:length])
        with pytest.raises(ValueError, match=r"state\.npz' is truncated or corrupt"):
            load(saved)


def test_damaged_array_data_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    weights = np.arange(100, dtype=np.float64)
    save({"weights": weights}, path)
    data = bytearray(path.read_bytes())
    data[data.find(weights.tobytes()) + 50] ^= 0xFF  # one flipped bit pattern in the array data
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupt.*CRC"):
        load(path)


def test_random_bytes_and_empty_files_are_refused(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="noise.npz' is not an .npz file"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not an .npz file"):
        load(path)


def test_foreign_npz_and_npy_files_are_refused(tmp_path):
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match="foreign.npz' is not a minigrad file"):
        load(tmp_path / "foreign.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single.npy' is not an .npz file"):
        load(tmp_path / "single.npy")


def test_metadata_of_another_format_or_a_newer_version_is_refused(saved):
    rewrite_metadata(saved, lambda header: {**header, "version": 2})
    with pytest.raises(ValueError, match="format version 2; this minigrad reads versions up to 1"):
        load(saved)
    rewrite_metadata(saved, lambda header: {**header, "format": "other"})
    with pytest.raises(ValueError, match="not a minigrad file"):
        load(saved)


def test_arrays_that_disagree_with_the_metadata_are_refused(saved):
    def claim_float16(header):
        header["tree"]["items"]["model"]["items"]["weight"]["dtype"] = "<f2"
        return header

    rewrite_metadata(saved, claim_float16)
    with pytest.raises(ValueError, match="array 'a0' has dtype float32 and shape \\(3, 4\\), "
                                         "but the metadata says dtype float16"):
        load(saved)


def test_missing_array_entry_and_malformed_metadata_are_refused(saved):
    def point_elsewhere(header):
        header["tree"]["items"]["step"]["entry"] = "a99"
        return header

    rewrite_metadata(saved, point_elsewhere)
    with pytest.raises(ValueError, match="truncated or corrupt \\(the array entry 'a99' named "
                                         "in its metadata is missing"):
        load(saved)
    rewrite_metadata(saved, lambda header: {**header, "tree": {"type": "dict"}})
    with pytest.raises(ValueError, match="malformed metadata"):
        load(saved)


def failing(*args, **kwargs):
    raise OSError("disk full")


def test_failure_while_writing_keeps_the_previous_file(saved, monkeypatch):
    before = saved.read_bytes()

    def write_half_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        failing()

    for target, replacement in [("numpy.savez", write_half_then_fail), ("os.replace", failing)]:
        with monkeypatch.context() as patch:
            patch.setattr(target, replacement)
            with pytest.raises(OSError, match="disk full"):
                save({"new": mg.ones(5)}, saved)
        assert saved.read_bytes() == before
        assert os.listdir(saved.parent) == [saved.name]  # no temporary file left behind


def test_unsupported_values_fail_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"dict keys must be str, got 1 in obj\['a'\]"):
        save({"a": {1: 2}}, tmp_path / "state.npz")
    with pytest.raises(TypeError, match=r"type set at obj\[0\]"):
        save([{1, 2}], tmp_path / "state.npz")
    with pytest.raises(TypeError, match="object and structured arrays"):
        save(np.array([None]), tmp_path / "state.npz")
    assert os.listdir(tmp_path) == []


def test_saving_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*missing' does not exist"):
        save({}, tmp_path / "missing" / "state.npz")


def test_loading_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


def test_saved_archive_is_a_plain_zip(saved):
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


# ----------------------------------------------------------------------------- PyTorch habits
@pytest.mark.parametrize("make, at", [
    (lambda: mg.nn.Linear(2, 2), "the Linear at obj:"),
    (lambda: {"model": mg.nn.Sequential(mg.nn.ReLU())}, r"the Sequential at obj\['model'\]"),
    (lambda: [mg.optim.SGD([mg.ones(1)], lr=0.1)], r"the SGD at obj\[0\]"),
])
def test_saving_a_module_or_optimizer_itself_suggests_its_state_dict(tmp_path, make, at):
    with pytest.raises(TypeError, match=at + r".* mg\.save\(model\.state_dict\(\), path\)"):
        save(make(), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("map_location", [None, "cpu", mg.backend.device("cpu")])
@pytest.mark.parametrize("weights_only", [None, True, False])
def test_load_takes_map_location_and_weights_only(tmp_path, map_location, weights_only):
    state = {"w": mg.randn(2, 3), "step": np.array(4)}
    save(state, tmp_path / "state.npz")
    loaded = load(tmp_path / "state.npz", map_location, weights_only=weights_only)
    assert_same(loaded, state)
    assert loaded["w"].device == "cpu"


@pytest.mark.parametrize("map_location, error, message", [
    ({"cuda:0": "cpu"}, TypeError, "map_location must name a device .*got a dict"),
    (lambda storage, location: storage, TypeError, "map_location must name a device .*function"),
    ("tpu", ValueError, "map_location 'tpu': unknown device 'tpu'"),
    ("cuda:1", ValueError, "map_location 'cuda:1': .*one GPU"),
])
def test_a_map_location_that_names_no_device_is_refused(saved, map_location, error, message):
    with pytest.raises(error, match=message):
        load(saved, map_location=map_location)


def cuda_available():
    try:
        mg.backend.cupy_module()
    except RuntimeError:
        return False
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("map_location", ["cuda", "cuda:0"])
def test_map_location_cuda_puts_the_tensors_on_the_gpu_and_arrays_stay_numpy(saved, map_location):
    loaded = load(saved, map_location=map_location)
    assert loaded["model"]["weight"].device == "cuda"
    assert isinstance(loaded["optimizer"]["state"]["0"]["exp_avg"], np.ndarray)
    np.testing.assert_array_equal(loaded["model"]["weight"].numpy(),
                                  load(saved)["model"]["weight"].numpy())
