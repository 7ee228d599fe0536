"""Lesson 10 — parallel training on MPI: data parallel (DDP) and pipeline (model) parallel.

Run:   OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python lessons/10_parallel_training.py [--quick]
       (``pip install 'minigrad[mpi]'`` first; with plain ``python`` it runs as one rank)
On several machines: ``mpiexec -f hosts -n 4 ...`` (README, "Parallel training").

mpiexec starts the script N times; the copies ("ranks") share nothing and cooperate through
MPI messages. Each rank runs single-threaded (this file sets OPENBLAS_NUM_THREADS=1 before
NumPy loads, and the Numba kernels are serial), so N ranks use N cores.

A. All-reduce, the one collective data parallelism needs: every rank ends with the sum of
   everyone's gradients. A ring all-reduce written on Isend/Irecv gives exactly MPI's sums;
   each rank sends 2(N-1)/N of the data whatever N is (minigrad/parallel/ring.py).
B. Scaling: LeNet-5 training steps on 1 rank, then on 2 ranks with DistributedDataParallel,
   in the same launch (rank 0 alone on a communicator of its own while rank 1 waits, then
   both). Weak scaling keeps the batch per rank (64) so the global batch doubles; strong
   scaling keeps the global batch (64 = 2 x 32). Images per second of the training steps
   (data already loaded), best of a few repeats; per-rank figures, a table and a plot.
C. The same machinery inside ``fit``: a DistributedSampler gives each rank its half of every
   epoch, DistributedCallback averages gradients and metrics, rank 0 alone prints and writes
   the checkpoint. 2 ranks x batch 32 train like one process with batch 64 (the tests check
   the parameters agree to 1e-5), each rank doing half of the work.
D. Pipeline parallelism: LeNet-5 cut into two stages (the first convolution on rank 0, the
   rest on rank 1), GPipe micro-batches. Same losses as one process; the throughput shows
   the cost of an unbalanced cut and of the bubble, (S-1)/(M+S-1) of the time idle.

What to look at: the scaling table (2 ranks reach close to 2x images/s when the two cores
are free; run ``uptime`` first: another busy process on the machine takes cores from the
ranks), ``scaling.png``, and the pipeline table.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one thread per rank; must precede NumPy's import

import argparse  # noqa: E402
import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import nn, parallel, timing  # noqa: E402
from minigrad.data import DataLoader  # noqa: E402
from minigrad.data.mnist import normalized_mnist  # noqa: E402
from minigrad.models import LeNet5  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.optim import SGD  # noqa: E402
from minigrad.plot import plot_tradeoff  # noqa: E402
from minigrad.report import format_table  # noqa: E402
from minigrad.train import Checkpoint, PrintEpochs, fit  # noqa: E402

WARMUP = 5  # untimed steps first (caches, allocator)
LENET_PARAMETERS = 61706


def say(*args):
    """Print on rank 0 only: N copies of every line would be N times the noise."""
    if parallel.is_main():
        print(*args, flush=True)


def median_seconds(fn, repeats):
    """The median time of ``fn()`` over ``repeats`` calls, none untimed (every rank makes the
    same calls, so collectives stay matched)."""
    return timing.median_seconds([fn], repeats, warmup=0)[0]


# ----------------------------------------------------------------------------- A
def part_a(repeats=30):
    """Ring all-reduce against MPI's, on an array the size of LeNet-5's gradient."""
    size = parallel.world_size()
    grad = np.random.default_rng(parallel.rank()).standard_normal(LENET_PARAMETERS)
    grad = grad.astype(np.float32)
    ring = parallel.ring_all_reduce(grad)
    mpi_sum = parallel.all_reduce(grad)
    difference = float(np.abs(parallel.all_gather(ring - mpi_sum)).max())
    ring_s = median_seconds(lambda: parallel.ring_all_reduce(grad), repeats)
    mpi_s = median_seconds(lambda: parallel.all_reduce(grad), repeats)
    rows = [("ring (Isend/Irecv)", ring_s * 1e6, parallel.ring_bytes_sent(grad.nbytes, size)),
            ("MPI Iallreduce", mpi_s * 1e6, None)]
    say(f"\nA. All-reduce of {grad.nbytes / 1e3:.0f} kB (LeNet-5's gradient, float32) over "
        f"{size} rank(s): max |ring - MPI| = {difference:g}")
    say(format_table(["algorithm", "microseconds", "bytes sent per rank"], rows,
                     [None, ".0f", ".0f"]))
    return {"max_difference": difference, "ring_seconds": ring_s, "mpi_seconds": mpi_s}


# ----------------------------------------------------------------------------- B
def preloaded_batches(data, comm, batch, steps):
    """This rank's first ``steps`` batches (DistributedSampler over ``comm``), as Tensors."""
    sampler = parallel.DistributedSampler(data, comm.Get_size(), comm.Get_rank(), seed=0)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True)
    batches = []
    while len(batches) < steps:
        batches.extend(loader)
    return batches[:steps]


