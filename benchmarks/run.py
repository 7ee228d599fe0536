"""Side-by-side timings: minigrad's kernel sets against PyTorch, as one table of ratios.

    python benchmarks/run.py [--gpu] [--json FILE] [--repeats N]

Workloads (PyTorch runs the very same model definitions: minigrad.nn has PyTorch's names):

    W1  sgemm 512 x 512 x 512, float32 (GFLOP/s)
    W2  conv2d forward + backward, batch 64, 3 -> 32 channels, 3x3, pad 1, 32x32
    W3  conv2d forward + backward, batch 64, 32 -> 64 channels, 3x3, pad 1, 16x16
    W4  LeNet-5 training step, batch 64, SGD with momentum (images/s)
    W5  MLP 784-300-100-10 training step, batch 128
    W6  LeNet-5 inference, batch 256

Columns: the median time per run for minigrad with the NumPy reference kernels, with the Numba
kernels (when registered) and for PyTorch; ratio = torch time / minigrad (numba) time, so 1.0
means as fast as PyTorch. Every library uses all cores (torch.set_num_threads(os.cpu_count())).
With ``--gpu`` the same workloads run on CUDA (minigrad through CuPy) against PyTorch CUDA.
Machines here are shared and noisy: read the ratios of one run, not absolute times across runs.
"""

import argparse
import importlib.util
import json
import os
import statistics
import time

import numpy as np

import minigrad as mg
from minigrad import backend

TARGETS = {"W1": None, "W2": 0.7, "W3": 0.7, "W4": 1.0, "W5": 0.8, "W6": 1.0}


class Framework:
    """The few calls in which minigrad and PyTorch differ, behind one interface."""

    def __init__(self, name, device):
        self.name, self.device = name, device
        if name == "torch":
            import torch

            torch.set_num_threads(os.cpu_count())
            self.lib, self.nn, self.optim = torch, torch.nn, torch.optim
            self.F = torch.nn.functional
            self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        else:
            import minigrad.nn
            import minigrad.optim

            self.lib, self.nn, self.optim, self.F = mg, minigrad.nn, minigrad.optim, mg.nn.functional
            self.sync = lambda: backend.synchronize(device)

    def tensor(self, array, requires_grad=False):
        if self.name == "torch":
            return self.lib.tensor(array, device=self.device, requires_grad=requires_grad)
        return mg.tensor(array, requires_grad=requires_grad, device=self.device)

    def model(self, module):
        return module.to(self.device)


def lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def mlp(nn):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


RNG = np.random.default_rng(0)


def sgemm(fw):
    a, b = (fw.tensor(RNG.standard_normal((512, 512), dtype=np.float32)) for _ in range(2))
    return lambda: a @ b


def conv_step(c_in, c_out, size):
    def build(fw):
        conv = fw.model(fw.nn.Conv2d(c_in, c_out, 3, padding=1))
        x = fw.tensor(RNG.standard_normal((64, c_in, size, size), dtype=np.float32), True)

        def step():
            conv(x).sum().backward()
        return step
    return build


def training_step(make_model, batch, image_shape):
    def build(fw):
        model = fw.model(make_model(fw.nn))
        optimizer = fw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = fw.tensor(RNG.standard_normal((batch,) + image_shape, dtype=np.float32))
        y = fw.tensor(RNG.integers(0, 10, size=batch))

        def step():
            loss = fw.F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return step
    return build


def lenet_inference(fw):
    model = fw.model(lenet(fw.nn)).eval()
    x = fw.tensor(RNG.standard_normal((256, 1, 28, 28), dtype=np.float32))

    def step():
        with fw.lib.no_grad():
            model(x)
    return step


WORKLOADS = [
    ("W1", "sgemm 512^3 (GFLOP/s)", sgemm, 2 * 512**3),
    ("W2", "conv 3->32 3x3 32x32 fwd+bwd", conv_step(3, 32, 32), None),
    ("W3", "conv 32->64 3x3 16x16 fwd+bwd", conv_step(32, 64, 16), None),
    ("W4", "LeNet-5 train step b64 (img/s)", training_step(lenet, 64, (1, 28, 28)), 64),
    ("W5", "MLP 784-300-100-10 train b128", training_step(mlp, 128, (784,)), None),
    ("W6", "LeNet-5 inference b256 (img/s)", lenet_inference, 256),
]


