"""Counting the host–device syncs a piece of code would make on CUDA, on a CPU-only machine.

On a GPU the host waits for the device when it reads a value (`item`, `bool`, `float`, `tolist`,
`numpy`, a copy to the CPU) and when an op's output size depends on values (`nonzero`, boolean-mask
indexing or assignment, `masked_select`, `unique`). On the CPU nothing waits, so these are counted
where they happen: the value reads and size-dependent ops as aten ops (a TorchDispatchMode sees
every op, whatever Python or C++ called it), and `tolist` / `numpy`, which read a CPU tensor's
memory without an op, by patching them.
"""
from __future__ import annotations

import contextlib
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
VALUE_DEPENDENT = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
                   aten._unique2.default, aten.unique_consecutive.default, aten.unique_dim.default,
                   aten.repeat_interleave.Tensor}


def _bool_index(func, args) -> bool:
    """x[mask] and x[mask] = v: aten.index / index_put with a boolean index."""
    if func not in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default):
        return False
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices)


class HostSyncs(TorchDispatchMode):
    """Counts the syncs made while active and not paused; `where` keeps the caller of each."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.paused = 0
        self.where: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in VALUE_DEPENDENT or _bool_index(func, args):
            self.note(str(func))
        return func(*args, **(kwargs or {}))

    def note(self, what: str) -> None:
        if self.paused:
            return
        self.count += 1
        frames = [f for f in traceback.extract_stack()[:-3] if "/frelon/" in f.filename or "/engine/" in f.filename]
        self.where.append(f"{what} at {frames[-1].filename}:{frames[-1].lineno}" if frames else what)

    @contextlib.contextmanager
    def pause(self):
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1


@contextlib.contextmanager
def counting(monkeypatch):
    """A HostSyncs active inside, with Tensor.tolist / numpy counted too."""
    counter = HostSyncs()
    for name in ("tolist", "numpy"):
        original = getattr(torch.Tensor, name)

        def read(self, *a, _original=original, _name=name, **k):
            counter.note(_name)
            with counter.pause():
                return _original(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, read)
    with counter:
        yield counter
