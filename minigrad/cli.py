"""The command line every lesson shares: the same five flags, where it writes, stage headers.

Every script in ``lessons/`` takes

    --quick         a smaller run, seconds long, that still makes the lesson's point (or says
                    plainly where it is too small to)
    --no-progress   no progress bars and no per-epoch lines
    --out DIR       where plots and files go: runs/<lesson>/ by default, runs/<lesson>/quick/
                    with --quick, so a quick run never overwrites a full run's files
    --data-dir DIR  the four MNIST IDX files (default: the subset bundled in the package)
    --seed N        minigrad's random seed (``manual_seed``): initial weights, shuffles, dropout

    parser = cli.lesson_parser(__doc__, "11_deep_compression", quick="3,000 images")
    parser.add_argument("--sparsity", ...)       # the lesson's own flags
    args = cli.parse_args(parser, argv)          # --out resolved and created, seed set

and announces each stage before it starts, so a log shows what is running and what it costs:

    cli.stage("pruning", "LeNet-5 to 92% sparsity while fine-tuning", images=3000, epochs=2)
    # == pruning: LeNet-5 to 92% sparsity while fine-tuning (3,000 images, 2 epochs)

The stage's name is also the ``desc`` of its ``fit`` bar (``pruning: epoch 1/2``).
"""

import argparse
import os

from minigrad.random import manual_seed


def lesson_parser(docstring, name, quick, data=True):
    """An ArgumentParser with the five shared flags. ``docstring``: the lesson's (its first
    line is the description), ``name``: its folder under runs/, ``quick``: what --quick
    shrinks to. ``data=False`` for a lesson that does not read MNIST: --data-dir is still
    accepted, so every lesson takes the same flags, and its help says it is unused."""
    parser = argparse.ArgumentParser(description=docstring.strip().split("\n")[0])
    parser.set_defaults(lesson=name)
    parser.add_argument("--quick", action="store_true", help=f"a smaller run: {quick}")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars and no per-epoch lines")
    parser.add_argument("--out", default=None,
                        help=f"folder for plots and files (default runs/{name}/, "
                             f"runs/{name}/quick/ with --quick)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST IDX files (default: the bundled "
                             "subset)" if data else "unused: this lesson makes its own data")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for weights, shuffles and dropout (default 0)")
    return parser


def parse_args(parser, argv=None, create=True):
    """Parse ``argv``; fill in the default --out (its own folder for --quick), create it, and
    seed minigrad's generator with --seed. ``create=False`` leaves the folder alone: the ranks
    of a multi-process run other than the one that writes pass it."""
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = os.path.join("runs", args.lesson, *(["quick"] if args.quick else []))
    if create:
        os.makedirs(args.out, exist_ok=True)
    manual_seed(args.seed)
    return args


def stage(name, what, images=None, epochs=None):
    """Print the one-line header of a stage, before it runs: its name, what it does and, for
    training, on how many images for how many epochs."""
    budget = [f"{images:,} images" if images is not None else None,
              f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else None]
    budget = ", ".join(part for part in budget if part)
    print(f"\n== {name}: {what}" + (f" ({budget})" if budget else ""), flush=True)
