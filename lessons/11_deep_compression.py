"""Lesson 11 — Deep Compression: prune, share weights, entropy-code; LeNet-5 many times smaller.

Run:   .venv/bin/python lessons/11_deep_compression.py [--quick] [--data-dir ../shared/data/mnist]
           [--distill] [--load runs/11_deep_compression/dense.npz] [--seed N] [--no-progress]

Han, Mao & Dally (2016) shrank networks 35-49x without losing accuracy by chaining three
ideas, each of which you met on its own in lessons 07 and 08:

1. Pruning (``minigrad.prune``): remove the small weights gradually while fine-tuning (Zhu &
   Gupta's schedule s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3, global magnitude), here
   to 92% of the weights removed. Optionally (``--distill``) the fine-tuning is distilled
   from the dense network (KD, T = 4, alpha = 0.5: lesson 09).
2. Trained quantization (``quant.kmeans_share``): the surviving weights of each layer share
   k = 2^b values, found by k-means; the layer stores a b-bit cluster index per weight and the
   k float32 centroids, and the centroids are fine-tuned (the gradient of a centroid is the
   sum of its weights' gradients). Han et al. used 8 bits in convolutions and 5 in Linear
   layers; here 4 bits everywhere by default (``--conv-bits 8 --fc-bits 5`` for theirs). Their
   LeNet-5 had convolutions of 500 and 25,000 weights; ours has 150 and 2,400, and a
   256-entry codebook (1 KB) would outweigh conv1's 100-odd surviving weights.
3. Storage (``minigrad.compress``): each nonzero's position as the gap to the previous one in
   a few bits (relative indices: 8 bits in a conv, 5 in a Linear, with escapes for long
   gaps), then both symbol streams Huffman-coded: H <= bits per symbol < H + 1.

Every byte is counted: the compressed model is written to one file (codebooks, code tables,
streams, biases, header, CRC) and the table's last size is that file's size on disk. The file
is then read back into a fresh LeNet-5 and evaluated again: the same test errors, exactly.

The table: for each stage, test error, nonzero weights, bytes, how many times smaller than
the float32 model, and the latency of one forward pass at batch 1 and at batch 256 (the
pruned models run with CSR sparse kernels, ``prune.to_sparse``; the last row runs the same
decoded weights with dense kernels, to show whether sparse kernels pay at this size).
``tradeoff.png``: test accuracy against bytes (log scale) for the stages, and for k-means at
2 to 8 bits everywhere (no fine-tuning) on the pruned and on the dense model.

What to look at: where the bytes go (the second table: in a network this small the codebooks
and biases are a large share; Han et al.'s LeNet-5 had 431K weights, ours 61.7K), which stage
costs accuracy (on full MNIST pruning 13 errors, sharing 7 or 8 more, at 4 bits, 5 bits or
Han et al.'s 8/5 alike; an epoch of centroid fine-tuning wins little back), and the latencies
(CSR kernels gain nothing here: every layer fits in the caches; docs/performance.md says
when they pay).

Measured on this 2-core machine (latencies are noisy: other jobs shared it):

- Full MNIST (``--data-dir ../shared/data/mnist``, 188 s on one core): dense 86 test errors
  of 10,000 (246,824 bytes); pruned to 4,918 weights and fine-tuned 99 (41,252 bytes as
  CSR, 6.0x); 4-bit k-means 107 (8,237 bytes at fixed width, 30.0x); Huffman-coded, the file
  6,265 bytes: 39.4x smaller at +0.21 points of error, read back with the same 107 errors.
  Han et al.'s LeNet-5: 39x at -0.06 points. Where the bytes go: indices 2,502, cluster
  codes 1,963, biases 944, header 328, codebooks 320, code tables 208; fc1 (48,000 weights,
  5.2% kept) takes 2,552. Latency, batch 1 / 256: 0.19 / 8.6 ms dense, 0.20 / 9.1 ms as CSR
  (no gain: these layers fit in the caches). ``--conv-bits 8 --fc-bits 5`` (Han et al.'s
  widths): 106 errors, 9,232 bytes (26.7x); ``--conv-bits 4 --fc-bits 5``: 107, 6,829 (36.1x);
  ``--distill``: pruned 95, final 105, 6,322 bytes (39.0x).
- Bundled subset (the default: 42 s on two idle cores, 2-8x longer beside other jobs): dense
  25 errors of 2,000, pruned 33, shared and Huffman-coded 34, 6,307 bytes (39.1x), on an
  Intel Xeon whose OpenBLAS runs its AVX-512 (SkylakeX) kernels. Another CPU sums float32
  products in another order, so a few errors move: with OpenBLAS's AVX2 kernels
  (``OPENBLAS_CORETYPE=Haswell``, what AMD EPYC machines run) 27 / 30 / 30 and 6,311 bytes;
  on an AMD EPYC 27 / 32 / 31 and 6,363 bytes. ``--quick`` (6 s): 102 / 99 / 104 errors,
  6,272 bytes (39.4x); its bytes tell the default run's story, but its models are
  under-trained (3,000 images, 3 epochs), so the few errors between its stages are noise, not
  what a stage costs.
"""

