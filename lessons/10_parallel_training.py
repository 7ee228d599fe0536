"""Lesson 10 — parallel training on MPI: data parallel (DDP) and pipeline (model) parallel.

Run:   OPENBLAS_NUM_THREADS=1 .venv/bin/mpiexec -n 2 .venv/bin/python \
           lessons/10_parallel_training.py [--quick] [--seed N] [--out DIR]
       (``.venv/bin/pip install -e '.[mpi]'`` first; with plain ``.venv/bin/python`` it runs
       as one rank; ``--help`` lists the flags; files go to runs/10_parallel_training/)
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
   the cost of an unbalanced cut (rank 0's stage holds 28% of the forward FLOPs, so rank 1
   sets the pace) and of the bubble, (S-1)/(M+S-1) of the time idle.

What to look at: the scaling table (2 ranks reach close to 2x images/s when the two cores
are free; run ``uptime`` first: another busy process on the machine takes cores from the
ranks) and the sentence under it, which says when the machine, not DDP, set the figures;
``scaling.png``; the pipeline table and its sentence. ``--quick`` times one short round:
its speedups are rougher than the default run's best of 3.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one thread per rank; must precede NumPy's import

import time  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import cli, nn, parallel, timing  # noqa: E402
from minigrad.data import DataLoader  # noqa: E402
from minigrad.data.mnist import normalized_mnist  # noqa: E402
from minigrad.models import LeNet5  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.optim import SGD  # noqa: E402
from minigrad.plot import plot_tradeoff, save_png  # noqa: E402
from minigrad.report import format_table  # noqa: E402
from minigrad.train import Checkpoint, PrintEpochs, fit  # noqa: E402

WARMUP = 5  # untimed steps first (caches, allocator)
LENET_PARAMETERS = 61706


def say(*args):
    """Print on rank 0 only: N copies of every line would be N times the noise."""
    if parallel.is_main():
        print(*args, flush=True)


def stage(name, what, images=None, epochs=None):
    """``cli.stage``'s header, on rank 0 only."""
    if parallel.is_main():
        cli.stage(name, what, images=images, epochs=epochs)


def median_seconds(fn, repeats):
    """The median time of ``fn()`` over ``repeats`` calls, none untimed (every rank makes the
    same calls, so collectives stay matched)."""
    return timing.median_seconds([fn], repeats, warmup=0)[0]


# ----------------------------------------------------------------------------- A
def part_a(seed, repeats=30):
    """Ring all-reduce against MPI's, on an array the size of LeNet-5's gradient."""
    size = parallel.world_size()
    stage("part A", f"a ring all-reduce against MPI's, on an array the size of LeNet-5's "
                    f"gradient, over {size} rank(s) (median of {repeats})")
    grad = np.random.default_rng(seed + parallel.rank()).standard_normal(LENET_PARAMETERS)
    grad = grad.astype(np.float32)
    ring = parallel.ring_all_reduce(grad)
    mpi_sum = parallel.all_reduce(grad)
    difference = float(np.abs(parallel.all_gather(ring - mpi_sum)).max())
    ring_s = median_seconds(lambda: parallel.ring_all_reduce(grad), repeats)
    mpi_s = median_seconds(lambda: parallel.all_reduce(grad), repeats)
    rows = [("ring (Isend/Irecv)", ring_s * 1e6, parallel.ring_bytes_sent(grad.nbytes, size)),
            ("MPI Iallreduce", mpi_s * 1e6, None)]
    say(f"{grad.nbytes / 1e3:.0f} kB of float32 values: max |ring - MPI| = {difference:g}")
    say(format_table(["algorithm", "microseconds", "bytes sent per rank"], rows,
                     [None, ".0f", ".0f"]))
    return {"max_difference": difference, "ring_seconds": ring_s, "mpi_seconds": mpi_s}


# ----------------------------------------------------------------------------- B
def preloaded_batches(data, comm, batch, steps, seed):
    """This rank's first ``steps`` batches (DistributedSampler over ``comm``), as Tensors."""
    sampler = parallel.DistributedSampler(data, comm.Get_size(), comm.Get_rank(), seed=seed)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True)
    batches = []
    while len(batches) < steps:
        batches.extend(loader)
    return batches[:steps]


