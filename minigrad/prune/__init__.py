"""``minigrad.prune``: pruning as a reparametrization, PyTorch's design and names.

    from minigrad import prune
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)   # fc1.weight = weight_orig * mask
    prune.global_unstructured([(model.fc1, "weight"), (model.fc2, "weight")], amount=0.8)
    ... train: pruned weights stay exactly 0 ...
    prune.remove(model.fc1, "weight")                         # make it permanent
    print(prune.report(model).table())

How a pruned tensor works (``reparam``): ``<name>_orig`` (the original Parameter),
``<name>_mask`` (a buffer, so it is in ``state_dict``) and a parametrization
(``minigrad.nn.utils.parametrize``) computing ``<name> = <name>_orig * <name>_mask``.
``amount`` counts the entries still unpruned, so repeated calls compound (0.5 twice leaves
25%).

Reparametrization (``reparam``):
    custom_from_mask(module, name, mask, optimizer=None)
    identity(module, name)
    remove(module, name)                  ValueError if the tensor is not pruned (a removed
                                          tensor is a plain Parameter: it can be pruned anew)
    is_pruned(module)
    mask_optimizer_state(optimizer, module, name)
    load_pruned_state_dict(model, state_dict, strict=True)   into a pruned or unpruned model

Methods (``methods``); each returns the module (``global_unstructured``: None):
    l1_unstructured(module, name, amount, importance=None, optimizer=None)
    random_unstructured(module, name, amount, seed=None, optimizer=None)
    threshold(module, name, threshold, optimizer=None)
    global_unstructured(parameters, amount, importance=None, optimizer=None)
    ln_structured(module, name, amount, n, dim, importance=None, optimizer=None)

Importance scores (``importance``); higher = more important:
    magnitude(module, name), random(module, name, seed=None),
    gradient / squared_gradient / taylor(module, name, stats),
    accumulate_gradients(model, loader, loss_fn, batches=None) -> {parameter: GradientStats},
    ln_norm(weight, n, dim)

Schedules (``schedules``):
    sparsity(parameters), prune_to(parameters, target, importance=None, optimizer=None,
    scope="global"), agp_sparsity(step, final, start, end, initial=0),
    GradualPruning(parameters, final_sparsity, start_step, end_step, ...)   a fit callback,
    iterative_pruning(parameters, targets, retrain, ...)

Sensitivity (``sensitivity``): sensitivity_analysis(model, score, sparsities, layers=None)

Structured surgery (``shrink``): shrink(model, example_input, return_report=False) -> a
    smaller dense model without the zeroed filters / neurons (and the inputs that read them).

Sparse inference (``sparse``): to_csr(dense) -> CSRMatrix; SparseLinear, SparseConv2d;
    to_sparse(model, min_sparsity=0.5) -> a copy whose sparse layers run a CSR kernel.

N:M semi-structured sparsity (``semi_structured``), 2:4 by default as Ampere sparse tensor
cores and torch's to_sparse_semi_structured: nm_mask(weight, n=2, m=4),
    semi_structured(module, name="weight", n=2, m=4), apply_semi_structured(model, n, m,
    layers=Linear, skip=()), check_nm(weight, n, m), semi_structured_bytes(weight, n, m),
    semi_structured_report(model, n, m) -> SemiStructuredReport (.rows, .table())

Attention heads (``heads``), Michel et al. 2019: head_importance(model, batches, loss_fn,
    normalize=True) -> {path: I_h = sum |dL/dm_h|}, prune_heads(attention, heads) (surgery),
    prune_heads_by_importance(model, importance, amount, scope="global", return_report=False),
    parameters_per_head(attention), HeadPruningReport.

Reporting (``sparsity_report``): report(model) -> PruningReport (.rows, .totals, .table()).
"""

from minigrad.prune.heads import (HeadPruningReport, head_importance, parameters_per_head,
                                  prune_heads, prune_heads_by_importance)
from minigrad.prune.importance import (GradientStats, accumulate_gradients, gradient, ln_norm,
                                       magnitude, random, squared_gradient, taylor)
from minigrad.prune.methods import (global_unstructured, l1_unstructured, ln_structured,
                                    random_unstructured, threshold)
from minigrad.prune.reparam import (custom_from_mask, identity, is_pruned,
                                    load_pruned_state_dict, mask_optimizer_state, remove)
from minigrad.prune.schedules import (GradualPruning, agp_sparsity, iterative_pruning,
                                      prune_to, sparsity)
from minigrad.prune.semi_structured import (SemiStructuredReport, apply_semi_structured,
                                            check_nm, nm_mask, semi_structured,
                                            semi_structured_bytes, semi_structured_report)
from minigrad.prune.sensitivity import sensitivity_analysis
from minigrad.prune.shrink import ShrinkReport, shrink
from minigrad.prune.sparse import CSRMatrix, SparseConv2d, SparseLinear, to_csr, to_sparse
from minigrad.prune.sparsity_report import PruningReport, report

__all__ = ["CSRMatrix", "SparseConv2d", "SparseLinear", "to_csr", "to_sparse", "GradientStats", "GradualPruning", "PruningReport", "agp_sparsity", "iterative_pruning",
           "prune_to", "sensitivity_analysis", "ShrinkReport", "shrink", "sparsity", "accumulate_gradients", "custom_from_mask",
           "global_unstructured", "gradient", "identity", "is_pruned", "l1_unstructured",
           "ln_norm", "ln_structured", "load_pruned_state_dict", "magnitude",
           "mask_optimizer_state", "random", "random_unstructured", "remove", "report",
           "squared_gradient", "taylor", "threshold", "SemiStructuredReport",
           "apply_semi_structured", "check_nm", "nm_mask", "semi_structured",
           "semi_structured_bytes", "semi_structured_report", "HeadPruningReport",
           "head_importance", "parameters_per_head", "prune_heads", "prune_heads_by_importance"]
