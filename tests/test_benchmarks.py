"""benchmarks/run.py's machinery: workers in processes of their own answering the JSON-line
protocol, rounds that alternate the workers' order, the ratio statistics and the FLOP formulas.
No PyTorch needed: the workers here are minigrad's two CPU kernel sets."""

import importlib.util
import math
import os
import pathlib
import re
import sys

import numpy as np
import pytest

import minigrad as mg

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
import run  # noqa: E402 (benchmarks/ is not a package)
import workloads  # noqa: E402
from workloads import Workload, conv_spec  # noqa: E402

TINY = [Workload("T1", "tiny conv fwd+bwd", conv_spec("train", 2, 3, 4, 3, 6)),
        Workload("T2", "tiny matmul", {"kind": "matmul", "n": 8}),
        Workload("T3", "tiny LeNet-5 inference", {"kind": "model", "model": "lenet",
                                                  "mode": "inference", "batch": 2}),
        Workload("T4", "groups=2 of 3 channels", conv_spec("forward", 1, 3, 4, 3, 6, groups=2))]


def test_workers_answer_with_medians_in_processes_of_their_own():
    frameworks = ["minigrad-numpy"]
    if importlib.util.find_spec("numba"):
        frameworks.append("minigrad-numba")
    workers, infos = run.start_workers(frameworks + ["minigrad-nosuchset"], "cpu", threads=1)
    try:
        results = run.measure(workers, TINY, rounds=2, repeats=2, settle=0)
    finally:
        for worker in workers.values():
            worker.close()
    assert list(workers) == frameworks  # the worker that could not start is left out
    for name in frameworks:
        assert infos[name]["framework"] == name
        if importlib.util.find_spec("threadpoolctl"):
            assert infos[name]["threads"]["blas"] == 1  # --threads 1 reached the worker's BLAS
        for key in ("T1", "T2", "T3"):
            cell = results[key][name]
            assert cell["error"] is None and len(cell["seconds"]) == 2
            assert all(0 < seconds < 10 for seconds in cell["seconds"])
        # 3 input channels do not split into 2 groups: the error comes back as text, asked once
        bad = results["T4"][name]
        assert bad["seconds"] == [] and re.match(r"\w+: .*group", bad["error"])


@pytest.mark.skipif(importlib.util.find_spec("threadpoolctl") is None,
                    reason="needs threadpoolctl to read BLAS's threads")
def test_owner_kernels_gives_the_threads_to_the_kernels_and_one_to_blas():
    workers, infos = run.start_workers(["minigrad-numpy"], "cpu", threads=None, owner="kernels")
    for worker in workers.values():
        worker.close()
    assert infos["minigrad-numpy"]["threads"]["blas"] == 1
    assert infos["minigrad-numpy"]["threads"]["kernels"] == os.cpu_count()


class LoggingWorker:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def request(self, **message):
        self.log.append(self.name)
        return {"median": 1.0}


