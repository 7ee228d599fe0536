"""Lesson 13 — transformers: a Vision Transformer on MNIST, and four ways to make it smaller.

Run:   .venv/bin/python lessons/13_transformers.py [--quick] [--data-dir ../shared/data/mnist]
           [--epochs N] [--distill-epochs N] [--max-shift 1] [--seed N] [--no-progress]

A Vision Transformer (Dosovitskiy et al. 2021) reads an image as a sequence: it cuts the 28x28
digit into 16 patches of 7x7, maps each to a vector of 64 numbers (a strided Conv2d), puts a
learned class token in front, adds learned positions, and passes the 17 tokens through 4
encoder layers. In each layer every token looks at every other token through attention,

    head_h = softmax(Q_h K_h^T / sqrt(d)) V_h,   Q_h = x W_q,h^T (K, V alike),  d = 64 / 4

in 4 heads at once, then through a small MLP (64 -> 128 -> 64, GELU); the class token's final
vector is classified by a Linear layer (``models.ViT``: 139,018 parameters). Nothing in it
knows that neighbouring pixels belong together, as a convolution does: it must learn that
from the data, which is why ViTs want more data or a teacher than CNNs.

A. Training. AdamW (lr 3e-3, weight decay 0.05), batch 128, a linear warmup over the first
   10% of the steps, then cosine to zero (``SequentialLR``), each digit shifted by up to one
   pixel each way, a new shift each epoch (``RandomShift(1)``; ``--max-shift 0`` for none).
   On the bundled subset the shift is worth about 1.5 points (docs/transformers.md).
B. What it looks at (``attention.png``): attention rollout (Abnar & Zuidema 2020). Each layer
   mixes tokens by its head-averaged attention A_l and keeps a copy of its input (the
   residual), so the share of token j in token i after all layers is the product
   R = Ã_L ... Ã_1, Ã_l = (A_l + I) / 2 with rows normalized. The class token's row of R
   over the 16 patches, as a 4x4 map over the digit, shows where the decision comes from.
C. Pruning heads (Michel et al. 2019, ``prune.head_importance``): the importance of head h is
   |dL/dm_h| for a gate m_h = 1 on its output, summed over 2,000 training images, normalized
   per layer. ``heads.png``: accuracy against heads kept when the least important heads go
   first, and in a random order, without fine-tuning. Then half of the 16 heads are cut out
   (``prune_heads``: their rows of the q, k, v projections and columns of the output one)
   and the smaller model is fine-tuned for one epoch.
D. 2:4 sparsity (``prune.semi_structured``): in every group of 4 consecutive weights of
   every encoder Linear and in-projection, the 2 largest are kept (the pattern of Ampere's
   sparse tensor cores), then one epoch of fine-tuning with the masks fixed. The table
   counts the compressed format's bytes (values plus 2-bit indices); it runs with dense
   kernels here, so its latency is the dense model's.
E. Quantization: int8 dynamic (``quant.quantize_dynamic``: every Linear and every attention
   projection int8 per channel, activations uint8 per batch) and int4 weight-only
   (``quant.quantize_weight_only``, groups of 32 inputs with a scale and zero point each).
   No training: both quantize the trained ViT of A. And the two combined with C: the
   head-pruned model quantized to int8.
F. Distillation with and without the token (Touvron et al. 2021, DeiT). A CNN teacher (two
   convolutions, 98-99% on the subset) teaches fresh ViTs trained with A's recipe for
   ``--distill-epochs``: one alone (the labels only), one by soft-label KD (Hinton et al.
   2015: T = 4, alpha = 0.5), one with DeiT's distillation token trained on the teacher's
   hard decisions (``distill.DeiTStep``: CE(y, c)/2 + CE(argmax t, d)/2, prediction (c+d)/2).
   The students get fewer epochs than A's ViT, to keep the run short; the teacher's labels
   are those of the shifted digit each student sees.

The table at the end: test accuracy, parameters (nonzero ones for 2:4), bytes
(``quant.model_size``), and the latency of one forward pass at batch 1 and at batch 256, for
every variant.

What to look at: the rollout maps (the class token reads the patches with strokes, not the
background); ``heads.png`` (removing the least important heads first costs less than a random
order); and the table:

- half of the heads cost 10 points without fine-tuning, and one epoch wins most of it back;
- 2:4 costs little after one epoch, at 56% of the bytes (no sparse kernel here: the latency
  is the dense model's);
- int8 keeps the accuracy at 30% of the bytes but is slower here: it quantizes every
  activation batch, and its int8 GEMM is no faster than float32 BLAS at these sizes;
- int4 is 4.9x smaller but slower still, since it expands its weights on every call;
- at this budget neither teacher helps. The teacher's decision differs from the label on
  0.85% of the shifted training digits of the subset, so DeiT's token learns almost the
  labels again.
  DeiT's gains came after 300 epochs of strong augmentation (RandAugment, mixup, CutMix),
  where the teacher's decision on a heavily altered image often differs from its label.

Measured on this 2-core machine (an AMD EPYC, idle; ``--no-progress``):

- The default run took 395 s. The ViT of A reached 98.15% of the 2,000 test images in 163 s
  (15 epochs of the 15,500 subset images).
- In the table: 8 of 16 heads 87.80%, and 96.70% after one epoch (105,866 parameters);
  2:4 94.65%, then 97.80% (310,312 bytes against 556,072); int8 98.20% (168,144 bytes);
  int4 97.90% (113,602 bytes).
- The teacher reached 99.05%. The students, 5 epochs each: alone 96.20%, KD 96.05%,
  DeiT 95.65%.
- Latency at batch 1 / 256: float 2.4 / 54 ms, int8 5.2 / 85 ms, int4 3.5 / 58 ms.
- Full MNIST (``--data-dir ../shared/data/mnist``, 1,625 s, beside another job): the ViT
  reached 98.99% of the 10,000 test images in 364 s (10 epochs). 8 of 16 heads gave 91.15%,
  then 98.61% after one epoch; 2:4 gave 97.61%, then 99.00%; int8 99.00%; int4 98.91%. The
  teacher reached 99.48%. The students: alone 98.67%, KD 98.66%, DeiT 98.55%.
  docs/transformers.md has the whole table.

``--quick`` (2,000 training images, 5 epochs for A, 2 per student, about 50 s) only shows
that every stage runs. Its ViT reaches about 65%: a ViT needs many more steps than a CNN.
"""

