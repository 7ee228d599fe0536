"""``Module``: the building block of models, with PyTorch's semantics.

A Module owns three kinds of named state, registered simply by assigning attributes:

* ``Parameter``s (``self.weight = Parameter(...)``): tensors the optimizer trains;
* buffers (``self.register_buffer("running_mean", t)``): state that is saved but not trained
  (batch-norm statistics, pruning masks, quantization parameters);
* submodules (``self.conv1 = Conv2d(...)``), which own state of their own.

They are kept in three ordered dicts, so names come out in definition order, and are reached
by dotted paths ("features.0.weight") in ``named_parameters``, ``state_dict`` and friends.
Code outside a module changes them with the public operations (``register_parameter``,
``register_buffer``, ``add_module``, ``set_submodule``, ``del module.name``); assigning a
Parameter or Module to a name that is already one replaces it where it stands, keeping the order.

A tensor may also be *parametrized* (``minigrad.nn.utils.parametrize``): ``module.weight`` is
then computed from stored tensors at every access; ``parametrizations`` maps such names to how.
Calling a module runs its forward pre-hooks, ``forward``, then its forward hooks: the seam that
quantization observers and distillation losses plug into. Its backward hooks (PyTorch's
``register_full_backward_pre_hook`` and ``register_full_backward_hook``) see the gradients of
its output and of its input during ``backward``, through identity nodes put around the call.

``to(device)``, ``to(dtype)``, ``half``/``float``/``double``, ``type`` and ``requires_grad_``
change every parameter and buffer in place and return the module, as in PyTorch: the
Parameters stay the same objects, so an optimizer made before still holds them.
"""

from collections import OrderedDict
from types import MappingProxyType

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, RemovableHandle, checked_gradient, is_grad_enabled
from minigrad.dtypes import is_dtype_name
from minigrad.tensor import Tensor


def _device_and_dtype(args, kwargs):
    """``(device, dtype)`` from the arguments of ``Module.to`` (None where not given)."""
    unknown = set(kwargs) - {"device", "dtype", "non_blocking"}
    if unknown:
        raise TypeError(f"Module.to: unexpected keyword argument(s) {sorted(unknown)}")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    positional = [arg for arg in args if not isinstance(arg, bool)]  # non_blocking
    if len(positional) > 2:
        raise TypeError(f"Module.to: takes a device and/or a dtype, got {len(positional)} "
                        "arguments")
    for arg in positional:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, str) and not is_dtype_name(arg):
            device = arg  # checked by backend.device below ("unknown device 'tpu'")
        else:
            try:
                dtype = np.dtype(arg)
            except TypeError:
                raise TypeError(f"Module.to: expected a device ('cpu', 'cuda'), a dtype or a "
                                f"Tensor, got {arg!r}") from None
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"Module.to only accepts floating-point dtypes, got {np.dtype(dtype)} "
                        "(to cast every tensor, integer ones included, use Module.type)")
    return (None if device is None else backend.device(device),
            None if dtype is None else np.dtype(dtype))


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module (requires grad by default)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data,
                         requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _BackwardHookFunction(Function):
    """The identity y = x, whose backward hands dL/dy to ``on_backward`` and passes on what
    that returns as dL/dx (an array, or None: no gradient flows on).

    A module with backward hooks is called with one of these around its input and one around
    its output (the construction of PyTorch's ``BackwardHook``), so the engine itself says
    when the module's gradients are known: the output's node runs before any op inside the
    module (dL/d output, ``grad_output``), the input's node after all of them (dL/d input,
    ``grad_input``)."""

    @staticmethod
    def forward(ctx, x, on_backward):
        ctx.on_backward = on_backward
        return x

    @staticmethod
    def backward(ctx, grad):
        return (ctx.on_backward(grad),)


