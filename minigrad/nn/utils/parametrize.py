"""Parametrizations: a tensor of a module computed from what is stored, PyTorch's
``torch.nn.utils.parametrize`` (the same names and, where they fit, the same semantics).

    register_parametrization(module, "weight", P)
        stored = P.right_inverse(module.weight)      what is kept instead of the weight
        module.weight  ==  P(*stored)                computed at every access

Pruning masks (``weight = weight_orig * weight_mask``), k-means weight sharing (``weight =
weight_centroids[weight_indices]``), binary / ternary / power-of-two weights and float16
storage are all parametrizations. Because ``module.weight`` is an ordinary minigrad expression
of the stored tensors, gradients reach the stored Parameters (``weight_orig``,
``weight_centroids``); the stored tensors are the module's own Parameters and buffers, so
they are in ``state_dict``, loaded by ``load_state_dict`` and moved by ``to()``, and the
computed weight is never stale.

Where the stored tensors live. ``right_inverse(tensor)`` returns a Tensor or a dict {key:
Tensor}; each is registered on the module as ``<name>_<key>`` (a lone Tensor as
``<name>_orig``), a Parameter as a parameter and any other Tensor as a buffer. The first stored
tensor of the original's kind (parameter or buffer) takes the original's place in the module's
order, so ``named_parameters`` and ``state_dict`` list ``weight_orig`` where ``weight`` was and
an optimizer built before sees the same order. (PyTorch keeps them under
``parametrizations.<name>.original``; these flat names are pruning's, design.md.) Without a
``right_inverse`` the tensor itself is stored as ``<name>_orig``: the very same object, so an
optimizer built before goes on training it.

A parametrization is a ``Parametrization`` (below) or any callable with the same shape, e.g. a
Module with ``forward(*stored)``; it is not a submodule of the module, so whatever it must
keep in ``state_dict`` it stores through ``right_inverse``. One parametrization per tensor
(PyTorch chains several; here the second registration is refused). ``Parametrization.storage_bytes`` reports the bytes the
weight really needs (``minigrad.quant.model_size`` sums them).

    is_parametrized(module, tensor_name=None)
    remove_parametrizations(module, tensor_name, leave_parametrized=True)
    with cached(): ...        each parametrized tensor computed once (e.g. a weight read twice)
"""

from contextlib import contextmanager
from dataclasses import dataclass

from minigrad.autograd import no_grad
from minigrad.nn.module import Parameter
from minigrad.tensor import Tensor

_cache = {}
_cache_depth = 0


class Parametrization:
    """How one tensor is computed from what is stored. Subclasses define ``forward`` and, to
    store something other than the tensor itself, ``right_inverse``."""

    kind = ""  # the storage format: "pruned", "kmeans", "binary", ...

    def right_inverse(self, tensor):
        """What to store for ``tensor``: a Tensor (stored as ``<name>_orig``) or a dict
        {key: Tensor} (each stored as ``<name>_<key>``)."""
        return tensor

    def forward(self, *stored):
        """The tensor, computed from the stored tensors (in ``right_inverse``'s order)."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(*stored)")

    def __call__(self, *stored):
        return self.forward(*stored)

    def storage_bytes(self, *stored):
        """{"values": ..., "codebook": ..., "scale": ..., "other": ...}: the bytes inference
        needs to hold the tensor ("values" counts in the tensor's own column). Default: every
        stored tensor at its dtype's size."""
        return {"values": sum(int(t.data.nbytes) for t in stored)}

    def storage_format(self, *stored):
        """A short description of the storage, e.g. "kmeans" or "float32 pruned"."""
        return self.kind or type(self).__name__


@dataclass
class ParametrizedTensor:
    """One parametrized tensor of a module: ``module.<name> = parametrization(*stored)``,
    ``stored`` the names of the module attributes that hold what is stored."""

    name: str
    parametrization: object
    stored: tuple
    was_parameter: bool  # what ``name`` was, and becomes again on removal

    def stored_tensors(self, module):
        return tuple(getattr(module, name) for name in self.stored)

    def value(self, module):
        """The tensor, computed from the stored ones (once per ``cached()`` block)."""
        if not _cache_depth:
            return self.parametrization(*self.stored_tensors(module))
        key = (id(module), self.name)
        if key not in _cache:
            _cache[key] = self.parametrization(*self.stored_tensors(module))
        return _cache[key]

    def detached_value(self, module):
        """The tensor computed without a graph (never cached)."""
        with no_grad():
            return self.parametrization(*self.stored_tensors(module))

    def original(self, module, value=None):
        """The stored tensor that is the unparametrized one (``<name>_orig`` of a mask, of
        binary weights): the first, when it has the tensor's shape and dtype; else None."""
        value = self.detached_value(module) if value is None else value
        first = getattr(module, self.stored[0])
        return first if (first.shape, first.dtype) == (value.shape, value.dtype) else None


def is_parametrized(module, tensor_name=None):
    """True when ``module.<tensor_name>`` (or, for None, any tensor of ``module`` itself, not
    of its submodules) is parametrized."""
    if tensor_name is None:
        return bool(module.parametrizations)
    return tensor_name in module.parametrizations


def _describe(module, name):
    return f"{name!r} of {type(module).__name__}"


def _stored_dict(module, tensor_name, parametrization, tensor):
    """{attribute name: Tensor} from ``right_inverse``, checked."""
    inverse = getattr(parametrization, "right_inverse", None)
    stored = tensor if inverse is None else inverse(tensor)
    stored = {"orig": stored} if isinstance(stored, Tensor) else dict(stored)
    named = {f"{tensor_name}_{key}": value for key, value in stored.items()}
    for name, value in named.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"register_parametrization: right_inverse of "
                            f"{type(parametrization).__name__} for "
                            f"{_describe(module, tensor_name)} gave {type(value).__name__} for "
                            f"{name!r}; expected Tensors")
        if hasattr(module, name):
            raise ValueError(f"register_parametrization: {type(module).__name__} already has an "
                             f"attribute {name!r}, which parametrizing {tensor_name!r} needs")
    if not named:
        raise ValueError(f"register_parametrization: right_inverse of "
                         f"{type(parametrization).__name__} stores nothing for "
                         f"{_describe(module, tensor_name)}")
    return named


