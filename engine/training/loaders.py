"""A run's data loaders: the training loader (seeded per-sample augmentation, a sampler that
shards, shuffles per epoch and can skip into the epoch for an exact resume) and the validation
loader (each rank its shard), with the worker count.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from frelon.common.train_config import TrainConfig
from ..distributed import Ranks
from ..sampling import Seeded, ShardSampler, TrainSampler


def auto_workers(cfg: TrainConfig) -> int:
    """--workers, or with -1 the CPU cores shared by the ranks, minus one for the rank itself (at most 8)."""
    if cfg.workers >= 0:
        return cfg.workers
    return max(0, min(8, (os.cpu_count() or 1) // max(1, cfg.world_size)) - 1)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader | None           # None without a validation set
    sampler: TrainSampler            # the training loader's: set_epoch(epoch, skip) before each epoch


def build_loaders(datasets: tuple, cfg: TrainConfig, ranks: Ranks, workers: int, batch: int,
                  sample_weights: list[float] | None = None) -> Loaders:
    """The loaders over the task's (train, val, collate), in micro-batches of `batch` images per rank
    (the settled config's batch, smaller after an out-of-memory: training/run.py); with
    `sample_weights` (--balance sampler: training/balancing.py), weighted draws."""
    train_ds, val_ds, collate = datasets
    sampler = TrainSampler(len(train_ds), ranks.world_size, ranks.rank, cfg.seed, sample_weights)
    common = dict(num_workers=workers, collate_fn=collate,
                  pin_memory=ranks.device.type == "cuda",
                  persistent_workers=workers > 0,
                  # the loader's own generator: creating an iterator must not consume the
                  # global RNG, or a resumed run would drift from an uninterrupted one
                  generator=torch.Generator().manual_seed(cfg.seed))
    train = DataLoader(Seeded(train_ds), batch_size=batch, sampler=sampler, drop_last=True, **common)
    val = None
    if val_ds is not None and len(val_ds) > 0:
        val = DataLoader(Seeded(val_ds), batch_size=batch,
                         sampler=ShardSampler(len(val_ds), ranks.world_size, ranks.rank), **common)
    return Loaders(train, val, sampler)
