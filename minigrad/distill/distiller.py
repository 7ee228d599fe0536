"""``Distiller``: a student trained from a frozen teacher, inside the ordinary ``fit`` loop.

    distiller = Distiller(teacher, student, [KD(T=4, alpha=0.9)])
    optimizer = SGD(distiller.parameters(), lr=0.05)     # the student (and adapters) only
    history = fit(distiller, loader, optimizer, distiller.step, epochs=10,
                  callbacks=[DistillationLog(distiller)])
    history.series("kd_kl"), history.series("kd_ce")     # every term, per epoch (and step)

``distiller.step`` is a ``DistillationStep``, the ``TrainStep`` that ``fit`` calls on each
batch (x, y):

1. It runs ``distiller(x)``, the student (building the graph), then the teacher in eval mode
   under ``no_grad`` (no graph, dropout off), or takes the teacher's logits from the cache.
   While both run, forward hooks on the named layers that the terms ask for store those
   layers' outputs (``recording``).
2. ``distiller.loss(student_logits, teacher_logits, y, features)`` asks every term for its
   named values (each already multiplied by its weight), keeps them in ``last_terms`` and
   returns their sum.
3. It returns the student's logits and that loss: accuracy metrics see the student, and
   ``backward`` reaches the student and the adapters, which are submodules of the distiller.
   The teacher is not: it is kept out of the module tree, so ``parameters()``, ``train()``
   and ``state_dict()`` never see it, and its parameters have ``requires_grad`` off.

``evaluate(distiller, loader)`` measures the student alone; with ``distiller.step`` as its loss
it also gives the distillation loss, as ``fit``'s ``val_loss`` does.

A term is a small Module (so an adapter inside it is trained and saved with the student):
``KD`` (soft targets + hard labels), ``LogitMatching``, ``Hint``, ``AttentionTransfer``,
``SimilarityPreserving``, ``CrossEntropy``. Write a new one by subclassing
``DistillationTerm``: set ``keys`` (History columns), ``student_layers`` and
``teacher_layers`` (dotted names, as in ``named_modules``), and return {key: loss} from
``forward(batch)``.

Teacher-logit cache (``cache_teacher_logits=True``): ``fit`` gives no sample indices, so the
cache is keyed by the content of each input row (a BLAKE2 digest of its bytes). The first epoch
runs the teacher and fills it; every later epoch finds each row's logits there, whatever the
shuffling, and skips the teacher's forward pass. A row that was never seen (a new
augmentation of an image, say) simply misses and runs the teacher. Only logits are cached, so
terms that read teacher layers refuse the cache. Passing the same dict to several distillers
of one teacher shares it (the teacher must not change in between).

Self-distillation (born-again networks, Furlanello et al. 2018): ``student=None`` makes the
student a freshly initialized copy of the teacher's architecture (``born_again_student``).
"""

import contextlib
import copy
import hashlib
import weakref
from dataclasses import dataclass, field

import numpy as np

from minigrad import backend, nn
from minigrad.autograd import no_grad
from minigrad.distill.losses import (attention_transfer_loss, check_alpha, check_logits,
                                     check_temperature, hint_loss, logit_mse_loss,
                                     similarity_preserving_loss, soft_target_loss)
from minigrad.nn import functional as F
from minigrad.tensor import Tensor
from minigrad.train import Callback, TrainStep


@dataclass
class DistillationBatch:
    """What a term sees: both models' logits, the labels, and the stored layer outputs."""

    student_logits: Tensor
    teacher_logits: Tensor
    targets: Tensor
    student_features: dict = field(default_factory=dict)
    teacher_features: dict = field(default_factory=dict)

    def feature(self, role, name):
        features = self.student_features if role == "student" else self.teacher_features
        if name not in features:
            raise RuntimeError(f"Distiller: the {role}'s layer {name!r} did not run in the last "
                               "forward pass, so there is no feature to distill")
        return features[name]


