"""What structured pruning buys once the model is physically shrunk: LeNet-5 against itself
with half of each conv layer's filters removed.

    python benchmarks/shrink.py [--repeats N] [--kernels numba|numpy]

The filters with the smallest L1 norm (Li et al. 2017) are zeroed in ``weight.data``, half per
conv layer (conv1 6 -> 3, conv2 16 -> 8, so fc1 400 -> 200 inputs), then ``prune.shrink`` cuts
them out. Fine-tuning changes the values, not the shapes, so it does not change these timings
and is left out. Both models run with the same kernel set (default: Numba), batch 256:
inference (eval, no_grad) and a training step (cross-entropy, SGD with momentum). The table
gives medians after warm-up (the two models timed in turns), speedup = original / shrunk
(target 1.6), and the same ratio of the fastest runs, which load from other processes
disturbs least. A second table times each layer's forward pass in inference, to show where the
time goes.

On a small shared machine NumPy's BLAS threads (the Linear layers) can wait a whole scheduler
time slice (4 ms here) for a core, once per matmul whatever its size (docs/performance.md,
Threads); shrinking does not remove those waits, so they flatten the ratio. For steady numbers:

    OPENBLAS_NUM_THREADS=1 python benchmarks/shrink.py
"""

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np

import minigrad as mg
from minigrad import backend
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.prune.shrink import shrink
from minigrad.report import format_table
from minigrad.timing import times_in_turns

BATCH, TARGET = 256, 1.6


def zero_smallest_filters(model, fraction=0.5):
    """Zero the ``fraction`` of each Conv2d's filters with the smallest L1 norm."""
    for module in model.modules():
        if isinstance(module, mg.nn.Conv2d):
            l1 = np.abs(module.weight.data).sum(axis=(1, 2, 3))
            module.weight.data[np.argsort(l1)[:int(len(l1) * fraction)]] = 0
    return model


def inference(model, x):
    model.eval()

    def step():
        with mg.no_grad():
            model(x)
    return step


def training_step(model, x, y):
    model.train()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def layer_times(model, x, repeats):
    """Median forward time of each leaf layer (inference), from pre- and post-forward hooks."""
    times, started = defaultdict(list), {}
    leaves = [(name, m) for name, m in model.named_modules()
              if next(m.children(), None) is None]
    handles = []
    for name, module in leaves:
        handles.append(module.register_forward_pre_hook(
            lambda m, args, name=name: started.__setitem__(name, time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda m, args, out, name=name: times[name].append(
                time.perf_counter() - started[name])))
    step = inference(model, x)
    for _ in range(repeats + 3):
        step()
    for handle in handles:
        handle.remove()
    return {name: float(np.median(times[name][3:])) for name, _ in leaves}


def describe(module):
    return f"{type(module).__name__}({module.extra_repr()})".replace("kernel_size=", "k=")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--kernels", choices=sorted(backend.CPU_KERNEL_SETS))
    args = parser.parse_args(argv)
    if args.kernels:
        backend.set_cpu_kernels(args.kernels)

    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    original = zero_smallest_filters(LeNet5())
    x = mg.tensor(rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32))
    y = mg.tensor(rng.integers(0, 10, size=BATCH))
    shrunk, report = shrink(original, x[:2], return_report=True)
    original.eval(), shrunk.eval()
    with mg.no_grad():
        gap = float(np.abs(original(x).data - shrunk(x).data).max())
    print(report)
    print(f"largest output difference, batch {BATCH}: {gap:.2e}\n")

    rows = []
    for workload, build in (("inference", lambda m: inference(m, x)),
                            ("training step", lambda m: training_step(m, x, y))):
        # in turns after 3 warm-up rounds, so a burst of load hits both columns alike
        times = times_in_turns([build(m) for m in (original, shrunk)], args.repeats, warmup=3)
        median, best = ([f(t) for t in times] for f in (statistics.median, min))
        rows.append((f"LeNet-5 {workload} b{BATCH}", 1e3 * median[0], 1e3 * median[1],
                     median[0] / median[1], best[0] / best[1], TARGET))
    print(f"kernels: {backend.kernels('cpu').__name__}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; {args.repeats} runs each\n")
    print(format_table(["workload", "original ms", "shrunk ms", "speedup", "best-run speedup",
                        "target"], rows, [None, ".2f", ".2f", ".2f", ".2f", ".1f"]))

    per_layer = [layer_times(m, x, args.repeats) for m in (original, shrunk)]
    modules = [dict(m.named_modules()) for m in (original, shrunk)]
    print()
    print(format_table(
        ["layer", "original", "ms", "shrunk", "ms", "speedup"],
        [(name, describe(modules[0][name]), 1e3 * t, describe(modules[1][name]),
          1e3 * per_layer[1][name], t / per_layer[1][name]) for name, t in per_layer[0].items()],
        [None, None, ".3f", None, ".3f", ".2f"]))
    return rows


if __name__ == "__main__":
    main()
