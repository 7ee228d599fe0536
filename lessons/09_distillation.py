"""Lesson 09 — knowledge distillation: a small student taught by a large teacher.

Run:   .venv/bin/python lessons/09_distillation.py [--quick] [--seeds 3]
           [--data-dir ../shared/data/mnist]

A trained network knows more than its top answer: it says a given "2" looks a little like a
"3" and hardly like a "7". Hinton, Vinyals & Dean (2015) pass that knowledge on by training a
student on the teacher's *soft targets*, softmax(z / T) at a temperature T > 1 that makes
the small probabilities visible:

    L = (1 - alpha) CE(y, softmax(s)) + alpha T^2 KL(softmax(t / T) || softmax(s / T))

(the gradient of the soft term shrinks as 1/T^2, so T^2 restores its weight). The teacher is
frozen: eval mode, no graph, never in the optimizer (``minigrad.distill.Distiller``).

The teacher is a CNN with dropout (LeNet-5's shape with 16 and 32 filters and 256 hidden
units), trained, like Hinton et al.'s teacher, on jittered digits: each image shifted by up
to 2 pixels each way, a new shift every epoch (``data.transforms.RandomShift``). The
students see only the plain digits and have no regularization at all: Hinton's
784-800-800-10 MLP, a tiny 784-30-10 MLP, and LeNet-5. Every student is trained with one
recipe (SGD with momentum 0.9, batch 128, cosine learning rate, gradient norm clipped at 5,
the same epochs), once on the labels alone and once distilled, from the same initial weights
and in the same batch order. The soft targets are the only thing that reaches a student from
the jittered digits.

A. Hinton's table: test errors of the teacher, of each MLP student alone and distilled
   (alpha = 0.9; T = 20 for the 800-800 student, T = 4 for the 30-unit one, as part B
   explains), per seed and their mean, and the share of the student-teacher gap that
   distillation closes. The teacher is trained once (with --seed, 0 unless given); the
   seeds (--seed, --seed + 1, ...) vary the students.
B. Temperature: both MLP students distilled at T = 1, 2, 4, 8, 20 (``temperature.png``). At
   T = 1 the soft targets are almost the hard labels; a higher T shows the student the
   teacher's similarities between classes. Hinton et al. found any T above 8 about as good
   for students with 300 or more units per layer, and T from 2.5 to 4 best with 30 units per
   layer: a small student cannot copy everything, and a high T makes it spend its capacity
   on the tiny probabilities that matter least.
C. Which knowledge: logits (Ba & Caruana 2014, 1/2 ||s - t||^2), a hint (FitNets: the
   student's second hidden layer, through a learned Linear adapter 800 -> 256, regresses the
   teacher's hidden layer, plus KD), the similarities within the batch (Tung & Mori 2019,
   plus KD), a born-again student (self-distillation: a fresh 800-800 net taught by the
   800-800 net trained alone); for LeNet-5, attention transfer on both pooled feature maps
   (Zagoruyko & Komodakis 2017: 6 vs 16 and 16 vs 32 channels, but the same 14x14 and 5x5
   maps). Each run's History holds every loss term; the table shows their last-epoch means.
D. A class the student never sees (Hinton et al., section 3): every 3 is removed from the
   transfer set. The distilled 800-800 student still learns what a 3 looks like from the soft
   targets of the other digits (a 3 is a bit of an 8 and a bit of a 5), but its bias for
   class 3 ends up too low, so it rarely dares to say "3". Raising that one bias repairs most
   of it. Hinton picked the shift that maximized test accuracy (3.5 in the paper), which uses
   the test labels; we pick it without any label: the shift that makes the student predict "3"
   on the training images (3s included, unlabelled) exactly as often as the teacher does.
   The test-optimal shift is shown beside it (``class_removed.png``: errors against shift,
   the label-free shift marked).

What to look at: table A (the distilled 800-800 student lands about halfway between the
student alone and the teacher; Hinton et al., on full MNIST with an MLP teacher: teacher 67
errors, student alone 146, distilled 74); ``temperature.png`` (the big student wants a high
T, the tiny one a low T); table C (the hint and similarity terms add a little to KD here,
and a born-again MLP gains nothing from an equal teacher: the soft targets carry the
knowledge); table D (errors on 3s before and after the bias shift; Hinton et al.: 133 of the
1,010 3s wrong before, 14 after).

The bundled subset (15,500 training images, 2,000 test; 6 epochs per student, 8 for the
teacher) shows the effects in about four minutes of one core: teacher 17 errors, 800-800
alone 62, distilled 42 (44% of the gap closed). ``--data-dir`` with the full MNIST files and
``--seeds 3`` is the measured run (10 and 12 epochs): teacher 52 errors of 10,000; 800-800
alone 149, 140, 138 (mean 142.3), distilled at T = 20: 102, 92, 89 (mean 94.3), so
distillation closes 53% of the gap (49% with a teacher trained on the plain digits: see
docs/distillation.md); the 30-unit student 296.3 alone, 302.0 at T = 4 (but 275 at T = 2,
seed 0). Table B, seed 0: the 800-800 student makes 91 errors at T = 8, 102 at T = 20.
Table C, seed 0: KD 102, logit MSE 100, KD + hint 91, KD + similarity 95, born-again 160
(alone 149); LeNet-5 alone 76, KD 74, KD + attention transfer 76. Table D: without any 3 in
its transfer set the student makes 580 errors, 492 of them on the 1,010 3s; the label-free
shift (+5.64) brings that to 188 and 57 (the test-optimal +5.4: 185 and 61). The full run
takes about 30 minutes on one core.

``--quick`` trains on 2,000 of the images with the same epochs (8 for the teacher, 6 per
student): teacher 74 errors of 2,000, 800-800 alone 187, distilled 157, so 27% of the gap
closed (with --seed 1: 60, 174, 152, 19%). It needs those epochs. With 3 each (48 steps of batch 128)
the teacher made 171 errors, hardly fewer than the student alone (227): it had little to
teach, and every distilled student ended worse than alone (-91% of the gap "closed"). Both
halves matter: a teacher of 8 epochs with students of 3 gave 228 distilled against 227
alone, a teacher of 3 with students of 8 gave 209 against 177. These budgets are the
subset's own, not ones searched for on the test set; what a quick run shows is that soft
targets teach only when the teacher is much better than its student, and only when the
student is trained long enough to take them in.
"""

