"""Lesson 05 — regularization (L1, L2, dropout) and batch normalization.

Run:   .venv/bin/python lessons/05_regularization_and_batchnorm.py [--quick]
       [--data-dir ../shared/data/mnist]

Part A: overfitting, and what regularizers change. An MLP 784-256-256-10 trained on only 1,000
MNIST images learns them by heart: training accuracy reaches 100% while test accuracy stops
near 91%. Each regularizer adds a preference for simpler weights (w: the Linear layers'
weights; biases are left alone, as is usual):

    L2:       loss + lambda * sum w^2     gradient + 2 lambda w: every weight shrinks in
                                          proportion to its size ("weight decay")
    weight decay:  SGD(weight_decay=2 lambda) on the plain loss: the same update, so the same
                   weights (the table shows the largest difference)
    L1:       loss + lambda * sum |w|     gradient + lambda sign(w): every weight is pulled
                                          toward 0 by the same amount, so small ones end up
                                          at 0 (within lr * lambda of it): a sparse network
    dropout:  each hidden unit dropped with probability p at every training step, so no unit
              can rely on a particular other one (Srivastava et al. 2014)

Part B: batch normalization (Ioffe & Szegedy 2015) normalizes each hidden unit over the batch,
x_hat = (x - mean) / sqrt(var + eps), then scales and shifts it (gamma x_hat + beta). A deeper MLP
(784-256-256-256-10) with and without BatchNorm1d after each hidden Linear, trained with SGD at
a small and a large learning rate. At the same rate the loss falls faster with batch norm; at
the small rate the plain network hardly moves for its first couple of hundred steps (the
signal shrinks through its layers at initialization), the normalized one starts at once.

What to look at: the tables. In part A the regularizers change the weights far more than the
accuracy: L2 shrinks them (||w|| 16.9 to 12.0), L1 sets 79% of them to (almost) 0 at about
the same test accuracy (90.75% against 90.85%), a free sparsity that pruning (a later lesson)
builds on; dropout closes the train-test gap (9.2 points to -0.6; its training accuracy is
measured with units dropped). On this small problem none of them buys more than a few tenths
of a percent of test accuracy: try other lambdas. In part B batch norm reaches a loss of 0.3
(the mean of 20 steps) in 68 steps at lr 0.2, where the plain network needs 157, and in 322
at lr 0.01, where the plain one never does in its 486 steps. ``weights.png`` shows L1's spike
at 0 next to L2's narrower bell, ``regularization_curves.png`` the accuracy per epoch, and
``batchnorm_loss.png`` the loss per step with and without batch norm.

``--quick`` trains 15 epochs in part A (L1: 34% zeros already; the gap 9.2 points, -1.0 with
dropout) and 2 epochs on 3,000 images in part B. Its 94 steps take no network to 0.3, so it
counts the steps to 0.8: batch norm 21 at lr 0.2 and 81 at lr 0.01, plain 54 and never.
"""

import os
import time

import numpy as np

import minigrad as mg
from minigrad import cli, nn
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP
from minigrad.nn import functional as F
from minigrad.nn.utils import l1_penalty, l2_penalty
from minigrad.optim import SGD
from minigrad.plot import plot_histograms, plot_history, plot_steps
from minigrad.report import format_table
from minigrad.train import fit

LR, MOMENTUM = 0.05, 0.9
L2_LAMBDA, L1_LAMBDA, DROPOUT = 5e-4, 1e-4, 0.5
ZERO = 1e-3  # weights smaller than this in magnitude count as zero
WINDOW = 20  # part B judges (and draws) the mean loss of this many steps: one step's is noise


