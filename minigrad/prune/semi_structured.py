"""N:M semi-structured sparsity: in every group of M consecutive weights keep the N largest.

The pattern of NVIDIA's Ampere sparse tensor cores (Mishra et al. 2021, "Accelerating Sparse
Deep Neural Networks"; Zhou et al. 2021, "Learning N:M Fine-grained Structured Sparse Neural
Networks") and of PyTorch's ``torch.sparse.to_sparse_semi_structured`` (2:4, the default
here). Groups run along the input dimension: the last axis of a Linear's (out, in) weight,
and for a Conv2d's (O, C, KH, KW) weight the flattened C*KH*KW axis of each filter. In a
group g = (w_0, ..., w_{M-1}):

    mask_i = 1  if  |w_i| is among the N largest |w_j| of g,  else 0

ties broken by position (the lower index is kept), as ``torch.topk`` on distinct values
and ``torch.ao.pruning.WeightNormSparsifier(sparse_block_shape=(1, M), zeros_per_block=M-N)``.
So exactly N of every M weights survive: 50% sparsity for 2:4, in a pattern the hardware
can skip.

``semi_structured`` applies the mask through the pruning reparametrization (``reparam``):
``weight = weight_orig * weight_mask`` at every forward, so fine-tuning trains
``weight_orig``, pruned entries get no gradient and the pattern holds; ``prune.remove``
makes it permanent.

Compressed size (``semi_structured_bytes``), as cuSPARSELt and PyTorch's
``SparseSemiStructuredTensor`` store it: the N/M kept values in the weight's dtype, and for
each kept value its position in its group, ceil(log2 M) bits (2 bits for 2:4):

    bytes = K * b + ceil(K * ceil(log2 M) / 8),   K = numel * N / M kept values, b = itemsize

For float16 / bfloat16 2:4 that is numel + numel / 8 bytes against 2 numel dense: 9/16, the
size of torch's compressed tensor. For float32 (b = 4) the same count from first principles
gives 2 numel + numel / 8 against 4 numel: 17/32 (torch stores float32 differently on GPU,
as tf32 1:2 pairs, which we do not model).
"""

import math
from dataclasses import dataclass

import numpy as np

from minigrad import backend
from minigrad.nn.layers import Linear
from minigrad.prune.reparam import check_prunable, custom_from_mask, effective_weight
from minigrad.report import format_table
from minigrad.tensor import Tensor


def check_sizes(n, m, caller):
    """ValueError unless n and m are integers with 1 <= n < m."""
    if isinstance(n, bool) or isinstance(m, bool) or not isinstance(m, (int, np.integer)) \
            or not isinstance(n, (int, np.integer)) or not 1 <= n < m:
        raise ValueError(f"{caller}: need integers 1 <= n < m, got n={n!r}, m={m!r}")


def _groups(weight, m, caller):
    """``weight`` (an array) as (groups, m) rows along its flattened input dimension;
    ValueError for an axis that m does not divide."""
    shape = np.shape(weight)
    length = math.prod(shape[1:]) if len(shape) > 1 else math.prod(shape)
    if len(shape) == 0 or length % m:
        raise ValueError(f"{caller}: the input dimension of a weight of shape {shape} has "
                         f"{length} entries, not a multiple of m={m} (groups of {m} "
                         "consecutive weights)")
    return np.asarray(weight).reshape(-1, m)


def nm_mask(weight, n=2, m=4):
    """The N:M mask of ``weight`` (array or Tensor): 1 for the ``n`` largest |w| of every
    group of ``m`` consecutive entries along the input dimension, 0 elsewhere; ties keep the
    lower index. Same shape and dtype as the weight (float), so it can be a pruning mask."""
    array = backend.to_device(weight.data if isinstance(weight, Tensor) else
                              np.asarray(weight), "cpu")
    check_sizes(n, m, "nm_mask")
    groups = _groups(array, m, "nm_mask")
    kept = np.argsort(-np.abs(groups), axis=1, kind="stable")[:, :n]
    mask = np.zeros(groups.shape, dtype=array.dtype if array.dtype.kind == "f" else np.float32)
    np.put_along_axis(mask, kept, 1, axis=1)
    return mask.reshape(array.shape)