import copy
import math
import os
import time

import minigrad as mg
from minigrad import cli, compress, distill, nn, prune, quant
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD, lr_scheduler
from minigrad.plot import plot_tradeoff
from minigrad.report import format_table
from minigrad.timing import inference_seconds
from minigrad.train import evaluate, fit

DENSE_LR, PRUNE_LR, CENTROID_LR, BIAS_LR = 0.05, 0.02, 0.1, 0.005
SWEEP_BITS = (2, 3, 4, 5, 6, 8)
BATCH_SIZE = 64
STAGES = ("dense", "pruning", "k-means")  # the three trained stages, in order


def weights(model):
    """The (module, "weight") pairs of every Linear and Conv2d: what is compressed."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


class Setup:
    """Data, budgets and options shared by the stages."""

    def __init__(self, args):
        limit = 3000 if args.quick else None
        self.train_set = normalized_mnist(args.data_dir, limit=limit)
        self.test = DataLoader(normalized_mnist(args.data_dir, train=False), batch_size=1000)
        full = args.data_dir is not None
        self.dense_epochs = 3 if args.quick else args.epochs or (10 if full else 8)
        self.prune_epochs = 2 if args.quick else args.prune_epochs or (10 if full else 8)
        self.centroid_epochs = 1
        self.sparsity, self.distill = args.sparsity, args.distill
        self.conv_bits, self.fc_bits = args.conv_bits, args.fc_bits
        self.sweep_bits = (2, 4, 8) if args.quick else SWEEP_BITS
        self.progress, self.out, self.seed = not args.no_progress, args.out, args.seed

    def errors(self, model):
        """Test errors, counted as Han et al. and Hinton et al. report them."""
        return round((1 - evaluate(model, self.test)["accuracy"]) * len(self.test.dataset))

    def bits(self, module):
        return self.conv_bits if isinstance(module, nn.Conv2d) else self.fc_bits


def train(model, setup, stage, epochs, optimizer, loss_fn=F.cross_entropy, callbacks=()):
    """``epochs`` of ``optimizer`` with a cosine learning rate stepped per batch. Each stage
    shuffles with a seed of its own (``STAGES``' position plus --seed), so its batches are the
    same whether the stages before it ran or were loaded."""
    loader = DataLoader(setup.train_set, batch_size=BATCH_SIZE, shuffle=True,
                        seed=setup.seed + STAGES.index(stage))
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    fit(model, loader, optimizer, loss_fn, epochs, scheduler=scheduler,
        scheduler_interval="step", callbacks=callbacks, progress=setup.progress, desc=stage)


def dense_stage(setup, load_path):
    """LeNet-5 trained from scratch (saved to dense.npz), or loaded from ``load_path``."""
    mg.manual_seed(setup.seed)
    model = LeNet5()
    if load_path:
        model.load_state_dict(mg.load(load_path))
        print(f"dense LeNet-5 loaded from {load_path}")
        return model
    cli.stage("dense", "LeNet-5 trained from scratch", len(setup.train_set), setup.dense_epochs)
    optimizer = SGD(model.parameters(), lr=DENSE_LR, momentum=0.9, weight_decay=1e-4)
    train(model, setup, "dense", setup.dense_epochs, optimizer)
    mg.save(model.state_dict(), os.path.join(setup.out, "dense.npz"))
    return model


def prune_stage(dense, setup):
    """Gradual global magnitude pruning to ``setup.sparsity`` over the first half of the
    fine-tuning steps, then fine-tuning on (distilled from the dense model with --distill).
    Returns the pruned model with its pruning made permanent (plain weights with zeros)."""
    model = copy.deepcopy(dense)
    steps = setup.prune_epochs * math.ceil(len(setup.train_set) / BATCH_SIZE)
    pruning = prune.GradualPruning(weights(model), setup.sparsity, start_step=0,
                                   end_step=steps // 2, frequency=max(1, steps // 80))
    if setup.distill:
        distiller = distill.Distiller(copy.deepcopy(dense), model, [distill.KD(4.0, 0.5)])
        trained, loss_fn = distiller, distiller.step
    else:
        trained, loss_fn = model, F.cross_entropy
    cli.stage("pruning", f"{setup.sparsity:.0%} of the weights removed gradually while "
              f"fine-tuning{', distilled from the dense model' if setup.distill else ''}",
              len(setup.train_set), setup.prune_epochs)
    optimizer = SGD(trained.parameters(), lr=PRUNE_LR, momentum=0.9, weight_decay=1e-4)
    train(trained, setup, "pruning", setup.prune_epochs, optimizer, loss_fn=loss_fn,
          callbacks=[pruning])
    for module, name in weights(model):
        prune.remove(module, name)
    return model


def share_weights(pruned, setup, bits=None):
    """A copy of ``pruned`` whose layers share 2^b k-means centroids (b = ``bits``, or else
    --conv-bits / --fc-bits by layer kind); the zeros stay zero, out of the clustering."""
    model = copy.deepcopy(pruned)
    for module, name in weights(model):
        quant.kmeans_share(module, name, bits=bits or setup.bits(module))
    return model


def kmeans_stage(pruned, setup):
    """Weight sharing, then the centroids (and biases) fine-tuned for an epoch."""
    cli.stage("k-means", f"the surviving weights share {2 ** setup.conv_bits} values per conv "
              f"layer, {2 ** setup.fc_bits} per Linear layer; centroids fine-tuned",
              len(setup.train_set), setup.centroid_epochs)
    model = share_weights(pruned, setup)
    optimizer = SGD(quant.centroid_param_groups(model, CENTROID_LR), lr=BIAS_LR,
                    momentum=0.9)
    train(model, setup, "k-means", setup.centroid_epochs, optimizer)
    return model


def latencies(model, batches):
    """Milliseconds of one forward pass at each batch size (median of 15)."""
    return [1e3 * inference_seconds(model, x) for x in batches]


def nonzeros(model):
    return sum(int((m.weight.data != 0).sum()) for m, _ in weights(model))


def stage_table(models, files, setup):
    """The main table: one row per stage, sizes counted in bytes."""
    x = next(iter(setup.test))[0]
    batches = (x[:1], x[:256])
    dense, pruned, shared, reloaded = models
    dense_bytes = 4 * sum(p.numel() for p in dense.parameters())
    bias_bytes = 4 * sum(m.bias.numel() for m, _ in weights(pruned))
    csr_bytes = prune.report(pruned).totals["csr_bytes"] + bias_bytes
    fixed_bytes = sum(compress.compress(shared, entropy_coding=False).nbytes().values())
    file_bytes = os.path.getsize(files["compressed"])
    reloaded_errors, reloaded_nonzeros = setup.errors(reloaded), nonzeros(reloaded)
    rows = [
        ("dense, float32", setup.errors(dense), nonzeros(dense), dense_bytes,
         *latencies(dense, batches)),
        (f"pruned {setup.sparsity:.0%} + fine-tuned, CSR float32", setup.errors(pruned),
         nonzeros(pruned), csr_bytes, *latencies(prune.to_sparse(pruned), batches)),
        (f"+ k-means {setup.conv_bits}-bit conv / {setup.fc_bits}-bit fc, relative indices",
         setup.errors(shared), nonzeros(shared), fixed_bytes, None, None),
        ("+ Huffman: the file, reloaded (CSR kernels)", reloaded_errors, reloaded_nonzeros,
         file_bytes, *latencies(prune.to_sparse(reloaded), batches)),
        ("  the same weights with dense kernels", reloaded_errors, reloaded_nonzeros,
         file_bytes, *latencies(reloaded, batches)),
    ]
    rows = [(name, errors, nnz, size, dense_bytes / size, *times)
            for name, errors, nnz, size, *times in rows]
    print(format_table(["stage", "test errors", "nonzero weights", "bytes", "x smaller",
                        "ms batch 1", "ms batch 256"], rows,
                       [None, "d", ",d", ",d", ".1f", ".3f", ".2f"]))
    return rows


def layer_table(compressed, pruned):
    """Where the bytes of the file go, per layer (Han et al.'s table 2 for LeNet-5)."""
    modules = dict(pruned.named_modules())
    rows = []
    for layer in compressed.layers:
        weight = modules[layer.name].weight
        bits_per_weight = 8 * (layer.values.payload.size + layer.gaps.payload.size) / max(
            layer.nonzeros, 1)
        rows.append((layer.name, weight.numel(), layer.nonzeros / weight.numel(),
                     layer.values.bits, layer.gaps.bits,
                     "yes" if layer.values.lengths is not None else "no",
                     bits_per_weight, layer.nbytes))
    print(format_table(["layer", "weights", "kept", "value bits", "index bits",
                        "values Huffman-coded", "stream bits per weight", "bytes"],
                       rows, [None, ",d", ".1%", "d", "d", None, ".2f", ",d"]))
    parts = compressed.nbytes()
    print("file parts: " + ", ".join(f"{part} {size:,} B" for part, size in parts.items())
          + f"; total {sum(parts.values()):,} B")
    return rows


def sweep(pruned, dense, setup):
    """k-means at each bit width everywhere, without fine-tuning: (bytes, accuracy)."""
    size = len(setup.test.dataset)
    curves = {}
    for label, model in (("pruned + k-means, b bits (no fine-tune)", pruned),
                         ("dense + k-means, b bits (no fine-tune)", dense)):
        points = []
        for bits in setup.sweep_bits:
            shared = share_weights(model, setup, bits)
            stored = sum(compress.compress(shared).nbytes().values())
            points.append((stored, 1 - setup.errors(shared) / size, bits))
        curves[label] = points
    print(format_table(["model", *(f"{b} bits" for b in setup.sweep_bits)],
                       [(label, *(f"{100 * acc:.2f}% / {stored:,} B" for stored, acc, _ in
                                  points)) for label, points in curves.items()],
                       [None] * (1 + len(setup.sweep_bits))))
    return curves


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "11_deep_compression",
                               quick="3,000 images, 3 dense and 2 pruning epochs")
    parser.add_argument("--epochs", type=int, default=None,
                        help="dense training epochs (default: 10 with --data-dir, else 8)")
    parser.add_argument("--prune-epochs", type=int, default=None,
                        help="fine-tuning epochs while and after pruning (default as --epochs)")
    parser.add_argument("--sparsity", type=float, default=0.92,
                        help="share of the weights removed (Han et al.'s LeNet-5: 92%%)")
    parser.add_argument("--conv-bits", type=int, default=4,
                        help="k-means bits in convolutions (Han et al.: 8)")
    parser.add_argument("--fc-bits", type=int, default=4,
                        help="k-means bits in Linear layers (Han et al.: 5)")
    parser.add_argument("--distill", action="store_true",
                        help="distill the pruned fine-tuning from the dense model")
    parser.add_argument("--load", default=None,
                        help="a dense LeNet-5 state dict (dense.npz of an earlier run)")
    args = cli.parse_args(parser, argv)
    start = time.perf_counter()
    setup = Setup(args)

    dense = dense_stage(setup, args.load)
    pruned = prune_stage(dense, setup)
    shared = kmeans_stage(pruned, setup)
    files = {"compressed": os.path.join(args.out, "lenet5.mgdc")}
    cli.stage("storage", f"relative indices and Huffman codes written to {files['compressed']},"
              " read back into a fresh LeNet-5")
    compressed = compress.save_compressed(shared, files["compressed"])
    reloaded = LeNet5()
    reloaded.load_state_dict(compress.load_compressed(files["compressed"]).state_dict())

    cli.stage("results", "each stage evaluated on the test images and timed")
    print(f"Deep Compression of LeNet-5 ({len(setup.train_set):,} training images; "
          f"{setup.dense_epochs} dense epochs, {setup.prune_epochs} pruning epochs"
          f"{' distilled from the dense model' if setup.distill else ''}, "
          f"{setup.centroid_epochs} centroid epoch); errors of {len(setup.test.dataset):,}")
    rows = stage_table((dense, pruned, shared, reloaded), files, setup)
    print(f"\nWhere the {os.path.getsize(files['compressed']):,} bytes of "
          f"{files['compressed']} go")
    layers = layer_table(compressed, pruned)
    cli.stage("sweep", f"k-means at {', '.join(map(str, setup.sweep_bits))} bits in every "
              "layer of the pruned and the dense model, no fine-tuning")
    print("Test accuracy / bytes with k-means at b bits in every layer, no fine-tuning")
    curves = sweep(pruned, dense, setup)

    size = len(setup.test.dataset)
    stage_names = ("dense", "pruned", "k-means", "Huffman")
    stages = [(row[3], 1 - row[1] / size, name) for row, name in zip(rows, stage_names)]
    files["tradeoff"] = os.path.join(args.out, "tradeoff.png")
    plot_tradeoff(
        {"Deep Compression stages": stages,
         **{label: [(b, a, f"{bits} b") for b, a, bits in points]
            for label, points in curves.items()}},
        "bytes", "test accuracy", path=files["tradeoff"], log_x=True,
        title="LeNet-5: test accuracy against stored bytes")
    print(f"\nsaved {files['tradeoff']} and {files['compressed']} "
          f"({time.perf_counter() - start:.0f} s in all)")
    return {"rows": rows, "layers": layers, "sweep": curves, "files": files,
            "compressed": compressed, "test_size": size}


if __name__ == "__main__":
    main()