def training_throughput(data, comm, batch, steps):
    """Images per second over ``steps`` DDP training steps of LeNet-5 on ``comm``; returns
    (this rank's images/s, all ranks' images/s, this rank's share of time in all-reduce)."""
    mg.manual_seed(0)
    model = parallel.DistributedDataParallel(LeNet5(), comm=comm)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = preloaded_batches(data, comm, batch, steps + WARMUP)

    def step(x, y):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        model.sync_gradients()
        optimizer.step()

    for x, y in batches[:WARMUP]:
        step(x, y)
    parallel.barrier(comm)
    model.sync_seconds, start = 0.0, time.perf_counter()
    for x, y in batches[WARMUP:]:
        step(x, y)
    mine = time.perf_counter() - start
    slowest = parallel.all_reduce(np.array([mine]), "max", comm)[0]
    return batch * steps / mine, comm.Get_size() * batch * steps / slowest, \
        model.sync_seconds / mine


def best_throughputs(data, steps, repeats):
    """Best images/s of each setup over ``repeats`` rounds, and the per-rank figures of the
    best data-parallel round. Every rank makes the same calls in the same order."""
    world, size = parallel.init(), parallel.world_size()
    solo = parallel.split(parallel.rank())  # a communicator holding this rank alone
    best = dict.fromkeys(["alone", "independent", "weak", "strong"], 0.0)
    per_rank = None
    for _ in range(repeats):
        if parallel.is_main():  # the baseline: rank 0 alone while the others wait, idle
            best["alone"] = max(best["alone"], training_throughput(data, solo, 64, steps)[1])
        parallel.barrier()
        if size == 1:
            continue
        # Every rank alone at the same time, no messages: what the machine itself allows.
        mine = training_throughput(data, solo, 64, steps)[0]
        best["independent"] = max(best["independent"],
                                  parallel.all_reduce(np.array([mine]))[0])
        mine, total, in_all_reduce = training_throughput(data, world, 64, steps)
        ranks_figures = parallel.all_gather(np.array([mine, in_all_reduce]))
        if total > best["weak"]:  # total is the same on every rank: so is this branch
            best["weak"], per_rank = total, ranks_figures
        best["strong"] = max(best["strong"], training_throughput(data, world, 32, steps)[1])
    # Rank 0's figures for everyone, so every rank returns the same table.
    return dict(zip(best, parallel.broadcast(np.array(list(best.values()))))), per_rank


