"""timing: the compared calls run in turns after untimed warm-up rounds; medians of each;
inference timed in eval mode without building a graph."""

import itertools

import minigrad as mg
from minigrad import nn, timing


def test_calls_run_in_turns_after_the_warm_up_rounds():
    order = []
    calls = [lambda: order.append("a"), lambda: order.append("b")]
    times = timing.times_in_turns(calls, repeats=3, warmup=2)
    assert order == ["a", "b"] * 5  # 2 untimed rounds, then 3 timed ones, a and b in turns
    assert [len(record) for record in times] == [3, 3]
    assert all(t >= 0 for record in times for t in record)


def test_median_seconds_is_the_median_of_each_calls_runs(monkeypatch):
    # A fake clock: each call of perf_counter moves it on by the next of these steps, so run k
    # of call a takes 1, 5, 2 s and of call b 10, 30, 20 s.
    steps = iter([0, 1, 0, 10, 0, 5, 0, 30, 0, 2, 0, 20])
    clock = itertools.accumulate(steps)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    assert timing.median_seconds([lambda: None, lambda: None], repeats=3, warmup=0) == [2, 20]


def test_inference_is_timed_in_eval_mode_without_a_graph():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((self.training, mg.is_grad_enabled()))
            return x * 2

    model = Probe()
    seconds = timing.inference_seconds(model, mg.ones(3), repeats=4)
    assert seconds >= 0 and len(seen) == 2 + 4  # warm-up rounds, then the timed ones
    assert set(seen) == {(False, False)} and not model.training

