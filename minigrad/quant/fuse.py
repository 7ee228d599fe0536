"""Folding batch norm into the layer before it, so a quantized model has one weight and one bias
per layer and no batch norm at inference.

In eval mode a batch norm is a fixed affine map per channel c,

    BN(z)_c = gamma_c (z_c - mu_c) / sqrt(var_c + eps) + beta_c = a_c z_c + (beta_c - a_c mu_c),

with a_c = gamma_c / sqrt(var_c + eps) and the running statistics mu, var. After a Conv2d (or a
Linear) z_c = W_c * x + b_c, so the two together are one layer with

    W'_c = a_c W_c,        b'_c = a_c (b_c - mu_c) + beta_c

(Jacob et al. 2018, section 3.2; PyTorch's ``fuse_conv_bn_eval``). The fold is computed in
float64 and stored in float32, so the fused layer equals conv + BN in eval mode up to float32
rounding. In training mode batch norm uses the statistics of each batch instead, and no fold
is exact: fold a trained model, and fold before quantization-aware training (``prepare_qat``
does) so that the quantized weights are the ones inference will use.
"""

import copy

import numpy as np

from minigrad.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from minigrad.nn.module import Parameter
from minigrad.nn.utils.parametrize import remove_parametrizations


def batch_norm_affine(bn):
    """(a, c) in float64, one per channel, with BN(z) = a z + c in eval mode."""
    if bn.running_mean is None:
        raise ValueError(f"fuse: {type(bn).__name__} has no running statistics "
                         "(track_running_stats=False), so it is not a fixed map to fold")
    inv_std = 1.0 / np.sqrt(bn.running_var.numpy().astype(np.float64) + bn.eps)
    gamma = np.ones_like(inv_std) if bn.weight is None else bn.weight.numpy().astype(np.float64)
    beta = np.zeros_like(inv_std) if bn.bias is None else bn.bias.numpy().astype(np.float64)
    scale = gamma * inv_std
    return scale, beta - scale * bn.running_mean.numpy().astype(np.float64)


def _fold(layer, bn, expected_bn):
    if not isinstance(bn, expected_bn):
        raise TypeError(f"fuse: a {type(layer).__name__} folds a {expected_bn.__name__}, got "
                        f"{type(bn).__name__}")
    channels = layer.weight.shape[0]
    if bn.num_features != channels:
        raise ValueError(f"fuse: {type(layer).__name__} has {channels} output channels, "
                         f"{type(bn).__name__} normalizes {bn.num_features}")
    scale, shift = batch_norm_affine(bn)
    weight = layer.weight.numpy().astype(np.float64)
    bias = np.zeros(channels) if layer.bias is None else layer.bias.numpy().astype(np.float64)
    fused = copy.deepcopy(layer)
    for name in list(fused.parametrizations):  # the fused layer holds plain tensors
        remove_parametrizations(fused, name)
    fused.weight = Parameter((weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)))
                             .astype(np.float32))
    fused.bias = Parameter((scale * bias + shift).astype(np.float32))
    return fused


def fuse_conv_bn(conv, bn):
    """A new Conv2d equal to ``bn(conv(x))`` with ``bn`` in eval mode (the inputs are not
    changed; a conv without bias gets one)."""
    if not isinstance(conv, Conv2d):
        raise TypeError(f"fuse_conv_bn: expected a Conv2d, got {type(conv).__name__}")
    return _fold(conv, bn, BatchNorm2d)


def fuse_linear_bn(linear, bn):
    """A new Linear equal to ``bn(linear(x))`` with a BatchNorm1d in eval mode."""
    if not isinstance(linear, Linear):
        raise TypeError(f"fuse_linear_bn: expected a Linear, got {type(linear).__name__}")
    return _fold(linear, bn, BatchNorm1d)
