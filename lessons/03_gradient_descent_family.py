"""Lesson 03 — the gradient descent family: GD, SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam.

Run:   .venv/bin/python lessons/03_gradient_descent_family.py [--quick]
       [--data-dir ../shared/data/mnist]

Part A puts each update rule on a 2-D problem, where every step can be drawn:

* an ill-conditioned quadratic, the mean over n = 64 points c_i of
      f_i(w) = 1/2 (w - c_i)^T A (w - c_i),   A = diag(1, 25),
  minimized at the mean of the c_i. The curvature is 25x larger along w2 than along w1: a
  learning rate small enough for w2 (lr < 2/25) crawls along w1. "GD" uses the whole sum, "SGD"
  a mini-batch of 8 points per step (a noisy, unbiased gradient); the other rules use the whole
  sum too, so what differs between them is the update rule alone.
* the Rosenbrock function f(x, y) = (1 - x)^2 + 100 (y - x^2)^2: a curved, narrow valley with the
  minimum at (1, 1), easy to find and slow to follow.

Part B trains the same MLP (784-128-10) on MNIST with each optimizer, from the same initial
weights and on the same batches; "GD" takes one step per epoch over the whole training set.

What to look at: ``trajectories.png`` (GD zig-zags across the quadratic's narrow direction;
momentum overshoots and comes back; AdaGrad, RMSprop and Adam scale each coordinate by its own
gradient history, so they head for the minimum along both axes at once; a dot marks where each
path ends), the table (steps to reach the minimum: on the quadratic Nesterov takes 26, GD 67,
and mini-batch SGD gets there but keeps bouncing, 0.13 away after 150 steps; on Rosenbrock
only momentum, Nesterov and Adam arrive, GD at its stability limit stops 0.45 short after
3,000 steps), and ``mnist_loss.png`` (the loss per step, averaged: momentum and Nesterov fall
lowest, the adaptive methods close behind, plain SGD stays highest; full-batch GD, with the
same 3 epochs, has taken 3 steps, the dots at the top left, and is still at 31% test
accuracy where the others reach 93-96%).

``--quick`` keeps the quadratic, stops Rosenbrock after 1,000 steps (momentum, Nesterov and
Adam still arrive) and trains 1 epoch on 3,000 images: every other rule ends with a lower
training loss than plain SGD (0.69-0.91 against 1.16) and 86-88% test accuracy against 83%.
"""

import os
import time

import numpy as np

import minigrad as mg
from minigrad import cli, nn, optim
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP
from minigrad.nn import functional as F
from minigrad.plot import plot_steps, plot_trajectories, save_png
from minigrad.report import format_table
from minigrad.train import fit

# name -> (optimizer class, its options). Each learning rate is the best of 3-4 tried per
# problem (fewest steps to the minimum); on MNIST the usual values for each method. The
# quadratic's mini-batch SGD comes last, so each rule has the same color in both panels.
QUADRATIC = {
    "GD": (optim.SGD, dict(lr=0.075)),
    "momentum": (optim.SGD, dict(lr=0.02, momentum=0.8)),
    "Nesterov": (optim.SGD, dict(lr=0.02, momentum=0.8, nesterov=True)),
    "AdaGrad": (optim.Adagrad, dict(lr=2.0)),
    "RMSprop": (optim.RMSprop, dict(lr=0.1)),
    "Adam": (optim.Adam, dict(lr=0.3)),
    "SGD (batch 8)": (optim.SGD, dict(lr=0.075)),
}
ROSENBROCK = {
    "GD": (optim.SGD, dict(lr=1e-3)),  # the stability limit at the start: 2 / 1900
    "momentum": (optim.SGD, dict(lr=1e-3, momentum=0.9)),
    "Nesterov": (optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True)),
    "AdaGrad": (optim.Adagrad, dict(lr=1.0)),
    "RMSprop": (optim.RMSprop, dict(lr=3e-3)),
    "Adam": (optim.Adam, dict(lr=0.05)),
}
MNIST_RUNS = {
    "GD (full batch)": (optim.SGD, dict(lr=0.5), "full"),
    "SGD": (optim.SGD, dict(lr=0.05), 64),
    "momentum": (optim.SGD, dict(lr=0.05, momentum=0.9), 64),
    "Nesterov": (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), 64),
    "AdaGrad": (optim.Adagrad, dict(lr=0.02), 64),
    "RMSprop": (optim.RMSprop, dict(lr=1e-3), 64),
    "Adam": (optim.Adam, dict(lr=1e-3), 64),
}

