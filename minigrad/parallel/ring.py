"""Ring all-reduce on point-to-point messages: how an all-reduce can cost each rank about twice
the data, whatever the number of ranks (Patarasuk & Yuan 2009; Baidu's 2017 "ring allreduce"
that Horovod made popular). Written for reading: DDP does not use it. DDP starts one
non-blocking MPI ``Iallreduce`` per gradient bucket (``comm.start_all_reduce``, the call
``comm.all_reduce`` also makes), and MPI picks among this and other algorithms by message
size; the tests check this one gives the same sums.

The N ranks stand in a ring: rank r sends to r+1 and receives from r-1 (mod N). Each rank cuts
its array of D values into N chunks (``np.array_split``: sizes differ by at most one, so any D
works, even D < N).

1. Reduce-scatter, N-1 steps. At step s rank r sends chunk (r - s) mod N to the right and adds
   the chunk (r - s - 1) mod N arriving from the left into its own. A chunk travels round the
   ring collecting one rank's contribution per hop; after N-1 hops rank r holds the complete
   sum of chunk (r + 1) mod N.
2. All-gather, N-1 steps. At step s rank r sends chunk (r + 1 - s) mod N, a finished sum, to the
   right and stores the chunk (r - s) mod N arriving from the left. After N-1 steps every rank
   holds every finished chunk.

Cost model (alpha: latency per message, beta: seconds per byte, gamma: seconds per byte added;
D bytes per rank). Each rank sends, and receives, 2(N-1) messages of D/N bytes:

    bytes sent per rank = 2 (N-1)/N * D           (< 2D for any N)
    time = 2 (N-1) alpha + 2 (N-1)/N * D beta + (N-1)/N * D gamma

The bandwidth term hardly grows with N, which is why the ring suits the large gradients of
data-parallel training; the latency term grows with N, which is why small messages are better
served by trees (log N steps), and why DDP packs gradients into buckets.

Each step posts the receive and the send non-blocking and waits for both. With blocking
``Send`` then ``Recv`` every rank could sit in ``Send`` waiting for its right neighbour to
post a receive, which it never does, as it is itself in ``Send``: a deadlock as soon as
messages are too large for MPI to buffer.
"""

import numpy as np

from minigrad.parallel import comm as mpi_comm

REDUCE_SCATTER_TAG, ALL_GATHER_TAG = 71, 72


def _exchange(comm, send, receive, tag, timeout):
    """Send ``send`` to the right neighbour while receiving ``receive`` from the left."""
    rank, size = comm.Get_rank(), comm.Get_size()
    requests = [comm.Irecv(receive, source=(rank - 1) % size, tag=tag),
                comm.Isend(send, dest=(rank + 1) % size, tag=tag)]
    mpi_comm.wait(requests, f"ring all-reduce exchange (tag {tag})", timeout)


def reduce_scatter(chunks, comm, timeout=None):
    """Step 1, in place: afterwards ``chunks[(rank + 1) % N]`` is the sum over all ranks."""
    rank, size = comm.Get_rank(), comm.Get_size()
    for step in range(size - 1):
        send, arriving = chunks[(rank - step) % size], chunks[(rank - step - 1) % size]
        incoming = np.empty_like(arriving)
        _exchange(comm, send, incoming, REDUCE_SCATTER_TAG, timeout)
        arriving += incoming


def all_gather(chunks, comm, timeout=None):
    """Step 2, in place: pass the finished chunks round until every rank has them all."""
    rank, size = comm.Get_rank(), comm.Get_size()
    for step in range(size - 1):
        send, arriving = chunks[(rank + 1 - step) % size], chunks[(rank - step) % size]
        _exchange(comm, send, arriving, ALL_GATHER_TAG, timeout)


def ring_all_reduce(array, comm=None, timeout=None):
    """The elementwise sum of ``array`` over all ranks (a new array, same shape and dtype),
    computed with the ring algorithm above."""
    comm = mpi_comm.resolve(comm)
    result = np.array(array, copy=True, order="C")
    flat = result.reshape(-1)  # a view: the chunks below are views of result
    chunks = np.array_split(flat, comm.Get_size())
    if comm.Get_size() > 1:
        reduce_scatter(chunks, comm, timeout)
        all_gather(chunks, comm, timeout)
    return result


def ring_bytes_sent(nbytes, world_size):
    """Bytes each rank sends in a ring all-reduce of ``nbytes``: 2 (N-1)/N of them (the chunks
    of ``np.array_split``, so exact to the byte only when N divides the element count)."""
    return 2 * (world_size - 1) * nbytes / world_size
