"""Data parallelism: ``DistributedDataParallel`` (DDP) and the ``fit`` callback that drives it.

Each of N ranks holds a full copy of the model and reads its own share of every batch (a
``DistributedSampler``). For a loss that is a mean over the batch, the gradient over a global
batch of B samples is the mean of the N ranks' gradients over B/N samples each:

    g = (1/B) sum_i grad l_i = (1/N) sum_r (N/B) sum_{i in rank r} grad l_i = (1/N) sum_r g_r

so after backward every rank replaces its gradient by the all-reduced average, every optimizer
takes the same step from the same weights, and the copies stay identical: N ranks with batch
B/N train exactly like one process with batch B, N times faster at best.

What DDP does (Li et al. 2020, "PyTorch Distributed", whose design this follows):

* at construction, broadcasts rank 0's parameters and buffers, so all copies start equal;
* ``sync_gradients()`` (call it after ``backward``; ``DistributedCallback`` does it in ``fit``)
  averages the gradients in *buckets*: the gradients are copied into a few flat buffers of at
  most ``bucket_cap_mb`` each, in reverse registration order (roughly the order backward
  finishes them), and each buffer is reduced with one ``Iallreduce``. One message per bucket
  instead of one per parameter saves the per-message latency alpha of the cost
  alpha + bytes * beta; a bucket much larger than the model would leave nothing to overlap;
* ``overlap=True`` starts every bucket's reduction as soon as it is packed and only then waits
  for them, so packing bucket k+1 overlaps the reduction of bucket k. Honest limitation:
  minigrad's autograd has no per-parameter "gradient ready" hook, so reductions cannot start
  *during* backward as in PyTorch; they all start after it. ``overlap=False`` reduces bucket
  after bucket (start, wait, unpack), the simplest schedule to read;
* a parameter without a gradient on some rank (unused in its forward) counts as a zero
  gradient there; one without a gradient on every rank keeps ``grad = None``, so optimizers
  skip it exactly as in a single process;
* ``no_sync()``: inside the block ``sync_gradients`` does nothing, so gradients of several
  backwards accumulate locally (gradient accumulation) and the first sync outside the block
  averages the sum, one communication for several micro-steps;
* batch norm: with the default ``sync_batchnorm=False`` each rank normalizes with its own
  batch's statistics, and (``broadcast_buffers=True``, PyTorch's default) rank 0's running
  statistics are broadcast before every training forward so all copies evaluate alike.
  ``sync_batchnorm=True`` converts the BatchNorm layers to ``SyncBatchNorm``, which uses the
  statistics of the global batch.

All ranks must build the same model, wrap it in the same order, and call ``sync_gradients``
equally often: collectives pair up by order, not by name.
"""

import contextlib
import time

import numpy as np

from minigrad import backend
from minigrad.nn.module import Module
from minigrad.parallel import comm as mpi_comm
from minigrad.parallel.sync_batchnorm import convert_sync_batchnorm
from minigrad.tensor import Tensor
from minigrad.train import Callback


class GradientBucket:
    """Parameters whose gradients travel in one flat buffer: each gradient at its offset, then
    one "has a gradient" flag per parameter (summed over ranks with the gradients).
    ``pack`` fills ``local``; the all-reduce writes the sums into ``total``."""

    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p.data.size for p in params])
        self.local = np.empty(self.offsets[-1] + len(params), dtype=params[0].dtype)
        self.total = np.empty_like(self.local)

    def _slots(self):
        return enumerate(zip(self.params, self.offsets, self.offsets[1:]))

    def pack(self):
        flags = self.local[self.offsets[-1]:]
        for index, (p, start, end) in self._slots():
            if p.grad is None:
                self.local[start:end], flags[index] = 0, 0
            else:
                self.local[start:end] = backend.to_device(p.grad.data, "cpu").reshape(-1)
                flags[index] = 1

    def unpack_mean(self, world):
        """Gradients <- the summed buffer / world size; None where no rank had a gradient."""
        flags = self.total[self.offsets[-1]:]
        for index, (p, start, end) in self._slots():
            if flags[index] == 0:
                p.grad = None
                continue
            mean = (self.total[start:end] / world).reshape(p.shape)
            p.grad = Tensor(backend.to_device(mean, p.device))


