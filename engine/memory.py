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


# what a reading holds, per device type; `peak` is the high-water mark since the last reset_peak
# (the training loop resets it after each `step` event: the peak since the previous event)
FIELDS = {"cuda": ("allocated", "peak", "reserved"), "cpu": ("rss",)}

_PROCESS: psutil.Process | None = None
# CUDA peaks folded in before each of Frelon's resets, per device index: {"allocated", "reserved"}.
# torch keeps one high-water mark per device; the step events reset it, and so does the memory
# forecast per phase. Whoever measures a whole run (bench P4) reads run_peaks, which survives them.
_RUN_PEAKS: dict[int, dict[str, int]] = {}


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def reading_values(device: torch.device, rank: int = 0) -> list[int]:
    """This process's memory on `device`: [rank, device index (-1: CPU), *FIELDS], in bytes. Host
    calls only (the allocator's counters, /proc): no wait for the GPU, nothing reset."""
    global _PROCESS
    if device.type == "cuda":
        return [rank, _index(device), torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device),
                torch.cuda.memory_reserved(device)]
    if _PROCESS is None or _PROCESS.pid != os.getpid():
        _PROCESS = psutil.Process(os.getpid())
    return [rank, -1, _PROCESS.memory_info().rss]


def reset_peak(device: torch.device) -> None:
    """Start a new CUDA high-water mark, the one ended folded into run_peaks first."""
    if device.type != "cuda":
        return
    run = _RUN_PEAKS.setdefault(_index(device), {"allocated": 0, "reserved": 0})
    run["allocated"] = max(run["allocated"], torch.cuda.max_memory_allocated(device))
    run["reserved"] = max(run["reserved"], torch.cuda.max_memory_reserved(device))
    torch.cuda.reset_peak_memory_stats(device)


def clear_run_peaks(device: torch.device) -> None:
    """Start measuring a whole run's CUDA peaks (run_peaks) from now."""
    torch.cuda.reset_peak_memory_stats(device)
    _RUN_PEAKS.pop(_index(device), None)


def run_peaks(device: torch.device) -> dict[str, int]:
    """{"allocated", "reserved"}: the CUDA high-water marks since clear_run_peaks, through every
    reset_peak in between (the step events', the forecast's phases)."""
    run = _RUN_PEAKS.get(_index(device), {"allocated": 0, "reserved": 0})
    return {"allocated": max(run["allocated"], torch.cuda.max_memory_allocated(device)),
            "reserved": max(run["reserved"], torch.cuda.max_memory_reserved(device))}


def from_values(values) -> dict:
    """The `memory` entry of a `step` event from one rank's reading_values (ints or floats)."""
    rank, index, *rest = (int(v) for v in values)
    kind = "cpu" if index < 0 else "cuda"
    return {"rank": rank, "device": "cpu" if index < 0 else f"cuda:{index}", **dict(zip(FIELDS[kind], rest))}


def reading(device: torch.device, rank: int = 0) -> dict:
    """This process's memory on `device`, in bytes; starts a new CUDA peak."""
    values = reading_values(device, rank)
    reset_peak(device)
    return from_values(values)


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