def training_throughput(data, comm, batch, steps, seed):
    """Images per second over ``steps`` DDP training steps of LeNet-5 on ``comm``; returns
    (this rank's images/s, all ranks' images/s, this rank's share of time in all-reduce)."""
    mg.manual_seed(seed)  # every setup starts from the same weights
    model = parallel.DistributedDataParallel(LeNet5(), comm=comm)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = preloaded_batches(data, comm, batch, steps + WARMUP, seed)

    def step(x, y):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()  # averages the gradients over the ranks
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


def best_throughputs(data, steps, repeats, seed):
    """Best images/s of each setup over ``repeats`` rounds, and the per-rank figures of the
    best data-parallel round. Every rank makes the same calls in the same order."""
    world, size = parallel.init(), parallel.world_size()
    solo = parallel.split(parallel.rank())  # a communicator holding this rank alone
    best = dict.fromkeys(["alone", "independent", "weak", "strong"], 0.0)
    per_rank = None
    for _ in range(repeats):
        if parallel.is_main():  # the baseline: rank 0 alone while the others wait, idle
            best["alone"] = max(best["alone"],
                                training_throughput(data, solo, 64, steps, seed)[1])
        parallel.barrier()
        if size == 1:
            continue
        # Every rank alone at the same time, no messages: what the machine itself allows.
        mine = training_throughput(data, solo, 64, steps, seed)[0]
        best["independent"] = max(best["independent"],
                                  parallel.all_reduce(np.array([mine]))[0])
        mine, total, in_all_reduce = training_throughput(data, world, 64, steps, seed)
        ranks_figures = parallel.all_gather(np.array([mine, in_all_reduce]))
        if total > best["weak"]:  # total is the same on every rank: so is this branch
            best["weak"], per_rank = total, ranks_figures
        best["strong"] = max(best["strong"],
                             training_throughput(data, world, 32, steps, seed)[1])
    # Rank 0's figures for everyone, so every rank returns the same table.
    return dict(zip(best, parallel.broadcast(np.array(list(best.values()))))), per_rank


def scaling_verdict(speedup, machine_limit, ranks, load, cores, quick):
    """The scaling table in one plain sentence: what it shows, or why it cannot be trusted.
    ``speedup``: DDP's with the same batch per rank; ``machine_limit``: the ranks' without any
    all-reduce; ``load``: the load average before part B, on ``cores`` cores."""
    if ranks == 1:
        return "One rank only: run under mpiexec -n 2 to see what data parallelism gains."
    machine = f"load {load:.1f} on {cores} cores before part B"
    if max(speedup, machine_limit) > 1.05 * ranks:
        return (f"Above the ideal {ranks}x: the 1-rank baseline ran slower than it can, slowed "
                f"by other work on the machine ({machine})"
                + (", and --quick times one short round" if quick else "")
                + "; rerun on an idle machine (`uptime` first) before trusting these speedups.")
    if machine_limit < 0.9 * ranks:
        return (f"Even without any all-reduce {ranks} ranks reach only {machine_limit:.2f}x: "
                f"they did not each have a core to themselves ({machine}), and DDP cannot beat "
                "that limit; rerun on an idle machine (`uptime` first).")
    return (f"DDP reaches {speedup:.2f}x of the ideal {ranks}x, the machine itself "
            f"{machine_limit:.2f}x: the gap is the all-reduce and waiting for the slower rank.")


