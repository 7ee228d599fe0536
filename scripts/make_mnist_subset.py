"""Build ``minigrad/data/mnist_subset.npz``, the MNIST subset bundled with minigrad.

Run:  python scripts/make_mnist_subset.py [--source DIR] [--out PATH] [--train N] [--test N]
                                          [--seed S]

Draws N images from each split of the full MNIST IDX files, stratified by class: class c gets
n_c of them, its exact share N * count_c / total rounded by the largest-remainder method, so the
n_c add up to N and each is less than one image from its exact share. The images of a class are
chosen at random without replacement, and the subset is shuffled, so any prefix of it mixes all
classes. Stored as uint8 with ``np.savez_compressed`` under the keys train_images, train_labels,
test_images, test_labels.

The default --train is the most training images (a multiple of 500) that keep the file under
2.9 MB, so the package stays small.
"""

import argparse
from pathlib import Path

import numpy as np

from minigrad.data import MNIST

REPOSITORY = Path(__file__).resolve().parents[1]


def stratified_counts(labels, n):
    """How many samples of each class (0..max label) make a class-proportional sample of n."""
    class_counts = np.bincount(labels)
    shares = n * class_counts / len(labels)
    counts = np.floor(shares).astype(np.int64)
    # Largest remainder: the images left after rounding down go to the largest fractions.
    largest_fractions = np.argsort(-(shares - counts), kind="stable")
    counts[largest_fractions[:n - counts.sum()]] += 1
    return counts


def stratified_sample(labels, n, rng):
    """Indices of a shuffled, class-proportional random sample of n of the labels."""
    if not 0 < n <= len(labels):
        raise ValueError(f"cannot draw {n} samples from {len(labels)}")
    picked = [rng.choice(np.flatnonzero(labels == c), size=count, replace=False)
              for c, count in enumerate(stratified_counts(labels, n))]
    return rng.permutation(np.concatenate(picked))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path,
                        default=REPOSITORY.parent / "shared" / "data" / "mnist",
                        help="folder with the four MNIST IDX files")
    parser.add_argument("--out", type=Path,
                        default=REPOSITORY / "minigrad" / "data" / "mnist_subset.npz")
    parser.add_argument("--train", type=int, default=15_500, help="training images")
    parser.add_argument("--test", type=int, default=2_000, help="test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    arrays = {}
    for split, train, n in (("train", True, args.train), ("test", False, args.test)):
        full = MNIST(args.source, train=train)
        chosen = stratified_sample(full.targets, n, rng)
        arrays[f"{split}_images"] = full.data[chosen]
        arrays[f"{split}_labels"] = full.targets[chosen].astype(np.uint8)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {args.train} training and {args.test} test images, "
          f"{args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
