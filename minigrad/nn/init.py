"""Weight initialisation, in place, with PyTorch's names and formulas.

For a weight of shape (out, in, *kernel), fan_in = in * prod(kernel) and
fan_out = out * prod(kernel).

* Xavier/Glorot (Glorot & Bengio 2010) keeps the activation variance about equal in both
  directions: std = gain * sqrt(2 / (fan_in + fan_out)); uniform bound = sqrt(3) * std.
* Kaiming/He (He et al. 2015) keeps the forward variance for ReLU-like units:
  std = gain / sqrt(fan), gain = sqrt(2 / (1 + a^2)) for leaky_relu with slope a;
  uniform bound = sqrt(3) * std.

PyTorch's default for Linear and Conv2d weights is kaiming_uniform_ with a = sqrt(5), which
works out to the bound 1 / sqrt(fan_in), and its bias is uniform in the same bound.
All draws come from minigrad's seeded generator (``minigrad.manual_seed``).
"""

import functools
import math
import warnings

import numpy as np

from minigrad import random as mg_random


def _no_op_if_empty(initializer):
    """PyTorch's rule for the fan-based initializers: a zero-element tensor (``Linear(0, 3)``'s
    weight, whose fans may be 0) is left as it is, with a warning."""
    @functools.wraps(initializer)
    def initialize(tensor, *args, **kwargs):
        if tensor.numel() == 0:
            warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
            return tensor
        return initializer(tensor, *args, **kwargs)

    return initialize


def calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive_field = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps the variance of a layer's output equal to its input's."""
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(tensor, values):
    tensor.data[...] = values
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, mg_random.generator().uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, mg_random.generator().normal(mean, std, tensor.shape))


def constant_(tensor, value):
    return _fill(tensor, value)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


@_no_op_if_empty
def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


@_no_op_if_empty
def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


@_no_op_if_empty
def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


@_no_op_if_empty
def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))
