"""Memory readings for `step` events, and the activation bytes a forward pass keeps for backward.

`activation_bytes` is measured with `torch.autograd.graph.saved_tensors_hooks`: every tensor the
forward pass saves for backward goes through the hook; parameters (and views of them) are not
activations and are excluded, and so are the low-precision copies of parameters that autocast
makes (their autograd node is a copy whose source is a parameter); a storage saved twice counts
once. Under gradient checkpointing the
segments' insides are not kept, so the figure shows what checkpointing saves on any device.
"""
from __future__ import annotations

import contextlib
import os

import psutil
import torch


# what a reading holds, per device type; `peak` is the high-water mark since the previous reading
FIELDS = {"cuda": ("allocated", "peak", "reserved"), "cpu": ("rss",)}


def reading_tensor(device: torch.device, rank: int = 0) -> torch.Tensor:
    """This process's memory on `device` as int64 [rank, device index (-1: CPU), *FIELDS], in
    bytes: one small tensor, so the ranks' readings travel in one all-gather. Resets the CUDA
    peak, so the next reading's peak covers the steps in between only."""
    if device.type == "cuda":
        values = [torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device),
                  torch.cuda.memory_reserved(device)]
        torch.cuda.reset_peak_memory_stats(device)
        index = device.index if device.index is not None else torch.cuda.current_device()
    else:
        values, index = [psutil.Process(os.getpid()).memory_info().rss], -1
    return torch.tensor([rank, index, *values], dtype=torch.int64)


def from_tensor(row: torch.Tensor) -> dict:
    """The `memory` entry of a `step` event from one rank's reading_tensor."""
    rank, index, *values = (int(v) for v in row)
    kind = "cpu" if index < 0 else "cuda"
    return {"rank": rank, "device": "cpu" if index < 0 else f"cuda:{index}", **dict(zip(FIELDS[kind], values))}


def reading(device: torch.device, rank: int = 0) -> dict:
    """This process's memory on `device`, in bytes."""
    return from_tensor(reading_tensor(device, rank))


def _copy_of_parameter(t: torch.Tensor, params: set[int]) -> bool:
    """Is `t` a dtype/device copy of a parameter (autocast's cached low-precision weight)?"""
    node = t.grad_fn
    if node is None or not node.name().startswith("ToCopyBackward"):
        return False
    for source, _ in node.next_functions:
        variable = getattr(source, "variable", None)        # AccumulateGrad: a leaf
        if variable is not None and id(variable) in params:
            return True
    return False


class ActivationCounter:
    """Counts the bytes of tensors saved for backward while the context is active."""

    def __init__(self, model: torch.nn.Module):
        self._param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._params = {id(p) for p in model.parameters()}
        self._seen: set[int] = set()
        self.bytes = 0

    def _pack(self, t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or meta tensors
            return t
        if ptr not in self._param_storages and ptr not in self._seen and not _copy_of_parameter(t, self._params):
            self._seen.add(ptr)
            self.bytes += storage.nbytes()
        return t

    @contextlib.contextmanager
    def counting(self):
        # a checkpointed segment's input is saved through these hooks too (torch saves it with
        # save_for_backward), so the figure includes what checkpointing keeps
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self