# --------------------------------------------------------------------------- terms
class DistillationTerm(nn.Module):
    """One part of the loss. ``forward(batch) -> {key: weighted loss}`` for every key in
    ``keys``; the layers it reads are listed in ``student_layers`` and ``teacher_layers``."""

    def __init__(self, keys, student_layers=(), teacher_layers=()):
        super().__init__()
        self.keys = tuple(keys)
        self.student_layers, self.teacher_layers = tuple(student_layers), tuple(teacher_layers)


class KD(DistillationTerm):
    """Hinton et al.'s loss as two logged parts, "<name>_ce" = (1 - alpha) CE(y, s) and
    "<name>_kl" = alpha T^2 KL(softmax(t/T) || softmax(s/T)); their sum is ``kd_loss``."""

    def __init__(self, T=4.0, alpha=0.9, name="kd"):
        check_temperature(T)
        check_alpha(alpha)
        super().__init__([f"{name}_ce", f"{name}_kl"])
        self.T, self.alpha = T, alpha

    def forward(self, batch):
        ce, kl = self.keys
        return {ce: (1 - self.alpha) * F.cross_entropy(batch.student_logits, batch.targets),
                kl: self.alpha * soft_target_loss(batch.student_logits, batch.teacher_logits,
                                                  self.T)}

    def extra_repr(self):
        return f"T={self.T}, alpha={self.alpha}"


class CrossEntropy(DistillationTerm):
    """The labels' cross-entropy alone, to pair with feature terms (FitNets' second stage)."""

    def __init__(self, weight=1.0, name="ce"):
        super().__init__([name])
        self.weight = weight

    def forward(self, batch):
        return {self.keys[0]: self.weight * F.cross_entropy(batch.student_logits, batch.targets)}


class LogitMatching(DistillationTerm):
    """``weight * logit_mse_loss`` (Ba & Caruana 2014): regress the teacher's logits."""

    def __init__(self, weight=1.0, name="logit_mse"):
        super().__init__([name])
        self.weight = weight

    def forward(self, batch):
        return {self.keys[0]: self.weight * logit_mse_loss(batch.student_logits,
                                                          batch.teacher_logits)}


class Hint(DistillationTerm):
    """``weight * hint_loss`` (FitNets): the output of the student's ``student_layer``, through
    ``adapter`` (``hint_adapter``, or any module), regresses the teacher's ``teacher_layer``."""

    def __init__(self, student_layer, teacher_layer, adapter, weight=1.0, name="hint"):
        super().__init__([name], [student_layer], [teacher_layer])
        self.adapter, self.weight = adapter, weight

    def forward(self, batch):
        student = batch.feature("student", self.student_layers[0])
        teacher = batch.feature("teacher", self.teacher_layers[0])
        return {self.keys[0]: self.weight * hint_loss(student, teacher, self.adapter)}


class _FeaturePairs(DistillationTerm):
    """A loss summed over (student layer, teacher layer) pairs, times ``weight``."""

    loss = None  # a function (student_feature, teacher_feature) -> scalar Tensor

    def __init__(self, pairs, weight, name):
        pairs = [tuple(pair) for pair in pairs]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"{type(self).__name__}: pairs must be a non-empty list of "
                             f"(student layer, teacher layer) names, got {pairs!r}")
        super().__init__([name], [s for s, _ in pairs], [t for _, t in pairs])
        self.weight = weight

    def forward(self, batch):
        total = sum(self.loss(batch.feature("student", s), batch.feature("teacher", t))
                    for s, t in zip(self.student_layers, self.teacher_layers))
        return {self.keys[0]: self.weight * total}


class AttentionTransfer(_FeaturePairs):
    """``weight * sum over pairs of attention_transfer_loss``; weight = beta / 2 with the
    paper's beta = 1000."""

    loss = staticmethod(attention_transfer_loss)

    def __init__(self, pairs, weight=500.0, name="attention"):
        super().__init__(pairs, weight, name)


class SimilarityPreserving(_FeaturePairs):
    """``weight * sum over pairs of similarity_preserving_loss``; the paper's gamma = 3000."""

    loss = staticmethod(similarity_preserving_loss)

    def __init__(self, pairs, weight=3000.0, name="similarity"):
        super().__init__(pairs, weight, name)


