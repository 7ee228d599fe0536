"""The reverse-mode autograd engine: ``Function`` nodes, grad mode, and ``backward``.

Every differentiable op is a ``Function`` subclass with two static methods on *plain arrays*::

    forward(ctx, *arrays, **attrs) -> array          # y = f(x1, x2, ...)
    backward(ctx, grad) -> tuple                      # (dL/dx1, dL/dx2, ...) from dL/dy

``Function.apply(*tensors, **attrs)`` runs ``forward`` and, when grad mode is on and some input
requires grad, records a node (the ``ctx`` object) that remembers its input tensors and whatever
``forward`` saved. The nodes form a directed acyclic graph from the inputs to the output.

``backward(root)`` applies the chain rule to that graph. If y = f(x) and L is the scalar being
differentiated, then dL/dx = (dy/dx)^T dL/dy: each node turns the gradient of its output into
gradients of its inputs (a vector-Jacobian product), and gradients arriving at one tensor along
several paths are summed. Visiting the nodes in reverse topological order guarantees a node's
output gradient is complete before the node is processed.

The engine sits below the ops and below ``Tensor`` (it imports only ``minigrad.backend``): it
knows a tensor as a ``TensorBase``, the part of a tensor it reads and writes (``data``,
``grad``, ``requires_grad``, the node ``_ctx``), and ``backward``. ``minigrad.tensor.Tensor``
adds the array API on top, its methods calling the ops.

Two hook points let tools watch the engine without the engine knowing them:

* op observers (``register_op_observer``) see every ``forward`` and ``backward`` call, and may
  time it (``minigrad.profiler.profile`` registers one while it records);
* gradient-ready hooks (``register_grad_ready_hook``) run once a leaf's gradient is complete
  in a ``backward`` pass (data-parallel training can start averaging it then).

A tensor has hooks of its own, as in PyTorch: ``t.register_hook(fn)`` calls ``fn(grad)`` with
the tensor's complete gradient of a pass before it is accumulated or passed on (a returned
tensor replaces it), and ``leaf.register_post_accumulate_grad_hook(fn)`` calls ``fn(leaf)``
once ``leaf.grad`` holds the pass's gradient. A leaf's hooks use the gradient-ready mechanism:
while some leaf has hooks, the engine counts the edges into each leaf, sums the gradients
arriving along them, and hands the sum on when the last edge is done.
"""

import contextlib
import weakref

import numpy as np

from minigrad.backend import array_module, device_of

_grad_enabled = True


def is_grad_enabled():
    """True when ops record the graph (the default)."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Set grad mode inside a ``with`` block or a decorated function, then restore it.

    The modes to restore are kept on a stack, so one instance can be entered again while it
    is active (a recursive function decorated with ``@no_grad()``)."""

    enabled = True

    def __init__(self):
        self._previous = []

    def __enter__(self):
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self._previous.pop()
        return False


class no_grad(_GradMode):
    """Ops run without recording a graph: ``with minigrad.no_grad(): ...`` or ``@no_grad()``."""

    enabled = False


