"""Containers: Sequential (a pipeline), ModuleList and ModuleDict (registered collections)."""

from collections import OrderedDict

from minigrad.autograd import is_grad_enabled
from minigrad.nn.layers import ReLU
from minigrad.nn.module import Module


class Sequential(Module):
    """Calls its modules in order: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Submodules are named "0", "1", ... (or by the keys of an OrderedDict), so state_dict keys
    read like "features.0.weight", as in PyTorch.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                setattr(self, name, module)
        else:
            for index, module in enumerate(modules):
                setattr(self, str(index), module)

    def forward(self, x):
        """Each module on the output of the one before. Under no_grad, a layer with a
        ``relu_forward`` (Linear and the convolutions) and the ReLU right after it run as one
        op, which adds the bias and applies the ReLU in place on the layer's fresh output
        (``ops.nn.add_bias_relu_``; measured in docs/performance.md); the result is the
        same. Not when either module has hooks, which must see the unfused tensors."""
        modules = list(self._modules.values())
        fuse = not is_grad_enabled()
        i = 0
        while i < len(modules):
            if fuse and i + 1 < len(modules) and _fusable_with_relu(modules[i], modules[i + 1]):
                x = modules[i].relu_forward(x)
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def _fusable_with_relu(layer, after):
    """True when ``layer`` can run with the ReLU module ``after`` as one op: ``after`` is a
    plain ReLU, ``layer`` has a ``relu_forward`` from the same class as its ``forward`` (a
    subclass that overrides ``forward`` keeps it), and neither has forward or backward hooks."""
    return (type(after) is ReLU and hasattr(layer, "relu_forward")
            and _defined_in(type(layer), "forward") is _defined_in(type(layer), "relu_forward")
            and not any(m._forward_pre_hooks or m._forward_hooks or m._backward_hooks
                        or m._backward_pre_hooks for m in (layer, after)))


def _defined_in(cls, name):
    """The class in ``cls``'s method resolution order that defines attribute ``name``."""
    return next(k for k in cls.__mro__ if name in vars(k))


class ModuleList(Module):
    """A list of modules whose parameters belong to the parent (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters belong to the parent."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in (modules or {}).items():
            self[name] = module

    def __setitem__(self, name, module):
        setattr(self, name, module)

    def __getitem__(self, name):
        return self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
