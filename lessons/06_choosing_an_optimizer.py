"""Lesson 06 — choosing the optimizer and its hyperparameters from validation results.

Run:   .venv/bin/python lessons/06_choosing_an_optimizer.py [--quick]
       [--data-dir ../shared/data/mnist]

No formula says which optimizer and learning rate suit a new problem, so we try candidates
and keep the one that does best on data the model was not trained on ("dynamic
optimization" in the source articles; hyperparameter search in today's words).

1. Split MNIST's training images into a training part and a validation part
   (``random_split``); the test set is not looked at until the very end.
2. Grid search (``minigrad.tune.grid_search``): every optimizer with every learning rate of a
   small list, SGD also with and without momentum. Every trial trains the same MLP
   (784-128-10) from the same initial weights on the same batches for the same budget, and is
   scored by its best validation accuracy.
3. Random search (``tune.random_search``) with as many trials: learning rates drawn
   log-uniformly, so it tries a new value in every trial where the grid repeats a few.
4. The winner of both searches is evaluated once on the test set. Its validation score was
   picked for being the highest, so it is an optimistic estimate; the test accuracy is not.

What to look at: the two results tables and ``grid_lr.png`` / ``random_lr.png``, each trial's
score against its learning rate, one line per optimizer. The learning rate matters more than
the choice of optimizer: the best rate of every optimizer of the grid scores 93.7-95.2%,
while a poor one costs up to 31 points (SGD with momentum at lr 0.3: 64.3%); and each
optimizer has its own good range: Adam's (best at 0.003) is 10x below SGD with momentum's
(0.03) and 100x below plain SGD's (0.3). The winner, SGD at lr 0.03 with momentum 0.9, scores
95.15% on validation and 95.70% on the test set. ``grid.png`` / ``random.png`` show the
validation curve of every trial with the best in bold.

``--quick`` searches a 6-trial grid and 6 random trials, 2 epochs each on 3,000 images: Adam
at lr 1e-5 barely learns (27.6%), the others score 75-90%, and the winner (Adagrad, lr 0.014,
90.3% on validation) scores 90.4% on the test set.
"""

import os
import time

from minigrad import cli, tune
from minigrad.data import DataLoader, random_split
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP
from minigrad.nn import functional as F
from minigrad.plot import plot_tradeoff
from minigrad.train import evaluate

GRID = [
    {"optimizer": "SGD", "lr": [0.3, 0.1, 0.03, 0.01], "momentum": [0.0, 0.9]},
    {"optimizer": "Adam", "lr": [1e-2, 3e-3, 1e-3, 3e-4]},
    {"optimizer": "RMSprop", "lr": [3e-3, 1e-3, 3e-4]},
    {"optimizer": "Adagrad", "lr": [0.3, 0.1, 0.03, 0.01]},
]
RANDOM = [
    {"optimizer": "SGD", "lr": tune.loguniform(3e-3, 1.0), "momentum": tune.choice([0.0, 0.9])},
    {"optimizer": "Adam", "lr": tune.loguniform(1e-4, 3e-2)},
    {"optimizer": "RMSprop", "lr": tune.loguniform(1e-4, 1e-2)},
    {"optimizer": "Adagrad", "lr": tune.loguniform(3e-3, 1.0)},
]
QUICK_GRID = [
    {"optimizer": "SGD", "lr": [0.3, 0.03], "momentum": [0.9]},
    {"optimizer": "Adam", "lr": [1e-2, 1e-3, 1e-5]},
    {"optimizer": "Adagrad", "lr": [0.1]},
]


def build(config):
    """The model every trial trains (its optimizer is made from the config by tune)."""
    return MLP([784, 128, 10])


def optimizer_label(config):
    """The optimizer and its settings other than the learning rate: "SGD, momentum 0.9"."""
    return ", ".join([config["optimizer"], *(f"{key} {value:g}" for key, value in config.items()
                                             if key not in ("optimizer", "lr"))])


def plot_score_against_lr(result, path, title, xticks=None):
    """Each trial's score at its learning rate, one line per optimizer (and momentum): where
    each optimizer's good range lies, and how much the rate matters."""
    curves = {}
    for trial in sorted(result.trials, key=lambda trial: trial["config"]["lr"]):
        curves.setdefault(optimizer_label(trial["config"]), []).append(
            (trial["config"]["lr"], trial["score"]))
    curves = dict(sorted(curves.items()))  # the same colors in the grid's and random's plots
    plot_tradeoff(curves, "learning rate", f"best {result.metric}", path=path, title=title,
                  log_x=True, xticks=xticks)


def search(kind, space, train, val, args, n_trials=None):
    trials = len(tune.grid_configs(space)) if kind == "grid" else n_trials
    cli.stage(f"{kind} search", f"{trials} trials, each an MLP 784-128-10 from the same "
                                f"initial weights, scored on {len(val):,} validation images",
              images=len(train), epochs=args.epochs)
    options = dict(loss_fn=F.cross_entropy, epochs=args.epochs, batch_size=64, seed=args.seed,
                   progress=not args.no_progress)
    if kind == "grid":
        result = tune.grid_search(space, build, train, val, **options)
    else:
        result = tune.random_search(space, build, train, val, n_trials=n_trials, **options)
    print(f"{kind} search: scored by the best validation accuracy of the "
          f"{args.epochs} epochs\n")
    print(result.table())
    curves, by_lr = (os.path.join(args.out, f"{kind}{suffix}.png") for suffix in ("", "_lr"))
    result.plot(curves, title=f"{kind} search: validation accuracy of every trial")
    # A grid's few rates are labelled on the axis; random search's are all different.
    xticks = sorted({trial["config"]["lr"] for trial in result.trials}) if kind == "grid" else None
    plot_score_against_lr(result, by_lr, f"{kind} search: best validation accuracy against "
                                         f"the learning rate", xticks=xticks)
    return result, (curves, by_lr)


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "06_choosing_an_optimizer",
                               quick="a 6-trial grid and 6 random trials, 2 epochs on 3,000 "
                                     "images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=2000)
    args = cli.parse_args(parser, argv)
    if args.quick:
        args.epochs, args.train_size, args.val_size = 2, 3000, 1000
    grid_space = QUICK_GRID if args.quick else GRID

    start = time.perf_counter()
    images = normalized_mnist(args.data_dir, limit=args.train_size + args.val_size)
    train, val = random_split(images, [args.train_size, args.val_size], seed=args.seed)
    print(f"{len(train):,} training and {len(val):,} validation images (MNIST training set); "
          f"the test set waits until the end")
    grid, grid_pngs = search("grid", grid_space, train, val, args)
    random, random_pngs = search("random", RANDOM, train, val, args, n_trials=len(grid.trials))

    winner = max((grid, random), key=lambda result: result.best_score).best_trial
    test = DataLoader(normalized_mnist(args.data_dir, train=False), batch_size=1000)
    cli.stage("test", f"the winner of both searches, once, on the {len(test.dataset):,} test "
                      f"images")
    test_accuracy = evaluate(winner["model"], test)["accuracy"]
    print(f"best of both: {winner['config']}, validation accuracy {winner['score']:.4f} "
          f"(epoch {winner['best_epoch']}); test accuracy of the model after its last "
          f"epoch {test_accuracy:.4f}")
    plots = grid_pngs + random_pngs
    print(f"{time.perf_counter() - start:.0f} s in all; saved {', '.join(plots)}")
    return {"grid": grid, "random": random, "winner": winner, "val": val,
            "test_accuracy": test_accuracy, "plots": plots}


if __name__ == "__main__":
    main()