def part_b(data, steps, repeats):
    """1 rank; N ranks with the same batch per rank, with the same global batch, and with no
    communication at all (each rank training alone, all at once)."""
    size, load = parallel.world_size(), os.getloadavg()[0]
    best, per_rank = best_throughputs(data, steps, repeats)
    rows = [("1 rank", 1, 64, 64, best["alone"])]
    if size > 1:
        rows += [(f"{size} ranks DDP, same batch per rank", size, 64, 64 * size, best["weak"]),
                 (f"{size} ranks DDP, same global batch", size, 32, 32 * size, best["strong"]),
                 (f"{size} ranks, no all-reduce (machine limit)", size, 64, None,
                  best["independent"])]
    base = best["alone"]
    say(f"\nB. LeNet-5 training throughput, {steps} steps, best of {repeats}; load average "
        f"(1 min) {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    if per_rank is not None:
        say(format_table(["rank", "images/s", "time in all-reduce"],
                         [(rank, ips, share) for rank, (ips, share) in enumerate(per_rank)],
                         [None, ".0f", ".1%"]))
    say(format_table(["setup", "ranks", "batch/rank", "global batch", "images/s", "speedup",
                      "efficiency"],
                     [(name, ranks, b, g, ips, ips / base, ips / base / ranks)
                      for name, ranks, b, g, ips in rows],
                     [None, None, None, None, ".0f", ".2f", ".0%"]))
    scaling = [{"ranks": ranks, "batch_per_rank": b, "images_per_second": float(ips),
                "speedup": float(ips / base)} for _, ranks, b, _, ips in rows[:2]]
    strong = [{"ranks": ranks, "images_per_second": float(ips)}
              for _, ranks, _, _, ips in rows[:1] + rows[2:3]]
    return scaling, strong, per_rank, {"load_before": load, "load_after": os.getloadavg()[0]}


def plot_scaling(scaling, strong, path):
    base = scaling[0]["images_per_second"]
    ranks = [row["ranks"] for row in scaling]
    curves = {"same batch per rank (weak scaling)": [(r["ranks"], r["images_per_second"])
                                                      for r in scaling],
              "same global batch (strong scaling)": [(r["ranks"], r["images_per_second"])
                                                     for r in strong],
              "ideal: linear in ranks": [(r, r * base) for r in ranks]}
    figure = plot_tradeoff(curves, "ranks (1 thread each)", "images / s",
                           title="LeNet-5 data-parallel training throughput")
    axis = figure.axes[0]
    axis.lines[-1].set(linestyle="--", color="gray")
    axis.set_xticks(ranks)
    axis.legend(fontsize=8)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return figure


# ----------------------------------------------------------------------------- C
def part_c(args, epochs):
    """fit with DDP: sharded data, averaged metrics, rank 0 prints and checkpoints."""
    limit = 3000 if args.quick else None
    train = normalized_mnist(args.data_dir, limit=limit)
    test = normalized_mnist(args.data_dir, train=False)
    mg.manual_seed(parallel.rank())  # different on purpose: DDP broadcasts rank 0's weights
    model = parallel.DistributedDataParallel(LeNet5())
    train_loader = DataLoader(train, batch_size=32, sampler=parallel.DistributedSampler(train))
    test_loader = DataLoader(test, batch_size=500,
                             sampler=parallel.DistributedSampler(test, shuffle=False))
    checkpoint = os.path.join(args.out, "lenet5_ddp.npz")
    say(f"\nC. fit on {parallel.world_size()} rank(s): {len(train):,} images, batch 32 per "
        f"rank ({32 * parallel.world_size()} in all), {len(train_loader)} steps per epoch")
    start = time.perf_counter()
    history = fit(model, train_loader, SGD(model.parameters(), lr=0.05, momentum=0.9),
                  F.cross_entropy, epochs, val_loader=test_loader,
                  callbacks=[parallel.DistributedCallback(model), PrintEpochs(),
                             Checkpoint(checkpoint)], progress=not args.no_progress)
    seconds = time.perf_counter() - start
    accuracy = history.epochs[-1]["val_accuracy"]
    say(f"test accuracy {accuracy:.2%} in {seconds:.1f} s; checkpoint (rank 0) {checkpoint}")
    return accuracy


# ----------------------------------------------------------------------------- D
def lenet_layers(seed=0):
    mg.manual_seed(seed)
    model = LeNet5()
    return nn.Sequential(*model.features, *model.classifier)


def part_d(data, steps, micro_batch_counts):
    """Pipeline: first convolution block on rank 0, the rest on the last rank."""
    size = parallel.world_size()
    balance = [3, 9] if size == 2 else None
    x, y = (mg.Tensor(a) for a in data.get_batch(np.arange(64)))
    reference = lenet_layers()
    reference_optimizer = SGD(reference.parameters(), lr=0.05, momentum=0.9)
    pipe = parallel.PipelineParallel(lenet_layers(), micro_batch_counts[-1], balance)
    optimizer = SGD(pipe.parameters(), lr=0.05, momentum=0.9)
    differences = []
    for _ in range(3):  # the same steps on one process and through the pipeline
        reference_optimizer.zero_grad()
        loss = F.cross_entropy(reference(x), y)
        loss.backward()
        reference_optimizer.step()
        optimizer.zero_grad()
        differences.append(abs(pipe.forward_backward(x, y, F.cross_entropy) - loss.item()))
        optimizer.step()
    rows = []
    for micro_batches in micro_batch_counts:
        pipe.micro_batches = micro_batches

        def step():
            optimizer.zero_grad()
            pipe.forward_backward(x, y, F.cross_entropy)
            optimizer.step()

        for _ in range(WARMUP):
            step()
        parallel.barrier()
        seconds = median_seconds(step, steps)
        seconds = float(parallel.all_reduce(np.array([seconds]), "max")[0])
        rows.append((micro_batches, (size - 1) / (micro_batches + size - 1), 64 / seconds))
    say(f"\nD. Pipeline: LeNet-5 in {size} stage(s) (layers per stage {pipe.balance}), "
        f"batch 64; max |loss - one process's| over 3 steps = {max(differences):.1e}")
    say(format_table(["micro-batches M", "bubble (S-1)/(M+S-1)", "images/s"], rows,
                     [None, ".0%", ".0f"]))
    return {"max_loss_difference": float(max(differences)), "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST IDX files (default: bundled subset)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and images")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", default=os.path.join("runs", "10_parallel_training"))
    args = parser.parse_args(argv)
    parallel.init()
    if parallel.is_main():
        os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    say(f"{parallel.world_size()} rank(s), {os.environ.get('OPENBLAS_NUM_THREADS')} BLAS "
        f"thread(s) each, {os.cpu_count()} cores on this machine")
    data = normalized_mnist(args.data_dir, limit=4096)

    ring = part_a()
    scaling, strong, per_rank, load = part_b(data, steps=40 if args.quick else 200,
                                             repeats=1 if args.quick else 3)
    plot = None
    if parallel.is_main():
        plot = os.path.join(args.out, "scaling.png")
        plot_scaling(scaling, strong, plot)
    accuracy = part_c(args, epochs=2)
    pipeline = part_d(data, steps=10 if args.quick else 30,
                      micro_batch_counts=[1, 2, 4] if args.quick else [1, 2, 4, 8])
    say(f"\n{time.perf_counter() - start:.0f} s in all; plot: {plot}")
    return {"ring": ring, "scaling": scaling, "strong": strong, "per_rank": per_rank,
            "load": load,
            "test_accuracy": accuracy, "pipeline": pipeline, "plot": plot}


if __name__ == "__main__":
    main()
