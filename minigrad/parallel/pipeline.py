"""Pipeline (model) parallelism: a Sequential cut into stages, one per rank, GPipe's schedule.

Data parallelism copies the whole model onto every rank; when a model does not fit on one
device, model parallelism splits it instead. The simplest split of a Sequential is by layers:
rank s holds the *stage* ``layers[a_s:a_{s+1}]``. A forward pass sends the activations of
stage s to rank s+1; the backward pass sends dL/d(activations) back from rank s+1 to rank s,
where ``activations.backward(grad)`` continues the chain rule through stage s.

Run naively, one batch at a time, only one rank works at any moment. GPipe (Huang et al.
2019) cuts the batch into M micro-batches: stage s works on micro-batch m while stage s+1
works on m-1, so the stages overlap. The schedule used here is GPipe's: all M forwards, then
all M backwards (last micro-batch first), gradients accumulating in each stage's parameters,
then one optimizer step, the same step as for the whole batch, because

    L = sum_m (B_m / B) L_m     (L_m: the mean loss of micro-batch m, B_m its size)

and each micro-batch's loss is scaled by B_m / B before its backward. With S stages of equal
cost, each rank idles for S-1 of the M+S-1 time slots of the forward (and of the backward):
the *bubble*, a fraction (S-1)/(M+S-1) of the time, so more micro-batches mean less idling
(and more, smaller messages). Caveat: a BatchNorm inside the pipeline normalizes each
micro-batch on its own, which is no longer the same as training on the whole batch.

Messages. A receiver must know how much to receive, so every array travels as a fixed-size
header (dtype code, number of axes, shape) and then its data, both non-blocking (a stage
sends and goes on with the next micro-batch); tags tell micro-batches and directions apart.

Every rank is given the whole batch (x, y), loaded as usual; stage 0 reads x, the last stage
reads y. ``forward_backward`` returns the batch's loss on every rank.
"""

from collections import OrderedDict

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn.containers import Sequential
from minigrad.nn.module import Module
from minigrad.parallel import comm as mpi_comm
from minigrad.tensor import Tensor

DTYPES = (np.float32, np.float64, np.float16, np.int64, np.int32)
MAX_AXES = 8
HEADER = 2 + MAX_AXES  # dtype code, number of axes, the shape padded with zeros


def _array(batch):
    return batch.data if isinstance(batch, Tensor) else np.asarray(batch)


def even_balance(num_layers, stages):
    """Layers per stage when split as evenly as possible, e.g. 7 layers, 2 stages: [4, 3]."""
    return [len(part) for part in np.array_split(np.arange(num_layers), stages)]


