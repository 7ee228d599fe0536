"""Lesson 12 (kernels and hardware) runs end to end and reaches the numbers it teaches."""

import pytest

from lesson_runs import assert_pngs, load_lesson, run_quick

STAGES = ["== the machine:", "== part A:", "== part B:", "== part C:", "== conclusions:"]


@pytest.mark.slow
def test_lesson_12_kernels_match_the_reference_the_profile_and_the_roofline(tmp_path, capsys):
    result = run_quick("12_kernels_and_hardware.py", tmp_path, capsys, STAGES + [
        "max abs diff", "im2col ms", "% of total", "dominant ops", "roof GFLOP/s"],
        "--no-progress")
    rows = result["part_a"]
    assert {"numpy (reference)", "numba", "numba, own loops"} <= {row[2] for row in rows}
    assert len(rows) >= 3 * 2 * 2 + 2  # 3 convs x 2 passes x 2 sets, + Numba's own loops
    for conv, direction, kernels, ms, gflops, diff, relative in rows:
        assert ms > 0 and gflops > 0, (conv, direction, kernels)
        assert relative < 1e-5, (conv, direction, kernels, diff)  # float32, another order

    for kernels, stats in result["part_b"]["profiles"].items():
        ops = {record.op: record for record in stats}
        assert all(record.calls > 0 for record in stats), kernels
        assert (ops["Conv2d"].calls, ops["Conv2d"].backward_calls) == (2, 2), kernels
        assert (ops["Linear"].calls, ops["ReLU"].calls, ops["MaxPool2d"].calls) == (3, 4, 2)
        assert ops["Conv2d"].total_s > 0, kernels

    roofline = result["part_c"]
    peak, bandwidth = roofline["peak_gflops"], roofline["bandwidth_gbs"]
    assert peak > 0 and bandwidth == max(roofline["copy_gbs"], roofline["add_gbs"]) > 0
    for n, gflops in roofline["matmul_gflops"]:
        assert 0 < gflops <= peak, n  # a median rate never beats the best one
    assert_pngs(result["plots"])

    # The conclusions quote table A's own ratios, and say how far to trust them.
    ms = {(conv, direction, kernels): t for conv, direction, kernels, t, *_ in rows}
    conv1 = ms["LeNet conv1", "forward", "numpy (reference)"] / ms["LeNet conv1", "forward",
                                                                     "numba"]
    conclusions = result["conclusions"]
    assert f"conv1 {conv1:.1f}x forward" in conclusions[0]
    assert [line[:2] for line in conclusions if line[1] == "."] == ["A.", "B.", "C."]
    before, after = result["machine"]
    assert before.cores == after.cores > 0 and 0 < before.core_share and 0 < after.core_share
    busy = before.busy(threads=1) or after.busy(threads=1, own_load=1)
    assert ("The machine was busy" in conclusions[-1]) == busy
    assert "--quick times batch-16 convolutions" in conclusions[-1]


def test_lesson_12_says_the_machine_is_busy_when_other_programs_want_its_core():
    lesson = load_lesson("12_kernels_and_hardware.py")
    machine = lesson["MachineLoad"]
    assert not machine(0.3, 2, 0.99).busy(threads=1)          # idle
    assert machine(2.9, 2, 0.98).busy(threads=1)              # 2.9 processes want 2 cores
    assert machine(0.3, 2, 0.6).busy(threads=1)               # the loop lost 40% of its core
    assert not machine(1.4, 2, 0.95).busy(threads=1)          # another program, the other core
    assert machine(1.4, 2, 0.95).busy(threads=2)              # which 2 BLAS threads would want
    assert not machine(2.3, 2, 0.97).busy(threads=1, own_load=1)  # the lesson's own thread
    assert machine(4.2, 2, 0.97).busy(threads=1, own_load=1)

    quiet, busy = machine(0.3, 2, 0.99), machine(2.9, 2, 0.55)
    assert busy.describe() == "load 2.9 on 2 cores, a single-threaded loop got 55% of a core"
    trust_line = lesson["trust_line"]
    assert trust_line(quiet, quiet, 1, quick=False).startswith("The machine stayed quiet")
    line = trust_line(quiet, busy, 1, quick=False)  # busy by the end of the run
    assert line.startswith("The machine was busy (load 0.3") and "rerun on an idle machine" in line
