"""Ranks: who am I, which device, and the few collectives the training loop needs.

One process (world size 1) needs no process group. Several ranks are started by torchrun
(launch.py), which sets RANK / WORLD_SIZE / LOCAL_RANK; CUDA ranks use NCCL, CPU ranks gloo —
the same DDP code path, so the tests exercise on CPU what runs on GPUs.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigurationError

# A rank that dies or hangs must end the run in bounded time: collectives give up after this.
TIMEOUT_S = int(os.environ.get("FRELON_DIST_TIMEOUT", "120"))


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, gpus: int, local_rank: int = 0) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or gpus > 0:
        if not torch.cuda.is_available():
            raise ConfigurationError("CUDA was asked for but no GPU is visible",
                                     hint="drop --gpus / --device cuda to train on the CPU")
        return torch.device("cuda", local_rank)
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def setup(requested_device: str, gpus: int) -> Ranks:
    """Join the process group when started by torchrun; otherwise a single rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, gpus, local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return Ranks(rank, world, local, device)


def teardown(together: bool = False) -> None:
    """Leave the process group. `in_step`: every rank got here the same way (a normal end), so
    they first wait for each other — a rank that destroys gloo while a peer still talks to it
    can abort at exit. After a failure there is no barrier: the peers may be gone."""
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    if ranks.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_objects(obj, ranks: Ranks) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not ranks.distributed:
        return [obj]
    out = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out
