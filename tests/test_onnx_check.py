"""``python -m minigrad.onnx check``: describe, feeds, latency and the exit status, on small
graphs built here with ``onnx.helper`` (so they do not depend on the exporter), and on an
exported LeNet-5."""

import re
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tools need onnx (pip install -e \".[onnx]\")")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tools need onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minigrad.onnx import check  # noqa: E402

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
B = np.array([0.5, -1.0, 0.0], np.float32)


def save(tmp_path, nodes, inputs, outputs, initializers=(), name="model.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.fixture
def dense(tmp_path):
    """relu(x W + b) with a symbolic batch: MatMul, Add, Relu."""
    return save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["h"]),
                           helper.make_node("Add", ["h", "b"], ["z"]),
                           helper.make_node("Relu", ["z"], ["y"])],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
                [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")])


def run_cli(capsys, *argv):
    status = check.main(["check", *map(str, argv)])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


def latency_rows(printed):
    """{batch: (median, min, max)} from the latency table."""
    return {int(m[1]): tuple(map(float, m.groups()[1:])) for m in re.finditer(
        r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+y ", printed, re.MULTILINE)}


def test_describe_reads_inputs_outputs_ops_and_sizes(dense):
    d = check.describe(dense)
    assert [(v.name, v.shape, v.dtype) for v in d.inputs] == [("x", ("batch", 4), np.float32)]
    assert [(v.name, v.shape, v.dtype) for v in d.outputs] == [("y", ("batch", 3), np.float32)]
    assert d.op_counts == {"Add": 1, "MatMul": 1, "Relu": 1} and d.nodes == 3
    assert d.initializer_bytes == W.nbytes + B.nbytes == 60
    assert d.file_bytes == len(open(dense, "rb").read()) > 60
    assert d.opsets == {"": 17}


def test_cli_prints_ops_sizes_and_latency_at_each_batch(dense, capsys):
    status, out, err = run_cli(capsys, dense, "--repeats", 3, "--threads", 1)
    assert status == 0 and err == ""
    assert re.search(r"^x\s+batch x 4\s+float32$", out, re.MULTILINE)
    assert re.search(r"^y\s+batch x 3\s+float32$", out, re.MULTILINE)
    for op in ("Add", "MatMul", "Relu"):
        assert re.search(rf"^{op}\s+1$", out, re.MULTILINE), op
    assert out.index("Add") < out.index("MatMul") < out.index("Relu")  # sorted by op_type
    size = len(open(dense, "rb").read())
    assert f"{size:,} bytes, of which initializers 60 bytes" in out
    assert "1 intra-op thread(s); 4 untimed runs, then 3 timed" in out
    rows = latency_rows(out)
    assert sorted(rows) == [1, 256]
    for low_median_high in rows.values():
        median, low, high = low_median_high
        assert 0 < low <= median <= high
    assert "y (256, 3) float32" in out


def test_python_dash_m_runs_the_check_command(dense):
    done = subprocess.run([sys.executable, "-m", "minigrad.onnx", "check", dense, "--batch",
                           "2", "--repeats", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(latency_rows(done.stdout)) == [2]


def test_missing_and_garbage_files_exit_2_with_one_line(tmp_path, capsys):
    status, out, err = run_cli(capsys, tmp_path / "absent.onnx")
    assert status == 2 and err == f"error: {tmp_path / 'absent.onnx'}: no such file\n"
    for content in (b"this is not a protobuf\xff\xfe", b""):
        garbage = tmp_path / "garbage.onnx"
        garbage.write_bytes(content)
        status, out, err = run_cli(capsys, garbage)
        assert status == 2 and "not an ONNX model" in err and "Traceback" not in err
        assert err.count("\n") == 1 and out == ""


def test_missing_onnxruntime_exits_2_and_says_how_to_install(dense, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    status, out, err = run_cli(capsys, dense)
    assert status == 2 and "onnxruntime is not installed" in err and ".[onnx]" in err


def test_given_input_is_cut_or_repeated_to_the_batch(dense, tmp_path, capsys):
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    d = check.describe(dense)
    sess = check.session(dense, threads=1)
    for batch, rows in ((2, x[:2]), (5, x), (7, np.concatenate([x, x[:2]]))):
        feeds = check.feeds_at(d.inputs, batch, {"x": x})
        np.testing.assert_array_equal(feeds["x"], rows)
        (y,) = sess.run(None, feeds)
        np.testing.assert_allclose(y, np.maximum(rows @ W + B, 0), rtol=1e-6, atol=1e-6)
    np.save(tmp_path / "x.npy", x)
    status, out, err = run_cli(capsys, dense, "--input", f"x={tmp_path / 'x.npy'}",
                               "--batch", 3, 8, "--repeats", 2)
    assert status == 0 and "y (3, 3) float32" in out and "y (8, 3) float32" in out
    assert "inputs: x given" in out


@pytest.mark.parametrize("array, argument, message", [
    (np.zeros((2, 4), np.float64), "x", "the array is float64, the graph input is float32"),
    (np.zeros((2, 5), np.float32), "x", "shape (2, 5) does not fit the graph input's "
                                        "(batch x 4)"),
    (np.zeros((2, 4), np.float32), "image", "--input image: the graph's inputs are x"),
])
def test_given_input_that_does_not_fit_exits_2(dense, tmp_path, capsys, array, argument,
                                                message):
    np.save(tmp_path / "a.npy", array)
    status, out, err = run_cli(capsys, dense, "--input", f"{argument}={tmp_path / 'a.npy'}")
    assert status == 2 and message in err, err


def test_bad_input_spec_and_unreadable_npy_exit_2(dense, tmp_path, capsys):
    assert run_cli(capsys, dense, "--input", "x")[2] == "error: --input 'x': expected " \
                                                        "NAME=FILE.npy\n"
    (tmp_path / "bad.npy").write_bytes(b"not npy")
    status, _, err = run_cli(capsys, dense, "--input", f"x={tmp_path / 'bad.npy'}")
    assert status == 2 and "cannot read" in err


def test_random_inputs_follow_the_dtype_and_the_batch():
    rng = np.random.default_rng(0)
    codes = check.random_input(check.ValueInfo("q", ("n", 3, 64), np.dtype(np.uint8)), 50, rng)
    assert codes.dtype == np.uint8 and codes.shape == (50, 3, 64)
    assert codes.min() == 0 and codes.max() == 255  # the whole code range
    signed = check.random_input(check.ValueInfo("q", (100, 100), np.dtype(np.int8)), 1, rng)
    assert signed.min() == -128 and signed.max() == 127
    x = check.random_input(check.ValueInfo("x", ("batch", 10_000), np.dtype(np.float16)), 2, rng)
    assert x.dtype == np.float16 and x.shape == (2, 10_000)
    assert abs(float(x.mean())) < 0.05 and float(x.std()) == pytest.approx(1, abs=0.05)
    with pytest.raises(check.CheckError, match="symbolic dim 'seq' at axis 1: give it with "
                                               "--input t=FILE.npy"):
        check.random_input(check.ValueInfo("t", ("batch", "seq"), np.dtype(np.float32)), 1, rng)
    with pytest.raises(check.CheckError, match="input 'i' is int64"):
        check.random_input(check.ValueInfo("i", ("batch",), np.dtype(np.int64)), 1, rng)


def test_fixed_batch_model_skips_other_batch_sizes(tmp_path, capsys):
    path = save(tmp_path, [helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT)],
                [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 8])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    status, out, err = run_cli(capsys, path, "--repeats", 2)
    assert status == 0 and sorted(latency_rows(out)) == [1]
    assert re.search(r"^\s*256\s+-\s+-\s+-\s+skipped: input 'q' has a fixed batch of 1$", out,
                     re.MULTILINE)
    assert re.search(r"^q\s+1 x 8\s+uint8$", out, re.MULTILINE)


def test_a_graph_onnx_runtime_refuses_exits_2(tmp_path, capsys):
    path = save(tmp_path, [helper.make_node("NoSuchOp", ["x"], ["y"])],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    status, out, err = run_cli(capsys, path)
    assert status == 2 and "ONNX Runtime cannot load it" in err and "NoSuchOp" in err


def test_exported_lenet5_described_and_run_like_minigrad(tmp_path):
    import minigrad as mg
    from minigrad.models import LeNet5
    from minigrad.onnx import export

    mg.manual_seed(0)
    model = LeNet5().eval()
    path = str(tmp_path / "lenet5.onnx")
    export(model, mg.randn(1, 1, 28, 28), path)
    d = check.describe(path)
    assert [(v.name, v.shape, v.dtype) for v in d.inputs] == [
        ("input", ("batch", 1, 28, 28), np.float32)]
    assert [(v.name, v.shape) for v in d.outputs] == [("output", ("batch", 10))]
    assert d.op_counts["Conv"] == 2 and d.op_counts["MaxPool"] == 2 and d.op_counts["Relu"] == 4
    # the 61,706 float32 parameters, plus a few small constants (Reshape's target shape)
    assert 0 <= d.initializer_bytes - 61706 * 4 <= 64 and d.initializer_bytes < d.file_bytes
    feeds = check.feeds_at(d.inputs, 3)
    assert feeds["input"].shape == (3, 1, 28, 28)
    (y,) = check.session(path, threads=1).run(None, feeds)
    with mg.no_grad():
        expected = model(mg.tensor(feeds["input"])).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_a_graph_with_a_sequence_output_exits_2(tmp_path, capsys):
    path = save(tmp_path, [helper.make_node("SequenceConstruct", ["x"], ["s"])],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)])
    status, out, err = run_cli(capsys, path)
    assert status == 2 and "'s' is a sequence_type value" in err