class _BackwardHookCall:
    """The backward hooks of one call of ``module`` with ``n_args`` positional arguments.

    ``grad_input`` has an entry per positional argument: dL/d argument for the one tensor that
    requires grad, None for the others; ``grad_output`` is (dL/d output,). When no argument
    requires grad, the full backward hooks run with the output's gradient, as in PyTorch."""

    def __init__(self, module, n_args):
        self.module, self.n_args = module, n_args
        self.input_index = None  # the argument wrapped in an identity node, if any
        self.grad_output = (None,)

    def wrap_input(self, args):
        needing = [i for i, arg in enumerate(args)
                   if isinstance(arg, Tensor) and arg.requires_grad]
        if len(needing) > 1:
            raise RuntimeError(
                f"{type(self.module).__name__} has backward hooks and was called with "
                f"{len(needing)} tensors that require grad (arguments {needing}); minigrad's "
                "module backward hooks take one (each graph node has one output)")
        if not needing or not is_grad_enabled():
            return args
        self.input_index = i = needing[0]
        wrapped = _BackwardHookFunction.apply(args[i], on_backward=self.input_gradient)
        return args[:i] + (wrapped,) + args[i + 1:]

    def wrap_output(self, output):
        if not isinstance(output, Tensor):
            raise TypeError(f"{type(self.module).__name__} has backward hooks, so its forward "
                            f"must return one Tensor, got {type(output).__name__}")
        if not output.requires_grad:
            return output
        return _BackwardHookFunction.apply(output, on_backward=self.output_gradient)

    def output_gradient(self, grad):
        """dL/d output arrives: the backward pre-hooks may replace it (in turn)."""
        grad_output = (Tensor(grad),)
        for hook in list(self.module._backward_pre_hooks.values()):
            result = hook(self.module, grad_output)
            if result is not None:
                grad_output = self._replaced("backward pre-hook", result, grad_output)
        self.grad_output = grad_output
        if self.input_index is None:
            self._run_full_hooks((None,) * self.n_args)
        return None if grad_output[0] is None else grad_output[0].data

    def input_gradient(self, grad):
        """dL/d input is known: the full backward hooks see it and may replace it."""
        grad_input = [None] * self.n_args
        grad_input[self.input_index] = Tensor(grad)
        changed = self._run_full_hooks(tuple(grad_input))[self.input_index]
        return None if changed is None else changed.data

    def _run_full_hooks(self, grad_input):
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grad_input, self.grad_output)
            if result is None:
                continue
            if self.input_index is None:
                if not (isinstance(result, tuple) and all(g is None for g in result)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
                continue
            grad_input = self._replaced("backward hook", result, grad_input)
        return grad_input

    def _replaced(self, source, new, old):
        """``new``, the gradients a hook returned in place of ``old``, once checked: a tuple of
        as many, each None or a tensor of its gradient's shape and dtype."""
        name = f"{type(self.module).__name__}'s {source}"
        if not isinstance(new, tuple) or len(new) != len(old):
            got = len(new) if isinstance(new, tuple) else type(new).__name__
            raise RuntimeError(f"{name} returned an invalid number of gradients, got {got}, "
                               f"but expected a tuple of {len(old)}")
        for i, (n, o) in enumerate(zip(new, old)):
            if n is not None and o is None:
                raise RuntimeError(f"{name} returned a gradient for argument {i}, which has "
                                   "none (it is not a tensor that requires grad)")
            if n is not None:
                checked_gradient(f"{name} (gradient {i})", n, o.data)
        return new


class Module:
    """Base class of all layers and models: subclass it, assign parts in ``__init__`` and write
    ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_parametrizations", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        self._refuse_parametrized(name, "assign to")
        if isinstance(value, (Parameter, Module)):
            registry = self._parameters if isinstance(value, Parameter) else self._modules
            if name not in registry:  # an existing entry is replaced where it stands
                self._forget(name)
            registry[name] = value
        elif name in self._parameters or name in self._modules:
            if value is not None:
                kind = "Parameter" if name in self._parameters else "Module"
                raise TypeError(f"cannot assign {type(value).__name__} to {name!r}: a {kind} "
                                "or None is expected (delete the attribute first to replace it)")
            (self._parameters if name in self._parameters else self._modules)[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} takes a Tensor or None, "
                                f"got {type(value).__name__}")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _refuse_parametrized(self, name, action):
        if name in self.__dict__.get("_parametrizations", ()):
            stored = ", ".join(self._parametrizations[name].stored)
            raise AttributeError(f"cannot {action} {name!r} of {type(self).__name__}: it is "
                                 f"parametrized (computed from {stored}); change those, or "
                                 "call remove_parametrizations first")

    def _forget(self, name):
        """Remove ``name`` from every registry and from the plain attributes."""
        self._refuse_parametrized(name, "replace")
        for store in (self.__dict__, self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):
        # Only called when normal lookup fails: compute a parametrized tensor, or look in the
        # registries.
        parametrized = self.__dict__.get("_parametrizations", {}).get(name)
        if parametrized is not None:
            return parametrized.value(self)
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        self._refuse_parametrized(name, "delete")
        if not any(name in r for r in (self.__dict__, self._parameters, self._buffers,
                                       self._modules)):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        self._forget(name)

    def register_parameter(self, name, param):
        """Add a Parameter (or None, a declared but absent one such as ``bias=False``)."""
        if param is None:
            self._forget(name)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: saved in ``state_dict`` (unless not persistent), never trained."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        if name not in self._buffers:  # an existing buffer is replaced where it stands
            self._forget(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Add the submodule ``module`` (or None) as ``name``; an existing submodule of that
        name is replaced where it stands, so a Sequential keeps its order."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, "
                            f"got {type(module).__name__}")
        if "." in name or not name:
            raise KeyError(f"add_module: a module name must be non-empty and without '.', "
                           f"got {name!r}")
        if name not in self._modules:
            self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at the dotted path ``target`` ("" is the module itself)."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"get_submodule: {type(module).__name__} has no submodule "
                                     f"{part!r} (path {target!r})")
            module = child
        return module

    def set_submodule(self, target, module):
        """Put ``module`` at the dotted path ``target``, in the place of the submodule there
        (the parent must exist)."""
        parent, _, name = target.rpartition(".")
        self.get_submodule(parent).add_module(name, module)

    @property
    def parametrizations(self):
        """Read-only {tensor name: ``parametrize.ParametrizedTensor``} of this module's own
        parametrized tensors (``minigrad.nn.utils.parametrize``)."""
        return MappingProxyType(self._parametrizations)

    # ----------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        """PyTorch's order: forward pre-hooks, ``forward``, forward hooks; with backward hooks,
        the input is wrapped after the pre-hooks and the output after the forward hooks."""
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hooks = None
        if self._backward_hooks or self._backward_pre_hooks:
            backward_hooks = _BackwardHookCall(self, len(args))
            args = backward_hooks.wrap_input(args)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        if backward_hooks is not None:
            output = backward_hooks.wrap_output(output)
        return output

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before forward; it may return replacement args."""
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after forward; it may return a new output."""
        return RemovableHandle(self._forward_hooks, hook)

    def register_full_backward_pre_hook(self, hook):
        """``hook(module, grad_output)`` runs in backward when the gradient of the module's
        output is known, before any gradient inside the module is computed; it may return a
        new ``grad_output`` (a tuple of one tensor). Returns a ``RemovableHandle``."""
        return RemovableHandle(self._backward_pre_hooks, hook)

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` runs in backward once the gradients with
        respect to the module's inputs are known; it may return a new ``grad_input``.

        ``grad_input`` has one entry per positional argument of the call (dL/d argument for a
        tensor that requires grad, None otherwise), ``grad_output`` is (dL/d output,). When no
        argument requires grad the hook runs as soon as ``grad_output`` is known, with
        ``grad_input`` all None (and must return None). Identity nodes around the call tell
        the hook when (``_BackwardHookFunction``), so forward must return one Tensor and at
        most one argument may require grad. Returns a ``RemovableHandle``."""
        return RemovableHandle(self._backward_hooks, hook)

    # ----------------------------------------------------------------- traversal
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def children(self):
        return (module for _, module in self.named_children())

    def _named_members(self, registry, recurse=True):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, recurse=True):
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    # ----------------------------------------------------------------- modes, devices, dtypes
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule, children first and in order, then on self
        (PyTorch's order, so seeded initialisations draw the same numbers); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (None), or with ``set_to_none=False`` fill it
        with zeros where there is one (PyTorch's)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` of every parameter, in place; returns self. False freezes the
        module: backward gives its parameters no gradient, so optimizers skip them."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def _convert_tensors(self, convert):
        """``data = convert(data)`` for every parameter, buffer and gradient, in place; returns
        self. The Parameters stay the same objects (as in PyTorch's ``Module._apply``), so an
        optimizer built before keeps training them."""
        for tensor in [*self.parameters(), *self.buffers()]:
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad.data = convert(tensor.grad.data)
        return self

    def _cast_floating(self, dtype):
        """Cast the floating-point parameters and buffers to ``dtype``; integer and bool ones
        (a step count, a mask) keep theirs. Returns self."""
        return self._convert_tensors(
            lambda data: data.astype(dtype, copy=False) if data.dtype.kind == "f" else data)

    def half(self):
        """Floating-point parameters and buffers to float16; returns self."""
        return self._cast_floating(np.float16)

    def float(self):
        """Floating-point parameters and buffers to float32; returns self."""
        return self._cast_floating(np.float32)

    def double(self):
        """Floating-point parameters and buffers to float64; returns self."""
        return self._cast_floating(np.float64)

    def type(self, dst_type):
        """Cast *every* parameter and buffer to ``dst_type``, integer ones included (as
        PyTorch's ``Module.type``; ``to(dtype)`` casts only the floating-point ones); returns
        self. A parameter that requires grad can only be floating point."""
        dtype = np.dtype(dst_type)
        if dtype.kind != "f":
            trained = [name for name, p in self.named_parameters() if p.requires_grad]
            if trained:
                raise TypeError(f"{type(self).__name__}.type({dtype}): parameter "
                                f"{trained[0]!r} requires grad, and only floating-point "
                                "tensors can (freeze it first: requires_grad_(False))")
        return self._convert_tensors(lambda data: data.astype(dtype, copy=False))

    def to(self, *args, **kwargs):
        """Move and/or cast every parameter and buffer (and gradient), in place; returns self.

        As PyTorch's: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``
        (that tensor's device and dtype), or the keywords ``device=``, ``dtype=`` and
        ``non_blocking=`` (accepted; every copy here completes before ``to`` returns). A dtype
        must be floating point, and casts only the floating-point tensors."""
        device, dtype = _device_and_dtype(args, kwargs)
        if dtype is not None:
            self._cast_floating(dtype)
        if device is not None:
            self._convert_tensors(lambda data: backend.to_device(data, device))
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        """Move to the GPU: ``device`` None, 0, "cuda" or "cuda:0" (minigrad uses one GPU)."""
        if device is None or isinstance(device, int):
            device = backend.device("cuda", device)
        return self.to(device)

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """Dotted name -> detached Tensor for every parameter and persistent buffer.

        As in PyTorch the tensors share memory with the model: save or copy them before
        training on if you need a snapshot.
        """
        state = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[prefix + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    state[prefix + name] = b.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters and buffers, in place.

        Everything is checked first: missing and unexpected keys (when ``strict``) and every
        shape mismatch are listed together in one ValueError, and nothing is changed.
        Returns (missing_keys, unexpected_keys).
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        incoming = {k: Tensor(state_dict[k]).data for k in own if k in state_dict}
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        for key, value in incoming.items():
            if value.shape != own[key].shape:
                problems.append(f"shape mismatch for {key}: checkpoint has {value.shape}, "
                                f"model has {own[key].shape}")
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__} refused (nothing was "
                             "changed):\n  " + "\n  ".join(problems))
        for key, value in incoming.items():
            own[key].data[...] = backend.to_device(value, own[key].device)
        return missing, unexpected

    # ----------------------------------------------------------------- printing
    def extra_repr(self):
        """The layer's own settings, shown inside its parentheses in ``repr``."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