# --------------------------------------------------------------------------- the distiller
# The handles of the forward hooks that Distillers keep on a layer, by layer. Each hook records
# into its own distiller, so a copy of the layer (born_again_student) must not keep it.
_distiller_hooks = weakref.WeakKeyDictionary()


def born_again_student(teacher):
    """A student with the teacher's architecture and fresh weights (born-again networks,
    Furlanello et al. 2018): a deep copy whose layers redraw their parameters
    (``reset_parameters``), in training mode, trainable, without a distiller's hooks."""
    handles = [h for module in teacher.modules() for h in _distiller_hooks.get(module, ())]
    # Copied in one deepcopy with the teacher, the handles point into the copy's hook tables
    # (deepcopy keeps shared objects shared): removing them there leaves the teacher's hooks.
    student, copied_handles = copy.deepcopy((teacher, handles))
    for handle in copied_handles:
        handle.remove()
    for module in student.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for p in student.parameters():
        p.requires_grad = True
    return student.train()


def _layer(model, name, role):
    layers = dict(model.named_modules())
    if name not in layers or name == "":
        names = [n for n in layers if n]
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise ValueError(f"Distiller: the {role} ({type(model).__name__}) has no layer named "
                         f"{name!r}; its layers are: {shown}")
    return layers[name]


def _teacher_logit_cache(option, teacher_layers):
    """The cache dict for ``cache_teacher_logits`` (True: a new one; a dict: that one, shared),
    or None (False)."""
    if option is False:
        return None
    if option is not True and not isinstance(option, dict):
        raise TypeError("Distiller: cache_teacher_logits must be True, False or a dict (a "
                        f"cache to share), got {type(option).__name__}")
    if teacher_layers:
        raise ValueError(f"Distiller: the cache holds teacher logits only, but the terms read "
                         f"teacher layers {teacher_layers}; use cache_teacher_logits=False")
    return {} if option is True else option


