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
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.metrics import confusion_matrix
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.plot import plot_confusion_matrix, plot_history
from minigrad.train import PrintEpochs, fit

def load_data(data_dir, batch_size, limit=None):
    return (DataLoader(normalized_mnist(data_dir, train=True, limit=limit),
                       batch_size=batch_size, shuffle=True),
            DataLoader(normalized_mnist(data_dir, train=False), batch_size=500))


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
                  val_loader=test_loader, callbacks=[PrintEpochs()],
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
