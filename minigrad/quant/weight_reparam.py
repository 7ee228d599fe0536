"""Weights computed from what is really stored: the reparametrization that k-means weight
sharing (``weight_sharing``), binary / ternary weights and float16 storage (``low_bit``) share.

It is pruning's idea (``minigrad.prune.reparam``) with other arithmetic. The tensor ``name``
of a module (say ``weight``) stops being a Parameter; the module holds what is stored or
trained instead, and a forward pre-hook recomputes ``module.weight`` from it before every
forward, as an ordinary minigrad expression, so gradients reach what is trained:

    k-means        weight = weight_centroids[weight_indices]   (* weight_mask when pruned)
    binary         weight = STE(sign(weight_orig) * alpha)
    ternary        weight = STE(ternary(weight_orig))
    float16        weight = float32(weight_fp16)                 (no gradient: inference)

Each kind is a ``WeightHook`` subclass that says which attributes it adds to the module
(``suffixes``), how to compute the weight (``compute``), and how many bytes inference really
needs (``storage_bytes``, read by ``accounting.model_size``). As in pruning, ``module.weight``
is recomputed at set-up time and by each forward; after changing the stored state by hand (or
``load_state_dict``), it is stale until the next forward.
"""

from minigrad.autograd import no_grad
from minigrad.nn.module import Parameter
from minigrad.prune.reparam import rename_parameter, check_prunable, find_hook, remove


class WeightHook:
    """The forward pre-hook of one reparametrized tensor: ``module.<name> = compute(module)``
    before every forward. ``handle`` takes it off the module again."""

    kind = ""  # "kmeans", "binary", ...: the weight format ``model_size`` shows
    suffixes = ()  # the module attributes it adds: name + suffix

    def __init__(self, name):
        self.name, self.handle = name, None

    def __call__(self, module, args):
        self.refresh(module)

    def refresh(self, module):
        setattr(module, self.name, self.compute(module))

    def compute(self, module):
        raise NotImplementedError(f"{type(self).__name__} must define compute(module)")

    def storage_bytes(self, module):
        """{"values": ..., "codebook": ..., "scale": ..., "other": ...}: the bytes inference
        needs for this tensor (missing keys are 0)."""
        raise NotImplementedError(f"{type(self).__name__} must define storage_bytes(module)")

    def owned_names(self):
        return [self.name + suffix for suffix in self.suffixes]


def weight_hooks(module):
    """The WeightHooks of ``module`` itself (not of its submodules)."""
    return [hook for hook in module._forward_pre_hooks.values() if isinstance(hook, WeightHook)]


def find_weight_hook(module, name):
    """The WeightHook of ``module.<name>``, or None when that tensor is a plain one."""
    return next((hook for hook in weight_hooks(module) if hook.name == name), None)


def take_parameter(module, name, caller):
    """The Parameter ``module.<name>``, ready to be reparametrized: a pruned tensor has its
    pruning made permanent first (``prune.remove``: pruned entries are exact zeros from then
    on). ValueError when it is already reparametrized or is not a parameter."""
    hook = find_weight_hook(module, name)
    if hook is not None:
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is already stored as "
                         f"{hook.kind}; undo that first (remove_sharing / remove_low_bit)")
    check_prunable(module, name, caller)
    if find_hook(module, name) is not None:
        remove(module, name)
    return module._parameters[name]


def replace_parameter(module, name, new_name, param):
    """Put ``param`` under ``new_name`` where the Parameter ``name`` stood, so
    ``named_parameters`` keeps its order."""
    rename_parameter(module, name, new_name)
    module._parameters[new_name] = param


def install(module, hook):
    """Register ``hook`` (its attributes are already on the module) and compute the tensor."""
    hook.handle = module.register_forward_pre_hook(hook)
    hook.refresh(module)
    return module


def uninstall(module, name, kinds, caller):
    """Make the current value of ``module.<name>`` a plain Parameter again and drop the hook
    and its attributes. The trained Parameter keeps its place in ``named_parameters`` (and is
    the same object when it has the weight's shape, as ``<name>_orig`` does, so an optimizer
    keeps it); otherwise a new Parameter takes the place. ValueError unless ``module.<name>``
    is reparametrized by a hook of one of ``kinds``."""
    hook = find_weight_hook(module, name)
    if hook is None or hook.kind not in kinds:
        found = "a plain tensor" if hook is None else f"stored as {hook.kind}"
        raise ValueError(f"{caller}: {name!r} of {type(module).__name__} is {found}, not "
                         f"{' or '.join(kinds)}")
    with no_grad():
        value = hook.compute(module).data.copy()
    hook.handle.remove()
    delattr(module, name)
    trained = [n for n in hook.owned_names() if module._parameters.get(n) is not None]
    if trained:
        param = module._parameters[trained[0]]
        if param.shape == value.shape:  # <name>_orig: the optimizer's object, new values
            param.data = value
        else:  # <name>_centroids
            param = Parameter(value)
        replace_parameter(module, trained[0], name, param)
    else:
        setattr(module, name, Parameter(value))
    for owned in hook.owned_names():
        if hasattr(module, owned):  # the renamed one is gone already
            delattr(module, owned)
    return module
