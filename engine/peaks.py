"""Peak bytes per phase of a measured training step, for the memory forecast (plan.py).

CUDA (`CudaMeter`): `torch.cuda.max_memory_reserved`, reset before each phase (memory.reset_peak) — what the caching
allocator holds, rounding and fragmentation included, is what runs out. CPU (`CpuMeter`): every
allocation and free the torch profiler records (`profile_memory=True`), summed in time order from
the bytes live when it started (`phase_peaks`). A meter's `session()` wraps the measured steps, its
`phase(name)` each phase; `peaks` is {phase: peak bytes}, the largest over the phase's runs.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os

import torch

from . import memory

MARK = "frelon.plan."            # the profiler ranges' prefix


class CudaMeter:
    """Peak bytes per phase from the caching allocator's statistics: reserved, not allocated —
    what the allocator holds (fragmentation and rounding included) is what runs out."""

    def __init__(self, device: torch.device, live_before: int):
        self.device, self.base = device, live_before
        self.peaks: dict[str, int] = {}

    @contextlib.contextmanager
    def session(self):
        yield

    @contextlib.contextmanager
    def phase(self, name: str):
        torch.cuda.synchronize(self.device)
        memory.reset_peak(self.device)          # through memory.py: a whole run's peak survives it
        yield
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_reserved(self.device) - self.base
        self.peaks[name] = max(self.peaks.get(name, 0), peak)


class CpuMeter:
    """Peak bytes per phase from the torch profiler's allocation events (CPU tensors)."""

    def __init__(self, live_at_start: int):
        self.live = live_at_start
        self.peaks: dict[str, int] = {}

    @contextlib.contextmanager
    def session(self):
        from torch.profiler import ProfilerActivity, profile
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")     # keep kineto's chatter off stderr
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            yield
        for name, peak in phase_peaks(prof, self.live, MARK).items():
            self.peaks[name] = max(self.peaks.get(name, 0), peak)

    def phase(self, name: str):
        return torch.profiler.record_function(MARK + name)


def phase_peaks(prof, live_at_start: int, prefix: str = "") -> dict[str, int]:
    """{range name without prefix: peak live CPU bytes inside it} for the profiler's
    record_function ranges named `prefix…`; "" = the whole session under key "all"."""
    cpu = torch.autograd.DeviceType.CPU
    events = prof.profiler.kineto_results.events()
    allocations = sorted((e.start_ns(), e.nbytes()) for e in events
                         if e.name() == "[memory]" and e.device_type() == cpu)
    times = [t for t, _ in allocations]
    levels, level = [], live_at_start
    for _, nbytes in allocations:
        level += nbytes
        levels.append(level)
    windows = [(e.name()[len(prefix):], e.start_ns(), e.end_ns()) for e in events
               if prefix and e.name().startswith(prefix)]
    if not prefix:
        windows = [("all", -1, math.inf)]
    peaks: dict[str, int] = {}
    for name, start, end in windows:
        i0, i1 = bisect.bisect_right(times, start), bisect.bisect_right(times, end)
        at_start = levels[i0 - 1] if i0 > 0 else live_at_start
        peaks[name] = max([peaks.get(name, 0), at_start, *levels[i0:i1]])
    return peaks


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (shared storage counted once)."""
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            total += s.nbytes()
    return total
