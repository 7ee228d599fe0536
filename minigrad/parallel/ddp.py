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
* it averages the gradients inside ``loss.backward()``, in *buckets*: the parameters are
  grouped into a few flat buffers of at most ``bucket_cap_mb`` each, in reverse registration
  order (roughly the order backward finishes them), and each buffer is reduced with one
  ``Iallreduce``. One message per bucket instead of one per parameter saves the per-message
  latency alpha of the cost alpha + bytes * beta; a bucket much larger than the model would
  leave nothing to overlap;
* overlap: DDP registers one engine hook (``autograd.register_grad_ready_hook``), which the
  engine calls once per backward for each leaf whose gradient is complete; only the wrapped
  model's parameters count (looked up by identity), so another model's backward passes it
  by. When the last parameter of a bucket is ready, the bucket is packed and its
  ``Iallreduce`` started, and it travels while backward computes the earlier layers. Buckets
  start in index order only (bucket k after bucket k-1): MPI pairs collectives by the order
  they start, so every rank starts them alike even where its gradients finish in another
  order. MPI moves a started message only while the rank calls into it, so every later hook
  call polls the started buckets (``comm.progress``). ``overlap=False`` starts all buckets
  only when every parameter is ready: communication after computation, the baseline that
  ``benchmarks/ddp_overlap.py`` times;
