"""How much does minigrad's autograd cost next to PyTorch's, on the CPU?

    python benchmarks/autograd_overhead.py [--repeats 20]

Workloads (each one forward + backward, timed as the median of ``--repeats`` runs):

* A1 scalar chain: 1,000 multiplications of a 0-d tensor, then backward. Pure per-op
  overhead (Python dispatch, graph building, the topological sort); no arithmetic to speak of.
* A2 MLP 784-300-100-10, batch 64, ReLU, log_softmax, mean NLL via indexing: the matmuls
  dominate, so both frameworks mostly wait on BLAS.
* A3 elementwise soup: 20 elementwise ops on a 256x256 tensor: memory-bound NumPy ufuncs.

Ratio = torch_time / minigrad_time (1.0 means as fast as PyTorch; 0.1 means ten times slower).
Both run with the same number of threads. Nothing here is a unit test: the machine is shared
and noisy, so compare the ratio within one run, not absolute times across runs.
"""

import argparse
import os
import statistics
import time

import numpy as np

import minigrad as mg


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scalar_chain(requires_grad_tensor, length=1000):
    def run():
        x = requires_grad_tensor()
        y = x
        for _ in range(length):
            y = y * 1.0001
        y.backward()
    return run


def mlp_step(make, batch=64):
    rng = np.random.default_rng(0)
    sizes = [784, 300, 100, 10]
    weights = [make((rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32), True)
               for m, n in zip(sizes, sizes[1:])]
    images = make(rng.standard_normal((batch, 784)).astype(np.float32), False)
    labels = rng.integers(0, 10, size=batch)

    def run():
        h = images
        for i, w in enumerate(weights):
            h = h @ w
            if i < len(weights) - 1:
                h = h.relu()
        loss = -h.log_softmax(-1)[np.arange(batch), labels].mean()
        loss.backward()
    return run


def elementwise_soup(make):
    x = make(np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32), True)

    def run():
        y = x
        for _ in range(5):
            y = (y * 0.5 + 1.0).tanh() * y - y.sigmoid()
        y.sum().backward()
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: only minigrad times are shown "
              "(pip install torch==2.13.0 for the comparison)")
    threads = os.cpu_count()
    if torch is not None:
        torch.set_num_threads(threads)

    def mg_make(array, grad):
        return mg.tensor(array, requires_grad=grad)

    def torch_make(array, grad):
        return torch.tensor(array, requires_grad=grad)

    workloads = [
        ("A1 scalar chain, 1000 muls", scalar_chain(lambda: mg.tensor(1.0, requires_grad=True)),
         torch and scalar_chain(lambda: torch.tensor(1.0, requires_grad=True))),
        ("A2 MLP 784-300-100-10, batch 64", mlp_step(mg_make), torch and mlp_step(torch_make)),
        ("A3 elementwise, 20 ops on 256x256", elementwise_soup(mg_make),
         torch and elementwise_soup(torch_make)),
    ]
    print(f"threads: {threads}; median of {args.repeats} runs; forward + backward\n")
    print(f"{'workload':36} {'minigrad ms':>12} {'torch ms':>10} {'torch/minigrad':>15}")
    for name, ours, theirs in workloads:
        ours_time = median_time(ours, args.repeats)
        if theirs:
            theirs_time = median_time(theirs, args.repeats)
            print(f"{name:36} {1e3 * ours_time:12.3f} {1e3 * theirs_time:10.3f} "
                  f"{theirs_time / ours_time:15.2f}")
        else:
            print(f"{name:36} {1e3 * ours_time:12.3f} {'-':>10} {'-':>15}")


if __name__ == "__main__":
    main()
