"""How long a fresh process takes to reach the end of its first LeNet-5 training step.

    python benchmarks/first_step.py [--processes 3]

Numba compiles each kernel the first time it runs and caches the machine code on disk
(``cache=True``), so only the very first process on a machine pays the compile; every later
one loads the cache. Each row below is a new Python process, timed from its start (imports
included) to the end of one SGD step of LeNet-5 on a batch of 64. Target: under 2 s once the
cache is warm (any row after the first, or all of them if an earlier run filled the cache).
"""

import argparse
import subprocess
import sys

from minigrad.report import format_table

ONE_STEP = """
import time
start = time.perf_counter()
import numpy as np
import minigrad as mg
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD
model = LeNet5()
optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
x = mg.tensor(np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32))
loss = F.cross_entropy(model(x), mg.tensor(np.arange(64) % 10))
optimizer.zero_grad()
loss.backward()
optimizer.step()
print(time.perf_counter() - start)
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for index in range(args.processes):
        seconds = float(subprocess.run([sys.executable, "-c", ONE_STEP], check=True,
                                       capture_output=True, text=True).stdout)
        rows.append((index + 1, seconds))
    print(format_table(["process", "seconds to the end of the first step"], rows, [None, ".2f"]))
    return rows


if __name__ == "__main__":
    main()
