"""Lesson 07 — pruning: which weights to remove, how, when, and what it buys.

Run:   .venv/bin/python lessons/07_pruning.py [--quick] [--data-dir ../shared/data/mnist]

A trained network has many weights it hardly needs. Pruning sets them to zero, for good: a
mask (``weight = weight_orig * weight_mask``) keeps them at zero while the rest retrain.

A. Which weights? LeNet-300-100 (784-300-100-10), 90% of its weights removed at once by four
   importance scores: |w| (magnitude), |g| (gradient), |w g| (first-order Taylor: the change
   in loss when w goes to 0) and random; error right after pruning and after one epoch of
   fine-tuning.
B. When? To 92% sparsity (8% of the weights kept, as Han et al.) three ways with the same
   fine-tuning budget: one shot then fine-tune; iteratively (Han et al. 2015: prune, retrain,
   prune more); gradually during fine-tuning (Zhu & Gupta 2017:
   s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3).
C. The trade-off: test error against sparsity, one-shot magnitude pruning with and without a
   short fine-tune (``tradeoff.png``: against the weights kept, on a log axis).
D. LeNet-5: each layer's sensitivity (that layer alone pruned, no retraining;
   ``sensitivity.png``), then gradual pruning of the whole network to 92%.
E. Structured pruning: remove half the filters of both convolutions of LeNet-5 (smallest L1
   norm), fine-tune, and physically shrink the network: fewer channels, a measured speedup.
F. Sparse inference: the 92%-sparse LeNet-300-100 stored as CSR and run with a sparse kernel.

The bundled subset shows every effect in about two minutes (8 epochs on 15,500 images;
pruned gradually to 92%, LeNet-300-100 goes from 2.60% to 2.85% test error, LeNet-5 from 1.15%
to 1.50%); ``--data-dir`` with the full MNIST files reproduces Han et al.'s result
(LeNet-300-100: 1.64% -> 1.59% error keeping 8% of the weights; LeNet-5: 0.80% -> 0.77%
keeping 8%): at least 90% of the weights removed for at most +0.2 points of error.
``--quick`` (3,000 images, 4 epochs of training, 2 of fine-tuning) shows every effect but the
last one's size: its weaker models lose about a point (7.85% -> 8.80%, 4.05% -> 5.35%), and
it says so.
"""

import copy
import os
import time

import minigrad as mg
from minigrad import cli, nn, prune
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP, LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD, lr_scheduler
from minigrad.plot import plot_tradeoff
from minigrad.report import format_table
from minigrad.timing import inference_seconds
from minigrad.train import evaluate, fit


DENSE_LR, FINETUNE_LR = 0.05, 0.02


