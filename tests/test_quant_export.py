"""Saving a converted integer model and loading it in a new process: identical outputs, and clear
errors for files that are corrupt or not quantized models."""

import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, quant, serialization
from minigrad.models import LeNet5
from minigrad.quant import load_quantized, save_quantized

LOAD_AND_RUN = """
import sys
import numpy as np
from minigrad.quant import load_quantized, simulate
model_path, input_path, output_path = sys.argv[1:]
qmodel = load_quantized(model_path)
x = np.load(input_path)
np.savez(output_path, integer=qmodel(x).numpy(), reference=simulate(qmodel, x).numpy())
"""


def converted(model, shape, qconfig=None):
    prepared = quant.prepare(model, qconfig)
    rng = np.random.default_rng(0)
    for _ in range(2):
        prepared(mg.tensor(rng.standard_normal((16,) + shape).astype(np.float32)))
    return quant.convert(prepared)


@pytest.fixture(scope="module")
def lenet_int8():
    mg.manual_seed(0)
    return converted(LeNet5().eval(), (1, 28, 28))


def test_export_then_load_in_a_new_process_gives_identical_outputs(tmp_path, lenet_int8):
    path, input_path, output_path = (tmp_path / name for name in ("m.npz", "x.npy", "y.npz"))
    save_quantized(lenet_int8, path)
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
    np.save(input_path, x)
    src = os.path.join(os.path.dirname(__file__), "..")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    subprocess.run([sys.executable, "-c", LOAD_AND_RUN, str(path), str(input_path),
                    str(output_path)], check=True, env=env, timeout=120)
    with np.load(output_path) as result:
        assert np.array_equal(result["integer"], lenet_int8(x).numpy())
        assert np.array_equal(result["reference"], lenet_int8(x).numpy())


def test_every_layer_kind_round_trips(tmp_path):
    mg.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2, padding=1),
                          nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 2 * 2, 4)).eval()
    qmodel = converted(model, (1, 6, 6), {"": quant.default_qconfig(),
                                          "6": quant.QConfig(weight_bits=4)})
    save_quantized(qmodel, tmp_path / "m.npz")
    loaded = load_quantized(tmp_path / "m.npz")
    assert list(loaded._modules) == list(qmodel._modules)
    x = np.random.default_rng(3).standard_normal((5, 1, 6, 6)).astype(np.float32)
    assert np.array_equal(loaded(x).numpy(), qmodel(x).numpy())
    assert quant.model_size(loaded).total == quant.model_size(qmodel).total
    assert loaded._modules["6"].weight_bits == 4


def test_the_file_holds_integer_arrays_and_a_format_version(tmp_path, lenet_int8):
    save_quantized(lenet_int8, tmp_path / "m.npz")
    content = serialization.load(tmp_path / "m.npz")
    assert content["format"] == "minigrad.quantized_model" and content["version"] == 1
    conv = content["layers"][1]["state"]
    assert conv["weight_q"].dtype == np.int8 and conv["bias_q"].dtype == np.int32


def test_corrupt_foreign_and_newer_files_are_refused(tmp_path, lenet_int8):
    path = tmp_path / "m.npz"
    save_quantized(lenet_int8, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_quantized(path)
    serialization.save(LeNet5().state_dict(), path)
    with pytest.raises(ValueError, match="not a quantized model"):
        load_quantized(path)
    serialization.save({"format": "minigrad.quantized_model", "version": 99, "layers": []}, path)
    with pytest.raises(ValueError, match="version 99"):
        load_quantized(path)
    layers = [{"name": "x", "type": "Pickle", "state": {}}]
    serialization.save({"format": "minigrad.quantized_model", "version": 1, "layers": layers},
                       path)
    with pytest.raises(ValueError, match="unknown type 'Pickle'"):
        load_quantized(path)
    save_quantized(lenet_int8, path)
    content = serialization.load(path)
    content["layers"][1]["state"]["weight_q"] = content["layers"][1]["state"]["weight_q"].astype(
        np.float32)
    serialization.save(content, path)
    with pytest.raises(ValueError, match="features_0.*int8"):
        load_quantized(path)
    with pytest.raises(TypeError, match="QuantizedModel"):
        save_quantized(LeNet5(), path)
