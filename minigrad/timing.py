"""Wall-clock timing for benchmarks and lessons, made fair on a shared, noisy machine.

The calls being compared run in turns (a, b, a, b, ...), so a burst of load from elsewhere
slows them all alike, and a few untimed warm-up rounds come first (Numba compiles a kernel on
its first call; the allocator and the caches fill). Report medians, which a few slow outliers
do not move.
"""

import statistics
import time

from minigrad.autograd import no_grad


def times_in_turns(calls, repeats, warmup=2):
    """Seconds of every run of each call: ``repeats`` rounds, each running the ``calls`` in
    turn, after ``warmup`` untimed rounds. Returns one list of ``repeats`` times per call."""
    for _ in range(warmup):
        for call in calls:
            call()
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, record in zip(calls, times):
            start = time.perf_counter()
            call()
            record.append(time.perf_counter() - start)
    return times


def median_seconds(calls, repeats, warmup=2):
    """The median of ``times_in_turns`` for each call, in seconds."""
    return [statistics.median(record) for record in times_in_turns(calls, repeats, warmup)]


def inference_seconds(model, x, repeats=15):
    """The median seconds of ``model(x)`` in eval mode without a graph: what serving costs."""
    model.eval()

    def forward():
        with no_grad():
            model(x)
    return median_seconds([forward], repeats)[0]