import copy
import math
import os
import time

import matplotlib.pyplot as plt  # minigrad.plot has chosen the Agg backend
import numpy as np

import minigrad as mg
from minigrad import cli, distill, nn, prune, quant
from minigrad.data import DataLoader, TensorDataset, TransformedDataset
from minigrad.data.mnist import MNIST_MEAN, MNIST_STD, normalized_mnist
from minigrad.data.transforms import RandomShift
from minigrad.models import ViT
from minigrad.nn import functional as F
from minigrad.optim import SGD, AdamW, lr_scheduler
from minigrad.plot import plot_tradeoff, save_png
from minigrad.report import format_table
from minigrad.timing import inference_seconds
from minigrad.train import evaluate, fit

BATCH_SIZE = 128
BACKGROUND = (0 - MNIST_MEAN) / MNIST_STD  # a blank pixel after normalization
HEADS_PRUNED = 0.5  # the share of heads the pruned variant loses


class Setup:
    """Data, budgets and where things go, shared by the stages."""

    def __init__(self, args):
        limit = 2000 if args.quick else None
        self.train_set = in_memory(normalized_mnist(args.data_dir, limit=limit))
        self.shifted = TransformedDataset(self.train_set, RandomShift(
            args.max_shift, fill=BACKGROUND, seed=args.seed))
        self.test = DataLoader(in_memory(normalized_mnist(args.data_dir, train=False)),
                               batch_size=500)
        self.test_images = self.test.dataset.arrays[0]
        full = args.data_dir is not None
        self.epochs = args.epochs or (5 if args.quick else 10 if full else 15)
        self.distill_epochs = args.distill_epochs or (2 if args.quick else 5)
        self.teacher_epochs = 2 if args.quick else 6
        self.repeats = 3 if args.quick else 10
        self.head_step = 4 if args.quick else 2  # heads removed between points of heads.png
        self.progress, self.out, self.seed = not args.no_progress, args.out, args.seed

    def accuracy(self, model):
        return evaluate(model, self.test)["accuracy"]


def in_memory(dataset):
    """Normalize every image once (a TensorDataset), not at every epoch and evaluation."""
    if isinstance(dataset, TensorDataset):
        return dataset
    return TensorDataset(*dataset.get_batch(np.arange(len(dataset))))