def weights(model):
    """The (module, "weight") pairs of every Linear and Conv2d: what we prune."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def test_error(model, loader):
    return 1.0 - evaluate(model, loader)["accuracy"]


def plot_against_weights_kept(curves, path, title):
    """{label: [(sparsity, error)]} drawn as error (%) against the weights kept (%) on a log
    axis: there the sparsities that matter, 90% to 99% (10% to 1% kept), are as far apart as
    50% to 90%, instead of crowded at the right end."""
    kept = {label: [(round(100 * (1 - sparsity), 6), 100 * error) for sparsity, error in points]
            for label, points in curves.items()}
    ticks = sorted({x for points in kept.values() for x, _ in points})
    plot_tradeoff(kept, "weights kept (%)", "test error (%)", path=path, log_x=True,
                  xticks=ticks, title=title)


def train(model, setup, epochs, lr, desc, callbacks=()):
    """SGD with momentum and a cosine learning rate, stepped per batch; ``desc`` labels the
    progress bar (or the per-epoch lines)."""
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(setup.train))
    fit(model, setup.train, optimizer, F.cross_entropy, epochs, scheduler=scheduler,
        scheduler_interval="step", callbacks=callbacks, progress=setup.progress, desc=desc)


def finetune(model, setup, epochs, desc, callbacks=()):
    """Retraining after (or while) pruning: the same recipe at a lower learning rate."""
    train(model, setup, epochs, FINETUNE_LR, desc, callbacks)


def prune_gradually(model, setup, final, desc):
    """Fine-tune for ``setup.finetune_epochs`` while pruning gradually to ``final``: from the
    first step to half of the steps, 40 pruning steps (Zhu & Gupta's schedule)."""
    steps = setup.finetune_epochs * len(setup.train)
    callback = prune.GradualPruning(weights(model), final, start_step=0, end_step=steps // 2,
                                    frequency=max(1, steps // 80))
    finetune(model, setup, setup.finetune_epochs, desc, [callback])
    return model


class Setup:
    """Data and budgets shared by the parts."""

    def __init__(self, args):
        limit = 3000 if args.quick else None
        self.train = DataLoader(normalized_mnist(args.data_dir, limit=limit), batch_size=64,
                                shuffle=True)
        self.test = DataLoader(normalized_mnist(args.data_dir, train=False), batch_size=1000)
        self.dense_epochs = 4 if args.quick else args.epochs
        self.finetune_epochs = 2 if args.quick else args.epochs
        self.sensitivity_sparsities = ([0.0, 0.5, 0.9, 0.99] if args.quick else
                                       [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
        self.images = len(self.train.dataset)
        self.seed, self.progress, self.out = args.seed, not args.no_progress, args.out


def dense_model(make, name, setup):
    """A freshly initialized ``make()`` trained on the labels; each model starts from the
    generator seeded with --seed, so its weights do not depend on what was trained before."""
    cli.stage(f"dense {name}", "trained on the labels, the model every part prunes",
              images=setup.images, epochs=setup.dense_epochs)
    mg.manual_seed(setup.seed)
    model = make()
    train(model, setup, setup.dense_epochs, DENSE_LR, desc=f"dense {name}")
    return model, test_error(model, setup.test)


def part_a(mlp, setup, sparsity=0.9):
    """Importance criteria at equal sparsity, one shot."""
    def gradient_scores(model, scorer):
        """Gradient statistics of this copy (they are keyed by its own parameters)."""
        model.eval()
        stats = prune.accumulate_gradients(model, setup.train, F.cross_entropy, batches=50)
        return lambda m, n: scorer(m, n, stats)

    scorers = {"magnitude |w|": lambda model: None,
               "gradient |g|": lambda model: gradient_scores(model, prune.gradient),
               "Taylor |w g|": lambda model: gradient_scores(model, prune.taylor),
               "random": lambda model: (lambda m, n: prune.random(m, n, seed=setup.seed))}
    cli.stage("A. which weights", f"LeNet-300-100, {sparsity:.0%} of its weights removed by "
              "each of four scores, then fine-tuned", images=setup.images, epochs=1)
    rows = []
    for name, make_importance in scorers.items():
        model = copy.deepcopy(mlp)
        prune.prune_to(weights(model), sparsity, make_importance(model))
        pruned = test_error(model, setup.test)
        finetune(model, setup, 1, desc=f"A {name}")
        rows.append((name, prune.sparsity(weights(model)), pruned, test_error(model, setup.test)))
    print(f"\nA. Which weights: LeNet-300-100, {sparsity:.0%} removed at once (global ranking)")
    print(format_table(["importance", "sparsity", "error pruned", "after 1 epoch"], rows,
                       [None, ".1%", ".2%", ".2%"]))
    return rows


def part_b(mlp, setup, final=0.92):
    """One shot vs iterative vs gradual, the same fine-tuning budget."""
    epochs = setup.finetune_epochs
    cli.stage("B. when", f"LeNet-300-100 to {final:.0%} sparsity at once, iteratively and "
              "gradually, each with the same fine-tuning", images=setup.images, epochs=epochs)
    results = {}

    one_shot = copy.deepcopy(mlp)
    prune.prune_to(weights(one_shot), final)
    finetune(one_shot, setup, epochs, desc="B one shot")
    results["one shot + fine-tune"] = one_shot

    iterative = copy.deepcopy(mlp)
    targets = [final * (k + 1) / epochs for k in range(epochs)]  # one epoch per round
    prune.iterative_pruning(weights(iterative), targets, lambda index, target: finetune(
        iterative, setup, 1, desc=f"B iterative, at {target:.0%}"))
    results["iterative (Han)"] = iterative

    results["gradual (AGP)"] = prune_gradually(copy.deepcopy(mlp), setup, final, "B gradual")

    rows = [(name, prune.sparsity(weights(model)), test_error(model, setup.test))
            for name, model in results.items()]
    print(f"\nB. When: LeNet-300-100 to {final:.0%} sparsity, {epochs} epochs of fine-tuning each")
    print(format_table(["schedule", "sparsity", "test error"], rows, [None, ".1%", ".2%"]))
    return rows, results


def part_c(mlp, dense_error, setup, sparsities=(0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)):
    """Error against sparsity: one-shot magnitude pruning, with and without fine-tuning."""
    cli.stage("C. trade-off", f"LeNet-300-100 pruned at once to each of {len(sparsities)} "
              f"sparsities from {sparsities[0]:.0%} to {sparsities[-1]:.0%}, then fine-tuned",
              images=setup.images, epochs=1)
    curves = {"one shot, no retraining": [], "one shot + 1 epoch fine-tune": []}
    for target in sparsities:
        model = copy.deepcopy(mlp)
        prune.prune_to(weights(model), target)
        curves["one shot, no retraining"].append((target, test_error(model, setup.test)))
        finetune(model, setup, 1, desc=f"C {target:.0%}")
        curves["one shot + 1 epoch fine-tune"].append((target, test_error(model, setup.test)))
    print("\nC. Trade-off: LeNet-300-100 test error against sparsity")
    rows = [(target, *(dict(points)[target] for points in curves.values()))
            for target in sparsities]
    print(format_table(["sparsity", *curves], rows, [".0%", ".2%", ".2%"]))
    path = os.path.join(setup.out, "tradeoff.png")
    dense = {"dense (no pruning)": [(target, dense_error) for target in sparsities]}
    plot_against_weights_kept({**curves, **dense}, path, "LeNet-300-100: one-shot magnitude "
                              "pruning (global)")
    return curves, path


def part_d(lenet, setup, final=0.92):
    """LeNet-5: per-layer sensitivity, then gradual pruning to ``final``."""
    cli.stage("D. LeNet-5", "each layer pruned alone at "
              f"{len(setup.sensitivity_sparsities)} sparsities (no training), then the whole "
              f"network gradually to {final:.0%} while fine-tuning", images=setup.images,
              epochs=setup.finetune_epochs)
    curves = prune.sensitivity_analysis(lenet, lambda m: test_error(m, setup.test),
                                        setup.sensitivity_sparsities)
    sensitivity_png = os.path.join(setup.out, "sensitivity.png")
    plot_against_weights_kept(curves, sensitivity_png, "LeNet-5: each layer pruned alone (no "
                              "retraining)")
    print("\nD. LeNet-5: test error with one layer pruned alone (no retraining)")
    targets = [target for target, _ in next(iter(curves.values()))]
    print(format_table(["layer", *(f"{t:.0%}" for t in targets)],
                       [(layer, *(e for _, e in points)) for layer, points in curves.items()],
                       [None] + [".2%"] * len(targets)))

    gradual = prune_gradually(copy.deepcopy(lenet), setup, final, "D gradual")
    error = test_error(gradual, setup.test)
    print(f"LeNet-5 pruned gradually to {prune.sparsity(weights(gradual)):.1%}: "
          f"test error {error:.2%}")
    print(prune.report(gradual).table())
    return curves, gradual, error, sensitivity_png


def part_e(lenet, setup, amount=0.5):
    """Structured: half of each conv layer's filters (smallest L1 norm), fine-tune, shrink."""
    cli.stage("E. structured", f"{amount:.0%} of LeNet-5's conv filters removed, fine-tuned, "
              "then cut out", images=setup.images, epochs=setup.finetune_epochs)
    model = copy.deepcopy(lenet)
    for conv in (model.features[0], model.features[3]):
        prune.ln_structured(conv, "weight", amount, n=1, dim=0)
    pruned_error = test_error(model, setup.test)
    finetune(model, setup, setup.finetune_epochs, desc="E structured")
    error = test_error(model, setup.test)
    x = next(iter(setup.test))[0][:256]
    shrunk, surgery = prune.shrink(model, x[:2], return_report=True)
    shrunk_error = test_error(shrunk, setup.test)
    dense_time, shrunk_time = inference_seconds(lenet, x), inference_seconds(shrunk, x)
    params = (sum(p.numel() for p in lenet.parameters()),
              sum(p.numel() for p in shrunk.parameters()))
    print(f"\nE. Structured: {amount:.0%} of LeNet-5's conv filters removed (L1 norm), "
          f"{setup.finetune_epochs} epochs of fine-tuning, then shrink")
    print(surgery)
    print(format_table(
        ["model", "parameters", "test error", "inference ms (batch 256)", "speedup"],
        [("dense", params[0], test_error(lenet, setup.test), 1e3 * dense_time, 1.0),
         ("pruned, before fine-tuning", params[0], pruned_error, None, None),
         ("pruned + fine-tuned, shrunk", params[1], shrunk_error, 1e3 * shrunk_time,
          dense_time / shrunk_time)],
        [None, ",d", ".2%", ".2f", ".2f"]))
    return {"error": shrunk_error, "error_before_shrink": error, "params": params,
            "speedup": dense_time / shrunk_time}


def part_f(pruned_mlp, setup):
    """The pruned LeNet-300-100 as CSR: memory and batch-1 inference time."""
    cli.stage("F. sparse inference", "the pruned LeNet-300-100 stored as CSR, timed at batch 1")
    sparse, dense = prune.to_sparse(pruned_mlp), copy.deepcopy(pruned_mlp)
    for module, name in weights(dense):
        prune.remove(module, name)  # plain weights, zeros included: no mask to multiply
    x = next(iter(setup.test))[0]
    with mg.no_grad():
        difference = float(abs(sparse(x).numpy() - dense.eval()(x).numpy()).max())
    one = x[:1]
    dense_time, sparse_time = inference_seconds(dense, one), inference_seconds(sparse, one)
    totals = prune.report(pruned_mlp).totals
    print(f"\nF. Sparse inference: LeNet-300-100 at {totals['sparsity']:.1%} sparsity, weights "
          f"{totals['dense_bytes']:,} bytes dense, {totals['csr_bytes']:,} bytes as CSR "
          f"({totals['dense_bytes'] / totals['csr_bytes']:.1f}x smaller)")
    print(format_table(["model", "inference us (batch 1)", "speedup"],
                       [("dense (zeros stored)", 1e6 * dense_time, 1.0),
                        ("CSR (to_sparse)", 1e6 * sparse_time, dense_time / sparse_time)],
                       [None, ".1f", ".2f"]))
    print(f"largest output difference {difference:.1e} (docs/performance.md: when CSR pays)")
    return {"speedup": dense_time / sparse_time, "difference": difference,
            "compression": totals["dense_bytes"] / totals["csr_bytes"]}


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "07_pruning", quick="3,000 images, fewer epochs")
    parser.add_argument("--epochs", type=int, default=8,
                        help="dense training and fine-tuning epochs (default 8)")
    args = cli.parse_args(parser, argv)
    start = time.perf_counter()
    setup = Setup(args)

    mlp, mlp_error = dense_model(lambda: MLP([784, 300, 100, 10]), "LeNet-300-100", setup)
    lenet, lenet_error = dense_model(LeNet5, "LeNet-5", setup)
    print(f"dense: LeNet-300-100 test error {mlp_error:.2%}, LeNet-5 {lenet_error:.2%} "
          f"({setup.dense_epochs} epochs on {setup.images:,} images)")

    rows_a = part_a(mlp, setup)
    rows_b, pruned_mlps = part_b(mlp, setup)
    curves_c, tradeoff_png = part_c(mlp, mlp_error, setup)
    curves_d, pruned_lenet, lenet_pruned_error, sensitivity_png = part_d(lenet, setup)
    structured = part_e(lenet, setup)
    csr = part_f(pruned_mlps["gradual (AGP)"], setup)

    gradual_mlp_error = dict((name, error) for name, _, error in rows_b)["gradual (AGP)"]
    print(f"\nSummary, gradual pruning to 92%: LeNet-300-100 {mlp_error:.2%} -> "
          f"{gradual_mlp_error:.2%} ({100 * (gradual_mlp_error - mlp_error):+.2f} points), "
          f"LeNet-5 {lenet_error:.2%} -> {lenet_pruned_error:.2%} "
          f"({100 * (lenet_pruned_error - lenet_error):+.2f} points); "
          f"{time.perf_counter() - start:.0f} s in all")
    if args.quick:
        print("Quick run: models trained on 3,000 images and fine-tuned for 2 epochs lose "
              "more than the default run's, and far more than full MNIST's (within 0.2 points; "
              "the docstring quotes both).")
    return {"dense_error": {"mlp": mlp_error, "lenet": lenet_error}, "part_a": rows_a,
            "part_b": rows_b, "part_c": curves_c, "part_d": curves_d,
            "lenet_pruned_error": lenet_pruned_error, "models": pruned_mlps,
            "structured": structured, "csr": csr,
            "plots": (tradeoff_png, sensitivity_png)}


if __name__ == "__main__":
    main()
