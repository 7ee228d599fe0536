"""Lesson 06 — choosing the optimizer and its hyperparameters from validation results.

Run:   python lessons/06_choosing_an_optimizer.py [--quick] [--data-dir ../shared/data/mnist]

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

What to look at: the two results tables (the learning rate matters more than the choice of
optimizer, and each optimizer has its own good range: Adam's is 10-100x below SGD's),
and ``grid.png`` / ``random.png``, the validation curve of every trial with the best in bold.
"""

import argparse
import os
import time

import minigrad as mg
from minigrad import tune
from minigrad.data import DataLoader, random_split
from minigrad.data.mnist import normalized_mnist
from minigrad.models import MLP
from minigrad.nn import functional as F
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


def search(kind, space, train, val, args, n_trials=None):
    options = dict(loss_fn=F.cross_entropy, epochs=args.epochs, batch_size=64, seed=args.seed,
                   progress=not args.no_progress)
    if kind == "grid":
        result = tune.grid_search(space, build, train, val, **options)
    else:
        result = tune.random_search(space, build, train, val, n_trials=n_trials, **options)
    print(f"\n{kind} search: {len(result.trials)} trials, {args.epochs} epochs each, scored by "
          f"the best validation accuracy\n")
    print(result.table())
    path = os.path.join(args.out, f"{kind}.png")
    result.plot(path, title=f"{kind} search: validation accuracy of every trial")
    return result, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST IDX files (default: bundled subset)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a 6-trial grid and 6 random trials, 1 epoch on 3,000 images")
    parser.add_argument("--out", default=os.path.join("runs", "06_choosing_an_optimizer"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_size, args.val_size = 1, 3000, 1000
    grid_space = QUICK_GRID if args.quick else GRID
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    images = normalized_mnist(args.data_dir, limit=args.train_size + args.val_size)
    train, val = random_split(images, [args.train_size, args.val_size], seed=args.seed)
    print(f"{len(train):,} training and {len(val):,} validation images (MNIST training set); "
          f"the test set waits until the end")
    grid, grid_png = search("grid", grid_space, train, val, args)
    random, random_png = search("random", RANDOM, train, val, args, n_trials=len(grid.trials))

    winner = max((grid, random), key=lambda result: result.best_score).best_trial
    test = DataLoader(normalized_mnist(args.data_dir, train=False), batch_size=1000)
    mg.manual_seed(args.seed)
    test_accuracy = evaluate(winner["model"], test)["accuracy"]
    print(f"\nbest of both: {winner['config']}, validation accuracy {winner['score']:.4f} "
          f"(epoch {winner['best_epoch']}); test accuracy of the trained model "
          f"{test_accuracy:.4f}")
    print(f"{time.perf_counter() - start:.0f} s in all; saved {grid_png} and {random_png}")
    return {"grid": grid, "random": random, "winner": winner, "val": val,
            "test_accuracy": test_accuracy, "plots": (grid_png, random_png)}


if __name__ == "__main__":
    main()
