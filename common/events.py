"""The event schema: one JSON object per line between the engine and whoever reads it.

Both sides import this module (it imports neither torch nor Qt). The engine builds events with
:func:`make`; readers parse lines with :func:`parse_line`, which never raises: a line that is not a
JSON object is a log line. Readers ignore unknown fields and types (forward compatibility).
See docs/DESIGN.md, "Events".
"""
from __future__ import annotations

import json
import math
import time
from typing import Any

VERSION = 1

# type -> fields every event of that type carries (beyond v, type, time)
REQUIRED: dict[str, tuple[str, ...]] = {
    "run_started": ("run_dir", "config", "task", "backbone", "classes", "world_size", "device",
                    "effective_lr", "global_batch", "steps_per_epoch", "total_steps"),
    "scan_progress": ("done", "total", "eta_s"),     # files probed of the data's, while it is scanned
    "data_report": ("splits", "skipped", "warnings"),
    "step": ("epoch", "step", "loss", "lr", "samples_per_s", "eta_s", "memory"),
    # `val`: the task's metrics — classification `accuracy`, `per_class`, `confusion_matrix`...; detection
    # `map`, `map_50`...; multi-label `map`, `f1`, `exact_match`, `per_label` {label: {ap, f1, threshold, support}}
    "epoch_end": ("epoch", "train_loss", "val", "duration_s"),
    "checkpoint": ("path", "epoch", "step", "best"),
    "log": ("level", "message"),
    "error": ("kind", "message", "hint", "traceback"),
    "run_finished": ("status", "epochs_done", "best", "duration_s"),
    # `frelon robustness --events -` (not a training run: never in events.jsonl)
    "robustness_eps": ("attack", "eps", "metric", "value", "images"),
    "robustness_finished": ("attack", "path", "eps", "metric", "values"),
    "heartbeat": ("ranks", "stall_after_s"),
}
# type -> fields an event of that type may carry, and what they mean (docs/DESIGN.md has the rest)
OPTIONAL: dict[str, dict[str, str]] = {
    "run_finished": {"reason": "why a completed run ended before --epochs, in words (--patience)"},
    "epoch_end": {"val.balanced_accuracy": "classification: the mean of the per-class recalls"},
    "data_report": {"imbalance": "classification: {ratio, largest, smallest, balancing}; common/balance.py"},
}
TYPES = tuple(REQUIRED)
ERROR_KINDS = ("data", "config", "weights", "oom", "nan", "distributed", "stall", "io", "internal")
FINISH_STATUSES = ("completed", "stopped", "failed")


class SchemaError(ValueError):
    """An event that does not follow the schema (a bug in whoever made it)."""


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: make them null so every reader can parse the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def make(type_: str, **fields: Any) -> dict[str, Any]:
    """Build an event of a known type, checking that its required fields are present."""
    if type_ not in REQUIRED:
        raise SchemaError(f"unknown event type {type_!r}")
    missing = [f for f in REQUIRED[type_] if f not in fields]
    if missing:
        raise SchemaError(f"event {type_!r} lacks {', '.join(missing)}")
    if type_ == "error" and fields["kind"] not in ERROR_KINDS:
        raise SchemaError(f"error kind {fields['kind']!r} is not one of {ERROR_KINDS}")
    if type_ == "run_finished" and fields["status"] not in FINISH_STATUSES:
        raise SchemaError(f"status {fields['status']!r} is not one of {FINISH_STATUSES}")
    event = {"v": VERSION, "type": type_, "time": time.time()}
    event.update(_clean(fields))
    return event


def dumps(event: dict[str, Any]) -> str:
    """One line of JSON, no trailing newline."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """The event on this line, or None when the line is not an event (treat it as a log line)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    return obj


def read_file(path) -> list[dict[str, Any]]:
    """All events of an events.jsonl file (a run folder's history); bad lines are skipped."""
    events = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            ev = parse_line(line)
            if ev is not None:
                events.append(ev)
    return events
