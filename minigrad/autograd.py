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
"""

import contextlib
import os

import numpy as np

from minigrad.backend import array_module, device_of

_grad_enabled = True
# The recording ``minigrad.profiler.profile``, or None: when profiling is off, checking this is
# all it costs an op.
active_profiler = None


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


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` region."""

    enabled = True


class Function:
    """Base class of every differentiable op; an instance is one node (``ctx``) of the graph.

    Subclasses define ``forward`` and ``backward`` as static methods taking ``ctx`` first.
    ``broadcasts = True`` marks ops whose inputs broadcast against each other, so a shape
    mismatch is reported with the op's name and all input shapes.
    """

    broadcasts = False

    def __init__(self):
        self.parents = ()  # the input Tensors, kept only while the graph is alive
        self.saved_tensors = ()
        self.needs_input_grad = ()
        self.freed = False
        self.output = None  # set to the output Tensor when it asks to retain its grad

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
        """Run the op on Tensors and return a Tensor, recording a graph node when needed."""
        from minigrad.tensor import Tensor  # tensor.py imports this module: resolve at call

        inputs = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in inputs)
        _check_same_device(cls.__name__, inputs)
        if cls.broadcasts:
            _check_broadcast(cls.__name__, inputs)
        ctx = cls()
        arrays = tuple(x.data for x in inputs)
        if active_profiler is None:
            out = Tensor(cls.forward(ctx, *arrays, **attrs))
        else:  # the same call, timed
            out = Tensor(active_profiler.run(cls, "forward", ctx, *arrays, **attrs))
        needs_grad = tuple(x.requires_grad for x in inputs)
        # Integer results (argmax-like casts, x.long()) are constants: PyTorch tracks no grad.
        if _grad_enabled and any(needs_grad) and out.dtype.kind == "f":
            ctx.parents = inputs
            ctx.needs_input_grad = needs_grad
            out.requires_grad = True
            out._ctx = ctx
        return out

    def __repr__(self):
        return f"<{type(self).__name__} node>"


def _check_same_device(name, tensors):
    devices = {device_of(t.data) for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"{name}: inputs are on different devices {sorted(devices)}; "
                         "move them with .to(device) first")


def _check_broadcast(name, tensors):
    shapes = [t.shape for t in tensors]
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
    from minigrad.tensor import Tensor

    if not tensor.requires_grad:
        raise RuntimeError("backward: tensor does not require grad and has no graph "
                           "(was it created under no_grad, or from inputs without requires_grad?)")
    xp = array_module(tensor.data)
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(f"backward: grad can be omitted only for a single-element tensor, "
                               f"got shape {tensor.shape}; pass grad= of that shape (or reduce "
                               "the tensor first, e.g. loss.sum())")
        grad = xp.ones_like(tensor.data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
        if grad.shape != tensor.shape:
            raise ValueError(f"backward: grad shape {grad.shape} does not match tensor shape "
                             f"{tensor.shape}")
    if tensor._ctx is None:  # a leaf: dL/dx = grad
        _accumulate(tensor, grad.astype(tensor.dtype, copy=False))
        return

    grads = {tensor._ctx: grad}
    for node in reversed(topological_order(tensor._ctx)):
        grad_out = grads.pop(node, None)
        if grad_out is None:  # every path from here to the root was non-differentiable
            continue
        if node.output is not None:  # retain_grad() was called on this intermediate
            _accumulate(node.output, grad_out)
        if active_profiler is None:
            grad_inputs = type(node).backward(node, grad_out)
        else:  # the same call, timed
            grad_inputs = active_profiler.run(type(node), "backward", node, grad_out)
        if not isinstance(grad_inputs, tuple):
            grad_inputs = (grad_inputs,)
        for parent, needed, g in zip(node.parents, node.needs_input_grad, grad_inputs):
            if not needed or g is None:
                continue
            # One place fixes up every op's gradient: sum out broadcast axes, match the dtype.
            g = unbroadcast(g, parent.shape).astype(parent.dtype, copy=False)
            if parent._ctx is None:
                _accumulate(parent, g)
            elif parent._ctx in grads:
                grads[parent._ctx] = grads[parent._ctx] + g
            else:
                grads[parent._ctx] = g
        if not retain_graph:
            node.parents, node.saved_tensors, node.freed = (), (), True


def _accumulate(tensor, grad):
    """tensor.grad += grad (a new array, so gradients never alias forward values)."""
    from minigrad.tensor import Tensor

    if tensor.grad is None:
        tensor.grad = Tensor(grad.copy())
    else:
        tensor.grad = Tensor(tensor.grad.data + grad)


# MINIGRAD_PROFILE=1 (any value but 0): profile the whole process, and print the table to
# stderr at exit. Checked here because every op runs through this module.
if os.environ.get("MINIGRAD_PROFILE", "") not in ("", "0"):
    from minigrad.profiler import profile_process

    profile_process()