def _check_value(module, tensor_name, parametrization, stored, tensor):
    with no_grad():
        value = parametrization(*stored.values())
    if not isinstance(value, Tensor):
        raise TypeError(f"register_parametrization: {type(parametrization).__name__} returns "
                        f"{type(value).__name__} for {_describe(module, tensor_name)}; expected "
                        "a Tensor")
    if (value.shape, value.dtype) != (tensor.shape, tensor.dtype):
        raise ValueError(f"register_parametrization: {type(parametrization).__name__} makes "
                         f"{_describe(module, tensor_name)} of shape {value.shape} and dtype "
                         f"{value.dtype}, but it has shape {tensor.shape} and dtype "
                         f"{tensor.dtype} (pass unsafe=True to allow this)")


def _first_of_kind(named, is_parameter):
    """The first name in {name: Tensor} whose tensor is a Parameter (or, if not
    ``is_parameter``, is not one); None when there is none."""
    return next((name for name, tensor in named.items()
                 if isinstance(tensor, Parameter) == is_parameter), None)


def _put(module, name, tensor, place=None):
    """Register ``tensor`` as ``name`` (a Parameter as a parameter, else as a buffer): in the
    place of the entry ``place`` of that registry (which it replaces), or last."""
    is_parameter = isinstance(tensor, Parameter)
    registry = module._parameters if is_parameter else module._buffers
    if place in registry:
        entries = [(name, tensor) if key == place else (key, value)
                   for key, value in registry.items()]
        registry.clear()
        registry.update(entries)
    elif is_parameter:
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def register_parametrization(module, tensor_name, parametrization, unsafe=False):
    """Make ``module.<tensor_name>`` (a Parameter or buffer) ``parametrization(*stored)``, with
    ``stored`` from ``parametrization.right_inverse`` (see the module docstring).

    Unless ``unsafe``, the computed tensor must have the original's shape and dtype. Nothing
    changes when a check fails. Returns ``module``."""
    if tensor_name in module.parametrizations:
        found = type(module.parametrizations[tensor_name].parametrization).__name__
        raise ValueError(f"register_parametrization: {_describe(module, tensor_name)} is "
                         f"already parametrized by {found}; remove_parametrizations first")
    own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
    tensor = own.get(tensor_name)
    if tensor is None:
        raise ValueError(f"register_parametrization: {type(module).__name__} has no parameter "
                         f"or buffer {tensor_name!r} (it has: {', '.join(own) or 'none'})")
    stored = _stored_dict(module, tensor_name, parametrization, tensor)
    if not unsafe:
        _check_value(module, tensor_name, parametrization, stored, tensor)
    was_parameter = isinstance(tensor, Parameter)
    place = _first_of_kind(stored, was_parameter)
    if place is None:
        delattr(module, tensor_name)
    for name, value in stored.items():
        _put(module, name, value, tensor_name if name == place else None)
    module._parametrizations[tensor_name] = ParametrizedTensor(
        tensor_name, parametrization, tuple(stored), was_parameter)
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Make ``module.<tensor_name>`` a plain tensor again and drop what was stored for it.

    ``leave_parametrized=True``: it holds the current computed value (in the first stored
    tensor when that one has the value's shape, dtype and kind: the same Parameter object, so
    an optimizer keeps it; else in a new one). ``False``: it becomes the stored original
    (``ParametrizedTensor.original``), ValueError when there is none (k-means, float16).
    It takes the place of the first stored tensor of its kind. Returns ``module``."""
    entry = module.parametrizations.get(tensor_name)
    if entry is None:
        names = ", ".join(module.parametrizations) or "none"
        raise ValueError(f"remove_parametrizations: {_describe(module, tensor_name)} is not "
                         f"parametrized (its parametrized tensors: {names})")
    value = entry.detached_value(module)
    original = entry.original(module, value)
    if leave_parametrized:
        if original is not None and isinstance(original, Parameter) == entry.was_parameter:
            original.data = value.data.copy()
            tensor = original
        else:
            tensor = (Parameter if entry.was_parameter else Tensor)(value.data.copy())
    elif original is None:
        raise ValueError(f"remove_parametrizations: {_describe(module, tensor_name)} is stored "
                         f"as {', '.join(entry.stored)}, none of which is the original; "
                         "use leave_parametrized=True")
    else:
        tensor = original
    place = _first_of_kind(dict(zip(entry.stored, entry.stored_tensors(module))),
                           isinstance(tensor, Parameter))
    del module._parametrizations[tensor_name]
    for name in entry.stored:
        if name != place:
            delattr(module, name)
    _put(module, tensor_name, tensor, place)
    return module


@contextmanager
def cached():
    """Inside this block every parametrized tensor is computed once, at its first access, and
    the same Tensor is returned after (one graph node, however often a forward reads it).
    Changes to the stored tensors inside the block are not seen. Blocks may nest."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()