def make_buckets(params, cap_bytes):
    """Group ``params`` (in the order given) into buckets of at most ``cap_bytes`` of gradient
    and one dtype each; a parameter larger than the cap gets a bucket of its own."""
    buckets, current, current_bytes = [], [], 0
    for p in params:
        size = p.data.size * p.data.itemsize
        if current and (current_bytes + size > cap_bytes or p.dtype != current[0].dtype):
            buckets.append(GradientBucket(current))
            current, current_bytes = [], 0
        current.append(p)
        current_bytes += size
    if current:
        buckets.append(GradientBucket(current))
    return buckets


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``comm`` (default: all ranks).

    ``ddp(x)`` runs the module; its parameters, ``state_dict`` and modes are the module's
    (keys prefixed "module.", as in PyTorch; save ``ddp.module.state_dict()`` for a plain
    model). See the module docstring for ``bucket_cap_mb``, ``overlap``, ``sync_batchnorm``
    and ``broadcast_buffers``. ``reductions`` counts the bucket all-reduces done so far and
    ``sync_seconds`` the time spent in them (waiting for slower ranks included).
    """

    def __init__(self, module, comm=None, bucket_cap_mb=1.0, overlap=True,
                 sync_batchnorm=False, broadcast_buffers=True):
        super().__init__()
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, "
                             f"got {bucket_cap_mb}")
        self.comm = mpi_comm.resolve(comm)
        if sync_batchnorm:
            module = convert_sync_batchnorm(module, self.comm)
        self.module = module
        self.overlap, self.broadcast_buffers = overlap, broadcast_buffers
        self.require_sync, self.reductions, self.sync_seconds = True, 0, 0.0
        trainable = [p for p in module.parameters() if p.requires_grad]
        # Backward reaches the last layers first, so their gradients lead the buckets.
        self.buckets = make_buckets(trainable[::-1], int(bucket_cap_mb * 2**20))
        self.broadcast_state()

    @property
    def world_size(self):
        return self.comm.Get_size()

    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers:
            self._broadcast(self.module.buffers())
        return self.module(*args, **kwargs)

    def _broadcast(self, tensors):
        if self.world_size == 1:
            return
        for tensor in tensors:
            if tensor is None:
                continue
            data = backend.to_device(tensor.data, "cpu")  # MPI sends host memory
            mpi_comm.broadcast(data, 0, self.comm)
            if data is not tensor.data:
                tensor.data[...] = backend.to_device(data, tensor.device)

    def broadcast_state(self):
        """Copy rank 0's parameters and buffers to every rank."""
        self._broadcast(list(self.module.parameters()) + list(self.module.buffers()))

    def sync_gradients(self):
        """Replace every gradient by its average over the ranks (a no-op inside ``no_sync``
        and for a single rank)."""
        if not self.require_sync or self.world_size == 1:
            return
        start = time.perf_counter()
        if self.overlap:
            self._reduce(self.buckets)
        else:
            for bucket in self.buckets:
                self._reduce([bucket])
        self.sync_seconds += time.perf_counter() - start

    def _reduce(self, buckets):
        requests = []
        for bucket in buckets:
            bucket.pack()
            requests.append(mpi_comm.start_all_reduce(bucket.local, bucket.total, self.comm))
        mpi_comm.wait(requests, f"gradient all-reduce ({len(buckets)} bucket(s))")
        for bucket in buckets:
            bucket.unpack_mean(self.world_size)
        self.reductions += len(buckets)

    @contextlib.contextmanager
    def no_sync(self):
        """Skip gradient averaging inside the block (see the module docstring)."""
        previous, self.require_sync = self.require_sync, False
        try:
            yield
        finally:
            self.require_sync = previous

    def extra_repr(self):
        return (f"world_size={self.world_size}, buckets={len(self.buckets)}, "
                f"overlap={self.overlap}")


class DistributedCallback(Callback):
    """What ``fit`` needs for data-parallel training with ``ddp``:

    * after every backward, ``ddp.sync_gradients()``;
    * each epoch's results averaged over the ranks before the scheduler, early stopping and
      checkpoints see them (train_* weighted by each rank's number of samples, val_* plain
      means: with a DistributedSampler every rank has as many, and an unsharded validation
      set gives every rank the same values), so every rank takes the same decisions;
    * only rank 0 prints, shows a progress bar and writes checkpoints (``state.is_main``);
    * all ranks leave ``fit`` together, once the checkpoints are written (a barrier).

    Put it first in ``callbacks`` so other callbacks see averaged gradients.
    """

    def __init__(self, ddp):
        self.ddp, self.samples = ddp, 0

    def on_train_begin(self, state):
        state.is_main = mpi_comm.is_main(self.ddp.comm)

    def on_epoch_begin(self, state):
        self.samples = 0

    def on_after_backward(self, state):
        self.ddp.sync_gradients()

    def on_batch_end(self, state):
        self.samples += len(state.targets)

    def on_epoch_metrics(self, state, record):
        train = [k for k in record if k.startswith("train_")]
        val = [k for k in record if k.startswith("val_")]
        local = np.array([self.samples] + [record[k] * self.samples for k in train]
                         + [record[k] for k in val], dtype=np.float64)
        total = mpi_comm.all_reduce(local, "sum", self.ddp.comm)
        for i, key in enumerate(train):
            record[key] = float(total[1 + i] / total[0])
        for i, key in enumerate(val):
            record[key] = float(total[1 + len(train) + i] / self.ddp.world_size)

    def on_train_end(self, state):
        mpi_comm.barrier(self.ddp.comm)