def part_b(data, steps, repeats, seed, quick):
    """1 rank; N ranks with the same batch per rank, with the same global batch, and with no
    communication at all (each rank training alone, all at once)."""
    size, load = parallel.world_size(), os.getloadavg()[0]
    setups = f"on 1 rank, then on {size} at once" if size > 1 else "on 1 rank"
    stage("part B", f"LeNet-5 training throughput {setups}: {steps} timed steps of each "
                    f"setup, best of {repeats}", images=len(data))
    best, per_rank = best_throughputs(data, steps, repeats, seed)
    rows = [("1 rank", 1, 64, 64, best["alone"])]
    if size > 1:
        rows += [(f"{size} ranks DDP, same batch per rank", size, 64, 64 * size, best["weak"]),
                 (f"{size} ranks DDP, same global batch", size, 32, 32 * size, best["strong"]),
                 (f"{size} ranks, no all-reduce (machine limit)", size, 64, None,
                  best["independent"])]
    base = best["alone"]
    say(f"load average (1 min) {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    if per_rank is not None:
        say(format_table(["rank", "images/s", "time in all-reduce"],
                         [(rank, ips, share) for rank, (ips, share) in enumerate(per_rank)],
                         [None, ".0f", ".1%"]))
    say(format_table(["setup", "ranks", "batch/rank", "global batch", "images/s", "speedup",
                      "efficiency"],
                     [(name, ranks, b, g, ips, ips / base, ips / base / ranks)
                      for name, ranks, b, g, ips in rows],
                     [None, None, None, None, ".0f", ".2f", ".0%"]))
    verdict = scaling_verdict(best["weak"] / base, best["independent"] / base, size, load,
                              os.cpu_count(), quick)
    say(verdict)
    scaling = [{"ranks": ranks, "batch_per_rank": b, "images_per_second": float(ips),
                "speedup": float(ips / base)} for _, ranks, b, _, ips in rows[:2]]
    strong = [{"ranks": ranks, "images_per_second": float(ips)}
              for _, ranks, _, _, ips in rows[:1] + rows[2:3]]
    return scaling, strong, per_rank, verdict, {"load_before": load,
                                                "load_after": os.getloadavg()[0]}


def plot_scaling(scaling, strong, path):
    """Images/s against ranks, with the ideal line; one process has one point to show."""
    base = scaling[0]["images_per_second"]
    ranks = [row["ranks"] for row in scaling]
    if len(ranks) == 1:
        curves = {"1 rank (run under mpiexec -n 2 to compare)": [(1, base)]}
    else:
        curves = {"same batch per rank (weak scaling)": [(r["ranks"], r["images_per_second"])
                                                          for r in scaling],
                  "same global batch (strong scaling)": [(r["ranks"], r["images_per_second"])
                                                         for r in strong],
                  "ideal: linear in ranks": [(r, r * base) for r in ranks]}
    figure = plot_tradeoff(curves, "ranks (1 thread each)", "images / s",
                           title="LeNet-5 data-parallel training throughput")
    axis = figure.axes[0]
    if len(ranks) > 1:
        axis.lines[-1].set(linestyle="--", color="gray")
    axis.set_xticks(ranks)
    axis.set_ylim(bottom=0)  # from zero, so a line's height reads as its speedup
    axis.legend(fontsize=8, loc="lower right")  # under the lines, which start at 1 rank's rate
    return save_png(figure, path)


# ----------------------------------------------------------------------------- C
def part_c(args, epochs):
    """fit with DDP: sharded data, averaged metrics, rank 0 prints and checkpoints."""
    limit = 3000 if args.quick else None
    train = normalized_mnist(args.data_dir, limit=limit)
    test = normalized_mnist(args.data_dir, train=False)
    size = parallel.world_size()
    # Different on purpose: DDP broadcasts rank 0's weights.
    mg.manual_seed(args.seed + parallel.rank())
    model = parallel.DistributedDataParallel(LeNet5())
    train_loader = DataLoader(train, batch_size=32,
                              sampler=parallel.DistributedSampler(train, seed=args.seed))
    test_loader = DataLoader(test, batch_size=500,
                             sampler=parallel.DistributedSampler(test, shuffle=False))
    checkpoint = os.path.join(args.out, "lenet5_ddp.npz")
    stage("part C", f"LeNet-5 trained by fit with DDP on {size} rank(s), batch 32 per rank "
                    f"({32 * size} in all), {len(train_loader)} steps per epoch",
          images=len(train), epochs=epochs)
    start = time.perf_counter()
    history = fit(model, train_loader, SGD(model.parameters(), lr=0.05, momentum=0.9),
                  F.cross_entropy, epochs, val_loader=test_loader,
                  callbacks=[parallel.DistributedCallback(model), PrintEpochs(),
                             Checkpoint(checkpoint)], progress=not args.no_progress,
                  desc="part C")
    seconds = time.perf_counter() - start
    accuracy = history.epochs[-1]["val_accuracy"]
    say(f"test accuracy {accuracy:.2%} in {seconds:.1f} s; checkpoint (rank 0) {checkpoint}")
    return accuracy


# ----------------------------------------------------------------------------- D
def lenet_layers(seed):
    mg.manual_seed(seed)
    model = LeNet5()
    return nn.Sequential(*model.features, *model.classifier)


def pipeline_verdict(rows, one_rank, stages):
    """The pipeline table in one plain sentence. ``rows``: (M, bubble, images/s);
    ``one_rank``: part B's images/s of one rank training alone."""
    if stages == 1:
        return "One stage only: run under mpiexec -n 2 to see a pipeline."
    best_m, _, best = max(rows, key=lambda row: row[2])
    if best_m == rows[-1][0]:
        more = "more micro-batches helped, as the shrinking bubble predicts"
    else:
        more = (f"more than {best_m} micro-batch(es) did not help: smaller micro-batches run "
                "the kernels less efficiently and add messages, which cost more here than the "
                "shrinking bubble saves")
    verdict = (f"At its best (M = {best_m}) the pipeline trains {best / one_rank:.2f}x the "
               f"images/s of one rank in part B; {more}.")
    if best < 1.1 * one_rank:
        verdict += (" No real gain over one process (under 1.1x): on a model this small the "
                    "unequal cut and the bubble eat what the second core gives; pipelines are "
                    "for models too large for one device.")
    return verdict


def part_d(data, steps, micro_batch_counts, seed, one_rank):
    """Pipeline: first convolution block on rank 0, the rest on the last rank."""
    size = parallel.world_size()
    stage("part D", f"LeNet-5 cut into {size} pipeline stage(s), with "
                    f"{', '.join(map(str, micro_batch_counts))} GPipe micro-batches: 3 steps "
                    f"checked against one process, {steps} timed", images=64)
    balance = [3, 9] if size == 2 else None
    x, y = (mg.Tensor(a) for a in data.get_batch(np.arange(64)))
    reference = lenet_layers(seed)
    reference_optimizer = SGD(reference.parameters(), lr=0.05, momentum=0.9)
    pipe = parallel.PipelineParallel(lenet_layers(seed), micro_batch_counts[-1], balance)
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
    say(f"layers per stage {pipe.balance}, batch 64; max |loss - one process's| over 3 steps "
        f"= {max(differences):.1e}")
    say(format_table(["micro-batches M", "bubble (S-1)/(M+S-1)", "images/s"], rows,
                     [None, ".0%", ".0f"]))
    verdict = pipeline_verdict(rows, one_rank, size)
    say(verdict)
    return {"max_loss_difference": float(max(differences)), "rows": rows, "verdict": verdict}


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "10_parallel_training",
                               quick="one round of 40 timed steps in part B, 3,000 training "
                                     "images in part C, 1-4 micro-batches in part D")
    parallel.init()
    args = cli.parse_args(parser, argv, create=parallel.is_main())  # rank 0 writes the files
    start = time.perf_counter()
    say(f"{parallel.world_size()} rank(s), {os.environ.get('OPENBLAS_NUM_THREADS')} BLAS "
        f"thread(s) each, {os.cpu_count()} cores on this machine")
    data = normalized_mnist(args.data_dir, limit=4096)

    ring = part_a(args.seed)
    scaling, strong, per_rank, verdict, load = part_b(data, steps=40 if args.quick else 200,
                                                      repeats=1 if args.quick else 3,
                                                      seed=args.seed, quick=args.quick)
    plot = None
    if parallel.is_main():
        plot = os.path.join(args.out, "scaling.png")
        plot_scaling(scaling, strong, plot)
    accuracy = part_c(args, epochs=2)
    pipeline = part_d(data, steps=10 if args.quick else 30,
                      micro_batch_counts=[1, 2, 4] if args.quick else [1, 2, 4, 8],
                      seed=args.seed, one_rank=scaling[0]["images_per_second"])
    say(f"\n{time.perf_counter() - start:.0f} s in all; plot: {plot}")
    return {"ring": ring, "scaling": scaling, "strong": strong, "per_rank": per_rank,
            "verdict": verdict, "load": load,
            "test_accuracy": accuracy, "pipeline": pipeline, "plot": plot}


if __name__ == "__main__":
    main()