def linear_weights(model):
    """The weights of the Linear layers (no biases, no batch-norm scales)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


def regularization_runs():
    """name -> (model options, loss term lambda * penalty or None, SGD weight decay)."""
    return {
        "none": ({}, None, 0.0),
        "L2": ({}, (L2_LAMBDA, l2_penalty), 0.0),
        "weight decay": ({}, None, 2 * L2_LAMBDA),
        "L1": ({}, (L1_LAMBDA, l1_penalty), 0.0),
        f"dropout {DROPOUT}": ({"dropout": DROPOUT}, None, 0.0),
    }


def train_regularized(name, options, penalty, weight_decay, train, test, epochs, seed,
                      progress):
    mg.manual_seed(seed)  # the same initial weights and batches for every run
    model = MLP([784, 256, 256, 10], **options)
    weights = linear_weights(model)
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    optimizer = SGD([{"params": weights, "weight_decay": weight_decay}, {"params": others}],
                    lr=LR, momentum=MOMENTUM)

    def loss_fn(outputs, targets):
        loss = F.cross_entropy(outputs, targets)
        if penalty is not None:
            strength, term = penalty
            loss = loss + strength * term(weights)
        return loss

    history = fit(model, DataLoader(train, batch_size=50, shuffle=True), optimizer, loss_fn,
                  epochs, val_loader=test, progress=progress, desc=name)
    flat = np.concatenate([w.numpy().ravel() for w in weights])
    return history, flat


def part_a(train, test, epochs, seed, progress, out):
    runs = regularization_runs()
    cli.stage("part A", f"MLP 784-256-256-10 overfitting a small training set, with each of "
                        f"{len(runs)} regularizers", images=len(train), epochs=epochs)
    histories, weights, rows = {}, {}, []
    for name, (options, penalty, weight_decay) in runs.items():
        histories[name], weights[name] = train_regularized(name, options, penalty, weight_decay,
                                                           train, test, epochs, seed, progress)
        last = histories[name].epochs[-1]
        rows.append((name, last["train_accuracy"], last["val_accuracy"],
                     last["train_accuracy"] - last["val_accuracy"],
                     float(np.mean(np.abs(weights[name]) < ZERO)),
                     float(np.linalg.norm(weights[name]))))
    same = float(np.abs(weights["L2"] - weights["weight decay"]).max())
    print(f"\nPart A: MLP 784-256-256-10 on {len(train):,} images, {epochs} epochs, "
          f"SGD lr {LR} momentum {MOMENTUM}")
    print(format_table(["regularizer", "train acc", "test acc", "gap", "|w| < 1e-3", "||w||"],
                       rows, formats=[None, ".4f", ".4f", ".4f", ".2%", ".2f"]))
    print(f"L2 in the loss vs SGD weight_decay: largest weight difference {same:.1e}")

    curves = os.path.join(out, "regularization_curves.png")
    # L2 and weight decay train the same weights, so only L2 is drawn.
    plot_history({k: v for k, v in histories.items() if k != "weight decay"},
                 metrics=("accuracy",), path=curves,
                 title="Overfitting 1,000 images: train (solid) vs test (dashed)",
                 val_label="test")
    histogram = os.path.join(out, "weights.png")
    plot_histograms({k: weights[k] for k in ("none", "L2", "L1")}, path=histogram,
                    xlabel="weight value", title="Weights after training: L1 piles them up at 0")
    return rows, same, (curves, histogram)


def steps_below(history, level, window=WINDOW):
    """The first step at which the mean loss of the last ``window`` steps is below ``level``."""
    losses = np.array([s["loss"] for s in history.steps])
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    below = np.flatnonzero(smooth < level)
    return int(below[0]) + window if len(below) else None


def part_b(train, test, epochs, target, seed, progress, out, learning_rates=(0.01, 0.2)):
    cli.stage("part B", f"MLP 784-256-256-256-10 with and without batch norm, plain SGD at lr "
                        f"{' and '.join(map(str, learning_rates))}",
              images=len(train), epochs=epochs)
    histories, rows = {}, []
    for lr in learning_rates:
        for batchnorm in (False, True):
            name = f"{'batch norm' if batchnorm else 'plain'}, lr {lr}"
            mg.manual_seed(seed)
            model = MLP([784, 256, 256, 256, 10], batchnorm=batchnorm)
            start = time.perf_counter()
            histories[name] = fit(model, DataLoader(train, batch_size=64, shuffle=True),
                                  SGD(model.parameters(), lr=lr), F.cross_entropy, epochs,
                                  val_loader=test, progress=progress, desc=name)
            steps = histories[name].steps
            rows.append((name, float(np.mean([s["loss"] for s in steps[30:45]])),
                         steps_below(histories[name], target),
                         histories[name].epochs[-1]["val_accuracy"],
                         time.perf_counter() - start))
    print(f"\nPart B: MLP 784-256-256-256-10 on {len(train):,} images, {epochs} epochs "
          f"({len(histories[name].steps)} steps) each, plain SGD, batch 64")
    print(format_table(["network", "loss @40", f"steps to loss {target}", "test acc",
                        "seconds"], rows, formats=[None, ".4f", "d", ".4f", ".1f"]))
    path = os.path.join(out, "batchnorm_loss.png")
    plot_steps(histories, path=path, smooth=WINDOW,
               title=f"Batch norm: training loss per step (mean of {WINDOW} steps)")
    return rows, path


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "05_regularization_and_batchnorm",
                               quick="15 epochs in part A; in part B 2 epochs on 3,000 "
                                     "images, counting the steps to loss 0.8")
    args = cli.parse_args(parser, argv)
    # Part B's target loss: the quick run's 94 steps take no network to 0.3, but all but the
    # plain one at lr 0.01 to 0.8, where batch norm's head start shows at both rates.
    epochs_a, epochs_b, images_b, target = (15, 2, 3000, 0.8) if args.quick else (40, 2, None, 0.3)

    start, progress = time.perf_counter(), not args.no_progress
    test = DataLoader(normalized_mnist(args.data_dir, train=False), batch_size=1000)
    rows_a, same, plots_a = part_a(normalized_mnist(args.data_dir, limit=1000), test, epochs_a,
                                   args.seed, progress, args.out)
    rows_b, plot_b = part_b(normalized_mnist(args.data_dir, limit=images_b), test, epochs_b,
                            target, args.seed, progress, args.out)
    print(f"\n{time.perf_counter() - start:.0f} s in all; saved {', '.join(plots_a)}, {plot_b}")
    return {"part_a": rows_a, "l2_vs_weight_decay": same, "part_b": rows_b,
            "plots": plots_a + (plot_b,)}


if __name__ == "__main__":
    main()
