"""Layers: Modules that hold parameters (or settings) and call ``minigrad.nn.functional``.

Each layer keeps PyTorch's constructor arguments, parameter names and shapes, and default
initialisation, so a PyTorch ``state_dict`` loads into the matching minigrad layer.
"""

import math

import numpy as np

from minigrad.creation import ones, zeros
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.ops.nn import check_groups, check_window_arguments, pair
from minigrad.tensor import tensor


def _default_init(weight, bias):
    """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and the same bound for the bias. A layer without inputs (fan_in = 0,
    ``Linear(0, 3)``, which PyTorch allows) has an empty weight to leave and a bias of zeros,
    as in PyTorch."""
    fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
    if weight.numel():
        init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


def _check_sizes(layer, **sizes):
    """ValueError naming the layer, the argument and its value for a negative size (PyTorch
    refuses them when it makes the weight: "negative dimension")."""
    for argument, value in sizes.items():
        if value < 0:
            raise ValueError(f"{layer}: {argument} must be non-negative, got {value!r}")


def _unbatched_as_batch_of_one(forward, x, spatial_dims):
    """``forward(x)``, where a ``forward`` made for (N, C, *spatial) inputs also takes one
    unbatched (C, *spatial) sample, as PyTorch's layers do: it runs as a batch of one and
    the batch dim is removed from the result (from both results of ``return_indices``)."""
    if x.ndim != spatial_dims + 1:
        return forward(x)
    out = forward(x.unsqueeze(0))
    return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        self.register_parameter(
            "bias", Parameter(np.empty(out_features, dtype=np.float32)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights with the default initialisation (in place)."""
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def relu_forward(self, x):
        """relu(forward(x)) as one op (``F._fused_linear``): what ``nn.Sequential`` runs for
        this layer and the ReLU after it under no_grad."""
        return F._fused_linear(x, self.weight, self.bias, relu=True)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _one_tuple(value):
    """An int or a 1-tuple as a 1-tuple: 3 -> (3,)."""
    return (value,) if isinstance(value, int) else tuple(value)


class _ConvNd(Module):
    """Shared by the convolution layers: PyTorch's arguments and attribute names, the weight
    (out_channels, in_channels, *kernel_size), or (in_channels, out_channels, *kernel_size)
    for a transposed convolution, each with its channels in ``groups`` groups
    ((out_channels, in_channels/groups, ...), (in_channels, out_channels/groups, ...)), and the
    default initialisation (fan_in = weight.shape[1] * kernel size, as in PyTorch).
    ``as_tuple`` makes the window arguments per-axis tuples (``pair`` in 2-D). Window
    arguments out of PyTorch's limits are refused when the layer is built
    (``check_window_arguments``), and an unbatched (C, *spatial) input is taken as PyTorch
    takes it (``_unbatched_as_batch_of_one``)."""

    transposed = False
    as_tuple = staticmethod(pair)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, output_padding=0):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = self.as_tuple(kernel_size), self.as_tuple(stride)
        self.padding = padding if isinstance(padding, str) else self.as_tuple(padding)
        self.dilation, self.output_padding = self.as_tuple(dilation), self.as_tuple(output_padding)
        _check_sizes(type(self).__name__, in_channels=in_channels, out_channels=out_channels)
        check_groups(type(self).__name__, groups,
                     {"in_channels": in_channels, "out_channels": out_channels})
        check_window_arguments(type(self).__name__, self.kernel_size, self.stride, self.padding,
                               self.dilation, self.output_padding)
        channels = ((in_channels, out_channels // groups) if self.transposed
                    else (out_channels, in_channels // groups))
        self.weight = Parameter(np.empty(channels + self.kernel_size, dtype=np.float32))
        self.register_parameter(
            "bias", Parameter(np.empty(out_channels, dtype=np.float32)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights with the default initialisation (in place)."""
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return _unbatched_as_batch_of_one(self.batched_forward, x, len(self.kernel_size))

    def relu_forward(self, x):
        """relu(forward(x)) as one op: what ``nn.Sequential`` runs for this layer and the ReLU
        after it under no_grad."""
        return _unbatched_as_batch_of_one(lambda batch: self.batched_forward(batch, relu=True),
                                          x, len(self.kernel_size))

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        zeros, ones = (0,) * len(self.kernel_size), (1,) * len(self.kernel_size)
        if self.padding != zeros:
            text += f", padding={self.padding}"
        if self.dilation != ones:
            text += f", dilation={self.dilation}"
        if self.output_padding != zeros:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) inputs, weight (out_channels, in_channels/groups, K)."""

    as_tuple = staticmethod(_one_tuple)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)

    def batched_forward(self, x, relu=False):
        return F._convolution("conv1d", x, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, self.groups, relu)


class Conv2d(_ConvNd):
    """2-D convolution, weight (out_channels, in_channels/groups, KH, KW); groups=in_channels
    is the depthwise convolution."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)

    def batched_forward(self, x, relu=False):
        return F._convolution("conv2d", x, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, self.groups, relu)


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution over (N, C, L) inputs, weight (in_channels,
    out_channels/groups, K)."""

    transposed = True
    as_tuple = staticmethod(_one_tuple)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, output_padding)

    def batched_forward(self, x, relu=False):
        return F._transposed_convolution("conv_transpose1d", x, self.weight, self.bias,
                                        self.stride, self.padding, self.output_padding,
                                        self.groups, self.dilation, relu)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution, weight (in_channels, out_channels/groups, KH, KW): the
    gradient of a Conv2d with respect to its input, used to upsample (decoders, GAN
    generators)."""

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, output_padding)

    def batched_forward(self, x, relu=False):
        return F._transposed_convolution("conv_transpose2d", x, self.weight, self.bias,
                                        self.stride, self.padding, self.output_padding,
                                        self.groups, self.dilation, relu)


