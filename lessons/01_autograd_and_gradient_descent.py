"""Lesson 01 — autograd and gradient descent: fitting a line.

Run:   .venv/bin/python lessons/01_autograd_and_gradient_descent.py [--quick]

The model is a line  y_hat = w x + b,  and the loss is the mean squared error over n points

    L(w, b) = (1/n) sum_i (w x_i + b - y_i)^2.

Gradient descent repeats  theta <- theta - lr * dL/dtheta  for theta in (w, b). We never write
dL/dw by hand: ``loss.backward()`` computes it through the graph of tensor ops, and we check it
against the formula dL/dw = (2/n) sum_i (w x_i + b - y_i) x_i in the first step. Before that
backward, ``minigrad.viz.draw_graph`` saves a picture of the graph it walks (graph.png): the
leaves w, b, x, y and one box per op, Mul, Add, Sub, Pow, and the Sum and Mul of the mean.

The same problem has a closed-form answer, the least-squares solution of [x 1] theta = y, so
we can see exactly how close gradient descent gets. The loss is a quadratic whose curvature
(Hessian) is H = (2/n) [[sum x^2, sum x], [sum x, n]]; gradient descent converges only for
lr < 2 / lambda_max(H), and the lesson shows what happens on both sides of that limit.

While it trains, a hook watches each parameter's gradient: ``register_post_accumulate_grad_hook``
calls a function with w (and with b) after every backward, once its .grad is complete, and the
function records |dL/dw| (|dL/db|). The table prints the last of them, and grad_norms.png plots
them step by step: they shrink geometrically when gradient descent converges and grow when it
diverges.

Things that go wrong in textbook versions of this code, done right here:
* shapes: y is (n,), and so is the prediction; a (n, 1) target against a (n,) prediction would
  broadcast to an (n, n) matrix of nonsense differences without any error;
* the bias gets its own gradient (no forgotten intercept);
* gradients are reset before every backward, because backward *accumulates* into .grad.
"""

import os
import time

import matplotlib

matplotlib.use("Agg")  # write PNG files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import cli  # noqa: E402
from minigrad.viz import draw_graph  # noqa: E402


def make_data(n, seed):
    """n points on the line y = 1.5 x + 4 with Gaussian noise (sigma 0.5), x uniform in [0, 5)."""
    mg.manual_seed(seed)
    x = mg.rand(n) * 5.0
    y = 1.5 * x + 4.0 + 0.5 * mg.randn(n)
    return x, y


def mse(prediction, target):
    if prediction.shape != target.shape:
        raise ValueError(f"mse: prediction shape {prediction.shape} != target shape "
                         f"{target.shape}")
    return ((prediction - target) ** 2).mean()


def watch_gradient_norms(parameters):
    """For each named leaf of ``parameters``, a list that gets ||dL/dtheta|| appended after
    every backward (by a post-accumulate-grad hook); returns the lists and the hooks'
    handles."""
    norms = {name: [] for name in parameters}
    handles = [p.register_post_accumulate_grad_hook(
                   lambda leaf, name=name: norms[name].append(leaf.grad.norm().item()))
               for name, p in parameters.items()]
    return norms, handles


def gradient_descent(x, y, lr, steps):
    """Fit y ~ w x + b from w = b = 0; returns w, b, the loss before each step and the
    gradient norms of w and b after each backward ({"w": [...], "b": [...]}).

    Stops early once the loss has grown a millionfold: that run diverged."""
    w = mg.zeros((), requires_grad=True)
    b = mg.zeros((), requires_grad=True)
    grad_norms, handles = watch_gradient_norms({"w": w, "b": b})
    losses = []
    for _ in range(steps):
        loss = mse(w * x + b, y)
        w.grad = b.grad = None  # backward adds to .grad, so clear it first
        loss.backward()
        # Update the raw arrays in place: w stays the same leaf tensor, and the update itself
        # is not recorded in any graph.
        w.data -= lr * w.grad.data
        b.data -= lr * b.grad.data
        losses.append(loss.item())
        if losses[-1] > 1e6 * losses[0]:
            break
    for handle in handles:
        handle.remove()
    return w.item(), b.item(), losses, grad_norms


def closed_form(x, y):
    """Least squares: the theta minimising ||A theta - y||^2 with A = [x 1]."""
    design = np.stack([x.numpy(), np.ones(len(x))], axis=1).astype(np.float64)
    (w, b), *_ = np.linalg.lstsq(design, y.numpy().astype(np.float64), rcond=None)
    return float(w), float(b)


def largest_stable_lr(x):
    """2 / lambda_max of the loss's Hessian H = (2/n) A^T A, with A = [x 1]."""
    design = np.stack([x.numpy(), np.ones(len(x))], axis=1).astype(np.float64)
    hessian = 2.0 / len(x) * design.T @ design
    return 2.0 / np.linalg.eigvalsh(hessian).max()


def check_autograd_against_formula(x, y, graph_path):
    """dL/dw and dL/db from backward() equal the formulas at w = 0.5, b = -1. Before the
    backward, the graph it walks is drawn into ``graph_path`` (a PNG)."""
    w = mg.tensor(0.5, requires_grad=True)
    b = mg.tensor(-1.0, requires_grad=True)
    loss = mse(w * x + b, y)
    draw_graph(loss, graph_path, params={"w": w, "b": b, "x": x, "y": y, "L": loss})
    loss.backward()
    residual = (0.5 * x.numpy() - 1.0) - y.numpy()
    by_hand = (2 * np.mean(residual * x.numpy()), 2 * np.mean(residual))
    return (w.grad.item(), b.grad.item()), by_hand


