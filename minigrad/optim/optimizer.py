"""``Optimizer``: the base class every optimizer shares, with PyTorch's semantics.

An optimizer holds ``param_groups``: a list of dicts, each with its own ``params`` and its own
hyperparameters (``lr``, ``momentum``, ...), defaults filled in from the constructor; and
``state``: per-parameter memory such as momentum buffers, made on a parameter's first step.
``step()`` reads each parameter's ``.grad`` and updates ``.data`` in place, so the model's
parameters stay the same objects; a parameter whose ``.grad`` is None is left alone.

As in PyTorch, the parameters may include frozen ones (``requires_grad=False``, a layer kept
fixed while fine-tuning the rest): backward gives them no ``.grad``, so ``step()`` skips them,
and they start training as soon as ``p.requires_grad = True`` is set again. Refused, as in
PyTorch, are only what cannot be a parameter: something that is not a Tensor, and a non-leaf
Tensor (computed by an op, so its ``.grad`` is never filled and ``step()`` could not write
into what produced it).

What every update rule starts with, turning ``.grad`` into the gradient g it follows, is
``gradient_with_weight_decay`` here.
"""

import numpy as np

from minigrad.tensor import Tensor


def gradient_with_weight_decay(p, group):
    """The gradient g the update rule follows for parameter ``p``: ``p.grad``, negated when
    ``maximize``. Weight decay wd = ``group["weight_decay"]`` enters as an L2 penalty,
    g <- g + wd * w; or, when the group has ``decoupled_weight_decay`` (AdamW), as a shrink of
    the weights themselves, w <- w - lr * wd * w, which leaves g alone."""
    g = -p.grad.data if group["maximize"] else p.grad.data
    decay = group["weight_decay"]
    if decay and group.get("decoupled_weight_decay"):
        p.data *= 1 - group["lr"] * decay
    elif decay:
        g = g + decay * p.data
    return g


class Optimizer:
    """Base class: subclasses set ``defaults`` through ``__init__`` and implement ``step``
    (and ``initial_state`` when they keep state)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # Parameter -> dict of arrays
        if isinstance(params, Tensor):  # list(tensor) would iterate over its rows
            raise TypeError(f"{type(self).__name__}: params should be an iterable of Tensors "
                            f"or dicts, got one Tensor of shape {params.shape}; pass [tensor]")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group of parameters with its own hyperparameters (missing ones from defaults)."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(group["params"]):
            where = f"parameter {i} of group {len(self.param_groups)}"
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, but {where} "
                                f"is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor "
                                 f"({where}, shape {p.shape}, computed by "
                                 f"{type(p.grad_fn).__name__}); optimize the leaf it was "
                                 "computed from, or a copy: t.detach().requires_grad_()")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]) or len(
                {id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one "
                             "group (or twice in one)")
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self.check_hyperparameters(group)
        self.param_groups.append(group)

    def check_hyperparameters(self, group):
        """Raise ValueError for a hyperparameter out of range (subclasses extend this)."""
        self.require_nonnegative(group, "lr")

    def require_nonnegative(self, group, *names):
        """Raise ValueError, naming the optimizer and the value, unless group[name] >= 0."""
        for name in names:
            if not group[name] >= 0:  # written so that NaN is refused too
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, "
                                 f"got {group[name]!r}")

    def require_fraction(self, name, value):
        """For decay rates (RMSprop's alpha; Adam's betas, each of them): 0 <= value < 1."""
        if isinstance(value, (tuple, list)):
            for i, entry in enumerate(value):
                self.require_fraction(f"{name}[{i}]", entry)
        elif not 0 <= value < 1:
            raise ValueError(f"{type(self).__name__}: {name} must be in [0, 1), got {value!r}")

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (backward accumulates, so call this before each backward)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self):
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def params_with_grad(self):
        """``(parameter, its group)`` for every parameter that has a gradient to step along,
        each counted as changed in place (``p._version += 1``) as it is handed to ``step``.

        ``step`` writes ``p.data`` in place, so a graph recorded before the step that saved
        ``p`` now holds the new weights: counting the change here makes its ``backward``
        refuse, naming the op (``autograd.check_saved_versions``), as PyTorch's does, instead
        of giving gradients at weights the forward pass never used."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p._version += 1
                    yield p, group

    def initial_state(self, p, group):
        raise NotImplementedError(f"{type(self).__name__} must define initial_state()")

    def param_state(self, p, group):
        """``p``'s state dict, made by ``initial_state`` on ``p``'s first step."""
        if p not in self.state:
            self.state[p] = self.initial_state(p, group)
        return self.state[p]

    # ----------------------------------------------------------------- state
    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """Hyperparameters and per-parameter state, with parameters named by position."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {str(index[id(p)]): {k: v.copy() for k, v in s.items()}
                 for p, s in self.state.items()}
        return {"type": type(self).__name__, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state; refuses (changing nothing) a state from another
        optimizer type or from groups of other sizes."""
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"load_state_dict: this is a {type(self).__name__}, the state is "
                             f"from {state_dict.get('type')!r}")
        groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g["params"]) for g in groups] != sizes:
            raise ValueError(f"load_state_dict: parameter groups of sizes "
                             f"{[len(g['params']) for g in groups]} do not match {sizes}")
        params = self._params()
        for i, entries in state_dict["state"].items():
            if not 0 <= int(i) < len(params):
                raise ValueError(f"load_state_dict: state for parameter {i}, but there are "
                                 f"only {len(params)} parameters")
            for name, value in entries.items():
                if np.shape(value) not in ((), params[int(i)].shape):
                    raise ValueError(f"load_state_dict: {name} of parameter {i} has shape "
                                     f"{np.shape(value)}, the parameter "
                                     f"{params[int(i)].shape}")
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {params[int(i)]: {k: v.copy() for k, v in s.items()}
                      for i, s in state_dict["state"].items()}
