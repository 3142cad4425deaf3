"""A run's data loaders: the training loader (seeded per-sample augmentation, a sampler that
shards, shuffles per epoch and can skip into the epoch for an exact resume) and the validation
loader (each rank its shard), with the worker count.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from frelon.common.train_config import TrainConfig
from ..distributed import Ranks
from ..sampling import Seeded, ShardSampler, TrainSampler


PREFETCH = 4      # batches each worker prepares ahead (torch's default is 2): big photos decode unevenly


def auto_workers(cfg: TrainConfig) -> int:
    """--workers, or with -1 the CPU cores this process may use shared by the ranks, minus one for
    the rank itself (a 16-core GPU machine: 15 decoding workers)."""
    if cfg.workers >= 0:
        return cfg.workers
    return max(0, _cores() // max(1, cfg.world_size) - 1)


def _cores() -> int:
    """The cores this process may run on (its affinity: a container's or a SLURM job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
                  prefetch_factor=PREFETCH if workers > 0 else None,
                  # the loader's own generator: creating an iterator must not consume the
                  # global RNG, or a resumed run would drift from an uninterrupted one
                  generator=torch.Generator().manual_seed(cfg.seed))
    train = DataLoader(Seeded(train_ds), batch_size=batch, sampler=sampler, drop_last=True, **common)
    val = None
    if val_ds is not None and len(val_ds) > 0:
        val = DataLoader(Seeded(val_ds), batch_size=batch,
                         sampler=ShardSampler(len(val_ds), ranks.world_size, ranks.rank), **common)
    return Loaders(train, val, sampler)


def pipeline_cost(dataset, workers: int, samples: int = 4) -> dict:
    """What one picture costs the data pipeline (decode + augmentation, in this process, on the
    first `samples` pictures: cold, as the first epoch reads them) and what `workers` deliver at
    that cost. The RNGs are left as they were (a resumed run must not drift)."""
    n = min(samples, len(dataset))
    if n == 0:
        return {}
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        start = time.perf_counter()
        for i in range(n):
            dataset[i]
        seconds = (time.perf_counter() - start) / n
    random.setstate(state)
    return {"ms_per_picture": round(seconds * 1000, 2), "workers": workers,
            "pictures_per_s": round(max(1, workers) / max(seconds, 1e-9), 1)}
