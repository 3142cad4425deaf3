"""Memory readings for `step` events, and the activation bytes a forward pass keeps for backward.

`activation_bytes` is measured with `torch.autograd.graph.saved_tensors_hooks`: every tensor the
forward pass saves for backward goes through the hook; parameters (and views of them) are not
activations and are excluded; a storage saved twice counts once. Under gradient checkpointing the
segments' insides are not kept, so the figure shows what checkpointing saves on any device.
"""
from __future__ import annotations

import contextlib
import os

import psutil
import torch


def reading(device: torch.device, rank: int = 0) -> dict:
    """This process's memory on `device`, in bytes."""
    if device.type == "cuda":
        return {"rank": rank, "device": str(device),
                "allocated": torch.cuda.memory_allocated(device),
                "peak": torch.cuda.max_memory_allocated(device),
                "reserved": torch.cuda.memory_reserved(device)}
    return {"rank": rank, "device": "cpu", "rss": psutil.Process(os.getpid()).memory_info().rss}


class ActivationCounter:
    """Counts the bytes of tensors saved for backward while the context is active."""

    def __init__(self, model: torch.nn.Module):
        self._param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._seen: set[int] = set()
        self.bytes = 0

    def _pack(self, t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or meta tensors
            return t
        if ptr not in self._param_storages and ptr not in self._seen:
            self._seen.add(ptr)
            self.bytes += storage.nbytes()
        return t

    @contextlib.contextmanager
    def counting(self):
        # a checkpointed segment's input is saved through these hooks too (torch saves it with
        # save_for_backward), so the figure includes what checkpointing keeps
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self
