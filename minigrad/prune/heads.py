"""Attention-head pruning by importance: Michel et al. 2019, "Are Sixteen Heads Really Better
than One?", with real surgery (the pruned heads' weights are cut out, as HF transformers'
``prune_heads``).

Importance. Give every head of a ``MultiheadAttention`` a gate m_h (a mask of ones) on its
output, ``out = concat(m_1 head_1, ..., m_H head_H) W_o^T + b_o``; the importance of head h is

    I_h = sum over batches |dL/dm_h|   at m = 1

(first order: removing head h changes the loss by about -dL/dm_h). With ``normalize=True``, as
Michel et al., each layer's scores are divided by their L2 norm, I_h / ||I_layer||_2, so that
scores of different layers compare in a global ranking.

    scores = head_importance(model, val_batches, F.cross_entropy)    # {path: (num_heads,)}
    removed = prune_heads_by_importance(model, scores, amount=0.25)  # {path: [heads]}

Surgery. With head h = rows h*d:(h+1)*d of each of the q, k and v blocks of
``in_proj_weight`` (and of ``in_proj_bias``) and columns h*d:(h+1)*d of ``out_proj.weight``,
removing a head keeps only the other rows and columns; ``num_heads`` drops, ``head_dim`` d and
``embed_dim`` E stay, so the layer then computes with num_heads * d < E. Each removed head
takes 4*d*E weights (3*d*E in, d*E out) and 3*d in-projection biases; ``out_proj.bias`` stays.
The pruned model computes exactly what the model with those heads masked (m_h = 0) computes.
The surgery makes new Parameters: give the optimizer the new ones.
"""

from dataclasses import dataclass

import numpy as np

from minigrad import backend
from minigrad.nn.attention import MultiheadAttention
from minigrad.nn.module import Parameter
from minigrad.prune.shrink import make_permanent, parameter_count
from minigrad.report import format_table
from minigrad.tensor import Tensor