class PipelineParallel(Module):
    """Rank s of ``comm`` keeps stage s of ``sequential`` (an ``nn.Sequential``).

    ``balance``: the number of layers of each stage, one entry per rank (default: as even a
    split as possible; balance by cost for speed). ``micro_batches``: M, into how many pieces
    ``forward_backward`` cuts a batch. The stage is ``self.stage``; its ``state_dict`` keys are
    the original Sequential's (layer numbers included), so stages can be saved and merged.
    """

    def __init__(self, sequential, micro_batches=4, balance=None, comm=None):
        super().__init__()
        if not isinstance(sequential, Sequential):
            raise TypeError(f"PipelineParallel: expected an nn.Sequential to cut into stages, "
                            f"got {type(sequential).__name__}")
        self.comm = mpi_comm.resolve(comm)
        self.rank, self.stages = self.comm.Get_rank(), self.comm.Get_size()
        layers = list(sequential.named_children())
        balance = even_balance(len(layers), self.stages) if balance is None else list(balance)
        if len(balance) != self.stages or sum(balance) != len(layers) or min(balance) < 1:
            raise ValueError(f"PipelineParallel: balance {balance} must give each of the "
                             f"{self.stages} ranks at least one layer, {len(layers)} in all")
        if micro_batches < 1:
            raise ValueError(f"PipelineParallel: micro_batches must be >= 1, got {micro_batches}")
        start = sum(balance[:self.rank])
        self.stage = Sequential(OrderedDict(layers[start:start + balance[self.rank]]))
        self.balance, self.micro_batches = balance, micro_batches
        self.first, self.last = self.rank == 0, self.rank == self.stages - 1

    # ------------------------------------------------------------------ messages
    def _send(self, array, dest, tag):
        """Start sending ``array`` (header, then data); returns the requests and buffers,
        which must live until the requests complete."""
        array = np.ascontiguousarray(array)
        header = np.zeros(HEADER, dtype=np.int64)
        header[:2] = DTYPES.index(array.dtype.type), array.ndim
        header[2:2 + array.ndim] = array.shape
        return [self.comm.Isend(header, dest=dest, tag=tag),
                self.comm.Isend(array, dest=dest, tag=tag), header, array]

    def _receive(self, source, tag, what):
        header = np.empty(HEADER, dtype=np.int64)
        mpi_comm.wait(self.comm.Irecv(header, source=source, tag=tag), what)
        shape = tuple(header[2:2 + header[1]])
        array = np.empty(shape, dtype=DTYPES[header[0]])
        mpi_comm.wait(self.comm.Irecv(array, source=source, tag=tag), what)
        return array

    @staticmethod
    def _tags(micro_batch):
        """(forward tag, backward tag) of a micro-batch."""
        return 2 * micro_batch, 2 * micro_batch + 1

    # ------------------------------------------------------------------ schedule
    def _forward_all(self, x, y, loss_fn, pieces, outbox):
        """Forward every micro-batch through this stage; returns [(input, output)], where the
        last stage's output is its micro-batch's loss scaled by B_m / B."""
        kept = []
        for m, index in enumerate(pieces):
            forward_tag, _ = self._tags(m)
            if self.first:
                inputs = Tensor(_array(x)[index])
            else:
                inputs = Tensor(self._receive(self.rank - 1, forward_tag,
                                              f"activations of micro-batch {m}"),
                                requires_grad=True)
            outputs = self.stage(inputs)
            if self.last:
                if loss_fn is not None:
                    outputs = loss_fn(outputs, Tensor(_array(y)[index])) * (len(index) / len(x))
            else:
                outbox.extend(self._send(outputs.data, self.rank + 1, forward_tag))
            kept.append((inputs, outputs))
        return kept

    def _backward_all(self, kept, outbox):
        for m in reversed(range(len(kept))):
            inputs, outputs = kept[m]
            _, backward_tag = self._tags(m)
            if self.last:
                outputs.backward()
            else:
                outputs.backward(Tensor(self._receive(self.rank + 1, backward_tag,
                                                      f"gradient of micro-batch {m}")))
            if not self.first:
                outbox.extend(self._send(inputs.grad.data, self.rank - 1, backward_tag))

    def _finish(self, outbox):
        mpi_comm.wait([item for item in outbox if not isinstance(item, np.ndarray)],
                      "pipeline sends")

    def _pieces(self, x):
        """The sample indices of each micro-batch (fewer than M for a batch smaller than M)."""
        return np.array_split(np.arange(len(x)), min(self.micro_batches, len(x)))

    def forward_backward(self, x, y, loss_fn):
        """One GPipe pass over the batch (x, y): every micro-batch forward, then every one
        backward. Gradients accumulate in this stage's parameters (zero them before, step
        after, as usual). Returns the batch's mean loss, the same on every rank."""
        outbox = []
        kept = self._forward_all(x, y, loss_fn, self._pieces(x), outbox)
        self._backward_all(kept, outbox)
        self._finish(outbox)
        loss = np.array([sum(out.item() for _, out in kept) if self.last else 0.0])
        return float(mpi_comm.broadcast(loss, self.stages - 1, self.comm)[0])

    def forward(self, x):
        """Inference through the pipeline (no graph): the output for ``x`` on every rank."""
        outbox, pieces = [], self._pieces(x)
        with no_grad():
            kept = self._forward_all(x, None, None, pieces, outbox)
        self._finish(outbox)
        output = np.concatenate([out.data for _, out in kept]) if self.last else None
        return Tensor(mpi_comm.broadcast_object(output, self.stages - 1, self.comm))

    def extra_repr(self):
        return (f"rank {self.rank} of {self.stages}, balance={self.balance}, "
                f"micro_batches={self.micro_batches}")
