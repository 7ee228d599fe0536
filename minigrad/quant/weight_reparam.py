"""Quantization's weight formats, each a parametrization of one tensor of one module
(``minigrad.nn.utils.parametrize``): the module stores what inference (or training) needs and
``module.weight`` is computed from it at every access, so gradients reach what is trained:

    k-means        weight = weight_centroids[weight_indices]   (* weight_mask when pruned)
    binary         weight = STE(alpha sign(weight_orig))
    ternary        weight = STE(ternary(weight_orig))
    power of two   weight = STE(0 or sign(weight_orig) 2^p)
    float16        weight = float(weight_fp16)                   (no gradient: inference)

Each format is a ``Parametrization`` (``weight_sharing.KMeansSharing``, ``low_bit``'s classes)
with a ``kind`` naming it and ``storage_bytes`` counting what inference really needs (read by
``accounting.model_size``). Here is what the formats share: a tensor pruned by
``minigrad.prune`` (a parametrization of kind "pruned") has its pruning made permanent before
it is stored in another format, and only a tensor stored in a format can be un-stored.
"""

from minigrad.nn.utils.parametrize import register_parametrization, remove_parametrizations
from minigrad.quant.qparams import check_finite

PRUNED = "pruned"  # the kind of minigrad.prune's PruningMask


def stored_as(module, name):
    """The kind of format ``module.<name>`` is stored in ("" for an unnamed parametrization),
    or None for a plain tensor."""
    entry = module.parametrizations.get(name)
    return None if entry is None else getattr(entry.parametrization, "kind", "")


def take_parameter(module, name, caller):
    """The Parameter ``module.<name>``, ready to be stored in a format: a pruned tensor has
    its pruning made permanent first (pruned entries are exact zeros from then on).
    ValueError when it is stored in another format already, is not a parameter, or holds NaN
    or inf (the message counts them)."""
    kind = stored_as(module, name)
    if kind not in (None, PRUNED):
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is already stored as "
                         f"{kind}; undo that first (remove_sharing / remove_low_bit)")
    params = dict(module.named_parameters(recurse=False))
    if kind is None and name not in params:
        raise ValueError(f"{caller}: {type(module).__name__} has no parameter {name!r} "
                         f"(its parameters: {', '.join(params) or 'none'})")
    # Checked before the pruning is made permanent, so a refusal leaves the module as it was.
    check_finite(getattr(module, name).data, f"{name!r} of {type(module).__name__}", caller)
    if kind == PRUNED:
        remove_parametrizations(module, name, leave_parametrized=True)
    return dict(module.named_parameters(recurse=False))[name]


def store_as(module, name, parametrization, caller):
    """Store the Parameter ``module.<name>`` in the format ``parametrization``. Returns
    ``module``."""
    take_parameter(module, name, caller)
    return register_parametrization(module, name, parametrization)


def remove_format(module, name, kinds, caller):
    """Make the current value of ``module.<name>`` a plain Parameter again and drop what was
    stored (``remove_parametrizations``: a stored ``<name>_orig`` is the same Parameter object
    afterwards, so an optimizer keeps it). ValueError unless ``module.<name>`` is stored as one
    of ``kinds``. Returns ``module``."""
    kind = stored_as(module, name)
    if kind not in kinds:
        found = "a plain tensor" if kind is None else f"stored as {kind}"
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is {found}, not "
                         f"{' or '.join(kinds)}")
    return remove_parametrizations(module, name, leave_parametrized=True)
