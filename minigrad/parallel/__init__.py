"""Parallel and distributed training on MPI (through mpi4py): data parallel and pipeline parallel.

One script runs as N processes ("ranks"), on one machine or on many::

    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python train.py
    OPENBLAS_NUM_THREADS=1 mpiexec -f hosts -n 8 python train.py     # MPICH, a hostfile

``.venv/bin/pip install -e ".[mpi]"`` installs mpi4py and MPICH. Without them every function below
runs as a single process (rank 0 of 1), so the same script also runs with plain ``python``.

Processes and collectives (``comm``):
    init(timeout=None)          start MPI once; uncaught exceptions then abort every rank
    rank(), world_size(), is_main(), split(color)   (sub-communicators)
    all_reduce(a, op), broadcast(a, root), broadcast_object(obj, root), all_gather(a), barrier()
    set_timeout(seconds)        collectives past it abort the job with a message (default 300)
    abort_on_error()            a block whose exception aborts the job (for test runners)
Data (``sampler``):
    DistributedSampler(data)    each rank's disjoint shard of every epoch, padded to equal
                                lengths; ``DataLoader(data, batch_size, sampler=...)``
Data parallel (``ddp``, ``sync_batchnorm``):
    DistributedDataParallel(model, bucket_cap_mb=1.0, overlap=True, sync_batchnorm=False,
                            find_unused_parameters=False)
        loss.backward() averages the gradients; .no_sync()  .broadcast_state()
    DistributedCallback(ddp)    for ``fit``: averages metrics over ranks, only rank 0 prints
                                and checkpoints
    SyncBatchNorm, convert_sync_batchnorm(model), all_reduce_sum (differentiable)
Ring all-reduce for reading (``ring``):
    ring_all_reduce(a)          reduce-scatter + all-gather on Isend/Irecv, and its cost model
Pipeline (model) parallel (``pipeline``):
    PipelineParallel(sequential, micro_batches=4, balance=None)
        .forward_backward(x, y, loss_fn)   GPipe: all micro-batch forwards, then backwards

A typical data-parallel script::

    from minigrad import parallel
    parallel.init()
    model = parallel.DistributedDataParallel(LeNet5())
    loader = DataLoader(train, batch_size=32, sampler=parallel.DistributedSampler(train))
    fit(model, loader, SGD(model.parameters(), lr=0.05), F.cross_entropy, epochs=3,
        callbacks=[parallel.DistributedCallback(model)])
"""

from minigrad.parallel.comm import (abort, abort_on_error, all_gather, all_reduce, barrier,
                                    broadcast, broadcast_object, get_timeout, init, is_main,
                                    rank, set_timeout, split, world_size)
from minigrad.parallel.ddp import DistributedCallback, DistributedDataParallel
from minigrad.parallel.pipeline import PipelineParallel
from minigrad.parallel.ring import ring_all_reduce, ring_bytes_sent
from minigrad.parallel.sampler import DistributedSampler
from minigrad.parallel.sync_batchnorm import (SyncBatchNorm, all_reduce_sum,
                                              convert_sync_batchnorm)

__all__ = ["init", "rank", "world_size", "is_main", "split", "all_reduce", "broadcast",
           "broadcast_object", "all_gather", "barrier", "set_timeout", "get_timeout", "abort",
           "abort_on_error", "DistributedSampler", "DistributedDataParallel",
           "DistributedCallback", "SyncBatchNorm", "convert_sync_batchnorm", "all_reduce_sum",
           "ring_all_reduce", "ring_bytes_sent", "PipelineParallel"]