def warmup_cosine(optimizer, steps):
    """Linear warmup over the first 10% of ``steps``, then cosine to zero."""
    warm = max(1, steps // 10)
    return lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=1 / warm, total_iters=warm),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps - warm)], milestones=[warm])


def train_vit(model, setup, epochs, desc, lr=3e-3, step=F.cross_entropy, parameters=None):
    """A's recipe: AdamW, batch 128, warmup and cosine stepped per batch, shifted digits."""
    loader = DataLoader(setup.shifted, batch_size=BATCH_SIZE, shuffle=True, seed=setup.seed)
    optimizer = AdamW(model.parameters() if parameters is None else parameters, lr=lr,
                      weight_decay=0.05)
    return fit(model, loader, optimizer, step, epochs,
               scheduler=warmup_cosine(optimizer, epochs * len(loader)),
               scheduler_interval="step", progress=setup.progress, desc=desc)


# ----------------------------------------------------------------------------- B: attention
def attention_rollout(model, images):
    """(N, patches): the class token's share of each patch after all layers, R[:, 0, 1:] with
    R = Ã_L ... Ã_1, Ã_l = (A_l + I) / 2 normalized by rows, A_l the head-averaged weights."""
    inputs = []
    layers = [layer.self_attn for layer in model.encoder.layers]
    handles = [a.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
               for a in layers]
    model.eval()
    try:
        with mg.no_grad():
            model(mg.tensor(images))
            maps = [a(x, x, x, need_weights=True)[1].numpy() for a, x in zip(layers, inputs)]
    finally:
        for handle in handles:
            handle.remove()
    rollout = np.eye(maps[0].shape[-1])
    for weights in maps:
        mixed = (weights + np.eye(weights.shape[-1])) / 2
        rollout = (mixed / mixed.sum(axis=-1, keepdims=True)) @ rollout
    return rollout[:, 0, 1:]


def plot_attention(images, shares, path):
    """Each digit above its rollout map, the 4x4 patch shares blown up to the image."""
    side = int(math.isqrt(shares.shape[1]))
    figure, axes = plt.subplots(2, len(images), figsize=(1.6 * len(images), 3.4))
    for column, (image, share) in enumerate(zip(images, shares)):
        axes[0, column].imshow(image[0], cmap="gray")
        block = image.shape[-1] // side
        axes[1, column].imshow(image[0], cmap="gray")
        axes[1, column].imshow(np.kron(share.reshape(side, side), np.ones((block, block))),
                               cmap="inferno", alpha=0.6)
        for row in (0, 1):
            axes[row, column].axis("off")
    figure.suptitle("The digits, and the class token's attention rollout over the patches")
    return save_png(figure, path)


# ----------------------------------------------------------------------------- C: heads
def heads_curve(model, scores, setup, rng):
    """{order: [(heads kept, accuracy)]} removing heads by importance and at random."""
    total = sum(len(s) for s in scores.values())
    removable = total - len(scores)  # each layer keeps a head
    counts = range(0, removable + 1, setup.head_step)
    random_scores = {path: rng.random(len(s)) for path, s in scores.items()}
    curves = {}
    for label, order in (("least important first", scores), ("random order", random_scores)):
        curves[label] = []
        for count in counts:
            pruned = copy.deepcopy(model)
            prune.prune_heads_by_importance(pruned, order, count)
            curves[label].append((total - count, setup.accuracy(pruned)))
    return curves


def importance_batches(setup, images=2000, batch_size=250):
    """The first ``images`` training images in batches: what head importance is summed on."""
    x, y = setup.train_set.arrays
    return [(mg.tensor(x[i:i + batch_size]), mg.tensor(y[i:i + batch_size]))
            for i in range(0, min(images, len(x)), batch_size)]


