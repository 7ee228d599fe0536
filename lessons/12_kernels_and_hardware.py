"""Lesson 12 — kernels and hardware: the same math at different speeds, and why.

Run:   .venv/bin/python lessons/12_kernels_and_hardware.py [--quick] [--seed N] [--out DIR]
       (``--help`` lists the flags every lesson takes; ``--quick``: batch-16 convolutions,
       smaller matmuls and arrays, fewer repeats; files go to runs/12_kernels_and_hardware/)

Everything runs on one core: this file sets OPENBLAS_NUM_THREADS=1 before NumPy loads (unless
it is set already), so BLAS runs serially like the Numba kernels and the roofline is one
core's. ``OPENBLAS_NUM_THREADS=2 .venv/bin/python lessons/12_...`` shows two cores, and what
happens to BLAS's threads when another program holds one of them (below).

Timings are only worth comparing on a quiet machine, so the lesson first measures how busy
this one is: the load average (processes running or waiting for a core over the last minute)
against the cores, and the share of a core a single-threaded loop gets in 0.2 s (CPU time /
wall time: 100% when no other program took turns on its core). It prints whether the machine
is busy before timing anything, and its conclusions at the end say how far to trust them.

A. One convolution through each kernel set: the NumPy reference (``backend/numpy_ref.py``), the
   Numba kernels (``backend/numba_cpu/``, the CPU default) and, when CuPy finds a GPU, the
   CUDA kernels (``backend/cupy_gpu.py``; skipped, with the reason, otherwise). Three shapes,
   batch 64: LeNet-5's conv1 (1->6, 5x5, padding 2, 28x28) and conv2 (6->16, 5x5, 14x14), and
   a wider 3x3 conv (32->64, padding 1, 16x16). Every result is compared with the reference's
   (max abs diff; the float32 sums run in another order: below 1e-6 of the largest value)
   and timed with ``minigrad.timing`` (the kernels in turns, median). A forward pass costs

       FLOPs_fwd = 2 N C_out H_out W_out C_in K K        (a multiply and an add per term)

   and a backward pass, both gradients, 2 FLOPs_fwd: dL/dx (W^T times the output gradient) and
   dL/dW (the output gradient times the input windows) each take as many multiply-adds as the
   forward product.

   Why the reference is slower: it makes the convolution one matrix product (im2col). A Python
   loop over the K*K kernel offsets copies a strided slice of the padded input per offset into
   a (C_in K K) x (N H_out W_out) matrix, K^2 H_out W_out / (H W) times the input's size (25x
   for conv1: 5.0 MB from 0.2 MB; 12.8x for conv2), then one BLAS GEMM multiplies it by the
   (C_out, C_in K K) weights: only 6 or 16 rows, a skinny product that BLAS runs below its
   peak. Backward builds the matrix again for dL/dW, and for dL/dx a gradient matrix as large
   that col2im adds back with K*K strided adds. The loop runs only K*K = 25 times; the time
   goes to the copies and the skinny GEMMs (the breakdown table times im2col and the GEMM
   apart). Numba reads the same terms in place, as contiguous runs of each flattened image, in
   2x4 register blocks (``numba_cpu/blocks.py``). From ``numba_cpu.conv.BLAS_FROM_OUT_CHANNELS`` =
   32 output channels on, it hands a convolution to ``numba_cpu/gemm_conv.py`` (im2col per
   chunk of images, then a threaded BLAS product written straight into NCHW), since BLAS wins
   there; the row "numba, own loops" lifts that switch for the wide conv.

B. Where a LeNet-5 training step (64 MNIST images from ``--data-dir`` or the bundled subset,
   SGD with momentum) spends its time:
   ``minigrad.profiler.profile`` times every op's forward and backward. One step, after warm-up
   steps (so Numba's compilation and first allocations are not measured), the fastest of
   several profiled one by one (the one other programs disturbed least); with the Numba
   kernels, then with the reference.

C. A roofline (Williams, Waterman & Patterson 2009): the fastest this machine could run a kernel.
   Peak compute P is the fastest float32 BLAS matmul (best of the repeats, over a sweep of sizes
   up to n = 2048); memory bandwidth B the faster of STREAM's copy (b = a) and add (c = a + b)
   on 64 MB arrays, best of the repeats. A kernel that does I FLOPs per byte it moves (its
   arithmetic intensity) runs at most at

       min(P, B I)  GFLOP/s,        the two roofs meeting at the ridge point I* = P / B.

   Bytes are the minimum compulsory traffic: every input read once and every output written
   once, 4 bytes per float32 value (an n x n matmul: 3 n^2 * 4 bytes, so I = n / 6; a
   convolution: x, W and out forward; dL/dout, x and W in, dL/dx and dL/dW out backward; ReLU,
   add, sum: 1 FLOP per 8, 12, 4 bytes). The caches and the destination's read before a write
   are not counted, so copy and add can differ by tens of percent in GB/s (which one wins
   depends on the machine: a large copy may stream past the caches and skip the destination's
   read, an add cannot). Left of the ridge a kernel is bound by memory, right of it by
   arithmetic; a point far under its roof is bound by neither: by the kernel. GPU kernels have
   roofs of their own and are not plotted.

What to look at: the first line (is the machine quiet?), table A and ``conv_kernels.png``
(Numba against the reference, pass by pass), the breakdown (im2col's copy costs about as much
as the GEMM), the profile (convolutions dominate a step; the reference's pooling takes a
quarter of it), and ``roofline.png``:
matmuls just under the compute roof, NumPy's add on the memory roof, LeNet's convolutions at
10-60 FLOP/byte, where only arithmetic should bound them, at 10-40% of the roof. The
conclusions at the end put those ratios in one place, hedged when the machine was busy.

Measured (default run, 15 s; ``--quick`` 5 s) on a 2-core AMD EPYC shared with other programs
(load average about 3), so expect other figures by tens of percent on another run:

A. GFLOP/s, reference -> Numba: conv1 14 -> 31 forward, 10 -> 21 backward; conv2 30 -> 40,
   19 -> 35; the wide conv 53 forward, 42 backward on BLAS, 51 and 49 with Numba's own loops
   (on one core the BLAS switch buys nothing here). Reference forward: im2col 0.38 ms and GEMM
   0.64 ms (24 GFLOP/s with 6 rows) for conv1, 0.52 and 0.53 ms (58 GFLOP/s) for conv2.
B. Step 5.5 ms with Numba (4.8 ms in ops): Conv2d 71%, MaxPool2d 11%, Linear 7%. With the
   reference 11.9 ms: Conv2d 65%, MaxPool2d 26% (four whole-array passes of ``where`` and an
   int64 winner array).
C. P = 105 GFLOP/s (one core; matmuls of n = 256-2048 ran at 101-103), B = 33 GB/s (copy 28),
   I* = 3.2 FLOP/byte. NumPy add 95% of its roof, ReLU into an allocated array 63%; minigrad's
   ReLU and add 28% and 54%: each call returns a new 64 MB array, fresh memory the operating
   system maps in page by page at the first write (and ReLU also writes its mask).

With OPENBLAS_NUM_THREADS=2 on the same busy machine the best matmul reached 156 GFLOP/s, but
the medians only 47-123, and the reference's LeNet convs fell to 1.5-6 GFLOP/s: a threaded
GEMM this small waits for its other thread whenever the scheduler has given that core to
another program (a 128 x 128 matmul took 16 ms instead of 0.04 ms). Numba's serial loops kept
conv2 at 33-35 GFLOP/s.
"""

