"""``DistributedSampler``: which samples each rank reads, so that N ranks share out one epoch.

Every rank computes the same epoch order (the same permutation, seeded by ``(seed, epoch)``
exactly as a shuffling ``DataLoader`` does) and keeps every N-th index starting at its rank::

    order  = permutation(n)                       (or 0..n-1 without shuffling)
    order += order[:padding]                      so that N divides its length
    shard  = order[rank::N]                       ceil(n / N) indices per rank

The shards are disjoint and together cover the dataset. When N does not divide n, the first
few indices of the order are repeated (``padding`` = N * ceil(n/N) - n of them), so every rank
runs the same number of steps: a rank with one batch fewer would leave the others waiting in
an all-reduce. ``drop_last=True`` drops the tail of the order instead (floor(n / N) each).

Strided shards make batch k of the N ranks together exactly batch k of one process reading
``order`` with an N times larger batch: that is what makes data-parallel training with batch
B/N per rank match single-process training with batch B.

Give it to the loader: ``DataLoader(data, batch_size=32, sampler=DistributedSampler(data))``.
The loader passes its epoch counter to ``epoch_order``, so (unlike PyTorch) there is no
``set_epoch`` call to forget; the sampler's ``seed`` (default 0) must be the same on every rank.
"""

import math

import numpy as np

from minigrad.parallel import comm as mpi_comm


class DistributedSampler:
    """Rank ``rank``'s share of ``dataset`` (anything with ``len``, or the length itself) among
    ``num_replicas`` ranks (both default to the world communicator's)."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        self.dataset_size = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        self.num_replicas = mpi_comm.world_size() if num_replicas is None else num_replicas
        self.rank = mpi_comm.rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}), "
                             f"got {self.rank}")
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        if drop_last:
            self.num_samples = self.dataset_size // self.num_replicas
        else:
            self.num_samples = math.ceil(self.dataset_size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __len__(self):
        """The number of indices this rank reads per epoch (the same on every rank)."""
        return self.num_samples

    def epoch_order(self, epoch):
        """This rank's sample indices for epoch ``epoch``, in the order to visit them."""
        n = self.dataset_size
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle \
            else np.arange(n)
        if self.total_size > n:  # pad by repeating the start (more than once if n < N)
            order = np.resize(order, self.total_size)
        return order[:self.total_size][self.rank::self.num_replicas]

    def __repr__(self):
        return (f"DistributedSampler(rank {self.rank} of {self.num_replicas}, "
                f"{self.num_samples} of {self.dataset_size} samples, shuffle={self.shuffle})")