* the end of the pass: the engine has no "backward finished" hook, so for DDP backward is
  over when every parameter has been reported ready. That hook call, made by the engine on
  the last parameter, waits for every bucket and writes the averages into ``.grad``, so they
  are there when ``loss.backward()`` returns. A forward in grad mode outside ``no_sync``
  arms this for the next backward (PyTorch's ``prepare_for_backward``); hooks of an unarmed
  DDP do nothing (a backward through no DDP forward, or a second backward through a
  retained graph, is left alone);
* parameters that get no gradient: a parameter outside the backward's graph is never
  reported ready, so its bucket could never start. With ``find_unused_parameters=True``
  (PyTorch's option) every forward walks the graph back from its outputs, and the
  parameters it does not reach are marked ready at the first hook call of the backward. A
  parameter without a gradient on some rank counts as a zero gradient there; one without a
  gradient on every rank keeps ``grad = None`` (a "has a gradient" flag per parameter
  travels in the bucket), so optimizers skip it exactly as in a single process. With the
  default ``find_unused_parameters=False`` (PyTorch's default: the walk costs time every
  step) such a backward leaves the reduction unfinished, and the next forward raises a
  RuntimeError naming the parameters that got no gradient, rather than wait for buckets that
  never start. A loss term outside the forward that reaches a parameter the walk missed (a
  penalty on the weights) is refused while buckets are pending (the parameter is "marked
  ready twice"); after the last bucket its gradient stays this rank's own;
* ``no_sync()``: a forward inside the block does not arm the reduction, so its backward
  accumulates gradients locally (gradient accumulation), and the first backward after a
  forward outside the block averages the accumulated sum: one communication for several
  micro-steps. As in PyTorch, the forward decides;
* batch norm: with the default ``sync_batchnorm=False`` each rank normalizes with its own
  batch's statistics, and (``broadcast_buffers=True``, PyTorch's default) rank 0's running
  statistics are broadcast before every training forward so all copies evaluate alike.
  ``sync_batchnorm=True`` converts the BatchNorm layers to ``SyncBatchNorm``, which uses the
  statistics of the global batch.

With one rank there is nothing to average: DDP registers no hook and is the plain model.
All ranks must build the same model, wrap it in the same order, and run as many forwards and
backwards: collectives pair up by order, not by name.
"""

import contextlib
import time
import weakref

import numpy as np

from minigrad import autograd, backend
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


class BackwardReduction:
    """The state of one armed backward: how many parameters each bucket still waits for, the
    ids of those reported ready, the requests of the buckets started (in bucket order), and
    the parameters to mark ready at the first report (those the forward's graph misses)."""

    def __init__(self, buckets, unused=()):
        self.waiting = [len(bucket.params) for bucket in buckets]
        self.ready, self.requests, self.unused = set(), [], list(unused)

    @property
    def next_bucket(self):
        return len(self.requests)


def reachable_leaves(output):
    """Ids of the leaves needing a gradient that the graph behind ``output`` (a tensor, or
    tuples, lists and dicts of them) leads to: those its backward will report ready."""
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return set().union(*(reachable_leaves(item) for item in output))
    if not isinstance(output, autograd.TensorBase) or not output.requires_grad:
        return set()
    if output._ctx is None:
        return {id(output)}
    return {id(parent) for node in autograd.topological_order(output._ctx)
            for parent, needed in zip(node.parents, node.needs_input_grad)
            if needed and parent._ctx is None}


def grad_ready_hook_of(ddp):
    """The engine hook of ``ddp``, which holds it weakly: the engine's registry must not keep
    a DDP alive (its finalizer removes the hook)."""
    reference = weakref.ref(ddp)

    def hook(leaf):
        owner = reference()
        if owner is not None:
            owner.on_grad_ready(leaf)
    return hook


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``comm`` (default: all ranks).

    ``ddp(x)`` runs the module; its parameters, ``state_dict`` and modes are the module's
    (keys prefixed "module.", as in PyTorch; save ``ddp.module.state_dict()`` for a plain
    model). ``loss.backward()`` after ``ddp(x)`` leaves every rank's ``.grad`` the average over
    the ranks. See the module docstring for ``bucket_cap_mb``, ``overlap``,
    ``find_unused_parameters``, ``sync_batchnorm`` and ``broadcast_buffers``. ``reductions``
    counts the bucket all-reduces done so far and ``sync_seconds`` the time spent in DDP's hook
    calls (packing, starting, polling, waiting for slower ranks, unpacking).
    """

    def __init__(self, module, comm=None, bucket_cap_mb=1.0, overlap=True,
                 sync_batchnorm=False, broadcast_buffers=True, find_unused_parameters=False):
        super().__init__()
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, "
                             f"got {bucket_cap_mb}")
        self.comm = mpi_comm.resolve(comm)
        if sync_batchnorm:
            module = convert_sync_batchnorm(module, self.comm)
        self.module = module
        self.overlap, self.broadcast_buffers = overlap, broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_sync, self.reductions, self.sync_seconds = True, 0, 0.0
        trainable = [p for p in module.parameters() if p.requires_grad]
        # Backward reaches the last layers first, so their gradients lead the buckets.
        self.buckets = make_buckets(trainable[::-1], int(bucket_cap_mb * 2**20))
        self.bucket_of = {id(p): index for index, bucket in enumerate(self.buckets)
                          for p in bucket.params}
        self.backward_reduction = None  # the BackwardReduction of the armed backward
        self.broadcast_state()
        if self.world_size > 1:
            handle = autograd.register_grad_ready_hook(grad_ready_hook_of(self))
            weakref.finalize(self, handle.remove)

    @property
    def world_size(self):
        return self.comm.Get_size()

    def forward(self, *args, **kwargs):
        self._check_previous_reduction()
        if self.training and self.broadcast_buffers:
            self._broadcast(self.module.buffers())
        output = self.module(*args, **kwargs)
        if self.world_size > 1 and autograd.is_grad_enabled() and not self.require_sync:
            self.backward_reduction = None  # inside no_sync: this backward stays local
        elif self.world_size > 1 and autograd.is_grad_enabled():
            unused = ()
            if self.find_unused_parameters:
                reached = reachable_leaves(output)
                unused = [p for bucket in self.buckets for p in bucket.params
                          if id(p) not in reached]
            self.backward_reduction = BackwardReduction(self.buckets, unused)
        return output

    def _check_previous_reduction(self):
        """RuntimeError, naming the parameters, if the last backward reported some parameters
        ready but not all: their buckets never started, and the gradients are not averaged."""
        if self.backward_reduction is None or not self.backward_reduction.ready:
            return
        missing = [name for name, p in self.module.named_parameters()
                   if id(p) in self.bucket_of and id(p) not in self.backward_reduction.ready]
        raise RuntimeError(
            "DistributedDataParallel: expected to have finished reduction in the prior "
            f"iteration before starting a new one: parameter(s) {', '.join(missing)} got no "
            "gradient in the last backward, so their gradients were not averaged (and other "
            "ranks may wait for them). Pass find_unused_parameters=True when the forward "
            "leaves parameters out, or make the loss depend on every parameter")

    def on_grad_ready(self, leaf):
        """The engine's hook: ``leaf``'s gradient is complete in this backward. Marks it ready
        if it is one of this DDP's parameters and a forward armed the reduction."""
        if self.backward_reduction is None or id(leaf) not in self.bucket_of:
            return
        start = time.perf_counter()
        unused, self.backward_reduction.unused = self.backward_reduction.unused, []
        for param in unused + [leaf]:
            self._mark_ready(param)
        self.sync_seconds += time.perf_counter() - start

    def _mark_ready(self, param):
        reduction = self.backward_reduction
        if id(param) in reduction.ready:
            name = next(n for n, p in self.module.named_parameters() if p is param)
            raise RuntimeError(
                f"DistributedDataParallel: parameter {name} was marked ready twice in one "
                "backward: find_unused_parameters found no path to it from the forward's "
                "outputs, yet the loss reaches it another way (a penalty on the weights?); "
                "compute that term inside the module's forward")
        reduction.ready.add(id(param))
        reduction.waiting[self.bucket_of[id(param)]] -= 1
        if self.overlap or not any(reduction.waiting):
            self._start_full_buckets()
        if reduction.next_bucket == len(self.buckets):
            self._finish()
        else:
            mpi_comm.progress(reduction.requests)

    def _start_full_buckets(self):
        """Start, in bucket order, every bucket whose parameters are all ready."""
        reduction = self.backward_reduction
        while (reduction.next_bucket < len(self.buckets)
               and reduction.waiting[reduction.next_bucket] == 0):
            bucket = self.buckets[reduction.next_bucket]
            bucket.pack()
            reduction.requests.append(
                mpi_comm.start_all_reduce(bucket.local, bucket.total, self.comm))

    def _finish(self):
        """Every bucket started: wait for them all, write the averages into ``.grad``."""
        mpi_comm.wait(self.backward_reduction.requests,
                      f"gradient all-reduce ({len(self.buckets)} bucket(s))")
        for bucket in self.buckets:
            bucket.unpack_mean(self.world_size)
        self.reductions += len(self.buckets)
        self.backward_reduction = None

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

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside the block do not arm the averaging (see the module docstring)."""
        previous, self.require_sync = self.require_sync, False
        try:
            yield
        finally:
            self.require_sync = previous

    def extra_repr(self):
        return (f"world_size={self.world_size}, buckets={len(self.buckets)}, "
                f"overlap={self.overlap}, find_unused_parameters={self.find_unused_parameters}")


class DistributedCallback(Callback):
    """What ``fit`` needs for data-parallel training with ``ddp``:

    * each epoch's results averaged over the ranks before the scheduler, early stopping and
      checkpoints see them (train_* weighted by each rank's number of samples, val_* plain
      means: with a DistributedSampler every rank has as many, and an unsharded validation
      set gives every rank the same values), so every rank takes the same decisions;
    * only rank 0 prints, shows a progress bar and writes checkpoints (``state.is_main``);
    * all ranks leave ``fit`` together, once the checkpoints are written (a barrier).

    The gradients need nothing from it: ``loss.backward()`` averages them (see the module
    docstring), so every callback sees averaged gradients.
    """

    def __init__(self, ddp):
        self.ddp, self.samples = ddp, 0

    def on_train_begin(self, state):
        state.is_main = mpi_comm.is_main(self.ddp.comm)

    def on_epoch_begin(self, state):
        self.samples = 0

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
