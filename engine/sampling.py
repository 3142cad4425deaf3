"""Which samples each rank sees, in which order, with which augmentation seed.

Training order comes from torch's DistributedSampler (shuffled with the run's seed and the epoch,
`set_epoch`), also for a single rank. Each index travels with its own seed, derived from
(run seed, epoch, index): a sample's augmentation does not depend on the number of workers or on
where a run was resumed, so a resumed run sees exactly the batches an uninterrupted run would.
Validation is sharded without padding (rank r takes r, r+W, r+2W…) so that summed metrics over
ranks equal a single-process evaluation.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2 ** 63)


class TrainSampler(Sampler):
    """(index, seed) pairs for one rank's epoch, optionally skipping the first `skip` samples."""

    def __init__(self, n: int, world_size: int, rank: int, seed: int):
        self._inner = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                         shuffle=True, seed=seed, drop_last=False)
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip
        self._inner.set_epoch(epoch)

    def __iter__(self):
        for pos, index in enumerate(self._inner):
            if pos >= self.skip:
                yield index, sample_seed(self.seed, self.epoch, index)

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