class inference_mode(no_grad):
    """PyTorch's ``inference_mode``: here the same as ``no_grad`` (``mode=False`` records as
    usual). PyTorch's version also skips version counting; minigrad's counters cost nothing."""

    def __init__(self, mode=True):
        super().__init__()
        self.enabled = not mode


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` region."""

    enabled = True


class VersionCounter:
    """How many times a block of memory has been written in place. A tensor and its views (a
    reshape, a transpose, a basic slice, a detached copy) share one counter, as in PyTorch, so
    a write through any of them is seen by every graph node that saved one of them."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


def _root(array):
    """The array that owns ``array``'s memory (itself when it is not a view)."""
    while array.base is not None and hasattr(array.base, "base"):
        array = array.base
    return array


class TensorBase:
    """What the engine knows of a tensor: its array ``data``, its gradient ``grad`` (set by
    ``backward``), ``requires_grad``, and ``_ctx``, the node that produced it (None for a leaf).
    ``minigrad.tensor.Tensor`` is the one subclass; ``_wrap`` is how the engine makes new ones.
    """

    # Dicts of hooks, made on the first registration (most tensors never have any).
    _backward_hooks = None
    _post_accumulate_grad_hooks = None

    def __init__(self, data, requires_grad=False):
        self.data = data
        self.grad = None
        self._ctx = None
        self._requires_grad = False
        self.requires_grad = requires_grad
        self._version_counter = VersionCounter()

    @property
    def _version(self):
        """In-place changes of ``data`` so far, counted with every view of the same memory
        (``check_saved_versions``)."""
        return self._version_counter.value

    @_version.setter
    def _version(self, value):
        self._version_counter.value = value

    def _wrap(self, data):
        """A new tensor (of the plain tensor class, never a subclass such as Parameter) around
        ``data``, an array or a Python value: the engine's outputs and gradients."""
        raise NotImplementedError("a tensor class says how to wrap an array: define _wrap")

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place and return self (PyTorch's spelling)."""
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self):
        """True for tensors made by the user rather than by an op that tracked gradients."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (``None`` for a leaf)."""
        return self._ctx

    def backward(self, grad=None, retain_graph=False):
        """Compute d(self)/d(leaf) for every leaf in the graph, accumulating into ``leaf.grad``.

        ``grad`` (dL/d self) is needed unless self has one element. The graph is freed
        afterwards unless ``retain_graph=True``.
        """
        backward(self, grad, retain_graph)

    def retain_grad(self):
        """Ask ``backward`` to store this intermediate tensor's gradient in ``.grad`` too."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: tensor does not require grad")
        if self._ctx is not None:
            self._ctx.output = self
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` in every ``backward`` with this tensor's gradient (a Tensor),
        once all of that pass's paths to it have been summed, before it is accumulated into
        ``.grad`` (a leaf, or an intermediate that called ``retain_grad()``) or passed on to
        the node that made it. A returned tensor (of the same shape and dtype) replaces the
        gradient; None keeps it. Hooks run in the order they were registered, each given the
        previous one's result. Returns a ``RemovableHandle``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._backward_hooks is None:
            self._backward_hooks = {}
            if self._ctx is not None:  # the node runs an intermediate's hooks
                self._ctx.output_hooks = self._backward_hooks
        if self._ctx is None:
            _hooked_leaves[id(self)] = self
        return RemovableHandle(self._backward_hooks, hook, _forget_when_unhooked(self))

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` in every ``backward`` that reaches this leaf, once, after its
        ``.grad`` holds all of that pass's gradient (an optimizer can step the leaf then).
        Leaves only; returns a ``RemovableHandle``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               f"tensors (this one was made by {type(self._ctx).__name__})")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = {}
        _hooked_leaves[id(self)] = self
        return RemovableHandle(self._post_accumulate_grad_hooks, hook,
                               _forget_when_unhooked(self))


# ------------------------------------------------------------------ hook points
class RemovableHandle:
    """Registers ``hook`` in ``hooks``, a dict keyed by the handle's id (so hooks run in the
    order they were registered); ``handle.remove()`` takes it out again. Every ``register_*``
    of minigrad returns one: these below, a tensor's hooks, and Module's hooks."""

    _next_id = 0

    def __init__(self, hooks, hook, on_remove=None):
        self.hooks, self.id, self.on_remove = hooks, RemovableHandle._next_id, on_remove
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self):
        self.hooks.pop(self.id, None)
        if self.on_remove is not None:
            self.on_remove()


_op_observers = {}
_grad_ready_hooks = {}
# Leaves that have hooks of their own: while there is one, backward counts the edges into
# leaves, as it does for gradient-ready hooks. Keyed by id: a WeakSet would compare tensors
# with ==, which is elementwise.
_hooked_leaves = weakref.WeakValueDictionary()


def _forget_when_unhooked(leaf):
    """What removing one of ``leaf``'s hooks does next: once it has none left, backward goes
    back to its plain path. Holds the leaf weakly, so a kept handle keeps no tensor alive."""
    leaf_ref = weakref.ref(leaf)

    def forget():
        tensor = leaf_ref()
        if tensor is not None and not tensor._backward_hooks and (
                not tensor._post_accumulate_grad_hooks):
            _hooked_leaves.pop(id(tensor), None)

    return forget


def register_op_observer(observer):
    """Call ``observer(node, phase, arrays, call)`` around every op call from now on.

    ``node`` is the graph node being run (a Function instance: ``type(node)`` is the op, and
    the same node is seen at its forward and at its backward), ``phase`` "forward" or
    "backward", ``arrays`` the arrays it is called on (the inputs, or the output's gradient),
    and ``call()`` makes the call and returns its result, which the observer must return (it
    may time it, or look at it).
    Observers registered later run inside those registered earlier. Returns a handle whose
    ``remove()`` unregisters the observer.
    """
    return RemovableHandle(_op_observers, observer)


def register_grad_ready_hook(hook):
    """Call ``hook(leaf)`` in every ``backward`` once ``leaf.grad`` holds all of that pass's
    gradient (every path from the root to the leaf has been added). Returns a handle."""
    return RemovableHandle(_grad_ready_hooks, hook)


def _call(op, phase, ctx, *arrays, **attrs):
    """``op.forward`` / ``op.backward`` of node ``ctx`` on ``arrays``, through the observers if
    there are any: with none registered, this is all it costs an op."""
    method = getattr(op, phase)
    if not _op_observers:
        return method(ctx, *arrays, **attrs)

    def call():
        return method(ctx, *arrays, **attrs)

    for observer in reversed(list(_op_observers.values())):
        call = _observed(observer, ctx, phase, arrays, call)
    return call()


def _observed(observer, node, phase, arrays, inner):
    """``inner`` wrapped in one observer."""
    return lambda: observer(node, phase, arrays, inner)


class Function:
    """Base class of every differentiable op; an instance is one node (``ctx``) of the graph.

    Subclasses define ``forward`` and ``backward`` as static methods taking ``ctx`` first.
    ``broadcasts = True`` marks ops whose inputs broadcast against each other, so a shape
    mismatch is reported with the op's name and all input shapes.
    """

    broadcasts = False
    output_hooks = None  # the output tensor's register_hook dict, once it has one

    def __init__(self):
        self.parents = ()  # the input Tensors, kept only while the graph is alive
        self.saved_tensors = ()
        self.needs_input_grad = ()
        self.freed = False
        self.output = None  # set to the output Tensor when it asks to retain its grad
        self.input_versions = ()  # each input's _version when the node was recorded

    def save_for_backward(self, *arrays):
        """Keep arrays that ``backward`` needs (read back as ``ctx.saved_tensors``)."""
        self.saved_tensors = arrays

    @staticmethod
    def forward(ctx, *arrays, **attrs):
        raise NotImplementedError("each op defines forward(ctx, *arrays, **attrs)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("each op defines backward(ctx, grad)")

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run the op on tensors and return a tensor, recording a graph node when needed.

        At least one input must be a tensor; the others (numbers, arrays) become constant
        tensors. Results that are not floating point (comparisons, argmax) are constants.
        """
        inputs = tensor_inputs(cls.__name__, inputs)
        like = inputs[0]
        _check_same_device(cls.__name__, inputs)
        if cls.broadcasts:
            _check_broadcast(cls.__name__, inputs)
        ctx = cls()
        ctx.attrs = attrs  # the op's keyword arguments, for whoever reads the graph (onnx export)
        # As in PyTorch, forward can read which inputs will want a gradient (all False under
        # no_grad), to skip saving what no backward will use.
        ctx.needs_input_grad = tuple(_grad_enabled and x.requires_grad for x in inputs)
        arrays = tuple(x.data for x in inputs)
        out = like._wrap(_call(cls, "forward", ctx, *arrays, **attrs))
        if out.data.base is not None or any(out.data is a for a in arrays):
            _share_version_counter(out, inputs)  # a view of an input shares its version counter
        # Integer results (argmax-like casts, x.long()) are constants: PyTorch tracks no grad.
        if any(ctx.needs_input_grad) and out.data.dtype.kind == "f":
            ctx.parents = inputs
            ctx.input_versions = [x._version for x in inputs]
            out.requires_grad = True
            out._ctx = ctx
        return out

    def __repr__(self):
        return f"<{type(self).__name__} node>"


def _share_version_counter(view, inputs):
    root = _root(view.data)
    for x in inputs:
        if _root(x.data) is root:
            view._version_counter = x._version_counter
            return


def check_saved_versions(node):
    """RuntimeError, naming the op, if an input whose array ``node`` saved for backward was
    changed in place since the forward pass: the saved array no longer holds the values the
    gradient needs. (``apply`` records every input's ``_version``; an input changed in place
    but not saved, such as an operand of Add, changes no gradient and passes.)"""
    for tensor, version in zip(node.parents, node.input_versions):
        if tensor._version != version:  # rare: only then look at what was saved
            _refuse_changed_saved_input(node)


def _refuse_changed_saved_input(node):
    """The RuntimeError of ``check_saved_versions``, if an input that changed shares memory
    with an array the node saved (the input itself, or a view of it)."""
    for i, (tensor, version) in enumerate(zip(node.parents, node.input_versions)):
        saved = any(_root(tensor.data) is _root(a) for a in node.saved_tensors)
        if tensor._version != version and saved:
            raise RuntimeError(
                f"backward of {type(node).__name__}: its input {i} (shape "
                f"{tuple(tensor.data.shape)}), saved for the gradient, was modified by an "
                f"in-place operation: it is at version {tensor._version}, the gradient needs "
                f"version {version}; change a .clone() of it instead, or change it after "
                "backward()")


def first_tensor(name, values):
    """The first tensor among ``values``; TypeError naming ``name`` when there is none (as
    PyTorch's ops want a Tensor: ``torch.exp(2.0)`` is an error too)."""
    like = next((v for v in values if isinstance(v, TensorBase)), None)
    if like is None:
        raise TypeError(f"{name}: expected a Tensor among the inputs, got "
                        f"{', '.join(type(v).__name__ for v in values) or 'none'}")
    return like


def tensor_inputs(name, values):
    """``values`` as a tuple of tensors: numbers and arrays become constant tensors of the
    class of the first tensor among them (``first_tensor``)."""
    like = first_tensor(name, values)
    return tuple(v if isinstance(v, TensorBase) else like._wrap(v) for v in values)


def _check_same_device(name, tensors):
    devices = {device_of(t.data) for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"{name}: inputs are on different devices {sorted(devices)}; "
                         "move them with .to(device) first")


def _check_broadcast(name, tensors):
    shapes = [t.data.shape for t in tensors]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise ValueError(f"{name}: shapes {listed} cannot be broadcast together") from None


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1, so every
    copy's gradient flows back to the one original element: sum over the leading axes that
    were added, then over the axes where ``shape`` has size 1 (keeping them).
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0 or any(n not in (1, m) for n, m in zip(shape, grad.shape[extra:])):
        raise ValueError(f"unbroadcast: gradient of shape {grad.shape} does not broadcast "
                         f"from input shape {tuple(shape)}")
    grad = grad.sum(axis=tuple(range(extra)))
    kept = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=kept, keepdims=True) if kept else grad


def topological_order(root):
    """Nodes reachable from ``root``'s node, each listed after every node that feeds it.

    Iterative depth-first search (an explicit stack, so a 10,000-op chain cannot overflow
    Python's recursion limit); a node is emitted once all its parents have been emitted.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if node in visited:
            continue
        if node.freed:
            raise RuntimeError(
                "backward through a graph that was already freed: the first backward() released "
                "its saved arrays; call backward(retain_graph=True) the first time to go through "
                "the graph again")
        visited.add(node)
        stack.append((node, True))
        for parent in node.parents:
            if parent._ctx is not None and parent._ctx not in visited:
                stack.append((parent._ctx, False))
    return order


def backward(tensor, grad=None, retain_graph=False):
    """Accumulate d tensor / d leaf into ``leaf.grad`` for every leaf that requires grad.

    ``grad`` is dL/d(tensor); it may be omitted only for a tensor with one element (then
    dL/d(tensor) = 1). Intermediate tensors get ``.grad`` only if they called ``retain_grad()``.
    Unless ``retain_graph`` is true, each node's saved arrays are released once it has run.
    """
    if not tensor.requires_grad:
        raise RuntimeError("backward: tensor does not require grad and has no graph "
                           "(was it created under no_grad, or from inputs without requires_grad?)")
    xp = array_module(tensor.data)
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(f"backward: grad can be omitted only for a single-element tensor, "
                               f"got shape {tensor.data.shape}; pass grad= of that shape (or "
                               "reduce the tensor first, e.g. loss.sum())")
        grad = xp.ones_like(tensor.data)
    else:
        grad = grad.data if isinstance(grad, TensorBase) else xp.asarray(grad)
        if grad.shape != tensor.data.shape:
            raise ValueError(f"backward: grad shape {grad.shape} does not match tensor shape "
                             f"{tensor.data.shape}")
    if tensor._ctx is None:  # a leaf: dL/dx = grad
        _leaf_done(tensor, grad.astype(tensor.data.dtype, copy=False))
        return

    order = topological_order(tensor._ctx)[::-1]  # the root first
    # With hooks on leaves, each leaf's gradient is summed over its edges (in leaf_grads) and
    # accumulated, between its hooks, when its last edge is done; otherwise edge by edge.
    pending = _leaf_edges(order) if _grad_ready_hooks or _hooked_leaves else None
    leaf_grads = {}
    grads = {tensor._ctx: grad}
    for node in order:
        grad_inputs = _node_backward(node, grads.pop(node, None))
        for parent, needed, g in zip(node.parents, node.needs_input_grad, grad_inputs):
            if not needed or g is None:
                continue
            # One place fixes up every op's gradient: sum out broadcast axes, match the dtype.
            g = unbroadcast(g, parent.data.shape).astype(parent.data.dtype, copy=False)
            if parent._ctx is None and pending is None:
                _accumulate(parent, g)
            elif parent._ctx is None:
                leaf_grads[parent] = leaf_grads[parent] + g if parent in leaf_grads else g
            elif parent._ctx in grads:
                grads[parent._ctx] = grads[parent._ctx] + g
            else:
                grads[parent._ctx] = g
        if pending is not None:
            _count_down(node, pending, leaf_grads)
        if not retain_graph:
            node.parents = node.saved_tensors = node.input_versions = ()
            node.freed = True


def _node_backward(node, grad_out):
    """The gradients of a node's inputs from the gradient of its output (a tuple)."""
    if grad_out is None:  # every path from here to the root was non-differentiable
        return ()
    if node.output_hooks:
        grad_out = run_tensor_hooks(node.output_hooks, grad_out, node.parents[0]._wrap)
    # After the hooks, as PyTorch runs retain_grad's last: .grad holds the changed gradient.
    if node.output is not None:  # retain_grad() was called on this intermediate
        _accumulate(node.output, grad_out)
    check_saved_versions(node)
    grad_inputs = _call(type(node), "backward", node, grad_out)
    return grad_inputs if isinstance(grad_inputs, tuple) else (grad_inputs,)


def _leaf_inputs(node):
    """The inputs of ``node`` that are leaves needing a gradient (one entry per edge)."""
    return [parent for parent, needed in zip(node.parents, node.needs_input_grad)
            if needed and parent._ctx is None]


def _leaf_edges(nodes):
    """For each leaf that needs a gradient: how many graph edges lead into it."""
    pending = {}
    for node in nodes:
        for leaf in _leaf_inputs(node):
            pending[leaf] = pending.get(leaf, 0) + 1
    return pending


def _count_down(node, pending, leaf_grads):
    """One edge into each leaf input of ``node`` is done; a leaf whose last edge this was gets
    the gradient summed over its edges (``leaf_grads``)."""
    for leaf in _leaf_inputs(node):
        pending[leaf] -= 1
        if pending[leaf] == 0:
            _leaf_done(leaf, leaf_grads.pop(leaf, None))


def _leaf_done(leaf, grad):
    """A leaf's gradient of this pass is complete (None: no path delivered one): run its
    tensor hooks on it, accumulate it, run its post-accumulate hooks, then the engine's
    gradient-ready hooks."""
    if grad is not None:
        if leaf._backward_hooks:
            grad = run_tensor_hooks(leaf._backward_hooks, grad, leaf._wrap)
        _accumulate(leaf, grad)
        for hook in list((leaf._post_accumulate_grad_hooks or {}).values()):
            hook(leaf)
    for hook in list(_grad_ready_hooks.values()):
        hook(leaf)


def run_tensor_hooks(hooks, grad, wrap):
    """``grad`` (an array) through each of ``hooks`` in turn, as a Tensor made by ``wrap``: a
    hook returning a tensor replaces the gradient (``checked_gradient``). Returns the array."""
    for hook in list(hooks.values()):
        result = hook(wrap(grad))
        if result is not None:
            grad = checked_gradient(f"hook {getattr(hook, '__name__', hook)!r}", result, grad)
    return grad


def checked_gradient(source, new, old):
    """The array of ``new``, a gradient that ``source`` (named in errors) returned to replace
    the array ``old``: a tensor of the same shape and dtype, or a RuntimeError saying how it
    differs (as PyTorch's "hook has changed the size of value")."""
    if not isinstance(new, TensorBase):
        raise TypeError(f"{source} returned {type(new).__name__}; a gradient hook returns a "
                        "Tensor or None")
    if new.data.shape != old.shape:
        raise RuntimeError(f"{source} returned a gradient of shape {tuple(new.data.shape)}, "
                           f"the gradient it replaces has shape {tuple(old.shape)}")
    if new.data.dtype != old.dtype:
        raise RuntimeError(f"{source} returned a gradient of dtype {new.data.dtype}, the "
                           f"gradient it replaces has dtype {old.dtype}")
    return new.data


def _accumulate(tensor, grad):
    """tensor.grad += grad (a new array, so gradients never alias forward values)."""
    if tensor.grad is None:
        tensor.grad = tensor._wrap(grad.copy())
    else:
        tensor.grad = tensor._wrap(tensor.grad.data + grad)