def _row_keys(x):
    """A digest of each input row's bytes: the teacher-logit cache's keys."""
    rows = np.ascontiguousarray(x.numpy()).reshape(x.shape[0], -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


class Distiller(nn.Module):
    """Student (+ the terms' adapters) as a Module, distilled from ``teacher``; see the module
    docstring. ``terms``: DistillationTerm objects, summed. ``student=None``: born-again.
    ``cache_teacher_logits``: True for a cache of its own, or a dict that several distillers
    of the *same* teacher share (students trained one after another on the same images)."""

    def __init__(self, teacher, student=None, terms=(), cache_teacher_logits=False):
        super().__init__()
        terms = list(terms)
        if not terms or not all(isinstance(t, DistillationTerm) for t in terms):
            raise ValueError("Distiller: terms must be a non-empty list of DistillationTerm "
                             f"(KD, Hint, ...), got {terms!r}")
        keys = [key for term in terms for key in term.keys]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Distiller: two terms log under the same name in {keys}; give "
                             "one of them another name=")
        self.student = born_again_student(teacher) if student is None else student
        self.terms = nn.ModuleList(terms)
        object.__setattr__(self, "teacher", teacher)  # outside the module tree: never trained
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad = False
        teacher_layers = sorted({n for term in terms for n in term.teacher_layers})
        self.cache = _teacher_logit_cache(cache_teacher_logits, teacher_layers)
        self.cache_hits = self.cache_misses = 0
        self.last_terms = {}
        self._features = None  # the dict that recording() fills, inside its block only
        self._handles = []  # (layer, RemovableHandle) of each forward hook put on a layer
        for role, model, names in (
                ("student", self.student, {n for t in terms for n in t.student_layers}),
                ("teacher", teacher, teacher_layers)):
            for name in sorted(names):
                layer = _layer(model, name, role)
                handle = layer.register_forward_hook(self._store_hook(role, name))
                _distiller_hooks.setdefault(layer, []).append(handle)
                self._handles.append((layer, handle))

    def _store_hook(self, role, name):
        def store(module, args, output):
            if self._features is not None:
                self._features[role][name] = output
        return store

    @contextlib.contextmanager
    def recording(self):
        """Within the block, the outputs of the layers that the terms read are stored in the
        dict it gives: {"student": {layer name: output}, "teacher": {layer name: output}}."""
        self._features = {"student": {}, "teacher": {}}
        try:
            yield self._features
        finally:
            self._features = None

    def remove_hooks(self):
        """Take this distiller's forward hooks off both models (when done distilling)."""
        for layer, handle in self._handles:
            handle.remove()
            _distiller_hooks[layer].remove(handle)
        self._handles = []

    @property
    def step(self):
        """``fit``'s step for this distiller: ``fit(distiller, loader, optimizer,
        distiller.step, epochs)`` (a ``DistillationStep``)."""
        return DistillationStep(self)

    def train(self, mode=True):
        super().train(mode)
        self.teacher.eval()  # dropout stays off and batch-norm statistics stay fixed
        return self

    def to(self, device):
        super().to(device)
        self.teacher.to(device)
        return self

    def teacher_logits(self, x):
        """The teacher's logits for ``x``: eval mode, no graph, from the cache when on."""
        self.teacher.eval()
        if self.cache is None:
            with no_grad():
                return self.teacher(x)
        keys = _row_keys(x)
        rows = [self.cache.get(key) for key in keys]
        if any(row is None for row in rows):
            self.cache_misses += 1
            with no_grad():
                logits = self.teacher(x)
            self.cache.update(zip(keys, logits.numpy().copy()))
            return logits
        self.cache_hits += 1
        return Tensor(backend.to_device(np.stack(rows), x.device))

    def forward(self, x):
        """The student's logits: what metrics and ``evaluate`` see."""
        return self.student(x)

    def loss(self, student_logits, teacher_logits, targets, features=None):
        """The sum of every term's weighted values on one batch: the student's logits (with
        their graph), the teacher's, the labels, and for terms that read layers ``features``,
        what ``recording`` stored. Each term's value is kept in ``last_terms`` (floats) for
        ``DistillationLog``."""
        check_logits("Distiller", student_logits, teacher_logits)
        features = features or {}
        batch = DistillationBatch(student_logits, teacher_logits, targets,
                                  features.get("student", {}), features.get("teacher", {}))
        values = {}
        for term in self.terms:
            values.update(term(batch))
        self.last_terms = {key: value.item() for key, value in values.items()}
        return sum(values.values())


class DistillationStep(TrainStep):
    """``fit``'s step for a Distiller (``distiller.step``): on a batch (x, y)

        s = model(x)          the student, with its graph (``model``: the distiller fit trains)
        t = teacher(x)        eval mode, no graph (or the cached logits)
        loss = distiller.loss(s, t, y, features)

    with the terms' layers recorded while both run; it returns (s, loss)."""

    def __init__(self, distiller):
        self.distiller = distiller

    def __call__(self, model, inputs, targets):
        with self.distiller.recording() as features:
            student_logits = model(inputs)
            teacher_logits = self.distiller.teacher_logits(inputs)
        return student_logits, self.distiller.loss(student_logits, teacher_logits, targets,
                                                   features)


class DistillationLog(Callback):
    """Record every term of ``distiller.last_terms`` into fit's History: in each step's record,
    and as the epoch's mean (weighted by batch size, like train_loss) in each epoch's record."""

    def __init__(self, distiller):
        self.distiller = distiller
        self.sums, self.count = {}, 0

    def on_epoch_begin(self, state):
        self.sums, self.count = {}, 0

    def on_batch_end(self, state):
        terms, size = self.distiller.last_terms, len(state.targets)
        state.history.steps[-1].update(terms)
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * size
        self.count += size

    def on_epoch_end(self, state):
        if self.count:
            state.history.epochs[-1].update({k: s / self.count for k, s in self.sums.items()})


__all__ = ["AttentionTransfer", "CrossEntropy", "DistillationBatch", "DistillationLog",
           "DistillationStep", "DistillationTerm", "Distiller", "Hint", "KD", "LogitMatching",
           "SimilarityPreserving", "born_again_student"]
