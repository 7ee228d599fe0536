"""Lesson 12 (kernels and hardware) runs end to end and reaches the numbers it teaches."""

from lesson_runs import assert_pngs, run_quick


def test_lesson_12_kernels_match_the_reference_the_profile_and_the_roofline(tmp_path, capsys):
    result = run_quick("12_kernels_and_hardware.py", tmp_path, capsys, [
        "max abs diff", "im2col ms", "% of total", "dominant ops", "roof GFLOP/s"])
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
