"""Ranks: who am I, which device, and the few collectives the training loop needs.

One process (world size 1) needs no process group. Several ranks are started by torchrun
(launch.py), which sets RANK / WORLD_SIZE / LOCAL_RANK; CUDA ranks use NCCL, CPU ranks gloo —
the same DDP code path, so the tests exercise on CPU what runs on GPUs.

The rule for collectives: NCCL takes CUDA tensors only, gloo CPU ones. Every tensor handed to a
collective goes through the helpers below, which move it to the ranks' device first; nothing
else in the engine calls `torch.distributed` with a tensor.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigurationError
from .heartbeat import TIMEOUT_S   # defined beside the heartbeats: the launcher reads it without torch


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


def pick_device(requested: str, gpus: int, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """`--device auto` is the GPU when there is one, except for `--processes N` ranks (gpus == 0,
    world size > 1): those are CPU ranks on gloo unless `--device cuda` says otherwise."""
    if requested == "cpu" or (requested == "auto" and gpus == 0 and world_size > 1):
        return torch.device("cpu")
    if requested == "cuda" or gpus > 0:
        if not torch.cuda.is_available():
            raise ConfigurationError("CUDA was asked for (--device cuda or --gpus) but no GPU is visible",
                                     hint="use --device cpu (and drop --gpus)")
        return torch.device("cuda", local_rank)
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def setup(requested_device: str, gpus: int) -> Ranks:
    """Join the process group when started by torchrun; otherwise a single rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, gpus, local, world)
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


def all_reduce(t: torch.Tensor, ranks: Ranks, op=dist.ReduceOp.SUM) -> torch.Tensor:
    """Reduce `t` over the ranks, in place; the reduction runs on the ranks' device (a CPU
    tensor goes to the GPU and back for NCCL) and `t` keeps its own device."""
    if not ranks.distributed:
        return t
    on = t.to(ranks.device)
    dist.all_reduce(on, op=op)
    if on is not t:
        t.copy_(on)
    return t


def all_reduce_sum(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    return all_reduce(t, ranks, dist.ReduceOp.SUM)


def all_gather(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Every rank's `t` (same shape everywhere) stacked in rank order, on the CPU."""
    if not ranks.distributed:
        return t.detach().cpu().unsqueeze(0)
    on = t.detach().to(ranks.device).contiguous()
    out = [torch.empty_like(on) for _ in range(ranks.world_size)]
    dist.all_gather(out, on)
    return torch.stack(out).cpu()


def to_device(values: list[float], device: torch.device) -> torch.Tensor:
    """Host numbers as a float64 tensor on `device`, without waiting for the GPU: a plain copy from
    pageable memory makes the host wait until the stream has drained; from pinned memory with
    non_blocking the copy just joins the stream (the pinned block stays reserved until it ran)."""
    t = torch.tensor(values, dtype=torch.float64)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def sync_buffers(model: nn.Module, ranks: Ranks) -> None:
    """Rank 0's buffers (BatchNorm statistics) on every rank, where DDP does not broadcast them
    at each forward (data_parallel under --sync-bn): before evaluating and saving. One broadcast
    per dtype, of the buffers flattened."""
    if not (ranks.distributed and isinstance(model, nn.parallel.DistributedDataParallel)) or model.broadcast_buffers:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for b in model.module.buffers():
        by_dtype.setdefault(b.dtype, []).append(b)
    for group in by_dtype.values():
        flat = torch.cat([b.detach().reshape(-1) for b in group]).to(ranks.device)
        dist.broadcast(flat, src=0)
        for b, part in zip(group, flat.split([b.numel() for b in group])):
            b.data.copy_(part.view_as(b))


def data_parallel(model: nn.Module, ranks: Ranks, sync_bn: bool = False, static_graph: bool = False) -> nn.Module:
    """The model wrapped in DDP as Frelon trains it:
    - the gradients are views into DDP's all-reduce buckets (`gradient_as_bucket_view`): no copy
      into the buckets and back, and one model's worth of gradient memory less;
    - `static_graph` where the caller knows it holds (step.parallel_model): every step uses the
      same parameters the same way, so DDP skips its per-step bookkeeping;
    - under SyncBatchNorm, no broadcast of rank 0's buffers at each forward (micro-batches
      included): every rank computes the same global-batch statistics; sync_buffers aligns them
      once before each evaluation and save. Without it, DDP's default (broadcast) stays."""
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None,
        gradient_as_bucket_view=True, static_graph=static_graph, broadcast_buffers=not sync_bn)


def gather_to_main(obj, ranks: Ranks) -> list | None:
    """Every rank's `obj` in rank order on rank 0 (None on the others): what only rank 0 scores."""
    if not ranks.distributed:
        return [obj]
    out = [None] * ranks.world_size if ranks.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj, ranks: Ranks):
    """Rank 0's `obj` on every rank (one copy sent, not world-size copies as a gather would)."""
    if not ranks.distributed:
        return obj
    box = [obj if ranks.is_main else None]
    dist.broadcast_object_list(box, src=0, device=ranks.device)
    return box[0]


def gather_objects(obj, ranks: Ranks) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not ranks.distributed:
        return [obj]
    out = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out