def attention_modules(model):
    """{path: MultiheadAttention} in ``named_modules`` order; ValueError when there is none."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, MultiheadAttention)}
    if not found:
        raise ValueError(f"head pruning: {type(model).__name__} has no MultiheadAttention")
    return found


def head_importance(model, batches, loss_fn, normalize=True):
    """{module path: float64 array (num_heads,)}: I_h = sum over ``batches`` of |dL/dm_h|, L =
    ``loss_fn(model(x), y)`` for each (x, y), m_h a gate of one on head h's output (a forward
    pre-hook on each ``out_proj`` multiplies its input, the concatenated heads, by m repeated
    head_dim times). With ``normalize`` each layer's scores are divided by their L2 norm.

    Runs in eval mode (dropout off) and with the parameters frozen, so their gradients are
    neither computed nor changed; hooks, training modes and ``requires_grad`` are restored."""
    attentions = attention_modules(model)
    gates = {name: Tensor(backend.array_module(m.out_proj.weight.data).ones(
        m.num_heads, dtype=m.out_proj.weight.dtype), requires_grad=True)
        for name, m in attentions.items()}
    scores = {name: np.zeros(m.num_heads) for name, m in attentions.items()}
    modes = {m: m.training for m in model.modules()}
    frozen = {p: p.requires_grad for p in model.parameters()}
    handles = [m.out_proj.register_forward_pre_hook(gate_hook(gates[name], m.head_dim))
               for name, m in attentions.items()]
    seen = 0
    try:
        model.eval()
        for p in frozen:
            p.requires_grad = False
        for x, y in batches:
            loss_fn(model(x), y).backward()
            for name, gate in gates.items():
                if gate.grad is not None:  # None: the batch did not reach this module
                    scores[name] += np.abs(backend.to_device(gate.grad.data, "cpu"))
                gate.grad = None
            seen += 1
    finally:
        for handle in handles:
            handle.remove()
        for p, requires_grad in frozen.items():
            p.requires_grad = requires_grad
        for m, training in modes.items():
            m.training = training
    if not seen:
        raise ValueError("head_importance: batches gave no (x, y) batch")
    if normalize:
        scores = {name: s / (np.linalg.norm(s) + 1e-20) for name, s in scores.items()}
    return scores


def gate_hook(gate, head_dim):
    """A forward pre-hook scaling the input (..., H*d) by ``gate`` (H,), each entry d times."""
    def hook(module, args):
        return (args[0] * gate.repeat_interleave(head_dim),) + tuple(args[1:])
    return hook


def parameters_per_head(attention):
    """What one head of ``attention`` holds: 4*d*E weights, plus 3*d biases with bias."""
    d, e = attention.head_dim, attention.embed_dim
    return 4 * d * e + (3 * d if attention.in_proj_bias is not None else 0)


def prune_heads(attention, heads):
    """Remove ``heads`` (indices of ``attention``'s current heads) from a MultiheadAttention,
    in place, and return it: ``in_proj_weight`` / ``in_proj_bias`` keep the kept heads' rows
    of each of the q, k, v blocks, ``out_proj.weight`` their columns (``out_proj.bias`` is
    unchanged), ``num_heads`` drops. At least one head must stay (as HF transformers), so
    pruning all heads is a ValueError, as are indices out of range and duplicates. Pruned
    (reparametrized) weights are made permanent first."""
    heads = [int(h) for h in heads]
    count = attention.num_heads
    wrong = [h for h in heads if not 0 <= h < count]
    if wrong:
        raise ValueError(f"prune_heads: heads {wrong} out of range for {count} heads "
                         f"(0..{count - 1})")
    if len(set(heads)) != len(heads):
        twice = sorted({h for h in heads if heads.count(h) > 1})
        raise ValueError(f"prune_heads: heads {twice} given more than once in {heads}")
    if len(heads) == count:
        raise ValueError(f"prune_heads: cannot remove all {count} heads {sorted(heads)}; at "
                         "least one head must stay")
    if not heads:
        return attention
    for module in attention.modules():
        make_permanent(module)
    d = attention.head_dim
    kept = [h for h in range(count) if h not in set(heads)]
    columns = np.array([h * d + i for h in kept for i in range(d)], dtype=np.int64)
    rows = np.concatenate([block * count * d + columns for block in range(3)])
    attention.in_proj_weight = kept_parameter(attention.in_proj_weight, rows, axis=0)
    if attention.in_proj_bias is not None:
        attention.in_proj_bias = kept_parameter(attention.in_proj_bias, rows, axis=0)
    attention.out_proj.weight = kept_parameter(attention.out_proj.weight, columns, axis=1)
    attention.out_proj.in_features = len(columns)
    attention.num_heads = len(kept)
    return attention


def kept_parameter(parameter, index, axis):
    """A new Parameter: ``parameter``'s entries at ``index`` along ``axis`` (a fresh array)."""
    data = backend.array_module(parameter.data).take(
        parameter.data, backend.to_device(index, parameter.device), axis=axis)
    return Parameter(data, requires_grad=parameter.requires_grad)


@dataclass
class HeadPruningReport:
    """What ``prune_heads_by_importance(..., return_report=True)`` did; ``print`` shows it."""
    heads: dict              # path -> heads before
    removed: dict            # path -> removed head indices
    parameters_before: int
    parameters_after: int

    def __str__(self):
        rows = [(path, count, count - len(self.removed[path]),
                 ", ".join(map(str, self.removed[path])) or None)
                for path, count in self.heads.items()]
        table = format_table(["layer", "heads", "left", "removed"], rows)
        return (f"{table}\nparameters: {self.parameters_before} -> {self.parameters_after} "
                f"({self.parameters_after / self.parameters_before:.1%})")


def prune_heads_by_importance(model, importance, amount, scope="global", return_report=False):
    """Remove the least important heads (``importance`` as ``head_importance`` returns it) with
    ``prune_heads``; returns {path: removed heads}, with ``return_report`` also a
    HeadPruningReport (parameters before and after).

    ``amount``: a float in [0, 1], the fraction of heads to remove (rounded, as PyTorch's
    pruning amounts), or an int, how many. ``scope="global"`` (Michel et al.'s, with
    normalized scores) ranks all heads of the model together; ``scope="layer"`` removes
    ``amount`` of each layer's heads. Every layer keeps at least one head: in the global
    ranking a layer's last head is passed over for the next least important one. Ties go to
    the earlier layer, then the lower index."""
    attentions = attention_modules(model)
    scores = checked_importance(attentions, importance)
    if scope == "global":
        removed = global_choice(scores, heads_to_remove(amount, sum(map(len, scores.values())),
                                                        len(scores)))
    elif scope == "layer":
        removed = {path: sorted(np.argsort(s, kind="stable")[:heads_to_remove(amount, len(s), 1)]
                                .tolist()) for path, s in scores.items()}
    else:
        raise ValueError(f"prune_heads_by_importance: scope should be 'global' or 'layer', "
                         f"got {scope!r}")
    before = parameter_count(model)
    for path, heads in removed.items():
        prune_heads(attentions[path], heads)
    if not return_report:
        return removed
    counts = {path: len(s) for path, s in scores.items()}
    return removed, HeadPruningReport(counts, removed, before, parameter_count(model))


def checked_importance(attentions, importance):
    """The scores as float64 arrays, one per attention module, each (num_heads,)."""
    if set(importance) != set(attentions):
        raise ValueError(f"prune_heads_by_importance: importance has scores for "
                         f"{sorted(importance)}, the model's attention modules are "
                         f"{sorted(attentions)}")
    scores = {}
    for path, attention in attentions.items():
        s = np.asarray(backend.to_device(getattr(importance[path], "data", importance[path]),
                                         "cpu"), dtype=np.float64)
        if s.shape != (attention.num_heads,):
            raise ValueError(f"prune_heads_by_importance: scores for {path!r} have shape "
                             f"{s.shape}, the module has {attention.num_heads} heads")
        scores[path] = s
    return scores


def heads_to_remove(amount, total, layers):
    """How many of ``total`` heads ``amount`` asks for; ValueError when more than the
    ``total - layers`` that may go (each of ``layers`` keeps one)."""
    if isinstance(amount, (bool, np.bool_)) or not isinstance(amount, (int, float, np.number)):
        raise ValueError(f"head pruning: amount should be a float in [0, 1] or an int, got "
                         f"{amount!r}")
    if isinstance(amount, (float, np.floating)):
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"head pruning: amount {amount} as a fraction must be in [0, 1]")
        amount = round(amount * total)
    if not 0 <= amount <= total - layers:
        raise ValueError(f"head pruning: cannot remove {amount} of {total} heads; at most "
                         f"{total - layers} (one head stays in each of {layers} layers)")
    return int(amount)


def global_choice(scores, count):
    """The ``count`` least important heads of all layers, a layer's last head passed over."""
    ranked = sorted((s[h], i, h) for i, s in enumerate(scores.values()) for h in range(len(s)))
    paths = list(scores)
    removed = {path: [] for path in paths}
    for _, i, h in ranked:
        if sum(map(len, removed.values())) == count:
            break
        if len(removed[paths[i]]) < len(scores[paths[i]]) - 1:
            removed[paths[i]].append(h)
    return {path: sorted(heads) for path, heads in removed.items()}