# ----------------------------------------------------------------------------- D: 2:4
def semi_structured_vit(model):
    """2:4 on every Linear of the encoder and every in-projection (the patch embedding and the
    head stay dense); returns the pruned (module, name) pairs."""
    pruned = [(m, "weight") for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    pruned += [(layer.self_attn, "in_proj_weight") for layer in model.encoder.layers]
    for module, name in pruned:
        prune.semi_structured(module, name)
    return pruned


def semi_structured_model_bytes(model, pruned):
    """model_size's bytes with each 2:4 weight counted in the compressed format."""
    dense = sum(getattr(m, name).data.nbytes for m, name in pruned)
    packed = sum(prune.semi_structured_bytes(getattr(m, name), 2, 4) for m, name in pruned)
    return quant.model_size(model).total - dense + packed


# ----------------------------------------------------------------------------- F: teacher
def teacher_cnn():
    """Lesson 09's teacher: conv 5x5 (16, padding 2) -> ReLU -> pool, conv 5x5 (32) -> ReLU
    -> pool, 800 -> 256 -> ReLU -> dropout 0.5 -> 10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def train_teacher(setup):
    mg.manual_seed(setup.seed + 1)
    teacher = teacher_cnn()
    loader = DataLoader(setup.shifted, batch_size=BATCH_SIZE, shuffle=True, seed=setup.seed)
    optimizer = SGD(teacher.parameters(), lr=0.05, momentum=0.9)
    fit(teacher, loader, optimizer, F.cross_entropy, setup.teacher_epochs,
        scheduler=lr_scheduler.CosineAnnealingLR(optimizer, setup.teacher_epochs * len(loader)),
        scheduler_interval="step", progress=setup.progress, desc="teacher")
    return teacher.eval()


def teacher_disagreement(teacher, setup):
    """The share of (shifted) training digits on which the teacher's decision is not the
    label: all that DeiT's hard distillation adds to the labels."""
    loader = DataLoader(setup.shifted, batch_size=1000)
    wrong = 0
    with mg.no_grad():
        for x, y in loader:
            wrong += int((teacher(x).numpy().argmax(axis=1) != y.numpy()).sum())
    return wrong / len(setup.shifted)


def students(teacher, setup):
    """{name: trained student}: the same ViT and recipe alone, with KD, with DeiT's token."""
    trained = {}
    for name in ("ViT alone", "ViT + KD (T=4)", "DeiT: ViT + distillation token"):
        mg.manual_seed(setup.seed + 2)  # the same initial weights for every student
        if name.startswith("DeiT"):
            student = ViT(distillation=True)
            train_vit(student, setup, setup.distill_epochs, "DeiT", step=distill.DeiTStep(teacher))
        elif "KD" in name:
            student = ViT()
            distiller = distill.Distiller(teacher, student, [distill.KD(T=4, alpha=0.5)])
            train_vit(distiller, setup, setup.distill_epochs, "KD", step=distiller.step,
                      parameters=distiller.parameters())
        else:
            student = ViT()
            train_vit(student, setup, setup.distill_epochs, "alone")
        trained[name] = student.eval()
    return trained


# ----------------------------------------------------------------------------- the table
def nonzero_parameters(model):
    """Nonzero entries of the parameters as the model uses them (pruned weights masked)."""
    count = 0
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            stored = name[:-len("_orig")] if name.endswith("_orig") else name
            count += int(np.count_nonzero(getattr(module, stored).data))
    return count


def row(name, model, setup, parameters=None, size=None):
    """[name, accuracy %, parameters, bytes, ms at batch 1, ms at batch 256]."""
    one, many = setup.test_images[:1], setup.test_images[:256]
    return [name, 100 * setup.accuracy(model),
            nonzero_parameters(model) if parameters is None else parameters,
            quant.model_size(model).total if size is None else size,
            1000 * inference_seconds(model, mg.tensor(one), setup.repeats),
            1000 * inference_seconds(model, mg.tensor(many), setup.repeats)]


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "13_transformers",
                               quick="2,000 images, 5 epochs for the ViT, 2 per student")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the ViT (default 15 on the subset, 10 on full MNIST)")
    parser.add_argument("--distill-epochs", type=int, default=None,
                        help="epochs of each student of part F (default 5)")
    parser.add_argument("--max-shift", type=int, default=1,
                        help="training digits shifted by up to this many pixels (default 1; "
                             "0: no shift)")
    args = cli.parse_args(parser, argv)
    start = time.perf_counter()
    setup = Setup(args)
    rows, files = [], {}

    cli.stage("vit", "a ViT (patch 7, dim 64, 4 layers of 4 heads) on shifted digits",
              images=len(setup.train_set), epochs=setup.epochs)
    mg.manual_seed(args.seed)
    vit = ViT()
    train_vit(vit, setup, setup.epochs, "vit")
    seconds = time.perf_counter() - start
    rows.append(row("ViT float32", vit, setup))
    print(f"test accuracy {rows[0][1]:.2f}% after {setup.epochs} epochs ({seconds:.0f} s)")

    cli.stage("attention", "attention rollout of the class token on 8 test digits")
    images = setup.test_images[:8]
    shares = attention_rollout(vit, images)
    files["attention"] = os.path.join(args.out, "attention.png")
    plot_attention(images, shares, files["attention"])
    print(f"share of the class token on its 4 most-attended patches: "
          f"{np.sort(shares, axis=1)[:, -4:].sum(axis=1).mean():.0%} (16 patches)")

    cli.stage("heads", "head importance on 2,000 training images, heads removed without and "
              "with fine-tuning")
    scores = prune.head_importance(vit, importance_batches(setup), F.cross_entropy)
    print(format_table(["layer", *[f"head {h}" for h in range(4)]],
                       [[path, *s] for path, s in scores.items()], [None] + [".3f"] * 4))
    curves = heads_curve(vit, scores, setup, np.random.default_rng(args.seed))
    files["heads"] = os.path.join(args.out, "heads.png")
    plot_tradeoff(curves, "heads kept (of 16)", "test accuracy", path=files["heads"],
                  title="ViT: accuracy as heads are removed, no fine-tuning")
    few_heads = copy.deepcopy(vit)
    removed, report = prune.prune_heads_by_importance(few_heads, scores, HEADS_PRUNED,
                                                      return_report=True)
    print(report)
    rows.append(row("8 of 16 heads, no fine-tuning", few_heads, setup))
    train_vit(few_heads, setup, 1, "heads fine-tuning", lr=1e-3)
    rows.append(row("8 of 16 heads + 1 epoch", few_heads, setup))

    cli.stage("2:4", "2 of every 4 encoder weights kept, 1 epoch of fine-tuning with the masks")
    sparse = copy.deepcopy(vit)
    pruned = semi_structured_vit(sparse)
    rows.append(row("2:4, no fine-tuning", sparse, setup,
                    size=semi_structured_model_bytes(sparse, pruned)))
    train_vit(sparse, setup, 1, "2:4 fine-tuning", lr=1e-3)
    still = all(prune.check_nm(getattr(m, name), 2, 4) for m, name in pruned)
    print(f"every group of 4 still holds exactly 2 nonzeros after fine-tuning: {still}")
    rows.append(row("2:4 + 1 epoch", sparse, setup,
                    size=semi_structured_model_bytes(sparse, pruned)))

    cli.stage("quantization", "int8 dynamic and int4 weight-only (groups of 32), no training")
    parameters = nonzero_parameters(vit)
    rows.append(row("int8 dynamic", quant.quantize_dynamic(vit, verbose=False), setup,
                    parameters))
    rows.append(row("int4 weight-only, groups of 32",
                    quant.quantize_weight_only(vit, group_size=32), setup, parameters))
    rows.append(row("8 of 16 heads + 1 epoch, int8",
                    quant.quantize_dynamic(few_heads, verbose=False), setup,
                    nonzero_parameters(few_heads)))

    cli.stage("distillation", "a CNN teacher; ViT students alone, with KD and with DeiT's token",
              images=len(setup.train_set), epochs=setup.distill_epochs)
    teacher = train_teacher(setup)
    rows.append(row("teacher CNN", teacher, setup))
    disagreement = teacher_disagreement(teacher, setup)
    print(f"the teacher's decision differs from the label on {disagreement:.2%} of the "
          f"shifted training digits")
    for name, student in students(teacher, setup).items():
        rows.append(row(f"{name}, {setup.distill_epochs} epochs", student, setup))

    cli.stage("results", "every variant on the test images")
    print(f"ViT on {len(setup.train_set):,} training images; accuracy on "
          f"{len(setup.test.dataset):,} test images; latency of one forward pass")
    print(format_table(["variant", "accuracy %", "parameters", "bytes", "ms batch 1",
                        "ms batch 256"], rows, [None, ".2f", ",d", ",d", ".2f", ".1f"]))
    print(f"\nsaved {files['attention']} and {files['heads']} "
          f"({time.perf_counter() - start:.0f} s in all)")
    return {"rows": rows, "files": files, "scores": scores, "curves": curves,
            "removed": removed, "report": report, "two_of_four": still, "shares": shares,
            "vit_seconds": seconds, "disagreement": disagreement}


if __name__ == "__main__":
    main()
