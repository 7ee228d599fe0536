"""profile: op counts of a known training step, times and the table, on/off, MINIGRAD_PROFILE."""

import os
import subprocess
import sys

import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.profiler import OpStats, profile

# One step of Linear(4, 8) -> ReLU -> Linear(8, 3) -> cross_entropy (mean): the layers are the
# fused Linear op, ReLU and the fused SoftmaxCrossEntropy; the mean is Sum then Mul by 1/N.
# Every node records a graph (the weights require grad), so backward runs each once. SGD and
# zero_grad work on raw arrays and run no op.
OPS_PER_STEP = {"Linear": 2, "ReLU": 1, "SoftmaxCrossEntropy": 1, "Sum": 1, "Mul": 1}


def mlp_and_batch():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, mg.randn(5, 4), mg.tensor([0, 1, 2, 0, 1])


def train_steps(model, x, target, steps):
    optimizer = SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()


def table_rows(table):
    """{op: [calls, forward ms, backward ms, total ms]} from the text table."""
    return {cells[0]: [float(cell) for cell in cells[1:5]]
            for cells in (line.split() for line in table.splitlines()[1:])}


def test_counts_every_forward_and_backward_call_of_a_training_step():
    model, x, target = mlp_and_batch()
    with profile() as prof:
        train_steps(model, x, target, steps=2)

    counts = {s.op: (s.calls, s.backward_calls) for s in prof.stats}
    assert counts == {op: (2 * n, 2 * n) for op, n in OPS_PER_STEP.items()}


def test_forward_only_ops_are_counted_without_backward_calls():
    model, x, _ = mlp_and_batch()
    with profile() as prof, mg.no_grad():
        model(x)
    # Under no_grad the Sequential runs the first Linear and its ReLU as one Linear op.
    assert {(s.op, s.calls, s.backward_calls, s.backward_s) for s in prof.stats} == {
        ("Linear", 2, 0, 0.0)}


def test_stats_are_sorted_by_total_time_and_times_are_nonnegative():
    model, x, target = mlp_and_batch()
    with profile() as prof:
        train_steps(model, x, target, steps=3)

    stats = prof.stats
    assert all(isinstance(s, OpStats) for s in stats)
    assert all(s.forward_s >= 0 and s.backward_s >= 0 for s in stats)
    assert all(s.total_s == s.forward_s + s.backward_s for s in stats)
    totals = [s.total_s for s in stats]
    assert totals == sorted(totals, reverse=True)


def test_the_table_lists_ops_by_total_time_and_its_total_row_sums_them():
    model, x, target = mlp_and_batch()
    with profile() as prof:
        train_steps(model, x, target, steps=3)

    table = prof.table()
    assert table.splitlines()[0].split() == ["op", "calls", "forward", "ms", "backward", "ms",
                                             "total", "ms", "%", "of", "total"]
    rows = table_rows(table)
    total = rows.pop("total")
    assert list(rows) == [s.op for s in prof.stats]
    assert total[0] == sum(calls for calls, *_ in rows.values()) == 3 * sum(OPS_PER_STEP.values())
    # Each cell is rounded to 0.001 ms.
    assert total[3] == pytest.approx(sum(s.total_s for s in prof.stats) * 1e3, abs=1e-3)
    assert total[3] == pytest.approx(sum(row[3] for row in rows.values()),
                                     abs=1e-3 * (len(rows) + 1))
    for calls, forward_ms, backward_ms, total_ms in rows.values():
        assert total_ms == pytest.approx(forward_ms + backward_ms, abs=2e-3)
    assert table.splitlines()[-1].endswith("100.0%")

    limited = table_rows(prof.table(limit=2))
    assert list(limited) == [s.op for s in prof.stats[:2]] + ["total"]
    assert limited["total"] == total  # the total is still over every op


def test_an_empty_profile_has_a_zero_total():
    with profile() as prof:
        pass
    assert prof.stats == []
    assert prof.table().splitlines()[1].split() == ["total", "0", "0.000", "0.000", "0.000", "-"]


def test_off_by_default_and_after_the_block_even_when_it_raises():
    model, x, target = mlp_and_batch()
    prof = profile()
    assert not prof.recording
    with pytest.raises(ValueError, match="boom"):
        with prof:
            assert prof.recording
            model(x)
            raise ValueError("boom")
    assert not prof.recording

    train_steps(model, x, target, steps=1)  # outside the block: not recorded
    assert {(s.op, s.calls) for s in prof.stats} == {("Linear", 2), ("ReLU", 1)}


def test_nested_profiles_both_record_the_inner_ops():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with profile() as outer:
        x.exp()
        with profile() as inner:
            x.sum().backward()
        assert outer.recording and not inner.recording
    assert {(s.op, s.calls, s.backward_calls) for s in inner.stats} == {("Sum", 1, 1)}
    assert {(s.op, s.calls, s.backward_calls) for s in outer.stats} == {("Exp", 1, 0),
                                                                        ("Sum", 1, 1)}
    with pytest.raises(RuntimeError, match="already recording"), outer, outer:
        pass
    assert not outer.recording


def test_stats_are_a_snapshot():
    x = mg.tensor([1.0, 2.0])
    with profile() as prof:
        x.exp()
        before = prof.stats
        x.exp()
    assert before[0].calls == 1 and prof.stats[0].calls == 2


def test_gpu_ops_are_timed_between_two_device_synchronizations(monkeypatch):
    """With CuPy arrays the profiler waits for the device before and after each op (faked
    here: the test machine may have no GPU)."""
    from minigrad import backend, profiler

    waits = []

    class FakeDevice:
        def synchronize(self):
            waits.append("sync")

    class FakeCupy:
        class cuda:
            Device = FakeDevice

    monkeypatch.setattr(profiler, "is_cupy_array", lambda array: hasattr(array, "shape"))
    monkeypatch.setattr(backend, "cupy_module", lambda: FakeCupy)
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with profile():
        x.sum().backward()
    assert waits == ["sync"] * 4  # Sum's forward and backward


def test_env_var_profiles_the_process_and_prints_the_table_at_exit():
    script = ("import minigrad as mg\n"
              "x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
              "for _ in range(3):\n"
              "    (x * x).sum().backward()\n"
              "print('done')\n")
    env = dict(os.environ, MINIGRAD_PROFILE="1")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout == "done\n"
    title, *table = result.stderr.strip().splitlines()
    assert title == "minigrad profile (MINIGRAD_PROFILE=1):"
    rows = table_rows("\n".join(table))
    assert sorted(rows) == ["Mul", "Sum", "total"]
    assert rows["Mul"][0] == rows["Sum"][0] == 3 and rows["total"][0] == 6


def test_without_the_env_var_nothing_is_printed():
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_PROFILE"}
    result = subprocess.run([sys.executable, "-c", "import minigrad as mg; mg.ones(2).exp()"],
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    assert result.stderr == ""