import os
import time

import numpy as np

import minigrad as mg
from minigrad import cli, distill, nn
from minigrad.data import DataLoader, TensorDataset, TransformedDataset
from minigrad.data.mnist import normalized_mnist
from minigrad.data.transforms import RandomShift
from minigrad.models import MLP, LeNet5
from minigrad.nn import functional as F
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import SGD, lr_scheduler
from minigrad.plot import plot_tradeoff
from minigrad.report import format_table
from minigrad.train import Callback, fit

TEMPERATURES = (1, 2, 4, 8, 20)
REMOVED_CLASS = 3


class TeacherCNN(nn.Module):
    """LeNet-5's geometry, wider and with dropout: conv 5x5 (16, padding 2) -> ReLU -> pool
    (16 x 14 x 14), conv 5x5 (32) -> ReLU -> pool (32 x 5 x 5), 800 -> 256 -> ReLU -> dropout
    0.5 -> 10. Its pooled maps have LeNet-5's sizes, so attention maps can be compared."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 5 * 5, 256), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


STUDENTS = {"800-800": lambda: MLP([784, 800, 800, 10]),
            "30": lambda: MLP([784, 30, 10]),
            "LeNet-5": LeNet5}


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


class Setup:
    """Data, budgets and the training recipe shared by every run."""

    def __init__(self, args):
        limit = 2000 if args.quick else None
        self.train_set = in_memory(normalized_mnist(args.data_dir, limit=limit))
        self.test = DataLoader(in_memory(normalized_mnist(args.data_dir, train=False)),
                               batch_size=1000)
        full = args.data_dir is not None  # default budgets: full MNIST, or the subset
        # A quick run keeps the subset's epochs on fewer images (the docstring says why).
        self.teacher_epochs = args.teacher_epochs or (12 if full else 8)
        self.epochs = args.epochs or (10 if full else 6)
        self.lr, self.alpha = args.lr, args.alpha
        self.T, self.small_T = args.temperature, args.small_temperature
        self.seed, self.seeds = args.seed, list(range(args.seed, args.seed + args.seeds))
        self.progress, self.out = not args.no_progress, args.out
        self.runs = {}  # (student, seed, T or None) -> (test errors, model)
        self.teacher, self.teacher_logits = None, {}  # the trained teacher, its logit cache

    def errors(self, model):
        """The number of test errors, as Hinton reports them."""
        images, labels = self.test.dataset.arrays
        return int((logits_of(model, images).argmax(axis=1) != labels).sum())


def in_memory(dataset):
    """Normalize every image once (a TensorDataset), not once per batch and epoch."""
    if isinstance(dataset, TensorDataset):
        return dataset
    return TensorDataset(*dataset.get_batch(np.arange(len(dataset))))


def logits_of(model, images, batch_size=1000):
    """The model's logits for an array of images, in eval mode, without a graph."""
    model.eval()
    with mg.no_grad():
        return np.concatenate([model(mg.tensor(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)])


class ClipGradNorm(Callback):
    """Clip the total gradient norm before every step. At a high temperature the soft term is
    a regression on the teacher's logits (its gradient tends to (s - t) / C, unbounded, where
    cross-entropy's p - y stays below 1), so distillation needs a guard rail. Every run gets
    it, with or without distillation. Measured on full MNIST (800-800, T = 20, lr 0.05, 10
    epochs, seed 0): a student alone is clipped at 1 step of 4,690, a distilled one at 1,295;
    with a limit of 20, 50 or none, the distilled student ends with 168, 898 and 9,026 test
    errors (diverged) against 102 with 5."""

    def __init__(self, max_norm):
        self.max_norm = max_norm

    def on_after_backward(self, state):
        clip_grad_norm_(state.model.parameters(), self.max_norm)


def train(model, loss_fn, setup, seed, desc, epochs=None, dataset=None, callbacks=()):
    """The one recipe: SGD, momentum 0.9, batch 128, cosine learning rate stepped per batch,
    gradient norm clipped at 5, no weight decay; the loader's order depends on ``seed``
    only; ``desc`` labels the progress bar. Returns the History."""
    epochs = setup.epochs if epochs is None else epochs
    loader = DataLoader(setup.train_set if dataset is None else dataset, batch_size=128,
                        shuffle=True, seed=seed)
    optimizer = SGD(model.parameters(), lr=setup.lr, momentum=0.9)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    return fit(model, loader, optimizer, loss_fn, epochs, scheduler=scheduler,
               scheduler_interval="step", callbacks=[ClipGradNorm(5.0), *callbacks],
               progress=setup.progress, desc=desc)


def train_alone(kind, setup, seed):
    """A student on the labels only."""
    mg.manual_seed(seed)
    student = STUDENTS[kind]()
    train(student, F.cross_entropy, setup, seed, desc=f"{kind} alone, seed {seed}")
    return student


def train_distilled(kind, teacher, terms, setup, seed, desc, dataset=None):
    """A student with the same initial weights and batches as ``train_alone(kind, ..., seed)``,
    distilled from ``teacher`` with ``terms`` (``kind=None``: a born-again copy of the
    teacher's architecture). Returns (student, History)."""
    mg.manual_seed(seed)
    student = None if kind is None else STUDENTS[kind]()
    # Students of the main teacher share one cache of its logits: each training image goes
    # through the teacher once in the whole lesson. Terms that read its layers need it run.
    if any(term.teacher_layers for term in terms):
        cache = False
    else:
        cache = setup.teacher_logits if teacher is setup.teacher else True
    distiller = distill.Distiller(teacher, student, terms, cache_teacher_logits=cache)
    history = train(distiller, distiller.step, setup, seed, desc, dataset=dataset,
                    callbacks=[distill.DistillationLog(distiller)])
    distiller.remove_hooks()
    return distiller.student, history


def student_run(setup, teacher, kind, seed, T=None):
    """(test errors, model) of a student alone (T None) or distilled with KD(T, alpha).
    Parts A, B and C share these runs, so each is trained once."""
    key = (kind, seed, T)
    if key not in setup.runs:
        model = (train_alone(kind, setup, seed) if T is None else train_distilled(
            kind, teacher, [distill.KD(T, setup.alpha)], setup, seed,
            desc=f"{kind} KD T={T:g}, seed {seed}")[0])
        setup.runs[key] = (setup.errors(model), model)
    return setup.runs[key]


def train_teacher(setup):
    """The teacher CNN on jittered digits, as Hinton et al.'s teacher: each image shifted by
    up to 2 pixels each way, a new shift every epoch. The students see the plain digits."""
    cli.stage("teacher", "CNN with dropout on digits shifted by up to 2 pixels",
              images=len(setup.train_set), epochs=setup.teacher_epochs)
    mg.manual_seed(setup.seed)
    teacher = TeacherCNN()
    images = setup.train_set.arrays[0]
    # Pixel 0 after normalization is the smallest value: the background to shift in. The
    # shifts have a stream of their own, --seed + 99 (apart from the students' seeds), so the
    # teacher depends on --seed alone, not on what else drew random numbers.
    jitter = RandomShift(2, fill=float(images.min()), seed=setup.seed + 99)
    train(teacher, F.cross_entropy, setup, setup.seed, desc="teacher",
          epochs=setup.teacher_epochs, dataset=TransformedDataset(setup.train_set, jitter))
    setup.teacher = teacher
    return teacher


def part_a(teacher, teacher_errors, setup):
    """Hinton's table, over the seeds."""
    cli.stage("A. Hinton's table", f"the 800-800 and the 30-unit MLP, each alone and distilled, "
              f"seeds {setup.seeds}", images=len(setup.train_set), epochs=setup.epochs)
    rows, errors = [], {}
    for kind, T in (("800-800", setup.T), ("30", setup.small_T)):
        for label, run_T in (("alone", None), ("distilled", T)):
            errors[kind, label] = [student_run(setup, teacher, kind, seed, run_T)[0]
                                   for seed in setup.seeds]
            name = f"{kind} {label}" + ("" if run_T is None else f" (T={T:g})")
            rows.append((name, parameter_count(STUDENTS[kind]()), *errors[kind, label],
                         float(np.mean(errors[kind, label]))))
    rows.insert(0, ("teacher CNN (dropout, jitter)", parameter_count(teacher),
                    *[teacher_errors] * len(setup.seeds), float(teacher_errors)))
    alone, distilled = (float(np.mean(errors["800-800", k])) for k in ("alone", "distilled"))
    gap_closed = (alone - distilled) / (alone - teacher_errors)
    print(f"\nA. Test errors (of {len(setup.test.dataset):,}), KD with alpha={setup.alpha:g}; "
          f"{setup.epochs} epochs for every student, seeds {setup.seeds}")
    print(format_table(["model", "parameters", *(f"seed {s}" for s in setup.seeds), "mean"],
                       rows, [None, ",d", *["d"] * len(setup.seeds), ".1f"]))
    print(f"The distilled 800-800 student closes {gap_closed:.0%} of the gap between the "
          f"student alone ({alone:.1f} errors) and the teacher ({teacher_errors})")
    return rows, errors, gap_closed


def part_b(teacher, setup):
    """Error against temperature for both MLP students (first seed)."""
    seed, size = setup.seeds[0], len(setup.test.dataset)
    cli.stage("B. temperature", f"both MLP students distilled at T = "
              f"{', '.join(map(str, TEMPERATURES))} (those of part A reused), seed {seed}",
              images=len(setup.train_set), epochs=setup.epochs)
    curves = {kind: [(T, student_run(setup, teacher, kind, seed, T)[0]) for T in TEMPERATURES]
              for kind in ("800-800", "30")}
    alone = {kind: student_run(setup, teacher, kind, seed)[0] for kind in curves}
    print(f"\nB. Test errors against the temperature (alpha={setup.alpha:g}, seed {seed})")
    print(format_table(["student", "alone", *(f"T={T}" for T in TEMPERATURES)],
                       [(kind, alone[kind], *(e for _, e in points))
                        for kind, points in curves.items()],
                       [None, "d", *["d"] * len(TEMPERATURES)]))
    lines = {}
    for kind, points in curves.items():
        lines[f"{kind} distilled"] = points
        lines[f"{kind} alone"] = [(T, alone[kind]) for T, _ in points]
    path = os.path.join(setup.out, "temperature.png")
    plot_tradeoff(lines, "temperature T", f"test errors (of {size:,})", path=path, log_x=True,
                  xticks=TEMPERATURES,
                  title="Distilled MLP students: test errors against the temperature")
    return curves, path


def part_c(teacher, setup):
    """Other kinds of knowledge, first seed: the 800-800 student, then LeNet-5."""
    seed, T, alpha = setup.seeds[0], setup.T, setup.alpha
    # (student, method): the terms, made afresh for each run (adapters are trained). The
    # logit MSE is weighted 1/C = 0.1: then it is the soft term's limit as T -> infinity.
    terms = {
        ("800-800", "logit MSE (Ba & Caruana)"): lambda: [distill.LogitMatching(0.1)],
        ("800-800", "KD + hint (FitNets)"): lambda: [distill.KD(T, alpha), distill.Hint(
            "layers.4", "classifier.2", distill.hint_adapter((800,), (256,)))],
        ("800-800", "KD + similarity-preserving"): lambda: [
            distill.KD(T, alpha), distill.SimilarityPreserving([("layers.4", "classifier.2")])],
        ("LeNet-5", "KD + attention transfer"): lambda: [
            distill.KD(T, alpha), distill.AttentionTransfer(
                [("features.2", "features.2"), ("features.5", "features.5")])],
    }
    cli.stage("C. which knowledge", "the 800-800 student by logits, hint, similarities and "
              "born again; LeNet-5 alone, by KD and by attention transfer",
              images=len(setup.train_set), epochs=setup.epochs)
    rows = []
    for kind in ("800-800", "LeNet-5"):
        rows.append((kind, "alone", student_run(setup, teacher, kind, seed)[0], "-"))
        rows.append((kind, f"KD (T={T:g})", student_run(setup, teacher, kind, seed, T)[0], "-"))
        for (student, method), make_terms in terms.items():
            if student == kind:
                model, history = train_distilled(kind, teacher, make_terms(), setup, seed,
                                                 desc=f"{kind} {method.split(' (')[0]}")
                rows.append((kind, method, setup.errors(model), logged_terms(history)))
        if kind == "800-800":  # born-again: a fresh 800-800 (seed + 1) taught by the one alone
            alone = student_run(setup, teacher, kind, seed)[1]
            model, history = train_distilled(None, alone, [distill.KD(T, alpha)], setup,
                                             seed + 1, desc="800-800 born-again")
            rows.append((kind, "born-again: KD from the student alone",
                         setup.errors(model), logged_terms(history)))
    print(f"\nC. Which knowledge to distill (seed {seed}); loss terms: the last epoch's means, "
          "weighted")
    print(format_table(["student", "method", "test errors", "loss terms"], rows,
                       [None, None, "d", None]))
    return rows


def logged_terms(history):
    """The distillation terms DistillationLog wrote into the last epoch's record."""
    last = history.epochs[-1]
    return ", ".join(f"{key} {last[key]:.3g}" for key in last
                     if key not in ("epoch", "train_loss", "train_accuracy", "seconds"))


def bias_shift_matching_counts(logits, target_count, cls):
    """The shift of class ``cls``'s logit that makes ``target_count`` rows predict it. A row
    predicts ``cls`` once the shift exceeds its margin max_{c != cls} z_c - z_cls, so the
    shift goes halfway between the k-th and the (k+1)-th smallest margins (never below 0)."""
    others = np.delete(logits, cls, axis=1).max(axis=1)
    margins = np.sort(others - logits[:, cls])
    k = int(np.clip(target_count, 1, len(margins)))
    if margins[k - 1] < 0:
        return 0.0  # already predicted often enough
    upper = margins[k] if k < len(margins) else margins[k - 1] + 1.0
    return float((margins[k - 1] + upper) / 2)


def part_d(teacher, setup):
    """The 800-800 student distilled without any 3 in its transfer set, then bias-corrected."""
    images, labels = setup.train_set.arrays
    keep = labels != REMOVED_CLASS
    transfer = TensorDataset(images[keep], labels[keep])
    seed = setup.seeds[0]
    cli.stage("D. a class never seen", f"the 800-800 student distilled without any "
              f"{REMOVED_CLASS} in its transfer set, seed {seed}", images=len(transfer),
              epochs=setup.epochs)
    student, _ = train_distilled("800-800", teacher, [distill.KD(setup.T, setup.alpha)],
                                 setup, seed, desc=f"800-800 KD without {REMOVED_CLASS}s",
                                 dataset=transfer)
    teacher_count = int((logits_of(teacher, images).argmax(1) == REMOVED_CLASS).sum())
    shift = bias_shift_matching_counts(logits_of(student, images), teacher_count,
                                       REMOVED_CLASS)
    test_x, test_y = setup.test.dataset.arrays
    test_logits = logits_of(student, test_x)
    is_three = test_y == REMOVED_CLASS

    def scores(shift):
        """Test errors, errors on the removed class, and how often it is predicted."""
        predicted = (test_logits + shift * (np.arange(10) == REMOVED_CLASS)).argmax(axis=1)
        says_three = predicted == REMOVED_CLASS
        return (int((predicted != test_y).sum()), int((~says_three[is_three]).sum()),
                int(says_three.sum()))

    grid = np.round(np.arange(0.0, 10.01, 0.1), 2)
    curve = [(b, *scores(b)) for b in grid]
    oracle = min(curve, key=lambda point: (point[1], point[0]))[0]
    rows = [("no shift", 0.0, *scores(0.0)),
            ("shift matching the teacher's count of 3s (no labels)", shift, *scores(shift)),
            ("shift with the fewest test errors (Hinton's choice)", oracle, *scores(oracle))]
    print(f"\nD. The 800-800 student distilled from a transfer set without any "
          f"{REMOVED_CLASS} ({int(keep.sum()):,} of {len(labels):,} images), seed {seed}; "
          f"{int(is_three.sum())} test images are {REMOVED_CLASS}s")
    print(format_table(["bias of class 3", "shift", "test errors", "errors on 3s",
                        "predicted 3s"], rows, [None, ".2f", "d", "d", "d"]))
    path = os.path.join(setup.out, "class_removed.png")
    errors_at_shift, errors_on_threes_at_shift, _ = scores(shift)
    plot_tradeoff({"all test errors": [(b, e) for b, e, _, _ in curve],
                   f"errors on {REMOVED_CLASS}s": [(b, e3) for b, _, e3, _ in curve],
                   # A vertical segment from one curve to the other at the label-free shift.
                   "the shift chosen without labels": [
                       (shift, errors_on_threes_at_shift),
                       (shift, errors_at_shift, f"{shift:+.2f}")]},
                  f"shift added to the bias of class {REMOVED_CLASS}", "test errors",
                  path=path, title=f"Student that never saw a {REMOVED_CLASS}: bias correction")
    return {"rows": rows, "shift": shift, "oracle_shift": oracle, "plot": path,
            "threes": int(is_three.sum())}


def main(argv=None):
    parser = cli.lesson_parser(__doc__, "09_distillation", quick="2,000 training images")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every student (default: 10 with --data-dir, 6 on "
                             "the bundled subset)")
    parser.add_argument("--teacher-epochs", type=int, default=None,
                        help="default: 12 with --data-dir, 8 on the bundled subset")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--temperature", type=float, default=20.0,
                        help="T for the 800-800 and LeNet-5 students (parts A, C, D)")
    parser.add_argument("--small-temperature", type=float, default=4.0,
                        help="T for the 30-unit student in part A (Hinton et al.: 2.5 to 4)")
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft targets")
    parser.add_argument("--seeds", type=int, default=1,
                        help="how many student seeds part A averages: --seed, --seed + 1, ...")
    args = cli.parse_args(parser, argv)
    start = time.perf_counter()
    setup = Setup(args)

    teacher = train_teacher(setup)
    teacher_errors = setup.errors(teacher)
    print(f"teacher: {teacher_errors} test errors ({setup.teacher_epochs} epochs on "
          f"{len(setup.train_set):,} images)")
    rows_a, errors_a, gap_closed = part_a(teacher, teacher_errors, setup)
    curves_b, temperature_png = part_b(teacher, setup)
    rows_c = part_c(teacher, setup)
    class_removed = part_d(teacher, setup)
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    return {"teacher_errors": teacher_errors, "part_a": rows_a, "errors": errors_a,
            "gap_closed": gap_closed, "temperature": curves_b, "part_c": rows_c,
            "class_removed": class_removed,
            "test_size": len(setup.test.dataset),
            "plots": (temperature_png, class_removed["plot"])}


if __name__ == "__main__":
    main()