class _MaxPoolNd(Module):
    """Shared by MaxPool1d and MaxPool2d: PyTorch's arguments (refused when out of its limits,
    ``check_window_arguments``), ``pool``, the function, and its ``spatial_dims``; an
    unbatched (C, *spatial) input is taken as PyTorch takes it."""

    pool = None
    spatial_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode
        check_window_arguments(type(self).__name__, self.kernel_size, self.stride, padding,
                               dilation)

    def forward(self, x):
        return _unbatched_as_batch_of_one(
            lambda batch: self.pool(batch, self.kernel_size, self.stride, self.padding,
                                    self.dilation, self.ceil_mode, self.return_indices),
            x, self.spatial_dims)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L) inputs (``F.max_pool1d``)."""

    pool = staticmethod(F.max_pool1d)
    spatial_dims = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W) inputs (``F.max_pool2d``)."""

    pool = staticmethod(F.max_pool2d)


class _AvgPoolNd(Module):
    """Shared by AvgPool1d and AvgPool2d: PyTorch's arguments (refused when out of its limits,
    ``check_window_arguments``); ``forward`` takes an unbatched (C, *spatial) input as
    PyTorch does and hands batches to ``batched_forward``."""

    spatial_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad
        check_window_arguments(type(self).__name__, self.kernel_size, self.stride, padding, 1)

    def forward(self, x):
        return _unbatched_as_batch_of_one(self.batched_forward, x, self.spatial_dims)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling over (N, C, L) inputs (``F.avg_pool1d``); the window arguments are kept
    as 1-tuples, as in PyTorch."""

    spatial_dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(_one_tuple(kernel_size), None if stride is None else _one_tuple(stride),
                         _one_tuple(padding), ceil_mode, count_include_pad)

    def batched_forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (N, C, H, W) inputs (``F.avg_pool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def batched_forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class MaxUnpool2d(Module):
    """Puts max_pool2d's values back where they came from (``F.max_unpool2d``); forward takes
    the pooled values and max_pool2d's indices."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = self.kernel_size if stride is None else pair(stride)
        self.padding = pair(padding)

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed (H_out, W_out) whatever the input's size (None keeps that
    axis's size); output_size=1 is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resizes (N, C, L) or (N, C, H, W) inputs to ``size`` or by ``scale_factor``
    (``F.interpolate``: "nearest" or "bilinear")."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if isinstance(scale_factor, (tuple, list)):
            scale_factor = tuple(float(f) for f in scale_factor)
        elif scale_factor is not None:
            scale_factor = float(scale_factor)
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        if self.scale_factor is not None:
            return f"scale_factor={self.scale_factor!r}, mode={self.mode!r}"
        return f"size={self.size!r}, mode={self.mode!r}"


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: gamma (weight), beta (bias), running statistics
    and a counter of training batches, all under PyTorch's names."""

    expected_ndim = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter(
            "weight", Parameter(np.ones(num_features, dtype=np.float32)) if affine else None)
        self.register_parameter(
            "bias", Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features))
            self.register_buffer("running_var", ones(num_features))
            self.register_buffer("num_batches_tracked", tensor(0))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_parameters(self):
        """gamma = 1, beta = 0, running statistics back to mean 0, variance 1, count 0."""
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input with "
                             f"{' or '.join(map(str, self.expected_ndim))} dimensions and "
                             f"{self.num_features} channels at axis 1, got shape {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch_stats, self.momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, one mean and variance per channel."""

    expected_ndim = (4,)


class Dropout(Module):
    """Zeroes each element with probability p in training (survivors scaled by 1/(1-p))."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge axes start_dim..end_dim; by default everything but the batch axis."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    def forward(self, x):
        return x


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
