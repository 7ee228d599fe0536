"""When to prune, and how much: one shot, iterative prune-retrain, and gradual pruning.

All three reach a target *sparsity* s (the fraction of weights that are zero) with
``prune_to``, which ranks the weights of several tensors together (``scope="global"``, the
default: layers with many unimportant weights lose more) or prunes each tensor to s alone
(``scope="layer"``).

* One shot: ``prune_to(parameters, 0.9)`` once, then fine-tune.
* Iterative (Han et al. 2015, "Learning both Weights and Connections"): prune a little, retrain
  (at a lower learning rate) so the remaining weights take over, prune more, ...
  ``iterative_pruning(parameters, [0.5, 0.75, 0.9], retrain)``.
* Gradual, "automated gradual pruning" (Zhu & Gupta 2017, "To prune, or not to prune"): during
  training, every ``frequency`` steps from t0 to t0 + n*dt, prune to

      s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3

  fast at first, when there are many redundant weights, then ever more slowly. The
  ``GradualPruning`` callback does it inside ``fit``.
"""

import numpy as np

from minigrad.prune.methods import global_unstructured, l1_unstructured
from minigrad.prune.reparam import current_mask
from minigrad.train import Callback


def sparsity(parameters):
    """The fraction of entries of the (module, name) pairs that are pruned (mask 0)."""
    masks = [current_mask(module, name) for module, name in parameters]
    return 1.0 - sum(int(np.count_nonzero(m)) for m in masks) / sum(m.size for m in masks)


def prune_to(parameters, target, importance=None, optimizer=None, scope="global"):
    """Prune the (module, name) pairs until a fraction ``target`` of their entries is pruned
    (never fewer than are already pruned: nothing grows back). ``importance``: as in
    ``global_unstructured`` (None: magnitude). ``scope="layer"``: each tensor to ``target``
    on its own."""
    if not 0 <= target <= 1:
        raise ValueError(f"prune_to: the target sparsity must be in [0, 1], got {target!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"prune_to: scope must be 'global' or 'layer', got {scope!r}")
    groups = [list(parameters)] if scope == "global" else [[pair] for pair in parameters]
    for group in groups:
        masks = [current_mask(module, name) for module, name in group]
        total, remaining = sum(m.size for m in masks), sum(int(np.count_nonzero(m)) for m in masks)
        count = max(0, round(target * total) - (total - remaining))
        if scope == "global":
            global_unstructured(group, count, importance, optimizer)
        else:
            (module, name), = group
            l1_unstructured(module, name, count, importance, optimizer)


def agp_sparsity(step, final_sparsity, start_step, end_step, initial_sparsity=0.0):
    """Zhu & Gupta's target at ``step``: s_i before ``start_step``, s_f from ``end_step``, and
    s_f + (s_i - s_f) (1 - (t - t0) / (t_end - t0))^3 between."""
    if step <= start_step:
        return initial_sparsity
    if step >= end_step:
        return final_sparsity
    progress = (step - start_step) / (end_step - start_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1 - progress) ** 3


class GradualPruning(Callback):
    """Automated gradual pruning inside ``fit``: after optimizer step t, for t = start_step,
    start_step + frequency, ..., end_step, prune ``parameters`` to ``agp_sparsity(t)``.
    The optimizer's state is zeroed at the pruned entries, so nothing regrows. ``history``
    records (step, target, sparsity reached) at each pruning step."""

    def __init__(self, parameters, final_sparsity, start_step, end_step, frequency=100,
                 initial_sparsity=0.0, importance=None, scope="global"):
        if not 0 <= initial_sparsity <= final_sparsity <= 1:
            raise ValueError(f"GradualPruning: need 0 <= initial_sparsity <= final_sparsity "
                             f"<= 1, got {initial_sparsity} and {final_sparsity}")
        if not 0 <= start_step < end_step or frequency < 1:
            raise ValueError(f"GradualPruning: need 0 <= start_step < end_step and frequency "
                             f">= 1, got {start_step}, {end_step}, {frequency}")
        self.parameters, self.importance, self.scope = list(parameters), importance, scope
        self.final, self.initial = final_sparsity, initial_sparsity
        self.start, self.end, self.frequency = start_step, end_step, frequency
        self.history = []

    def is_pruning_step(self, step):
        return step == self.end or (self.start <= step < self.end
                                    and (step - self.start) % self.frequency == 0)

    def on_batch_end(self, state):
        if not self.is_pruning_step(state.step):
            return
        target = agp_sparsity(state.step, self.final, self.start, self.end, self.initial)
        prune_to(self.parameters, target, self.importance, state.optimizer, self.scope)
        self.history.append((state.step, target, sparsity(self.parameters)))


def iterative_pruning(parameters, targets, retrain, importance=None, optimizer=None,
                      scope="global"):
    """Han et al.'s loop: for each target sparsity in ``targets`` (increasing), prune to it,
    then call ``retrain(round_index, target)`` (the caller's fine-tuning, usually ``fit`` at a
    lower learning rate). ``importance`` may be a function of (module, name), recomputed at
    every round. Returns one dict per round: round, target, sparsity, and what retrain
    returned."""
    rounds = []
    for index, target in enumerate(targets):
        prune_to(parameters, target, importance, optimizer, scope)
        rounds.append({"round": index + 1, "target": target, "sparsity": sparsity(parameters),
                       "result": retrain(index, target)})
    return rounds
