"""Processes and messages: who am I (``rank``), how many are we (``world_size``), and the few
collectives the rest of ``minigrad.parallel`` is built on, each with a timeout.

MPI runs the same script as N processes ("ranks" 0..N-1), started by a launcher::

    mpiexec -n 2 python train.py                 # 2 processes on this machine
    mpiexec -f hosts -n 8 python train.py        # 8 processes on the machines listed in hosts

They share nothing; they cooperate only by sending arrays to each other through MPI, here
through mpi4py (``.venv/bin/pip install -e ".[mpi]"`` installs mpi4py and MPICH). A
*collective* is a call every rank of a communicator makes, in the same order: ``all_reduce``
(every rank gets the sum of everyone's arrays), ``broadcast`` (everyone gets rank 0's
array), ``barrier``.

Without MPI. mpi4py is imported only when ``init()`` runs (``rank()`` and friends call it), so
``import minigrad`` never needs MPI. When mpi4py or the MPI library cannot be loaded and no MPI
launcher started us, everything runs as a single process: rank 0 of a world of size 1, where
every collective returns at once. If a launcher did start several processes but mpi4py is
missing, ``init`` raises ImportError (otherwise each process would silently train alone).

Failure without hanging. If one rank dies, the others would wait forever in their next
collective. Two guards:

* ``init()`` installs an exception hook: an uncaught exception on any rank prints that rank's
  traceback and calls ``MPI_Abort``, which ends every rank; the launcher exits non-zero.
  ``abort_on_error()`` does the same for a block of code (inside a test runner, say, where
  exceptions never reach the hook).
* Every collective here is started non-blocking (``Iallreduce``, ``Ibcast``, ...) and polled
  until a deadline (``set_timeout``, default 300 s, or env ``MINIGRAD_MPI_TIMEOUT``); past it
  the rank aborts the job with a message saying which collective did not complete.

Polling: MPI moves data only while a rank calls into it (a large message goes in pieces and
needs many polls), so for up to 20 ms a waiting rank polls continuously, offering its core to
any other runnable process between polls (``sched_yield``: on a busy machine a rank that spins
can keep the rank it waits for off the core); after that it sleeps between polls, so a rank
waiting long for a slower one leaves its core alone (MPI's own blocking calls spin at 100%).
"""

import contextlib
import os
import pickle
import sys
import time
import traceback

import numpy as np

DEFAULT_TIMEOUT = float(os.environ.get("MINIGRAD_MPI_TIMEOUT", 300))
SPIN_SECONDS = 0.02  # poll without pausing this long: most collectives finish within it
POLL_PAUSE = 2e-4  # then sleep this long between polls
ABORT_GRACE_SECONDS = 0.5  # for the message to reach the launcher before MPI_Abort
INSTALL_HINT = '.venv/bin/pip install -e ".[mpi]" (mpi4py and MPICH)'
# Environment variables by which launchers tell a process how many were started.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # MPICH/Intel/Slurm, Open MPI

_yield_core = getattr(os, "sched_yield", lambda: time.sleep(0))
_world = None  # the world communicator once init() has run
_timeout = DEFAULT_TIMEOUT


class SingleProcess:
    """The world when MPI is not available: one process, rank 0. Collectives never reach it
    (they return early for a world of size 1); it only answers who and how many."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def __repr__(self):
        return "SingleProcess()"


def launched_size():
    """How many processes an MPI launcher says it started (1 when none did)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def mpi():
    """The ``mpi4py.MPI`` module; ImportError with the install command when it cannot load."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as error:  # no mpi4py, or mpi4py without libmpi
        raise ImportError(f"minigrad.parallel needs mpi4py and an MPI library ({error}); "
                          f"install them with: {INSTALL_HINT}") from error
    return MPI


def init(timeout=None, abort_on_exception=True):
    """Start MPI (once) and return the world communicator.

    ``timeout``: seconds any collective may take before the job is aborted (None: keep the
    current setting; 0: wait forever). ``abort_on_exception``: when there are several ranks,
    an uncaught exception on one of them aborts them all (see the module docstring).
    Without MPI, returns a ``SingleProcess`` world (see the module docstring).
    """
    global _world
    if timeout is not None:
        set_timeout(timeout)
    if _world is not None:
        return _world
    try:
        _world = mpi().COMM_WORLD
    except ImportError as error:
        if launched_size() > 1:
            raise ImportError(f"an MPI launcher started {launched_size()} processes, but "
                              f"{error}") from error
        _world = SingleProcess()
    if abort_on_exception and _world.Get_size() > 1:
        install_excepthook()
    return _world


def resolve(comm=None):
    """``comm``, or the world communicator when None."""
    return init() if comm is None else comm


def rank(comm=None):
    """This process's number, 0..world_size-1."""
    return resolve(comm).Get_rank()


def world_size(comm=None):
    """The number of processes (1 without MPI)."""
    return resolve(comm).Get_size()


def is_main(comm=None):
    """True on rank 0: the rank that prints, plots and writes checkpoints."""
    return rank(comm) == 0


def split(color, comm=None):
    """Sub-communicators: the ranks that pass the same ``color`` form one (numbered in the
    order of their ranks), e.g. ``split(rank())`` gives every rank a world of its own."""
    comm = resolve(comm)
    return comm if comm.Get_size() == 1 else comm.Split(color, comm.Get_rank())


def set_timeout(seconds):
    """Abort the job when a collective takes longer than ``seconds`` (0 or None: never)."""
    global _timeout
    if seconds is not None and seconds < 0:
        raise ValueError(f"set_timeout: seconds must be >= 0 (0: no timeout), got {seconds}")
    _timeout = seconds or None
    return _timeout


def get_timeout():
    return _timeout