def test_rounds_alternate_the_order_of_the_workers():
    assert run.framework_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert run.framework_order(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert run.framework_order(["a", "b", "c"], 2) == ["a", "b", "c"]
    log = []
    workers = {name: LoggingWorker(name, log) for name in ("a", "b")}
    run.measure(workers, TINY[:2], rounds=3, repeats=1, settle=0)
    assert log == ["a", "b", "a", "b", "b", "a", "b", "a", "a", "b", "a", "b"]


def test_geometric_mean_of_known_numbers():
    assert run.geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert run.geometric_mean([2.0, 0.5]) == pytest.approx(1.0)  # 2x faster, 2x slower
    assert run.geometric_mean([1.0, 10.0, 100.0]) == pytest.approx(10.0)
    for bad in ([], [1.0, 0.0], [2.0, -1.0]):
        with pytest.raises(ValueError, match="positive values"):
            run.geometric_mean(bad)


def cells(torch_seconds, minigrad_seconds):
    return {"torch": {"seconds": torch_seconds, "error": None},
            "minigrad-numba": {"seconds": minigrad_seconds, "error": None}}


def test_a_row_reports_the_median_ratio_its_range_and_the_verdict():
    w2 = next(w for w in workloads.ROWS if w.key == "W2")  # target >= 1.0
    row = run.summarize(w2, cells([2.0, 1.0, 3.0], [1.0, 2.0, 1.0]), "minigrad-numba",
                        peak_gflops=None)
    assert row["ratio"] == {"median": 2.0, "min": 0.5, "max": 3.0}  # per-round ratios 2, .5, 3
    assert row["seconds"] == {"torch": 2.0, "minigrad-numba": 1.0}
    assert row["gflops"]["minigrad-numba"] == pytest.approx(w2.flops * 1e-9)
    assert row["verdict"] == "PASS"
    assert run.summarize(w2, cells([1.0], [1.25]), "minigrad-numba", None)["verdict"] == "MISS"

    w4 = next(w for w in workloads.ROWS if w.key == "W4")  # >= 1.3 and >= 20% of the peak
    peak = w4.flops * 1e-9 / 0.1  # minigrad at 1 s is then at 10% of the peak
    row = run.summarize(w4, cells([2.0], [1.0]), "minigrad-numba", peak)
    assert row["peak_share"] == pytest.approx(0.1) and row["verdict"] == "MISS"
    assert run.summarize(w4, cells([2.0], [0.4]), "minigrad-numba", peak)["verdict"] == "PASS"


def test_the_sweep_summary_counts_slow_rows_and_takes_geometric_means():
    rows = []
    for key, mode, torch_s, numba_s, numpy_s in [("S00-train", "train", 1.0, 2.0, 1.5),
                                                 ("S01-train", "train", 2.0, 1.0, 3.0),
                                                 ("S00-inference", "inference", 3.0, 1.0, 1.0)]:
        workload = Workload(key, key, conv_spec(mode, 1, 1, 1, 1, 4))
        data = cells([torch_s], [numba_s])
        data["minigrad-numpy"] = {"seconds": [numpy_s], "error": None}
        rows.append(run.summarize(workload, data, "minigrad-numba", None))
    summary = run.summarize_sweep(rows, "minigrad-numba")
    assert summary["modes"]["train"]["geomean"] == pytest.approx(1.0)  # ratios 0.5 and 2
    assert summary["modes"]["inference"]["geomean"] == pytest.approx(3.0)
    assert summary["modes"]["forward"]["geomean"] is None
    assert summary["below_minimum"] == ["S00-train"]
    assert summary["numba_slower_than_numpy"] == ["S00-train"]


def test_conv_flops_by_formula():
    # 2 N O (C/g) KH KW Ho Wo with N 2, O 4, C/g 6/2, 3x3, Ho = Wo = (9 + 2 - 3) // 2 + 1 = 5
    assert workloads.conv_forward_flops(2, 6, 4, 3, 2, 1, 2, 9) == 2 * 2 * 4 * 3 * 9 * 25
    spec = conv_spec("train", 2, 6, 4, 3, 9, stride=2, groups=2)
    assert workloads.flops(spec) == 3 * 2 * 2 * 4 * 3 * 9 * 25
    assert workloads.flops({**spec, "mode": "inference"}) == 2 * 2 * 4 * 3 * 9 * 25
    assert workloads.flops({"kind": "matmul", "n": 512}) == 2 * 512**3


def test_lenet_flops_follow_its_shapes():
    conv1, conv2 = 2 * 6 * 1 * 25 * 28 * 28, 2 * 16 * 6 * 25 * 10 * 10
    linear = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    assert workloads.model_flops("lenet", 1, training=False) == conv1 + conv2 + linear
    # training: dL/dw and dL/dx each cost a forward, but the input needs no dL/dx
    training = 3 * (2 * conv1 + 3 * (conv2 + linear))  # batch 3
    assert workloads.model_flops("lenet", 3, training=True) == training


@pytest.mark.parametrize("shape", [s for s in workloads.SWEEP_SHAPES if s[-1] == 1][:4])
def test_the_output_size_the_flops_use_is_the_convolution_s(shape):
    batch, c_in, c_out, kernel, stride, size, _ = shape
    conv = mg.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)
    out = conv(mg.tensor(np.zeros((1, c_in, size, size), np.float32)))
    assert out.shape[-1] == workloads.conv_output_size(size, kernel, stride, kernel // 2)
    assert math.prod(out.shape[1:]) * 2 * c_in * kernel**2 * batch == workloads.flops(
        conv_spec("forward", batch, c_in, c_out, kernel, size, stride))


def test_busy_mode_keeps_a_spinning_process_only_while_inside():
    with run.busy_core(True) as spinner:
        assert spinner.poll() is None  # running
    assert spinner.poll() is not None  # killed and reaped on the way out
    with run.busy_core(False) as spinner:
        assert spinner is None