def group_nonzeros(weight, m=4):
    """Number of nonzero entries in each group of ``m`` along the input dimension, (groups,)."""
    return np.count_nonzero(_groups(weight, m, "group_nonzeros"), axis=1)


def check_nm(weight, n=2, m=4):
    """True when every group of ``m`` consecutive weights of ``weight`` (array or Tensor) has
    exactly ``n`` nonzeros. (The hardware needs at most n; a group with fewer, where a kept
    weight is itself 0, compresses too, storing that 0. ``semi_structured_report`` counts both.)"""
    array = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    check_sizes(n, m, "check_nm")
    return bool(np.all(group_nonzeros(array, m) == n))


def semi_structured_bytes(weight, n=2, m=4):
    """Bytes of ``weight`` in the N:M compressed format: kept values plus ceil(log2 m)-bit
    indices (module docstring). The weight must have the shape of an N:M weight; its values
    are not inspected (a group with fewer nonzeros stores explicit zeros)."""
    array = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    check_sizes(n, m, "semi_structured_bytes")
    kept = _groups(array, m, "semi_structured_bytes").shape[0] * n
    return kept * array.itemsize + math.ceil(kept * math.ceil(math.log2(m)) / 8)


def semi_structured(module, name="weight", n=2, m=4):
    """Prune ``module.<name>`` to N:M (2:4 by default) by magnitude, through the pruning
    reparametrization: ``<name>_orig`` keeps training, ``<name>_mask`` is fixed, and
    ``module.<name> = <name>_orig * <name>_mask`` in every forward. An already pruned tensor
    is masked by the N:M mask of its effective weight (old mask * new mask). Returns
    ``module``."""
    check_prunable(module, name, "semi_structured")
    return custom_from_mask(module, name, nm_mask(effective_weight(module, name), n, m))


def apply_semi_structured(model, n=2, m=4, layers=Linear, skip=()):
    """``semi_structured`` on the weight of every module of type ``layers`` (a type or a
    tuple; Linear by default) in ``model``, except the modules named in ``skip`` (e.g. the
    classifier, often kept dense). All layers are checked before any is pruned. Returns
    ``model``."""
    check_sizes(n, m, "apply_semi_structured")
    skip = set(skip)
    modules = dict(model.named_modules())
    unknown = skip - set(modules)
    if unknown:
        raise ValueError(f"apply_semi_structured: skip names {sorted(unknown)} are not modules "
                         f"of the model")
    chosen = [(name, module) for name, module in modules.items()
              if isinstance(module, layers) and name not in skip]
    for name, module in chosen:
        try:
            _groups(effective_weight(module, "weight"), m, "apply_semi_structured")
        except ValueError as error:
            raise ValueError(f"{error}; layer {name!r} (pass skip=[{name!r}] to keep it "
                             "dense)") from None
    for _, module in chosen:
        semi_structured(module, "weight", n, m)
    return model


COLUMNS = ["layer", "shape", "groups", "exact", "over", "dense_bytes", "compressed_bytes"]


@dataclass
class SemiStructuredReport:
    """``rows``: a dict per layer with the keys in ``COLUMNS``: ``groups`` (groups of m),
    ``exact`` (groups with exactly n nonzeros), ``over`` (groups with more than n: not
    compressible), ``dense_bytes`` and ``compressed_bytes`` (``semi_structured_bytes``)."""

    rows: list

    def table(self):
        return format_table(COLUMNS, [[row[key] for key in COLUMNS] for row in self.rows],
                            [None, None, ",d", ",d", ",d", ",d", ",d"])


def semi_structured_report(model, n=2, m=4, layers=Linear):
    """A ``SemiStructuredReport`` of the effective weight of every module of type ``layers``
    in ``model`` whose input dimension ``m`` divides."""
    check_sizes(n, m, "semi_structured_report")
    rows = []
    for name, module in model.named_modules():
        weight = effective_weight(module, "weight") if isinstance(module, layers) else None
        if weight is None or (weight.size // weight.shape[0]) % m:
            continue
        counts = group_nonzeros(weight, m)
        rows.append({"layer": name, "shape": "x".join(map(str, weight.shape)),
                     "groups": counts.size, "exact": int(np.sum(counts == n)),
                     "over": int(np.sum(counts > n)), "dense_bytes": weight.nbytes,
                     "compressed_bytes": semi_structured_bytes(weight, n, m)})
    return SemiStructuredReport(rows)
