"""``DataLoader``: a dataset cut into batches of Tensors, shuffled reproducibly and resumably.

Each ``iter(loader)`` is one epoch. With ``shuffle=True``, epoch k (counting from 0) visits the
samples in the order

    np.random.default_rng([seed, k]).permutation(len(dataset))

The order depends on nothing but ``(seed, k)``: not on how many batches were read before, nor
on what else drew random numbers. So ``state_dict() = {"seed", "epoch"}`` is all a checkpoint
needs, and a run resumed at an epoch boundary sees exactly the batches the uninterrupted run
would have seen. Without an explicit ``seed`` the loader draws one from minigrad's generator
when it is built, so ``minigrad.manual_seed`` makes the whole run repeatable.

A ``sampler`` replaces this choice of indices: any object with ``len(sampler)`` and
``sampler.epoch_order(epoch)`` (the indices epoch ``epoch`` visits, in order), such as
``minigrad.parallel.DistributedSampler``, which gives each process of a data-parallel run its
own share of every epoch. The loader still counts epochs and passes the count on.

A batch comes from ``dataset.get_batch(indices)`` when the dataset has it (one vectorized
call), otherwise from ``collate_fn([dataset[i] for i in indices])``.

The loader is single-process: batches are read in the main process, when the loop asks for
them. PyTorch's options for worker processes and pinned memory are accepted, and checked as
PyTorch checks them, so code written for ``torch.utils.data.DataLoader`` runs unchanged, but
they do nothing: ``num_workers > 0`` and ``pin_memory=True`` (a warning says so),
``persistent_workers``, ``prefetch_factor``, ``timeout`` (there is no worker to wait for) and
``worker_init_fn`` (never called, as there is no worker to initialise).
"""

import math
import warnings

import numpy as np

from minigrad import random as mg_random
from minigrad.tensor import Tensor, tensor


def _stack(values, field):
    """One field of a list of samples as one Tensor with a new leading batch axis."""
    values = [v.numpy() if isinstance(v, Tensor) else v for v in values]
    shapes = {np.shape(v) for v in values}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: field {field} of the samples has different shapes "
                         f"{sorted(shapes)}; samples in one batch must have equal shapes")
    if isinstance(values[0], (np.ndarray, np.generic)):
        return Tensor(np.stack(values))
    return tensor(values)  # Python numbers: minigrad's dtype rules (float32, int64, bool)


def default_collate(samples):
    """Stack a list of samples into a batch: a tuple with one Tensor per field when samples are
    tuples, e.g. ``[(x0, y0), (x1, y1)] -> (Tensor([x0, x1]), Tensor([y0, y1]))``, or a single
    Tensor when each sample is a single array."""
    if isinstance(samples[0], (tuple, list)):
        return tuple(_stack(values, field) for field, values in enumerate(zip(*samples)))
    return _stack(samples, 0)


def _check_process_options(num_workers, pin_memory, timeout, prefetch_factor,
                           persistent_workers):
    """PyTorch's checks of the worker and memory options (its messages), and the warning that
    here they do nothing."""
    if num_workers < 0:
        raise ValueError("DataLoader: num_workers option should be non-negative; use "
                         "num_workers=0 to disable multiprocessing")
    if timeout < 0:
        raise ValueError("DataLoader: timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                         "multiprocessing; let num_workers > 0 to enable multiprocessing, "
                         "otherwise set prefetch_factor to None")
    if prefetch_factor is not None and prefetch_factor < 0:
        raise ValueError("DataLoader: prefetch_factor option should be non-negative")
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
    if num_workers > 0 or pin_memory:
        warnings.warn(f"DataLoader: num_workers={num_workers}, pin_memory={pin_memory} do "
                      "nothing here: minigrad's loader reads every batch in the main process",
                      stacklevel=3)


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` Tensors, with PyTorch's arguments.

    ``shuffle``: a new order each epoch (see the module docstring; None is False);
    ``drop_last``: skip a last batch smaller than ``batch_size``; ``collate_fn``: turns a list
    of samples into a batch (default ``default_collate``; a dataset's ``get_batch`` is used only
    without one); ``sampler``: chooses the indices of each epoch instead (see the module
    docstring), so it excludes ``shuffle``. The shuffling seed is ``seed``, or else drawn from
    ``generator`` (a ``numpy.random.Generator``, in the place of PyTorch's ``torch.Generator``),
    or else from ``minigrad.random.generator()``.

    ``num_workers``, ``pin_memory``, ``timeout``, ``worker_init_fn``, ``prefetch_factor`` and
    ``persistent_workers`` are checked as PyTorch checks them and otherwise do nothing: this
    loader is single-process (see the module docstring). Every argument after ``shuffle`` is
    keyword-only, as PyTorch's order differs from minigrad's.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, *, sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers=False, seed=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        _check_process_options(num_workers, pin_memory, timeout, prefetch_factor,
                               persistent_workers)
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator (minigrad's "
                            f"random numbers are NumPy's), got {type(generator).__name__}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: give seed or generator, not both (the seed is drawn "
                             "from the generator)")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the "
                             "sampler decides the order; shuffle it there)")
        if sampler is not None and not hasattr(sampler, "epoch_order"):
            raise TypeError(f"DataLoader: a sampler needs an epoch_order(epoch) method and a "
                            f"length, got {type(sampler).__name__}")
        self.dataset, self.batch_size, self.sampler = dataset, int(batch_size), sampler
        self.shuffle, self.drop_last, self.collate_fn = shuffle, drop_last, collate_fn
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor
        self.persistent_workers = persistent_workers
        # Only a shuffling loader draws a seed, so building an evaluation loader does not
        # change what the model's initialisation or dropout draw afterwards.
        if seed is None and shuffle:
            source = mg_random.generator() if generator is None else generator
            seed = int(source.integers(2**63))
        self.seed = seed
        self.epoch = 0  # the epoch the next iter() will run

    def __len__(self):
        """The number of batches in one epoch."""
        samples = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return samples // self.batch_size
        return math.ceil(samples / self.batch_size)

    def epoch_order(self, epoch):
        """The sample indices in the order epoch ``epoch`` visits them."""
        if self.sampler is not None:
            return np.asarray(self.sampler.epoch_order(epoch))
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        # The epoch advances when iteration starts, not when it ends, so an epoch that is cut
        # short still counts and the next one gets a fresh order.
        order = self.epoch_order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._batch(order[start:start + self.batch_size])

    def _batch(self, indices):
        get_batch = getattr(self.dataset, "get_batch", None)
        if self.collate_fn is None and get_batch is not None:
            return tuple(Tensor(array) for array in get_batch(indices))
        collate = default_collate if self.collate_fn is None else self.collate_fn
        return collate([self.dataset[int(i)] for i in indices])

    def state_dict(self):
        """Where the data order stands: ``{"seed": int or None (no shuffling), "epoch": int}``."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        if set(state) != {"seed", "epoch"}:
            raise ValueError(f"DataLoader.load_state_dict: expected the keys 'seed' and "
                             f"'epoch', got {sorted(state)}")
        if self.shuffle and state["seed"] is None:
            raise ValueError("DataLoader.load_state_dict: a shuffling loader needs a seed, "
                             "but the state has seed None (saved from a loader without shuffle?)")
        self.seed = None if state["seed"] is None else int(state["seed"])
        self.epoch = int(state["epoch"])
