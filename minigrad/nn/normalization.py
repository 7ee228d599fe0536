"""Normalization layers over the last dims of the input: ``LayerNorm`` and ``RMSNorm``.

PyTorch's constructor arguments, parameter names (``weight``, ``bias``), shapes and initial
values (weight ones, bias zeros), so a PyTorch ``state_dict`` loads. The math and the
closed-form backward are in ``minigrad.ops.normalization``; the layers call
``nn.functional.layer_norm`` and ``rms_norm``.
"""

import numpy as np

from minigrad.nn import functional as F
from minigrad.nn.module import Module, Parameter


def _affine_parameter(shape, value, present):
    """A float32 Parameter of ``shape`` filled with ``value``, or None when not ``present``."""
    return Parameter(np.full(shape, value, dtype=np.float32)) if present else None


class LayerNorm(Module):
    """Layer normalization (Ba et al. 2016) over the last ``len(normalized_shape)`` dims:

        y = (x - mean) / sqrt(var + eps) * weight + bias,   var biased (divided by n)

    ``weight`` (ones) and ``bias`` (zeros) have shape ``normalized_shape``; none with
    ``elementwise_affine=False``, no bias with ``bias=False``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        self.normalized_shape = F._as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.register_parameter(
            "weight", _affine_parameter(self.normalized_shape, 1, elementwise_affine))
        self.register_parameter(
            "bias", _affine_parameter(self.normalized_shape, 0, elementwise_affine and bias))

    def reset_parameters(self):
        """weight = 1, bias = 0."""
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """RMS normalization (Zhang & Sennrich 2019) over the last ``len(normalized_shape)`` dims:

        y = x / sqrt(mean(x^2) + eps) * weight

    ``eps=None`` uses the machine epsilon of the input's dtype, as PyTorch. ``weight`` (ones,
    shape ``normalized_shape``) is left out with ``elementwise_affine=False``; there is no bias.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__()
        self.normalized_shape = F._as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.register_parameter(
            "weight", _affine_parameter(self.normalized_shape, 1, elementwise_affine))

    def reset_parameters(self):
        """weight = 1."""
        if self.weight is not None:
            self.weight.data[...] = 1

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
