"""Lesson 03 — the gradient descent family: GD, SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam.

Run:   python lessons/03_gradient_descent_family.py [--quick] [--data-dir ../shared/data/mnist]

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
gradient history, so they head for the minimum along both axes at once), the table (steps to
reach the minimum), and ``mnist_loss.png`` (per step: the adaptive methods and momentum fall
fastest; full-batch GD, with the same number of epochs, has taken only a handful of steps).
"""

import argparse
import os
import time

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP
from minigrad.nn import functional as F
from minigrad.plot import plot_steps, plot_trajectories
from minigrad.report import format_table
from minigrad.train import fit

# name -> (optimizer class, its options). Each learning rate is the best of 3-4 tried per
# problem (fewest steps to the minimum); on MNIST the usual values for each method.
QUADRATIC = {
    "GD": (optim.SGD, dict(lr=0.075)),
    "SGD (batch 8)": (optim.SGD, dict(lr=0.075)),
    "momentum": (optim.SGD, dict(lr=0.02, momentum=0.8)),
    "Nesterov": (optim.SGD, dict(lr=0.02, momentum=0.8, nesterov=True)),
    "AdaGrad": (optim.Adagrad, dict(lr=2.0)),
    "RMSprop": (optim.RMSprop, dict(lr=0.1)),
    "Adam": (optim.Adam, dict(lr=0.3)),
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


def quadratic_problem(seed=0, n=64):
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


def descend(f, start, optimizer_class, options, steps, batch=None, seed=0):
    """Run ``steps`` optimizer steps on f from ``start``; returns the path, shape (steps+1, 2).
    ``batch``: draw that many of the quadratic's points per step (SGD), else use all."""
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


def part_a(steps, out):
    f_quadratic, quadratic_min = quadratic_problem()
    problems = [("quadratic", f_quadratic, QUADRATIC, quadratic_min, steps["quadratic"]),
                ("rosenbrock", rosenbrock, ROSENBROCK, np.ones(2), steps["rosenbrock"])]
    rows, panels = [], []
    for problem, f, runs, minimum, n_steps in problems:
        paths = {}
        for name, (optimizer_class, options) in runs.items():
            batch = 8 if name.startswith("SGD") else None
            paths[name] = descend(f, START[problem], optimizer_class, options, n_steps, batch)
            final = paths[name][-1]
            rows.append((problem, name, options["lr"], steps_to_reach(paths[name], minimum, 0.05),
                         float(np.linalg.norm(final - minimum)),
                         f(mg.tensor(final)).item() - f(mg.tensor(minimum)).item()))
        panels.append((problem, f, paths, minimum))
    print(f"\nPart A: steps until within 0.05 of the minimum "
          f"(quadratic: {steps['quadratic']} steps, Rosenbrock: {steps['rosenbrock']})")
    print(format_table(["problem", "optimizer", "lr", "steps to 0.05", "final distance",
                        "f - f*"], rows, formats=[None, None, ".4g", "d", ".2e", ".2e"]))
    path = os.path.join(out, "trajectories.png")
    plot_trajectories([(problem.capitalize(), _contour_values(f), paths, minimum)
                       for problem, f, paths, minimum in panels], path=path)
    return rows, path


def _contour_values(f):
    """f on a grid of numpy points (..., 2), for the contour lines."""
    def values(points):
        with mg.no_grad():
            return f(mg.tensor(points.reshape(-1, 1, 2))).numpy().reshape(points.shape[:-1])
    return values


def part_b(data_dir, epochs, limit, progress, out):
    train = normalized_mnist(data_dir, train=True, limit=limit)
    test = DataLoader(normalized_mnist(data_dir, train=False), batch_size=1000)
    histories, rows = {}, []
    for name, (optimizer_class, options, batch_size) in MNIST_RUNS.items():
        mg.manual_seed(0)  # the same initial weights and the same batches for every optimizer
        model = MLP([784, 128, 10])
        loader = DataLoader(train, batch_size=len(train) if batch_size == "full" else batch_size,
                            shuffle=True)
        start = time.perf_counter()
        histories[name] = fit(model, loader, optimizer_class(model.parameters(), **options),
                              F.cross_entropy, epochs, val_loader=test, progress=progress)
        last = histories[name].epochs[-1]
        rows.append((name, options["lr"], len(histories[name].steps), last["train_loss"],
                     last["val_accuracy"], time.perf_counter() - start))
    print(f"\nPart B: MLP 784-128-10 on {len(train):,} MNIST images, {epochs} epochs each")
    print(format_table(["optimizer", "lr", "steps", "train loss", "test acc", "seconds"], rows,
                       formats=[None, ".3g", "d", ".4f", ".4f", ".1f"]))
    path = os.path.join(out, "mnist_loss.png")
    plot_steps(histories, path=path, title="MLP on MNIST: training loss per step")
    return rows, histories, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST IDX files (default: bundled subset)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps in part A, 1 epoch on 3,000 images in part B")
    parser.add_argument("--out", default=os.path.join("runs", "03_gradient_descent_family"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    steps = {"quadratic": 150, "rosenbrock": 1000 if args.quick else 3000}
    epochs, limit = (1, 3000) if args.quick else (args.epochs, None)
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    rows_a, trajectories = part_a(steps, args.out)
    rows_b, histories, curves = part_b(args.data_dir, epochs, limit, not args.no_progress,
                                       args.out)
    print(f"\n{time.perf_counter() - start:.0f} s in all; saved {trajectories} and {curves}")
    return {"part_a": rows_a, "part_b": rows_b, "histories": histories,
            "plots": (trajectories, curves)}


if __name__ == "__main__":
    main()
