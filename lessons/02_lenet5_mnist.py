"""Lesson 02 — LeNet-5 on real MNIST digits.

Run:   python lessons/02_lenet5_mnist.py [--quick] [--data-dir ../shared/data/mnist]

Everything a real training run has, in minigrad: the MNIST IDX files (the subset bundled in the
package by default, 15,500 training and 2,000 test images; ``--data-dir`` reads the full
60,000/10,000 set), a DataLoader that shuffles reproducibly, LeNet-5 (two convolutions, two
max-pools, three fully connected layers), SGD with momentum on the cross-entropy loss, one
evaluation on the test set per epoch, and at the end the confusion matrix: which digits are
mistaken for which.

What to look at: the per-epoch table (training loss falls fast, then test accuracy settles near
98%), ``curves.png`` (train vs test: the gap that opens is overfitting), and ``confusion.png``
(the few mistakes are between similar shapes, such as 7 and 2, or 0 and 6).
"""

import argparse
import os
import time

import numpy as np

import minigrad as mg
from minigrad.data import MNIST, DataLoader, TensorDataset
from minigrad.data.transforms import Compose, Normalize, ScaleToUnit
from minigrad.metrics import confusion_matrix
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.plot import plot_confusion_matrix, plot_history
from minigrad.train import Callback, fit

# Mean and standard deviation of MNIST's training pixels (after scaling to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def load_data(data_dir, batch_size, limit=None):
    transform = Compose([ScaleToUnit(), Normalize((MNIST_MEAN,), (MNIST_STD,))])
    train = MNIST(data_dir, train=True, transform=transform)
    test = MNIST(data_dir, train=False, transform=transform)
    if limit is not None:  # --quick: a stratified-enough slice, the first `limit` images
        train = TensorDataset(*train.get_batch(np.arange(limit)))
    return (DataLoader(train, batch_size=batch_size, shuffle=True),
            DataLoader(test, batch_size=500))


class PrintEpochRow(Callback):
    """Print one row of the results table as each epoch ends."""

    HEADER = (f"{'epoch':>5} {'train loss':>11} {'train acc':>10} {'test loss':>10} "
              f"{'test acc':>9} {'seconds':>8}")

    def on_train_begin(self, state):
        print(self.HEADER)

    def on_epoch_end(self, state):
        r = state.history.epochs[-1]
        print(f"{r['epoch']:5d} {r['train_loss']:11.4f} {r['train_accuracy']:10.4f} "
              f"{r['val_loss']:10.4f} {r['val_accuracy']:9.4f} {r['seconds']:8.1f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST IDX files (default: bundled subset)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 3,000 images")
    parser.add_argument("--out", default=os.path.join("runs", "02_lenet5_mnist"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    epochs, limit = (2, 3000) if args.quick else (args.epochs, None)

    mg.manual_seed(args.seed)
    train_loader, test_loader = load_data(args.data_dir, args.batch_size, limit)
    model = LeNet5()
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    print(f"LeNet-5, {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"{len(train_loader.dataset):,} training and {len(test_loader.dataset):,} test images")

    start = time.perf_counter()
    history = fit(model, train_loader, optimizer, F.cross_entropy, epochs,
                  val_loader=test_loader, callbacks=[PrintEpochRow()],
                  progress=not args.no_progress)

    model.eval()
    with mg.no_grad():
        batches = [(model(x).numpy().argmax(axis=1), y.numpy()) for x, y in test_loader]
    predictions, targets = (np.concatenate(part) for part in zip(*batches))
    matrix = confusion_matrix(predictions, targets, num_classes=10)
    accuracy = history.epochs[-1]["val_accuracy"]
    print(f"\ntest accuracy {accuracy:.4f} ({int((predictions != targets).sum())} errors of "
          f"{len(targets)}), {time.perf_counter() - start:.0f} s in all")

    os.makedirs(args.out, exist_ok=True)
    curves, confusion = os.path.join(args.out, "curves.png"), os.path.join(args.out,
                                                                         "confusion.png")
    plot_history(history, path=curves, title="LeNet-5 on MNIST")
    plot_confusion_matrix(matrix, class_names=[str(d) for d in range(10)], path=confusion)
    print(f"saved {curves} and {confusion}")
    return {"history": history, "test_accuracy": accuracy, "confusion": matrix,
            "plots": (curves, confusion)}


if __name__ == "__main__":
    main()
