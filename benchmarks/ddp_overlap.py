"""Does starting the gradient all-reduces inside backward pay? DDP's two schedules, timed.

    OPENBLAS_NUM_THREADS=1 .venv/bin/mpiexec -n 2 .venv/bin/python benchmarks/ddp_overlap.py \
        [--repeats 40] [--batch 64] [--bucket-cap-mb 1.0]

An MLP 784-1024-1024-10 (1.86 M parameters, 7.1 MB of float32 gradient), a batch of
``--batch`` random images per rank. What is timed is ``loss.backward()`` alone (the forward
runs untimed before it), in three setups:

* backward only: the plain model, no communication (the floor);
* DDP, overlap=False: every bucket's ``Iallreduce`` starts once the last gradient is ready
  and backward waits for them: communication after computation;
* DDP, overlap=True: a bucket's ``Iallreduce`` starts as soon as its last gradient is ready,
  while backward computes the layers below it.

The rounds alternate the setups (their order turned around every round, so neither always
goes first); before each timed backward the ranks meet at a barrier, and a round's time is
the slower rank's (the step ends when both have their averaged gradients). Rows: median and
range (min-max) in milliseconds over ``--repeats`` rounds, after 3 untimed ones. "hidden" is
the share of communication that overlap took off the clock: (after - overlap) / (after -
backward only). Machines here are shared and noisy: compare rows of one run.
"""

import argparse
import statistics
import time

import numpy as np

import minigrad as mg
from minigrad import parallel
from minigrad.models import MLP
from minigrad.nn import functional as F
from minigrad.report import format_table

SIZES = [784, 1024, 1024, 10]
WARMUP = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bucket-cap-mb", type=float, default=1.0)
    return parser.parse_args(argv)


def setups(bucket_cap_mb):
    """(name, model) for each setup; every model starts from the same weights."""
    made = []
    for name, overlap in [("backward only", None), ("DDP, overlap=False", False),
                          ("DDP, overlap=True", True)]:
        mg.manual_seed(0)
        model = MLP(SIZES)
        if overlap is not None:
            model = parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb,
                                                     overlap=overlap)
        made.append((name, model))
    return made


def backward_seconds(model, x, y):
    """Seconds of one ``loss.backward()`` (forward untimed), started by all ranks together."""
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    parallel.barrier()
    start = time.perf_counter()
    loss.backward()
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    parallel.init()
    if parallel.world_size() < 2:
        raise SystemExit("ddp_overlap: run it on several ranks, e.g. OPENBLAS_NUM_THREADS=1 "
                         ".venv/bin/mpiexec -n 2 .venv/bin/python benchmarks/ddp_overlap.py")
    rng = np.random.default_rng(parallel.rank())
    x = mg.tensor(rng.standard_normal((args.batch, 784)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 10, args.batch))
    made = setups(args.bucket_cap_mb)
    times = [[] for _ in made]
    for round_ in range(WARMUP + args.repeats):
        order = list(range(len(made)))[::1 if round_ % 2 == 0 else -1]
        for index in order:
            seconds = backward_seconds(made[index][1], x, y)
            if round_ >= WARMUP:
                times[index].append(seconds)
    slowest = parallel.all_reduce(np.array(times), "max")  # per round: the slower rank
    if not parallel.is_main():
        return
    medians = [statistics.median(row) * 1e3 for row in slowest]
    rows = [[name, median, min(row) * 1e3, max(row) * 1e3]
            for (name, _), median, row in zip(made, medians, slowest)]
    ddp = made[2][1]
    communication = medians[1] - medians[0]
    hidden = (medians[1] - medians[2]) / communication if communication > 0 else None
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch} per rank, "
          f"{parallel.world_size()} ranks, {len(ddp.buckets)} buckets of at most "
          f"{args.bucket_cap_mb:g} MB; {args.repeats} rounds")
    print(format_table(["setup", "median ms", "min ms", "max ms"], rows,
                       [None, ".2f", ".2f", ".2f"]))
    print(f"communication after backward: {communication:.2f} ms; overlap hides "
          + ("-" if hidden is None else f"{hidden:.0%}") + " of it")


if __name__ == "__main__":
    main()
