"""Which samples each rank sees, in which order, with which augmentation seed.

Training order comes from torch's DistributedSampler (shuffled with the run's seed and the epoch,
`set_epoch`), also for a single rank, or with `--balance sampler` from weighted draws sharded the
same way (`TrainSampler`). Each index travels with its own seed, derived from (run seed, epoch,
index): a sample's augmentation does not depend on the number of workers or on
where a run was resumed, so a resumed run sees exactly the batches an uninterrupted run would.
Validation is sharded without padding (rank r takes r, r+W, r+2W…) so that summed metrics over
ranks equal a single-process evaluation.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler, WeightedRandomSampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2 ** 63)


class TrainSampler(Sampler):
    """(index, seed) pairs for one rank's epoch, optionally skipping the first `skip` samples.

    With `weights` (one per sample: --balance sampler), the epoch is as many draws with
    replacement, in proportion to the weights (torch's WeightedRandomSampler), as the shuffled
    epoch has samples. Every rank draws the same sequence from a generator seeded with (seed,
    epoch) and takes its stride of it (rank r: draws r, r+W, r+2W…), as DistributedSampler shards
    a shuffle: the ranks' shares are disjoint and together one epoch's draws, on any number of
    ranks. A sample drawn twice in an epoch is augmented twice differently: its seed comes from its
    place in the draws."""

    def __init__(self, n: int, world_size: int, rank: int, seed: int, weights: Sequence[float] | None = None):
        self._inner = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                         shuffle=True, seed=seed, drop_last=False)
        self.n, self.world_size, self.rank = n, world_size, rank
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip
        self._inner.set_epoch(epoch)

    def __iter__(self):
        if self.weights is None:
            pairs = ((index, sample_seed(self.seed, self.epoch, index)) for index in self._inner)
        else:
            pairs = self._drawn()
        for pos, pair in enumerate(pairs):
            if pos >= self.skip:
                yield pair

    def _drawn(self):
        """This rank's share of the epoch's weighted draws, each with the seed of its place."""
        total = len(self._inner) * self.world_size
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, 0))
        drawn = list(WeightedRandomSampler(self.weights, total, replacement=True, generator=g))
        for place in range(self.rank, total, self.world_size):
            yield drawn[place], sample_seed(self.seed, self.epoch, self.n + place)

    def __len__(self) -> int:
        return len(self._inner) - self.skip


class ShardSampler(Sampler):
    """Rank r's share of an evaluation set, unpadded; seeds are fixed (evaluation is deterministic)."""

    def __init__(self, n: int, world_size: int, rank: int):
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter((i, 0) for i in self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Seeded(Dataset):
    """Wraps a dataset indexed by (index, seed): the augmentation RNG is seeded per sample."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        return seeded(seed, self.dataset.__getitem__, index)


def seeded(seed: int, fn, *args):
    """fn(*args) with torch's CPU generator seeded: how every sample's augmentation is drawn (the
    training loader through `Seeded`, `frelon preview-augment` directly)."""
    # fork: in the main process (workers=0) the global RNG must not be disturbed. Only the
    # CPU generator is forked, so only it is seeded (torch.manual_seed would reseed CUDA too)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return fn(*args)
