"""``minigrad.nn``: Module and Parameter, layers, containers, ``functional`` (F), ``init`` and
``utils`` (gradient clipping, L1/L2 penalties)."""

from minigrad.nn import functional, init, utils
from minigrad.nn.activation import (CELU, ELU, SELU, Hardshrink, Hardsigmoid, Hardswish,
                                    Hardtanh, LogSigmoid, LogSoftmax, Mish, ReLU6, SiLU,
                                    Softplus, Softshrink, Softsign, Tanhshrink, Threshold)
from minigrad.nn.containers import ModuleDict, ModuleList, Sequential
from minigrad.nn.layers import (GELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d,
                                Conv2d, Dropout, Flatten, Identity, LeakyReLU, Linear, MaxPool2d,
                                ReLU, Sigmoid, Softmax, Tanh)
from minigrad.nn.module import Module, Parameter, RemovableHandle
