"""Pruning as a reparametrization (the design of PyTorch's ``torch.nn.utils.prune``).

Pruning the tensor ``name`` of a module (say ``weight``) replaces it by a product

    weight = weight_orig * weight_mask

* ``weight_orig`` is the original Parameter, the very same object, renamed in place: an
  optimizer built before pruning still holds it and goes on training it;
* ``weight_mask`` is a buffer of 0s and 1s with the weight's dtype: it is saved in
  ``state_dict``, loaded by ``load_state_dict`` and moved by ``to()``;
* ``PruningMask``, a parametrization (``minigrad.nn.utils.parametrize``), computes
  ``module.weight`` at every access as an ordinary minigrad expression. Its gradient with
  respect to ``weight_orig`` is ``dL/dweight * mask``: pruned entries get no gradient, and
  whatever an optimizer does to ``weight_orig`` (weight decay, momentum), the pruned entries
  of ``weight`` stay exactly 0.

Pruning a pruned tensor again multiplies the masks, so pruned entries stay pruned. ``remove``
makes the pruning permanent: ``weight`` becomes a plain Parameter again, holding
``weight_orig * weight_mask`` (``remove_parametrizations`` with ``leave_parametrized=True``).

Weight decay and momentum still act on the pruned entries of ``weight_orig``, and an
optimizer's momentum buffers may hold values there, so after ``remove`` those entries would
jump back to life on the first step. ``mask_optimizer_state`` (the ``optimizer=`` argument of
every pruning function) zeroes them and the optimizer's state arrays at those entries, once:
with zero weight, zero gradient and zero state, SGD, Adam and the others leave them at 0 while
pruned, and after ``remove`` only their own new gradient moves them.
"""

import numpy as np

from minigrad import backend
from minigrad.nn.utils.parametrize import (Parametrization, register_parametrization,
                                           remove_parametrizations)
from minigrad.tensor import Tensor


class PruningMask(Parametrization):
    """``weight = weight_orig * weight_mask``; stores the Parameter itself as ``<name>_orig``
    and an all-ones ``<name>_mask`` buffer, which the pruning methods then fill in."""

    kind = "pruned"

    def right_inverse(self, tensor):
        return {"orig": tensor, "mask": Tensor(backend.array_module(tensor.data).ones_like(
            tensor.data))}

    def forward(self, orig, mask):
        return orig * mask

    def storage_bytes(self, orig, mask):
        """The dense weight with its zeros: inference needs no mask (``remove`` bakes it in;
        ``to_sparse`` drops the zeros)."""
        return {"values": int(orig.data.nbytes)}

    def storage_format(self, orig, mask):
        return f"{orig.dtype} pruned"


def is_pruned_tensor(module, name):
    """True when ``module.<name>`` is pruned (has a PruningMask)."""
    entry = module.parametrizations.get(name)
    return entry is not None and isinstance(entry.parametrization, PruningMask)


def pruned_names(module):
    """Names of the pruned tensors of ``module`` itself (not of its submodules)."""
    return [name for name in module.parametrizations if is_pruned_tensor(module, name)]


def is_pruned(module):
    """True when ``module`` or any of its submodules has a pruned tensor."""
    return any(pruned_names(m) for m in module.modules())


def check_prunable(module, name, caller):
    """Raise ValueError unless ``name`` is a parameter of ``module`` or an already pruned one."""
    if is_pruned_tensor(module, name):
        return
    params = dict(module.named_parameters(recurse=False))
    available = ", ".join(list(params) + pruned_names(module)) or "none"
    if name.endswith("_orig") and is_pruned_tensor(module, name[:-len("_orig")]):
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is the original of "
                         f"the pruned {name[:-len('_orig')]!r}; prune that name instead")
    if name not in params:
        raise ValueError(f"{caller}: {type(module).__name__} has no parameter {name!r} "
                         f"(its parameters: {available})")


def original_parameter(module, name):
    """The Parameter being pruned: ``<name>_orig`` when pruned, else ``module.<name>``."""
    return getattr(module, name + "_orig" if is_pruned_tensor(module, name) else name)


def current_mask(module, name):
    """The mask of ``module.<name>`` as a NumPy array (all ones when not pruned yet)."""
    if not is_pruned_tensor(module, name):
        param = getattr(module, name)
        return np.ones(param.shape, dtype=param.dtype)
    return backend.to_device(getattr(module, name + "_mask").data, "cpu")


def effective_weight(module, name):
    """``<name>_orig * <name>_mask`` (just the parameter when not pruned), a NumPy array."""
    return backend.to_device(original_parameter(module, name).data, "cpu") * \
        current_mask(module, name)


