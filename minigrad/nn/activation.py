"""Activation layers: Modules with PyTorch's names and constructor arguments, each calling its
function from ``minigrad.ops.activation`` (where the formulas and derivatives are). ReLU,
LeakyReLU, Sigmoid, Tanh, GELU and Softmax are in ``nn.layers``. ``extra_repr`` prints the
settings as PyTorch's modules do, so ``repr`` reads the same.
"""

import warnings

from minigrad.nn.module import Module
from minigrad.ops.activation import (celu, elu, hardshrink, hardsigmoid, hardswish, hardtanh,
                                     log_softmax, logsigmoid, mish, relu6, selu, silu,
                                     softplus, softshrink, softsign, tanhshrink, threshold)


class SiLU(Module):
    """x·sigmoid(x), also called swish."""

    def forward(self, x):
        return silu(x)


class Mish(Module):
    """x·tanh(softplus(x))."""

    def forward(self, x):
        return mish(x)


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Module):
    """x clipped to [0, 6]."""

    def forward(self, x):
        return relu6(x)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6, a piecewise-linear sigmoid."""

    def forward(self, x):
        return hardsigmoid(x)


class Hardswish(Module):
    """x·hardsigmoid(x)."""

    def forward(self, x):
        return hardswish(x)


class ELU(Module):
    """x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SELU(Module):
    """scale·ELU(x) with SELU's fixed alpha and scale."""

    def forward(self, x):
        return selu(x)


class CELU(Module):
    """x for x > 0, alpha (e^(x/alpha) - 1) otherwise."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return celu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x):
        return softsign(x)


class LogSigmoid(Module):
    """log sigmoid(x) = -softplus(-x)."""

    def forward(self, x):
        return logsigmoid(x)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def forward(self, x):
        return tanhshrink(x)


class Softshrink(Module):
    """x shrunk toward 0 by lambd (0 inside [-lambd, lambd])."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return softshrink(x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Module):
    """x where |x| > lambd, else 0."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return hardshrink(x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold, value):
        super().__init__()
        self.threshold, self.value = threshold, value

    def forward(self, x):
        return threshold(x, self.threshold, self.value)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}"


class Softplus(Module):
    """log(1 + e^(beta·x)) / beta, and x where beta·x > threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


def implicit_softmax_dim(name, ndim):
    """The dim PyTorch's softmax modules use when none was given (dim=None): 0 for 0-, 1- and
    3-d inputs, else 1; it warns, as PyTorch does, since the choice is seldom what is meant."""
    dim = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(f"{name}: implicit dimension choice (dim={dim} for a {ndim}-d input) is "
                  f"deprecated, as in PyTorch; pass dim=", UserWarning, stacklevel=2)
    return dim


class LogSoftmax(Module):
    """log softmax(x) along ``dim`` (PyTorch's implicit choice when dim is None)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = implicit_softmax_dim("LogSoftmax", x.ndim) if self.dim is None else self.dim
        return log_softmax(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"
