"""Every op of minigrad: ``Function`` classes (forward and backward on arrays) and the public
functions that apply them to Tensors.

    elementwise.py  add sub mul div neg pow exp log sqrt abs sign clip maximum minimum where
                    cast to_device, comparisons eq ne lt le gt ge
    reduce.py       sum mean var max min logsumexp, argmax argmin (no gradient)
    shape.py        reshape permute transpose broadcast_to expand getitem cat pad,
                    composites flatten squeeze unsqueeze stack split
    linalg.py       matmul
    activation.py   relu leaky_relu sigmoid tanh gelu softplus softmax log_softmax
    nn.py           Conv2d MaxPool2d AvgPool2d (kernels from ``backend.kernels``), fused
                    Linear and SoftmaxCrossEntropy; no functions here: ``nn.functional``
                    applies them (conv2d, max_pool2d, avg_pool2d, linear, cross_entropy)
"""

from minigrad.ops.activation import (gelu, leaky_relu, log_softmax, relu, sigmoid, softmax,
                                     softplus, tanh)
from minigrad.ops.elementwise import (abs, add, cast, clamp, clip, div, eq, exp, ge, gt, le,
                                      log, lt, maximum, minimum, mul, ne, neg, pow, sign, sqrt,
                                      sub, to_device, where)
from minigrad.ops.linalg import matmul
from minigrad.ops.reduce import argmax, argmin, logsumexp, max, mean, min, sum, var
from minigrad.ops.shape import (broadcast_to, cat, concatenate, expand, flatten, getitem, pad,
                                permute, reshape, split, squeeze, stack, transpose, unsqueeze)

__all__ = [
    "abs", "add", "argmax", "argmin", "broadcast_to", "cast", "cat", "clamp", "clip",
    "concatenate", "div", "eq", "exp", "expand", "flatten", "ge", "gelu", "getitem", "gt",
    "le", "leaky_relu", "log", "log_softmax", "logsumexp", "lt", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mul", "ne", "neg", "pad", "permute", "pow", "relu", "reshape",
    "sigmoid", "sign", "softmax", "softplus", "split", "sqrt", "squeeze", "stack", "sub", "sum",
    "tanh", "to_device", "transpose", "unsqueeze", "var", "where",
]