# ----------------------------------------------------------------------------- failure
def abort(message, errorcode=1):
    """Print ``message`` as this rank's and end every rank of the job (``MPI_Abort``).
    Without MPI there is nothing to end but this process: raise RuntimeError instead."""
    world = init(abort_on_exception=False)
    if world.Get_size() == 1:
        raise RuntimeError(message)
    sys.stdout.flush()
    sys.stderr.write(f"minigrad.parallel: rank {world.Get_rank()} of {world.Get_size()}: "
                     f"{message}\n")
    sys.stderr.flush()
    # The launcher relays our output through a pipe; aborting at once sometimes tore the
    # relay down before the message passed, leaving a failed job with no word of why.
    time.sleep(ABORT_GRACE_SECONDS)
    mpi().COMM_WORLD.Abort(errorcode)


def _abort_with_traceback(exc_type, exc, tb):
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    abort(f"uncaught exception, aborting the job:\n{text}")


def install_excepthook():
    """Make an uncaught exception on this rank abort every rank (``init`` calls this)."""
    sys.excepthook = _abort_with_traceback


@contextlib.contextmanager
def abort_on_error():
    """``with abort_on_error(): ...``: an exception in the block aborts the whole job with this
    rank's traceback, so that no other rank is left waiting for this one."""
    try:
        yield
    except Exception:
        _abort_with_traceback(*sys.exc_info())


# ----------------------------------------------------------------------------- waiting
def wait(requests, what, timeout=None):
    """Wait for non-blocking MPI requests (one or a list), polling until the timeout; past it,
    abort the job saying ``what`` did not complete."""
    pending = list(requests) if isinstance(requests, (list, tuple)) else [requests]
    limit = _timeout if timeout is None else (timeout or None)
    start = time.perf_counter()
    while pending:
        pending = [request for request in pending if not request.Test()]
        if not pending:
            break
        waited = time.perf_counter() - start
        if limit is not None and waited > limit:
            abort(f"{what} did not complete within {limit:g} s: another rank has failed, is "
                  f"stuck, or is much slower (raise the limit with "
                  f"minigrad.parallel.set_timeout)")
        if waited > SPIN_SECONDS:
            time.sleep(POLL_PAUSE)
        else:
            _yield_core()


def progress(requests):
    """Let MPI move the started ``requests`` along (one ``Test`` each) without waiting for
    them: a rank that computes between starting a collective and waiting for it calls this
    now and then, since MPI advances messages only inside MPI calls."""
    for request in requests:
        request.Test()


# ----------------------------------------------------------------------------- collectives
REDUCE_OPS = ("sum", "mean", "max", "min")


def _check_op(op):
    if op not in REDUCE_OPS:
        raise ValueError(f"all_reduce: op must be one of {REDUCE_OPS}, got {op!r}")


def _mpi_op(op):
    _check_op(op)
    MPI = mpi()
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def start_all_reduce(send, receive, comm=None, op="sum"):
    """Start reducing ``send`` over the ranks into ``receive`` (contiguous NumPy arrays of one
    shape and dtype); returns the request to ``wait`` on. Neither may be touched until then.
    (Two buffers: MPICH's in-place Iallreduce measured about 3x slower here.)"""
    comm = resolve(comm)
    return comm.Iallreduce(send, receive, op=_mpi_op(op))


def all_reduce(array, op="sum", comm=None, timeout=None):
    """A new array holding the elementwise ``op`` ("sum", "mean", "max", "min") of ``array``
    over all ranks; every rank gets the result."""
    _check_op(op)
    comm = resolve(comm)
    if comm.Get_size() == 1:
        return np.array(array, copy=True, order="C")
    send = np.ascontiguousarray(array)
    result = np.empty_like(send)
    wait(start_all_reduce(send, result, comm, op), f"all_reduce({op}) of shape {send.shape}",
         timeout)
    return result / comm.Get_size() if op == "mean" else result


def broadcast(array, root=0, comm=None, timeout=None):
    """Overwrite ``array`` (in place) with rank ``root``'s; returns it."""
    comm = resolve(comm)
    if comm.Get_size() == 1:
        return array
    buffer = array if array.flags.c_contiguous else np.ascontiguousarray(array)
    wait(comm.Ibcast(buffer, root=root), f"broadcast of shape {buffer.shape} from rank {root}",
         timeout)
    if buffer is not array:
        array[...] = buffer
    return array


def broadcast_object(obj, root=0, comm=None, timeout=None):
    """Rank ``root``'s ``obj`` (anything picklable) on every rank: its byte length, then its
    bytes, each broadcast as an array."""
    comm = resolve(comm)
    if comm.Get_size() == 1:
        return obj
    payload = pickle.dumps(obj) if comm.Get_rank() == root else b""
    length = broadcast(np.array([len(payload)], dtype=np.int64), root, comm, timeout)
    data = np.frombuffer(payload, dtype=np.uint8).copy() if comm.Get_rank() == root else \
        np.empty(int(length[0]), dtype=np.uint8)
    return pickle.loads(broadcast(data, root, comm, timeout).tobytes())


def all_gather(array, comm=None, timeout=None):
    """Every rank's ``array`` stacked in rank order: shape (world_size, *array.shape)."""
    comm = resolve(comm)
    array = np.ascontiguousarray(array)
    if comm.Get_size() == 1:
        return array[None].copy()
    result = np.empty((comm.Get_size(),) + array.shape, dtype=array.dtype)
    wait(comm.Iallgather(array, result), f"all_gather of shape {array.shape}", timeout)
    return result


def barrier(comm=None, timeout=None):
    """Return when every rank has reached this call."""
    comm = resolve(comm)
    if comm.Get_size() > 1:
        wait(comm.Ibarrier(), "barrier", timeout)
