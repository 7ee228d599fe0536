"""Synchronized batch norm: statistics over the global batch of all ranks, with gradients.

In data-parallel training each rank sees B/N samples. Plain BatchNorm normalizes with the mean
and variance of those B/N samples only; with small per-rank batches that is a noisy estimate,
and the result differs from training on one process with batch B. ``SyncBatchNorm`` sums the
per-channel statistics over the ranks (per channel c, over the n_r values of rank r):

    n = sum_r n_r,   mu = (1/n) sum_r sum_i x_ri,   var = (1/n) sum_r sum_i (x_ri - mu)^2

(two all-reduces; the two-pass form avoids the cancellation of E[x^2] - E[x]^2), then
normalizes like BatchNorm. The sums are ``all_reduce_sum``, a differentiable op:

    forward:  y = sum_r x_r            (every rank gets the same y)
    backward: dL/dx_q = sum_r dL_r/dy  (x_q feeds every rank's y, so each rank's loss
                                        sends gradient back to it: the gradient is all-reduced)

Together with DDP's averaging of parameter gradients this gives exactly the gradients of one
process normalizing the whole batch (the tests check outputs, gradients and running statistics).
"""

import numpy as np

from minigrad.autograd import Function
from minigrad.nn.layers import _BatchNorm
from minigrad.parallel import comm as mpi_comm


class AllReduceSum(Function):
    """y = sum over the ranks of x; backward all-reduces the gradient (see the docstring)."""

    @staticmethod
    def forward(ctx, x, comm=None):
        ctx.comm = comm
        return mpi_comm.all_reduce(x, "sum", comm)

    @staticmethod
    def backward(ctx, grad):
        return mpi_comm.all_reduce(grad, "sum", ctx.comm)


def all_reduce_sum(x, comm=None):
    """The sum of the Tensor ``x`` over all ranks, differentiable."""
    return AllReduceSum.apply(x, comm=mpi_comm.resolve(comm))


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) inputs with statistics of the batch of all ranks in
    ``comm``; in eval, or on one rank, exactly ``BatchNorm``."""

    expected_ndim = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, comm=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.comm = mpi_comm.resolve(comm)

    def forward(self, x):
        if not self.training or self.comm.Get_size() == 1:
            return super().forward(x)
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}): expected (N, C, ...) input "
                             f"with {self.num_features} channels, got shape {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        count = mpi_comm.all_reduce(np.array([x.numel() // x.shape[1]]), "sum", self.comm)[0]
        mean = all_reduce_sum(x.sum(axis=axes, keepdims=True), self.comm) / float(count)
        centered = x - mean
        var = all_reduce_sum((centered * centered).sum(axis=axes, keepdims=True),
                             self.comm) / float(count)
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            m = self.momentum
            self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * \
                mean.data.reshape(-1)
            self.running_var.data[...] = (1 - m) * self.running_var.data + m * \
                var.data.reshape(-1) * count / (count - 1)
        y = centered / (var + self.eps).sqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        return y


def convert_sync_batchnorm(module, comm=None):
    """Replace every BatchNorm1d/2d in ``module`` by a SyncBatchNorm holding the same
    parameters and buffers (the same objects, so an optimizer built before still holds them).
    Returns the module (a new one if ``module`` itself is a batch norm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats, comm)
        for name, param in module.named_parameters(recurse=False):
            sync.register_parameter(name, param)
        for name, buffer in module.named_buffers(recurse=False):
            sync.register_buffer(name, buffer)
        return sync.train(module.training)
    for name, child in list(module.named_children()):
        # In place: a Sequential runs its children in their registration order.
        module.add_module(name, convert_sync_batchnorm(child, comm))
    return module