def median_seconds(step, sync, repeats):
    for _ in range(3):  # warm-up: JIT compilation, allocator caches
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def minigrad_sets(device):
    """(column name, kernel set) pairs to time for minigrad on this device."""
    if device == "cuda":
        return [("minigrad", None)]
    return [(f"minigrad ({name})", name) for name in ("numpy", "numba")
            if name in backend.CPU_KERNEL_SETS]


def time_workloads(device, repeats, with_torch):
    results = {}
    for key, _, build, _ in WORKLOADS:
        row = {}
        for column, kernel_set in minigrad_sets(device):
            if kernel_set is not None:
                backend.set_cpu_kernels(kernel_set)
            mg.manual_seed(0)
            fw = Framework("minigrad", device)
            row[column] = median_seconds(build(fw), fw.sync, repeats)
        if with_torch:
            fw = Framework("torch", device)
            row["torch"] = median_seconds(build(fw), fw.sync, repeats)
        results[key] = row
    return results


def hand_written_gemm(repeats):
    """The Numba cache-blocked GEMM against NumPy's BLAS, both at 512^3 float32."""
    if backend.default_cpu_kernels() != "numba":  # Numba is not installed
        return None
    from gemm_blocked import gemm_blocked  # benchmarks/gemm_blocked.py, beside this script

    a, b = (RNG.standard_normal((512, 512), dtype=np.float32) for _ in range(2))
    blocked = median_seconds(lambda: gemm_blocked(a, b), lambda: None, repeats)
    blas = median_seconds(lambda: a @ b, lambda: None, repeats)
    return {"gemm_blocked": blocked, "numpy_blas": blas}


def format_value(seconds, per_run):
    """GFLOP/s or images/s where the workload counts them, else milliseconds."""
    if per_run is None:
        return f"{1e3 * seconds:9.2f} ms"
    scale, unit = (1e-9, "GF/s") if per_run > 1e6 else (1, "img/s")
    return f"{scale * per_run / seconds:9.1f} {unit}"


def print_table(results, device):
    columns = list(next(iter(results.values())))
    fast = [c for c in columns if c != "torch"][-1]
    print(f"device: {device}; threads: {os.cpu_count()}; median per run\n")
    header = f"{'':4}{'workload':32}" + "".join(f"{c:>18}" for c in columns)
    print(header + (f"{'torch / ' + fast:>28}{'target':>8}" if "torch" in columns else ""))
    for key, name, _, per_run in WORKLOADS:
        row = results[key]
        line = f"{key:4}{name:32}" + "".join(f"{format_value(row[c], per_run):>18}"
                                              for c in columns)
        if "torch" in row:
            target = TARGETS[key]
            line += f"{row['torch'] / row[fast]:28.2f}{'' if target is None else target:>8}"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", action="store_true", help="also run the workloads on CUDA")
    parser.add_argument("--json", help="write the timings (seconds) to this file")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    with_torch = importlib.util.find_spec("torch") is not None
    if not with_torch:
        print("PyTorch is not installed: minigrad columns only (pip install torch==2.13.0)")

    report = {"cpu": time_workloads("cpu", args.repeats, with_torch)}
    print_table(report["cpu"], "cpu")
    gemm = hand_written_gemm(args.repeats)
    if gemm is not None:
        report["gemm"] = gemm
        print(f"\nhand-written blocked GEMM (numba) 512^3: "
              f"{2 * 512**3 / gemm['gemm_blocked'] * 1e-9:.1f} GFLOP/s, "
              f"{gemm['numpy_blas'] / gemm['gemm_blocked']:.2f}x numpy's BLAS (target 0.5)")
    if args.gpu:
        report["cuda"] = time_workloads("cuda", args.repeats, with_torch)
        print()
        print_table(report["cuda"], "cuda")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == "__main__":
    main()