CURVATURE = np.array([1.0, 25.0])
START = {"quadratic": np.array([-9.0, 3.0]), "rosenbrock": np.array([-1.5, 2.0])}


def quadratic_problem(seed, n=64):
    """The centers' mean (the minimum) and f(w, batch) = mean over the batch of
    1/2 (w - c_i)^T A (w - c_i). Like ``rosenbrock``, f takes a point w of shape (2,) or many
    points (..., 1, 2) at once (for the contour lines)."""
    centers = np.random.default_rng(seed).normal(0.0, 1.0, size=(n, 2))

    def f(w, batch=None):
        c = centers if batch is None else centers[batch]
        return 0.5 * (((w - mg.tensor(c)) ** 2) * mg.tensor(CURVATURE)).sum(axis=-1).mean(axis=-1)

    return f, centers.mean(axis=0)


def rosenbrock(w, batch=None):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2; its minimum is 0 at (1, 1)."""
    x, y = w[..., 0], w[..., 1]
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def descend(f, start, optimizer_class, options, steps, seed, batch=None):
    """Run ``steps`` optimizer steps on f from ``start``; returns the path, shape (steps+1, 2).
    ``batch``: draw that many of the quadratic's points per step (SGD, the draws seeded by
    ``seed``), else use all."""
    rng = np.random.default_rng(seed)
    w = nn.Parameter(start.copy())
    optimizer = optimizer_class([w], **options)
    path = [w.numpy().copy()]
    for _ in range(steps):
        indices = None if batch is None else rng.choice(64, size=batch, replace=False)
        loss = f(w, indices)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        path.append(w.numpy().copy())
    return np.array(path)


def steps_to_reach(path, target, tolerance):
    """The first step whose point is within ``tolerance`` of ``target`` (None if never)."""
    close = np.flatnonzero(np.linalg.norm(path - target, axis=1) < tolerance)
    return int(close[0]) if len(close) else None


def part_a(steps, seed, out):
    cli.stage("part A", f"{len(QUADRATIC)} update rules on the quadratic ({steps['quadratic']} "
                        f"steps), {len(ROSENBROCK)} on Rosenbrock ({steps['rosenbrock']:,} steps)")
    f_quadratic, quadratic_min = quadratic_problem(seed)
    problems = [("quadratic", f_quadratic, QUADRATIC, quadratic_min, steps["quadratic"]),
                ("rosenbrock", rosenbrock, ROSENBROCK, np.ones(2), steps["rosenbrock"])]
    rows, panels = [], []
    for problem, f, runs, minimum, n_steps in problems:
        paths = {}
        for name, (optimizer_class, options) in runs.items():
            batch = 8 if name.startswith("SGD") else None
            paths[name] = descend(f, START[problem], optimizer_class, options, n_steps, seed,
                                  batch)
            final = paths[name][-1]
            rows.append((problem, name, options["lr"], steps_to_reach(paths[name], minimum, 0.05),
                         float(np.linalg.norm(final - minimum)),
                         f(mg.tensor(final)).item() - f(mg.tensor(minimum)).item()))
        panels.append((problem, f, paths, minimum))
    print(f"Part A: steps until within 0.05 of the minimum "
          f"(quadratic: {steps['quadratic']} steps, Rosenbrock: {steps['rosenbrock']})")
    print(format_table(["problem", "optimizer", "lr", "steps to 0.05", "final distance",
                        "f - f*"], rows, formats=[None, None, ".4g", "d", ".2e", ".2e"]))
    return rows, plot_paths(panels, os.path.join(out, "trajectories.png"))


def plot_paths(panels, path):
    """Every rule's path over the contour lines of its problem, with a dot where it stopped
    (on Rosenbrock's valley floor the paths lie on top of each other)."""
    figure = plot_trajectories([(problem.capitalize(), _contour_values(f), paths, minimum)
                                for problem, f, paths, minimum in panels])
    for axis, (_, _, paths, _) in zip(figure.axes, panels):
        for index, trail in enumerate(paths.values()):
            axis.plot(*trail[-1], marker="o", color=f"C{index}", markeredgecolor="black")
    save_png(figure, path)
    return path


def _contour_values(f):
    """f on a grid of numpy points (..., 2), for the contour lines."""
    def values(points):
        with mg.no_grad():
            return f(mg.tensor(points.reshape(-1, 1, 2))).numpy().reshape(points.shape[:-1])
    return values


def part_b(data_dir, epochs, limit, seed, progress, out):
    train = normalized_mnist(data_dir, train=True, limit=limit)
    test = DataLoader(normalized_mnist(data_dir, train=False), batch_size=1000)
    cli.stage("part B", f"MLP 784-128-10 with each of {len(MNIST_RUNS)} optimizers, from the "
                        f"same initial weights", images=len(train), epochs=epochs)
    histories, rows = {}, []
    for name, (optimizer_class, options, batch_size) in MNIST_RUNS.items():
        mg.manual_seed(seed)  # the same initial weights and the same batches for every optimizer
        model = MLP([784, 128, 10])
        loader = DataLoader(train, batch_size=len(train) if batch_size == "full" else batch_size,
                            shuffle=True)
        start = time.perf_counter()
        histories[name] = fit(model, loader, optimizer_class(model.parameters(), **options),
                              F.cross_entropy, epochs, val_loader=test, progress=progress,
                              desc=name)
        last = histories[name].epochs[-1]
        rows.append((name, options["lr"], len(histories[name].steps), last["train_loss"],
                     last["val_accuracy"], time.perf_counter() - start))
    print(f"\nPart B: MLP 784-128-10 on {len(train):,} MNIST images, "
          f"{epochs} epoch{'s' if epochs != 1 else ''} each")
    print(format_table(["optimizer", "lr", "steps", "train loss", "test acc", "seconds"], rows,
                       formats=[None, ".3g", "d", ".4f", ".4f", ".1f"]))
    return rows, histories, plot_losses(histories, os.path.join(out, "mnist_loss.png"))


def plot_losses(histories, path):
    """The training loss per step of every run. One mini-batch's loss is noisy, so each line
    is the mean over a 30th of the run; full-batch GD takes one step per epoch, too few for a
    visible line, so its steps are dots."""
    smooth = max(1, max(len(history.steps) for history in histories.values()) // 30)
    averaged = f" (mean of {smooth} steps)" if smooth > 1 else ""
    figure = plot_steps(histories, smooth=smooth,
                        title=f"MLP on MNIST: training loss per step{averaged}")
    for index, history in enumerate(histories.values()):
        if len(history.steps) < 10:
            figure.axes[0].plot([s["step"] for s in history.steps],
                                [s["loss"] for s in history.steps], "o", color=f"C{index}")
    save_png(figure, path)
    return path


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "03_gradient_descent_family",
                               quick="1,000 Rosenbrock steps in part A, 1 epoch on 3,000 images "
                                     "in part B")
    parser.add_argument("--epochs", type=int, default=3)
    args = cli.parse_args(parser, argv)
    steps = {"quadratic": 150, "rosenbrock": 1000 if args.quick else 3000}
    epochs, limit = (1, 3000) if args.quick else (args.epochs, None)

    start = time.perf_counter()
    rows_a, trajectories = part_a(steps, args.seed, args.out)
    rows_b, histories, curves = part_b(args.data_dir, epochs, limit, args.seed,
                                       not args.no_progress, args.out)
    print(f"\n{time.perf_counter() - start:.0f} s in all; saved {trajectories} and {curves}")
    return {"part_a": rows_a, "part_b": rows_b, "histories": histories,
            "plots": (trajectories, curves)}


if __name__ == "__main__":
    main()
