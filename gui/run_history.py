"""A run's history as growing numpy arrays, fed one event at a time (live) or from events.jsonl.

No Qt here. The plots read these arrays on a timer; appending is O(1) amortised (buffers double).
`version` increases with every change so a reader knows whether to redraw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frelon.common import events as ev
from frelon.common.run_folder import RunFolder

SMOOTHING = 0.9   # exponential moving average of the step loss (bias-corrected)


class Series:
    """x/y columns that grow by doubling; `x` and `y` are views of the filled part."""

    def __init__(self, capacity: int = 256):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, x: float, y: float | None) -> None:
        if self.n == len(self._x):
            self._x = np.resize(self._x, 2 * self.n)
            self._y = np.resize(self._y, 2 * self.n)
        self._x[self.n] = x
        self._y[self.n] = np.nan if y is None else y
        self.n += 1

    @property
    def x(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[:self.n]

    def __len__(self) -> int:
        return self.n


class RunHistory:
    """Everything the app draws about one run."""

    def __init__(self) -> None:
        self.started: dict[str, Any] | None = None      # the run_started event
        self.data_report: dict[str, Any] | None = None
        self.finished: dict[str, Any] | None = None     # the run_finished event
        self.errors: list[dict[str, Any]] = []
        self.heartbeat: dict[str, Any] | None = None    # the launcher's latest (several ranks)
        self.stall: dict[str, Any] | None = None        # the watchdog's error, in the latest attempt
        self.last_step: dict[str, Any] | None = None
        self.epochs: list[dict[str, Any]] = []          # epoch_end events
        self.checkpoints: list[dict[str, Any]] = []
        self.loss = Series()
        self.loss_smooth = Series()
        self.loss_parts: dict[str, Series] = {}
        self.lr = Series()
        self.throughput = Series()
        self.memory: dict[tuple[int, str], Series] = {}  # (rank, "allocated"|"peak"|"reserved"|"rss")
        self.activation = Series()
        self.train_loss_epoch = Series()                 # x = global step at the epoch's end
        self.val_loss = Series()
        self.val_metric = Series()                       # accuracy or mAP
        self.version = 0
        self._ema = 0.0
        self._ema_n = 0

    # ---- reading ----
    @classmethod
    def from_file(cls, path: str | Path) -> "RunHistory":
        h = cls()
        for event in ev.read_file(path):
            h.add(event)
        return h

    @classmethod
    def of_run(cls, run_dir: str | Path) -> "RunHistory":
        """A run folder's history from its events.jsonl (empty while it has none)."""
        events = RunFolder(run_dir).events
        return cls.from_file(events) if events.is_file() else cls()

    @property
    def run_dir(self) -> str | None:
        return self.started.get("run_dir") if self.started else None

    @property
    def task(self) -> str:
        return (self.started or {}).get("task", "")

    @property
    def total_steps(self) -> int:
        return int((self.started or {}).get("total_steps") or 0)

    @property
    def metric_name(self) -> str:
        mapped = any("map" in (e.get("val") or {}) for e in self.epochs[-1:])     # detection, multi-label
        return "mAP" if self.task == "detect" or mapped else "accuracy"

    # ---- feeding ----
    def add(self, event: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + str(event.get("type")), None)
        if handler is not None:
            handler(event)
            self.version += 1

    def _on_run_started(self, e: dict[str, Any]) -> None:
        if self.started is None:
            self.started = e
        else:   # a resumed run in the same file: keep the first, but learn the new plan
            self.started = {**self.started, **e}
        self.finished = None
        self.heartbeat = self.stall = None              # a new attempt: old lights and stalls are history

    def _on_data_report(self, e: dict[str, Any]) -> None:
        self.data_report = e

    def _on_step(self, e: dict[str, Any]) -> None:
        self.last_step = e
        step = float(e.get("step", len(self.loss)))
        loss = _num(e.get("loss"))
        self.loss.append(step, loss)
        if loss is not None:
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            self._ema_n += 1
            self.loss_smooth.append(step, self._ema / (1 - SMOOTHING ** self._ema_n))
        for name, value in (e.get("loss_parts") or {}).items():
            self.loss_parts.setdefault(name, Series()).append(step, _num(value))
        self.lr.append(step, _num(e.get("lr")))
        self.throughput.append(step, _num(e.get("samples_per_s")))
        for m in e.get("memory") or ():
            rank = int(m.get("rank", 0))
            for key in ("allocated", "peak", "reserved", "rss"):
                if key in m:
                    self.memory.setdefault((rank, key), Series()).append(step, _num(m[key]))
        if e.get("activation_bytes") is not None:
            self.activation.append(step, _num(e["activation_bytes"]))

    def _on_epoch_end(self, e: dict[str, Any]) -> None:
        self.epochs.append(e)
        if e.get("step") is not None:
            step = float(e["step"])
        else:
            step = float(self.last_step["step"]) if self.last_step else float(len(self.epochs))
        self.train_loss_epoch.append(step, _num(e.get("train_loss")))
        val = e.get("val") or {}
        self.val_loss.append(step, _num(val.get("loss")))
        metric = val.get("map") if self.task == "detect" or "map" in val else val.get("accuracy")
        self.val_metric.append(step, _num(metric))

    def _on_checkpoint(self, e: dict[str, Any]) -> None:
        self.checkpoints.append(e)

    def _on_error(self, e: dict[str, Any]) -> None:
        self.errors.append(e)
        if e.get("kind") == "stall":
            self.stall = e

    def _on_heartbeat(self, e: dict[str, Any]) -> None:
        self.heartbeat = e


    def _on_run_finished(self, e: dict[str, Any]) -> None:
        self.finished = e


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