import os
import sys

# One BLAS thread, like the serial Numba kernels, unless the caller chose (see the docstring).
# OpenBLAS reads the variable once, when NumPy loads it: setting it later would only mislead.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # write PNG files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import backend, cli  # noqa: E402
from minigrad.backend import numba_cpu, numpy_ref  # noqa: E402
from minigrad.data.mnist import normalized_mnist  # noqa: E402
from minigrad.models import LeNet5  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.optim import SGD  # noqa: E402
from minigrad.plot import save_png  # noqa: E402
from minigrad.profiler import profile  # noqa: E402
from minigrad.report import format_table  # noqa: E402
from minigrad.timing import median_seconds, times_in_turns  # noqa: E402

FLOAT32_BYTES = 4
UNIT = (1, 1)  # stride and dilation of every convolution here
REFERENCE, GPU = "numpy (reference)", "cupy (GPU)"
ABBREVIATED = {"forward": "fwd", "backward": "bwd"}
NUMPY_OUT = "NumPy, into an allocated array"
# Batch of part A's convs, timing repeats of parts A and C, profiled steps of part B (the
# fastest is shown), matmul sizes and STREAM array length (float32 values) of part C.
DEFAULT = {"batch": 64, "repeats_a": 31, "tries_b": 30, "repeats_c": 21,
           "matmul_sizes": (128, 256, 512, 1024, 2048), "stream_values": 2**24}