def plot_losses(runs, best_loss, path):
    # A float32 loss is only known to about eps * loss: smaller gaps are rounding noise.
    floor = np.finfo(np.float32).eps * best_loss
    fig, ax = plt.subplots(figsize=(6, 4))
    for lr, losses in runs.items():
        ax.semilogy(np.maximum(np.array(losses) - best_loss, floor), label=f"lr = {lr:.4f}")
    ax.axhline(floor, color="0.5", linestyle=":", linewidth=1, label="float32 rounding")
    ax.set_xlabel("step")
    ax.set_ylabel("loss - least-squares loss")
    ax.set_title("Gradient descent on the MSE of a line")
    ax.set_ylim(floor / 3, None)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def plot_gradient_norms(norms_by_lr, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    for (lr, norms), color in zip(norms_by_lr.items(), plt.rcParams["axes.prop_cycle"]):
        for name, style in (("w", "-"), ("b", "--")):
            ax.semilogy(norms[name], style, color=color["color"],
                        label=f"|dL/d{name}|, lr = {lr:.4f}")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient norm (post-accumulate hook)")
    ax.set_title("Each parameter's gradient during gradient descent")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def plot_fit(x, y, fitted, exact, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x.numpy(), y.numpy(), s=8, alpha=0.5, label="data")
    grid = np.linspace(0, 5, 2)
    ax.plot(grid, fitted[0] * grid + fitted[1], lw=2, label="gradient descent")
    ax.plot(grid, exact[0] * grid + exact[1], "--", lw=2, label="least squares")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "01_autograd_and_gradient_descent",
                               quick="100 points, 600 steps per learning rate", data=False)
    args = cli.parse_args(parser, argv)
    n, steps = (100, 600) if args.quick else (500, 2000)
    start = time.perf_counter()

    x, y = make_data(n, args.seed)
    cli.stage("autograd", f"backward() against the formula for dL/dw and dL/db, {n} points")
    graph_png = os.path.join(args.out, "graph.png")
    ours, by_hand = check_autograd_against_formula(x, y, graph_png)
    print(f"dL/dw, dL/db at (0.5, -1): backward {ours[0]:.6f} {ours[1]:.6f}  "
          f"formula {by_hand[0]:.6f} {by_hand[1]:.6f}")

    cli.stage("least squares", "the exact line, and the largest stable learning rate")
    exact = closed_form(x, y)
    best_loss = mse(exact[0] * x + exact[1], y).item()
    lr_limit = largest_stable_lr(x)
    print(f"least squares: w = {exact[0]:.4f}, b = {exact[1]:.4f}, loss = {best_loss:.6f}")
    print(f"stable learning rates: lr < 2 / lambda_max(H) = {lr_limit:.4f}")

    learning_rates = [0.01, 0.5 * lr_limit, 0.95 * lr_limit, 1.05 * lr_limit]
    cli.stage("gradient descent", f"{len(learning_rates)} learning rates, each from w = b = 0 "
                                  f"for up to {steps:,} steps on the {n} points")
    runs, rows, grad_norms = {}, [], {}
    for lr in learning_rates:
        w, b, losses, grad_norms[lr] = gradient_descent(x, y, lr, steps)
        runs[lr] = losses
        rows.append((lr, len(losses), losses[-1], w, b))
    print(f"{'lr':>8} {'steps':>6} {'final loss':>12} {'w':>9} {'b':>9} {'|dL/dw|':>9} "
          f"{'|dL/db|':>9}")
    for lr, count, loss, w, b in rows:
        verdict = "  diverged" if count < steps else ""
        last = grad_norms[lr]["w"][-1], grad_norms[lr]["b"][-1]
        print(f"{lr:8.4f} {count:6d} {loss:12.6g} {w:9.4g} {b:9.4g} {last[0]:9.2e} "
              f"{last[1]:9.2e}{verdict}")

    best = rows[2]  # the largest stable learning rate converges fastest
    print(f"\ngradient descent (lr {best[0]:.4f}) vs least squares: |dw| = "
          f"{abs(best[3] - exact[0]):.2e}, |db| = {abs(best[4] - exact[1]):.2e}")

    loss_png, fit_png = os.path.join(args.out, "loss.png"), os.path.join(args.out, "fit.png")
    norms_png = os.path.join(args.out, "grad_norms.png")
    plt.close(plot_losses(runs, best_loss, loss_png))
    plt.close(plot_fit(x, y, best[3:], exact, fit_png))
    plt.close(plot_gradient_norms(grad_norms, norms_png))
    print(f"saved {loss_png}, {fit_png}, {norms_png} and {graph_png} "
          f"({time.perf_counter() - start:.1f} s)")
    return {"autograd": ours, "by_hand": by_hand, "exact": exact, "best_loss": best_loss,
            "lr_limit": lr_limit, "rows": rows, "grad_norms": grad_norms,
            "plots": (loss_png, fit_png, graph_png, norms_png)}


if __name__ == "__main__":
    main()
