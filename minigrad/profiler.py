"""An op profiler: how many times each op ran, and how long its forward and backward took.

    from minigrad.profiler import profile

    with profile() as prof:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    print(prof.table())

    op                   calls  forward ms  backward ms  total ms  % of total
    Linear                   2       0.061        0.029     0.090       44.6%
    SoftmaxCrossEntropy      1       0.043        0.005     0.048       23.8%
    ...
    total                    6       0.140        0.062     0.202      100.0%

An op is a ``Function`` subclass, named by its class: composites such as ``mean`` show up as
the ops they are built from (``Sum`` and ``Mul``). The times are those of the op's own
``forward`` and ``backward`` on arrays, measured with ``time.perf_counter``; the engine's work
around them (wrapping results in Tensors, summing broadcast gradients, accumulating ``.grad``)
is not counted. Forward calls are counted whether or not a graph is recorded (``no_grad``
included); backward calls are the nodes that ``backward()`` went through. A recording profile
is an op observer of the engine (``autograd.register_op_observer``): the engine calls it around
each op call, and knows nothing of profiling.

Rules:

* Nested ``profile()`` blocks: each is an observer of its own, so each op is recorded by the
  inner block and by every block around it, and an outer profile still sees everything.
* Leaving the block, normally or by an exception, turns this profile off again.
* ``MINIGRAD_PROFILE=1`` in the environment profiles the whole process from ``import minigrad``
  and prints the table to stderr at exit (stderr, so a program's own output stays clean).
* On a GPU, CuPy returns before a kernel has run. The profiler waits for the device before and
  after each op that gets CuPy arrays, so the times are the op's real GPU time; the waiting
  also means a profiled GPU run is slower than an unprofiled one.
* One profiler for the whole process: ops run by other threads are recorded too.
* The first call of a Numba kernel includes loading or compiling it: profile after a warm-up
  step to see the steady state.
"""

import atexit
import dataclasses
import sys
import time

from minigrad import autograd
from minigrad.backend import is_cupy_array, synchronize
from minigrad.report import format_table


@dataclasses.dataclass
class OpStats:
    """The calls of one op while profiling, and the seconds spent in its forward and backward."""

    op: str
    calls: int = 0
    forward_s: float = 0.0
    backward_calls: int = 0
    backward_s: float = 0.0

    @property
    def total_s(self):
        """forward_s + backward_s."""
        return self.forward_s + self.backward_s


class profile:
    """Record every op run inside ``with profile() as prof:``; read ``prof.stats`` or
    ``prof.table()`` afterwards. Entering the same profile again adds to its records."""

    def __init__(self):
        self._records = {}  # op name -> OpStats
        self._handle = None  # the engine's handle on this observer while it records

    @property
    def recording(self):
        return self._handle is not None

    def __enter__(self):
        if self.recording:
            raise RuntimeError("profile: this profile is already recording; nest a new "
                               "profile() instead")
        self._handle = autograd.register_op_observer(self.observe)
        return self

    def __exit__(self, *exc_info):
        self._handle.remove()
        self._handle = None
        return False

    def observe(self, node, phase, arrays, call):
        """The op observer: make the call (the forward or backward of ``node``, ``phase``)
        timed, record it under the op's name, and return what it returns."""
        device = "cuda" if any(is_cupy_array(array) for array in arrays) else "cpu"
        synchronize(device)  # finish earlier work first, or its time is charged to this op
        start = time.perf_counter()
        result = call()
        synchronize(device)
        self._record(type(node).__name__, phase, time.perf_counter() - start)
        return result

    def _record(self, name, phase, seconds):
        stats = self._records.get(name)
        if stats is None:
            stats = self._records[name] = OpStats(name)
        if phase == "forward":
            stats.calls += 1
            stats.forward_s += seconds
        else:
            stats.backward_calls += 1
            stats.backward_s += seconds

    @property
    def stats(self):
        """One ``OpStats`` per op that ran (copies), by total time, longest first."""
        records = sorted(self._records.values(), key=lambda s: (-s.total_s, s.op))
        return [dataclasses.replace(record) for record in records]

    def table(self, limit=None):
        """The stats as a text table (the ``limit`` slowest ops, all by default) and a last
        row "total" over all ops: calls, forward, backward and total milliseconds, and each
        op's share of the total time."""
        stats = self.stats
        total = OpStats("total", sum(s.calls for s in stats), sum(s.forward_s for s in stats),
                        sum(s.backward_calls for s in stats), sum(s.backward_s for s in stats))

        def row(s):
            share = s.total_s / total.total_s if total.total_s > 0 else None
            return (s.op, s.calls, 1e3 * s.forward_s, 1e3 * s.backward_s, 1e3 * s.total_s,
                    share)

        rows = [row(s) for s in stats[:limit]] + [row(total)]
        return format_table(["op", "calls", "forward ms", "backward ms", "total ms",
                             "% of total"], rows, formats=[None, "d", ".3f", ".3f", ".3f", ".1%"])


def profile_process():
    """Profile from now until the process exits, then print the table to stderr (what
    ``MINIGRAD_PROFILE=1`` does). Returns the profile."""
    process_profile = profile().__enter__()
    atexit.register(lambda: print(f"minigrad profile (MINIGRAD_PROFILE=1):\n"
                                  f"{process_profile.table()}", file=sys.stderr))
    return process_profile