def check_optimizer_holds(optimizer, module, name):
    """ValueError unless ``optimizer`` holds the parameter pruned as ``module.<name>``."""
    param = original_parameter(module, name)
    if not any(p is param for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(f"{type(optimizer).__name__} does not hold the parameter {name!r} of "
                         f"{type(module).__name__} (was it built for another model?)")


def set_mask(module, name, mask, optimizer=None):
    """Make ``mask`` (0/1, the parameter's shape, already combined with any older mask) the
    mask of ``module.<name>``, reparametrizing on first use. The step every method ends with."""
    if optimizer is not None:
        check_optimizer_holds(optimizer, module, name)
    if not is_pruned_tensor(module, name):
        register_parametrization(module, name, PruningMask())
    buffer = getattr(module, name + "_mask")
    buffer.data[...] = backend.to_device(np.asarray(mask, dtype=buffer.dtype), buffer.device)
    if optimizer is not None:
        mask_optimizer_state(optimizer, module, name)
    return module


def custom_from_mask(module, name, mask, optimizer=None):
    """Prune ``module.<name>`` where ``mask`` is 0 (any nonzero value keeps the entry).

    new mask = old mask * (mask != 0): what was pruned stays pruned. Returns ``module``.
    """
    check_prunable(module, name, "custom_from_mask")
    mask = backend.to_device(mask.data if isinstance(mask, Tensor) else np.asarray(mask), "cpu")
    old = current_mask(module, name)
    if mask.shape != old.shape:
        raise ValueError(f"custom_from_mask: mask of shape {mask.shape} for {name!r} of "
                         f"{type(module).__name__}, which has shape {old.shape}")
    return set_mask(module, name, old * (mask != 0), optimizer)


def identity(module, name):
    """Reparametrize ``module.<name>`` with an all-ones mask: nothing is pruned (yet)."""
    return custom_from_mask(module, name, current_mask(module, name))


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent.

    ``<name>_orig`` becomes the plain Parameter ``<name>`` again (the same object, so an
    optimizer keeps it) with data ``<name>_orig * <name>_mask``; the mask buffer and the
    parametrization go. Outputs do not change. The pruned zeros are ordinary weights from then
    on: they stay 0 only while their gradient is 0 (pass ``optimizer`` when pruning, so that
    no momentum is left to move them). ValueError if ``module.<name>`` is not pruned.
    """
    if not is_pruned_tensor(module, name):
        pruned = ", ".join(pruned_names(module)) or "none"
        raise ValueError(f"remove: {name!r} of {type(module).__name__} is not pruned "
                         f"(pruned tensors of this module: {pruned})")
    return remove_parametrizations(module, name, leave_parametrized=True)


def mask_optimizer_state(optimizer, module, name):
    """Zero, at the pruned entries of ``module.<name>``: ``<name>_orig`` itself, its gradient,
    and every floating state array of ``optimizer`` with the parameter's shape (momentum_buffer,
    exp_avg, exp_avg_sq, max_exp_avg_sq, sum, square_avg, grad_avg, ...).

    With weight, gradient and state all 0 there, no optimizer step moves those entries while
    they are pruned, and after ``remove`` no leftover momentum or decay does: only their own
    new gradient. ValueError unless the tensor is pruned and ``optimizer`` holds its parameter.
    """
    if not is_pruned_tensor(module, name):
        raise ValueError(f"mask_optimizer_state: {name!r} of {type(module).__name__} is not "
                         f"pruned")
    check_optimizer_holds(optimizer, module, name)
    orig, mask = getattr(module, name + "_orig"), getattr(module, name + "_mask").data
    orig.data *= mask
    if orig.grad is not None:
        orig.grad.data *= mask
    for value in optimizer.state.get(orig, {}).values():
        if np.shape(value) == orig.shape and np.issubdtype(value.dtype, np.floating):
            value *= mask


def load_pruned_state_dict(model, state_dict, strict=True):
    """Load a pruned model's ``state_dict`` into ``model``, pruned or not.

    Every ``<name>_orig`` key that names a parameter ``model`` has unpruned is first
    reparametrized with an all-ones mask (``identity``); ``model.load_state_dict`` then fills
    in the weights and the masks. If loading fails, those tensors are un-pruned again, so
    ``model`` is unchanged. Returns (missing_keys, unexpected_keys) as ``load_state_dict`` does.
    """
    modules = dict(model.named_modules())
    added = []
    for key in state_dict:
        if not key.endswith("_orig"):
            continue
        prefix, _, name = key[:-len("_orig")].rpartition(".")
        module = modules.get(prefix)
        if module is not None and name in dict(module.named_parameters(recurse=False)):
            identity(module, name)
            added.append((module, name))
    try:
        result = model.load_state_dict(state_dict, strict)
    except ValueError:
        for module, name in added:
            remove(module, name)
        raise
    return result