QUICK = {"batch": 16, "repeats_a": 11, "tries_b": 5, "repeats_c": 3,
         "matmul_sizes": (128, 256, 512, 1024), "stream_values": 2**23}
# A single-threaded loop that gets less of a core than this shared it with other programs.
FULL_CORE = 0.9


# ----------------------------------------------------------------------------- the machine
@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine is: the 1-minute load average (processes running or waiting for a
    core), its cores, and the share of a core a single-threaded loop got (CPU seconds per wall
    second: 1.0 when no other program took turns on its core)."""
    load: float
    cores: int
    core_share: float

    def busy(self, threads, own_load=0.0):
        """Whether timings taken now are noisy: the loop lost part of its core, or other
        programs (the load less ``own_load``, this lesson's own share of it) want more than
        the ``cores - threads`` cores the lesson leaves them, by over half a core."""
        other_load = self.load - own_load
        return self.core_share < FULL_CORE or other_load > self.cores - threads + 0.5

    def describe(self):
        return (f"load {self.load:.1f} on {self.cores} cores, a single-threaded loop got "
                f"{self.core_share:.0%} of a core")


def measure_machine(seconds=0.2):
    """The load average now, and the CPU time / wall time of a pure-Python loop of ``seconds``:
    when other programs take turns on its core, the loop's wall time runs on without it."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall_start < seconds:
        pass
    share = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    return MachineLoad(os.getloadavg()[0], os.cpu_count(), share)


def report_machine(threads):
    """Measure the machine before anything is timed and say whether its timings can be
    trusted."""
    cli.stage("the machine", "is it quiet enough to time kernels? (its load average and a "
                             "0.2 s single-threaded loop)")
    machine = measure_machine()
    if machine.busy(threads):
        print(f"the machine is busy ({machine.describe()}): timings below are noisy; rerun on "
              "an idle machine before comparing kernels")
    else:
        print(f"the machine is quiet ({machine.describe()}): timings below should be fair")
    return machine


# ----------------------------------------------------------------------------- A
@dataclass(frozen=True)
class ConvShape:
    """A square convolution with stride 1: C_in -> C_out channels, K x K, on H x H images."""
    name: str
    short: str  # its label in the roofline
    c_in: int
    c_out: int
    size: int
    kernel: int
    padding: int

    @property
    def out_size(self):
        return self.size + 2 * self.padding - self.kernel + 1

    def shapes(self, batch):
        """Shapes of the input, the weight and the output."""
        return ((batch, self.c_in, self.size, self.size),
                (self.c_out, self.c_in, self.kernel, self.kernel),
                (batch, self.c_out, self.out_size, self.out_size))

    def flops(self, batch, direction):
        """2 N C_out H_out W_out C_in K K forward; twice that backward (both gradients)."""
        forward = 2 * batch * self.c_out * self.out_size ** 2 * self.c_in * self.kernel ** 2
        return forward if direction == "forward" else 2 * forward

    def bytes_moved(self, batch, direction):
        """Compulsory traffic: forward reads x and W and writes out; backward reads dL/dout,
        x and W and writes dL/dx and dL/dW."""
        x, w, out = (int(np.prod(shape)) for shape in self.shapes(batch))
        values = x + w + out if direction == "forward" else out + 2 * x + 2 * w
        return FLOAT32_BYTES * values


CONVS = (ConvShape("LeNet conv1", "conv1", 1, 6, 28, 5, 2),
         ConvShape("LeNet conv2", "conv2", 6, 16, 14, 5, 0),
         ConvShape("wide 32->64 3x3", "wide", 32, 64, 16, 3, 1))


@contextlib.contextmanager
def numba_own_loops(enabled):
    """Numba's loops at every width: lift its switch to BLAS at BLAS_FROM_OUT_CHANNELS."""
    saved = numba_cpu.conv.BLAS_FROM_OUT_CHANNELS
    if enabled:
        numba_cpu.conv.BLAS_FROM_OUT_CHANNELS = sys.maxsize
    try:
        yield
    finally:
        numba_cpu.conv.BLAS_FROM_OUT_CHANNELS = saved


@dataclass(frozen=True)
class KernelSet:
    """A kernel module and the device its arrays live on."""
    name: str
    module: object
    device: str = "cpu"
    own_loops: bool = False  # Numba only: see numba_own_loops

    def conv_calls(self, conv, x, weight, grad):
        """{"forward": call, "backward": call}: zero-argument calls on this set's device, each
        returning a tuple of arrays (backward: dL/dx and dL/dW)."""
        x, weight, grad = (backend.to_device(a, self.device) for a in (x, weight, grad))
        k, padding = self.module, (conv.padding, conv.padding)

        def forward():
            return (k.conv2d_forward(x, weight, UNIT, padding, UNIT),)

        def backward():
            return (k.conv2d_backward_input(grad, weight, x.shape, UNIT, padding, UNIT),
                    k.conv2d_backward_weight(grad, x, weight.shape, UNIT, padding, UNIT))
        return {"forward": self._timed(forward), "backward": self._timed(backward)}

    def _timed(self, call):
        def run():
            with numba_own_loops(self.own_loops):
                result = call()
            backend.synchronize(self.device)  # a GPU returns before it has finished
            return result
        return run


def kernel_sets():
    """The reference, Numba, and the CUDA kernels when CuPy finds a GPU."""
    sets = [KernelSet(REFERENCE, numpy_ref), KernelSet("numba", numba_cpu)]
    try:
        backend.cupy_module()
    except RuntimeError as error:
        print(f"(GPU kernels skipped: {error})")
    else:
        sets.append(KernelSet(GPU, backend.kernels("cuda"), device="cuda"))
    return sets


def conv_rows(conv, sets, batch, repeats, rng):
    """Rows (conv, pass, kernels, ms, GFLOP/s, max abs diff, diff / max |reference|)."""
    x, weight, grad = (rng.standard_normal(shape, dtype=np.float32)
                       for shape in conv.shapes(batch))
    if conv.c_out >= numba_cpu.conv.BLAS_FROM_OUT_CHANNELS:
        sets = sets + [KernelSet("numba, own loops", numba_cpu, own_loops=True)]
    calls = [(kernels, direction, call) for kernels in sets
             for direction, call in kernels.conv_calls(conv, x, weight, grad).items()]
    results = [call() for _, _, call in calls]  # every kernel's output, checked below
    reference = {direction: result for (kernels, direction, _), result in zip(calls, results)
                 if kernels.name == REFERENCE}
    seconds = median_seconds([call for _, _, call in calls], repeats)
    rows = []
    for (kernels, direction, _), result, t in zip(calls, results, seconds):
        expected = reference[direction]
        diff = max(float(np.abs(backend.to_device(got, "cpu") - want).max())
                   for got, want in zip(result, expected))
        scale = max(float(np.abs(want).max()) for want in expected)
        rows.append((conv.name, direction, kernels.name, 1e3 * t,
                     conv.flops(batch, direction) / t / 1e9, diff, diff / scale))
    return rows


def reference_breakdown(conv, batch, repeats, rng):
    """The reference's forward pass in its two steps: im2col, then the GEMM."""
    x = rng.standard_normal(conv.shapes(batch)[0], dtype=np.float32)
    weight = rng.standard_normal(conv.shapes(batch)[1], dtype=np.float32)
    window = ((conv.kernel, conv.kernel), UNIT, (conv.padding, conv.padding), UNIT)
    cols, _ = numpy_ref.im2col(x, *window)
    matrix = weight.reshape(conv.c_out, -1)
    im2col, gemm, forward = median_seconds(
        [lambda: numpy_ref.im2col(x, *window),
         lambda: matrix @ cols,
         lambda: numpy_ref.conv2d_forward(x, weight, UNIT, window[2], UNIT)], repeats)
    return (conv.name, x.nbytes / 1e6, cols.nbytes / 1e6, 1e3 * im2col, 1e3 * gemm,
            conv.flops(batch, "forward") / gemm / 1e9, 1e3 * forward)


def plot_conv_kernels(rows, batch, path):
    """Table A as grouped bars: GFLOP/s per (conv, pass), one bar per kernel set."""
    groups = list(dict.fromkeys((conv, direction) for conv, direction, *_ in rows))
    names = list(dict.fromkeys(name for _, _, name, *_ in rows))
    rate = {(conv, direction, name): gflops for conv, direction, name, _, gflops, *_ in rows}
    figure, axis = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        positions = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
        axis.bar(positions, [rate.get((*group, name), 0) for group in groups], width,
                 label=name)
    axis.set_xticks(range(len(groups)), [f"{conv}\n{direction}" for conv, direction in groups],
                    fontsize=8)
    axis.set_ylabel("GFLOP/s")
    axis.set_title(f"The same convolutions through each kernel set (batch {batch}; higher is "
                   "faster)")
    axis.legend(loc="upper left", bbox_to_anchor=(1, 1))  # beside the bars, never over one
    axis.grid(axis="y", alpha=0.3)
    save_png(figure, path)
    return path


def part_a(batch, repeats, seed, out):
    """Tables A (every conv, pass and kernel set) and the reference's breakdown; the bar plot."""
    cli.stage("part A", f"{len(CONVS)} convolutions, forward and backward, through every "
                        f"kernel set (batch {batch} of random images, median of {repeats})")
    rng = np.random.default_rng(seed)
    sets = kernel_sets()
    rows = [row for conv in CONVS for row in conv_rows(conv, sets, batch, repeats, rng)]
    breakdown = [reference_breakdown(conv, batch, repeats, rng) for conv in CONVS]
    print("float32; FLOPs: forward 2*N*Cout*Hout*Wout*Cin*K*K, backward twice that")
    print(format_table(["conv", "pass", "kernels", "ms", "GFLOP/s", "max abs diff",
                        "relative diff"], rows, [None, None, None, ".2f", ".1f", ".1e", ".1e"]))
    print("\nThe reference's forward pass, step by step: im2col copies, then one GEMM")
    print(format_table(["conv", "input MB", "im2col MB", "im2col ms", "GEMM ms", "GEMM GFLOP/s",
                        "forward ms"], breakdown,
                       [None, ".2f", ".2f", ".2f", ".2f", ".1f", ".2f"]))
    return rows, breakdown, plot_conv_kernels(rows, batch, os.path.join(out, "conv_kernels.png"))


# ----------------------------------------------------------------------------- B
@contextlib.contextmanager
def cpu_kernels(name):
    """Run the block with the CPU kernel set ``name``, then restore the one in use."""
    previous = backend.kernels("cpu").__name__
    backend.set_cpu_kernels(name)
    try:
        yield
    finally:
        backend.set_cpu_kernels(next(key for key, module in backend.CPU_KERNEL_SETS.items()
                                     if module == previous))


def lenet_step(batch, data_dir, seed):
    """One training step of LeNet-5 on a fixed MNIST batch: forward, backward, SGD update."""
    mg.manual_seed(seed)
    model = LeNet5()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = normalized_mnist(data_dir, limit=batch).arrays
    x, y = mg.tensor(images), mg.tensor(labels)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return step


def profiled_step(step):
    """The profile of one call of ``step``, and its wall-clock seconds."""
    with profile() as prof:
        start = time.perf_counter()
        step()
        return prof, time.perf_counter() - start


def part_b(batch, warmup, tries, data_dir, seed):
    """The profile of one step with each CPU kernel set: of ``tries`` steps profiled one by
    one after ``warmup`` steps, the fastest (the one other work on the machine disturbed least)."""
    cli.stage("part B", f"where a LeNet-5 training step spends its time, with the Numba "
                        f"kernels, then the reference, the fastest of {tries} steps each",
              images=batch)
    step, summary, profiles = lenet_step(batch, data_dir, seed), [], {}
    for name in ("numba", "numpy"):
        with cpu_kernels(name):
            for _ in range(warmup):
                step()
            prof, wall = min((profiled_step(step) for _ in range(tries)), key=lambda run: run[1])
        stats = prof.stats
        ops_s = sum(s.total_s for s in stats)
        print(f"\nProfile of one LeNet-5 training step, batch {batch}, {name} kernels "
              f"(the fastest of {tries})")
        print(prof.table())
        summary.append((name, 1e3 * wall, 1e3 * ops_s,
                        ", ".join(f"{s.op} {s.total_s / ops_s:.0%}" for s in stats[:3])))
        profiles[name] = stats
    print("\nSummary: the step's wall time, the time inside ops (the rest is the engine's "
          "bookkeeping, the SGD update and the profiler's own), and the ops that dominate")
    print(format_table(["kernels", "step ms", "in ops ms", "dominant ops (share of op time)"],
                       summary, [None, ".2f", ".2f", None]))
    return {"profiles": profiles, "summary": summary}


# ----------------------------------------------------------------------------- C
def best_and_median(call, repeats):
    times = times_in_turns([call], repeats)[0]
    return min(times), statistics.median(times)


def measure_matmuls(sizes, repeats, rng):
    """Rows (n, FLOPs, bytes, median s, best s) for float32 n x n BLAS matmuls."""
    rows = []
    for n in sizes:
        a, b = rng.standard_normal((2, n, n), dtype=np.float32)
        best, median = best_and_median(lambda: a @ b, repeats)
        rows.append((n, 2 * n ** 3, 3 * n * n * FLOAT32_BYTES, median, best))
    return rows


def measure_bandwidth(values, repeats):
    """STREAM's copy (b = a: 2 * 4 bytes per value) and add (c = a + b: 3 * 4 bytes and 1 FLOP
    per value) on ``values`` float32 values: the GB/s of each at its best, and the add's median
    seconds."""
    a, b = np.ones((2, values), np.float32)
    c = np.empty_like(a)
    copy, _ = best_and_median(lambda: np.copyto(b, a), repeats)
    add, add_median = best_and_median(lambda: np.add(a, b, out=c), repeats)
    return 2 * a.nbytes / copy / 1e9, 3 * a.nbytes / add / 1e9, add_median


def elementwise_points(values, repeats, rng):
    """(family, label, FLOPs, bytes, median s): ReLU, add and sum on ``values`` float32 values,
    one FLOP per value. NumPy writes into an array allocated once; minigrad's ops allocate
    their result at every call, and ReLU also keeps its mask a > 0 (1 byte per value) for
    backward."""
    x, y = rng.standard_normal((2, values), dtype=np.float32)
    result = np.empty_like(x)
    tx, ty = mg.tensor(x), mg.tensor(y)
    ops = [(NUMPY_OUT, "relu", lambda: np.maximum(x, 0, out=result), 8),
           ("minigrad ops, new result", "relu", lambda: mg.relu(tx), 9),
           ("minigrad ops, new result", "add", lambda: tx + ty, 12),
           ("minigrad ops, new result", "sum", lambda: tx.sum(), 4)]
    with mg.no_grad():
        seconds = median_seconds([call for _, _, call, _ in ops], repeats)
    return [(f"elementwise, {family}", name, values, per_value * values, t)
            for (family, name, _, per_value), t in zip(ops, seconds)]


def plot_roofline(points, peak, bandwidth, path):
    """Achieved GFLOP/s against intensity, under min(peak, bandwidth * intensity)."""
    intensity = np.logspace(-2, 3, 200)
    figure, axis = plt.subplots(figsize=(9, 6))
    axis.plot(intensity, np.minimum(peak, bandwidth * intensity), "k-", lw=2,
              label=f"roof: min({peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s x I)")
    axis.axvline(peak / bandwidth, color="gray", ls=":",
                 label=f"ridge I* = {peak / bandwidth:.1f} FLOP/byte")
    families = list(dict.fromkeys(family for family, *_ in points))
    for family, marker in zip(families, "osD^vPX*"):
        group = [(i, rate) for f, _, i, rate in points if f == family]
        axis.scatter(*zip(*group), marker=marker, s=40, label=family, zorder=3)
    # Each kernel named once, beside its fastest point: the kernel sets of one conv share its
    # intensity, so their points stand in one column, told apart by marker.
    fastest = {}
    for _, label, i, rate in points:
        if rate > fastest.get(label, (0, 0))[1]:
            fastest[label] = (i, rate)
    for label, point in fastest.items():
        axis.annotate(label, point, textcoords="offset points", xytext=(4, 3), fontsize=7)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("arithmetic intensity I (FLOPs per byte of compulsory traffic)")
    axis.set_ylabel("achieved GFLOP/s")
    axis.set_title("Roofline of this machine (float32)")
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(which="both", alpha=0.2)
    save_png(figure, path)
    return path


def part_c(config, conv_table, batch, seed, out):
    """The machine's roofs, every kernel's point under them (part A's convs on the CPU among
    them), the table and the plot."""
    values = config["stream_values"]
    cli.stage("part C", f"a roofline: the fastest BLAS matmul (n up to "
                        f"{config['matmul_sizes'][-1]}), memory bandwidth on "
                        f"{values * FLOAT32_BYTES / 2**20:.0f} MB arrays, and every kernel "
                        f"under them (best and median of {config['repeats_c']})")
    rng = np.random.default_rng(seed)
    matmuls = measure_matmuls(config["matmul_sizes"], config["repeats_c"], rng)
    peak = max(flops / best for _, flops, _, _, best in matmuls) / 1e9
    copy, add, add_seconds = measure_bandwidth(values, config["repeats_c"])
    bandwidth = max(copy, add)
    print(f"This machine: peak {peak:.1f} GFLOP/s (fastest float32 BLAS matmul), memory "
          f"bandwidth {bandwidth:.1f} GB/s (copy {copy:.1f}, add {add:.1f} GB/s on arrays of "
          f"{values * FLOAT32_BYTES / 2**20:.0f} MB), ridge point {peak / bandwidth:.1f} "
          "FLOP/byte")

    shapes = {conv.name: conv for conv in CONVS}
    points = [("BLAS matmul, n x n", f"n={n}", flops, nbytes, median)
              for n, flops, nbytes, median, _ in matmuls]
    points += [(f"conv, {kernels}", f"{shapes[name].short} {ABBREVIATED[direction]}",
                shapes[name].flops(batch, direction),
                shapes[name].bytes_moved(batch, direction), ms / 1e3)
               for name, direction, kernels, ms, *_ in conv_table if kernels != GPU]
    points += [(f"elementwise, {NUMPY_OUT}", "add", values, 3 * FLOAT32_BYTES * values,
                add_seconds)]
    points += elementwise_points(values, config["repeats_c"], rng)
    rows = []
    for family, label, flops, nbytes, seconds in points:
        intensity, rate = flops / nbytes, flops / seconds / 1e9
        roof = min(peak, bandwidth * intensity)
        rows.append((family, label, intensity, rate, roof, rate / roof))
    print(format_table(["family", "kernel", "FLOP/byte", "GFLOP/s", "roof GFLOP/s",
                        "of roof"], rows, [None, None, ".3g", ".1f", ".1f", ".0%"]))
    path = plot_roofline([(family, label, i, rate) for family, label, i, rate, _, _ in rows],
                         peak, bandwidth, os.path.join(out, "roofline.png"))
    return {"peak_gflops": peak, "bandwidth_gbs": bandwidth, "copy_gbs": copy, "add_gbs": add,
            "matmul_gflops": [(n, flops / median / 1e9) for n, flops, _, median, _ in matmuls],
            "points": rows}, path


# ----------------------------------------------------------------------------- conclusions
def speedups(rows_a):
    """{(conv's short name, pass, kernel set): the reference's ms / that set's ms}, table A."""
    short = {conv.name: conv.short for conv in CONVS}
    ms = {(conv, direction, kernels): t for conv, direction, kernels, t, *_ in rows_a}
    return {(short[conv], direction, kernels): ms[conv, direction, REFERENCE] / t
            for (conv, direction, kernels), t in ms.items() if kernels != REFERENCE}


def figure_lines(rows_a, part_b, roofline):
    """The lesson's three points, each in one line with this run's figures."""
    ratio = speedups(rows_a)

    def passes(conv, kernels):
        return (f"{ratio[conv, 'forward', kernels]:.1f}x forward, "
                f"{ratio[conv, 'backward', kernels]:.1f}x backward")
    lines = [f"A. Numba's speedup over the reference: conv1 {passes('conv1', 'numba')}; conv2 "
             f"{passes('conv2', 'numba')}; the wide conv, handed to the same BLAS GEMM, "
             f"{passes('wide', 'numba')}, and {passes('wide', 'numba, own loops')} with "
             "Numba's own loops."]
    slower = [f"{conv} {direction}" for (conv, direction, kernels), r in ratio.items()
              if kernels == "numba" and conv != "wide" and r < 1]
    if slower:
        lines.append(f"   Numba was slower than the reference on {', '.join(slower)} in this "
                     "run, against the rest of the table: time it again before believing it.")
    (_, numba_ms, *_), (_, reference_ms, *_) = part_b["summary"]
    share = {name: {s.op: s.total_s / sum(t.total_s for t in stats) for s in stats}
             for name, stats in part_b["profiles"].items()}
    lines.append(f"B. A LeNet-5 step takes {numba_ms:.1f} ms with Numba, {reference_ms:.1f} ms "
                 f"with the reference; convolutions take {share['numba']['Conv2d']:.0%} of "
                 f"Numba's op time, pooling {share['numpy']['MaxPool2d']:.0%} of the "
                 "reference's.")
    points = roofline["points"]  # (family, kernel, FLOP/byte, GFLOP/s, roof, share of roof)
    matmuls = [point[-1] for point in points if point[0].startswith("BLAS")]
    lenet = [point[-1] for point in points
             if point[0].startswith("conv") and point[1].startswith(("conv1", "conv2"))]
    add = next(point[-1] for point in points
               if point[0] == f"elementwise, {NUMPY_OUT}" and point[1] == "add")
    lines.append(f"C. Matmuls reach {min(matmuls):.0%}-{max(matmuls):.0%} of the compute roof, "
                 f"NumPy's add {add:.0%} of the memory roof, LeNet's convolutions "
                 f"{min(lenet):.0%}-{max(lenet):.0%} of theirs: bound by the kernels, not the "
                 "machine.")
    return lines


def trust_line(before, after, threads, quick):
    """How far to trust the figures: the machine before the run, and after it (when the load
    average also counts this lesson's own ``threads``)."""
    states = f"{before.describe()} at the start; {after.describe()} at the end"
    if before.busy(threads) or after.busy(threads, own_load=threads):
        line = (f"The machine was busy ({states}): every figure above is noisy, ratios "
                "included; rerun on an idle machine before drawing conclusions about kernels.")
    else:
        line = (f"The machine stayed quiet ({states}): ratios within this run are fair; "
                "absolute figures differ by tens of percent between runs and machines.")
    if quick:
        line += ("\n--quick times batch-16 convolutions a few times each: shorter and less "
                 "precise than the default run's batch 64, LeNet-5's training batch.")
    return line


# -----------------------------------------------------------------------------
def main(argv=None):
    parser = cli.lesson_parser(__doc__, "12_kernels_and_hardware",
                               quick="batch-16 convolutions, smaller matmuls and arrays, fewer "
                                     "repeats")
    args = cli.parse_args(parser, argv)
    config = QUICK if args.quick else DEFAULT
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    start = time.perf_counter()

    before = report_machine(threads)
    rows_a, breakdown, conv_png = part_a(config["batch"], config["repeats_a"], args.seed,
                                         args.out)
    profiles = part_b(batch=64, warmup=3, tries=config["tries_b"], data_dir=args.data_dir,
                      seed=args.seed)
    roofline, roofline_png = part_c(config, rows_a, config["batch"], args.seed + 1, args.out)

    cli.stage("conclusions", "what this run's figures say, and how far to trust them")
    after = measure_machine()
    conclusions = figure_lines(rows_a, profiles, roofline)
    conclusions.append(trust_line(before, after, threads, args.quick))
    print("\n".join(conclusions))
    print(f"\n{time.perf_counter() - start:.0f} s in all; plots in {args.out}")
    return {"machine": (before, after), "part_a": rows_a, "breakdown": breakdown,
            "part_b": profiles, "part_c": roofline, "conclusions": conclusions,
            "plots": (conv_png, roofline_png)}


if __name__ == "__main__":
    main()
