"""Reading a runs folder without Qt: one summary per run, a run's JSON files, and the difference
of two configs.

Summaries read only config.json and the head and tail of events.jsonl (parsing from the end until
they know enough), so listing hundreds of long runs stays instant.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frelon.common import events as ev
from frelon.common.run_folder import RunFolder

HEAD_BYTES = 256 << 10
TAIL_BYTES = 256 << 10


@dataclass
class RunSummary:
    path: str
    name: str
    mtime: float
    task: str = ""
    backbone: str = ""
    status: str = ""              # completed | stopped | failed | "" (running, or crashed)
    epochs_done: int = 0
    metric: str = ""              # e.g. "accuracy 0.912"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def resumable(self) -> bool:
        return self.status != "completed"


def _head_events(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        data = f.read(HEAD_BYTES)
    return [e for e in (ev.parse_line(ln) for ln in data.split(b"\n")[:50]) if e]


def _tail_lines(path: Path) -> list[bytes]:
    """The last lines of the file, newest first, unparsed (the caller stops parsing early)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - TAIL_BYTES))
        data = f.read()
    return data.split(b"\n")[::-1]


def read_json(path: str | os.PathLike) -> Any:
    """A run file's JSON, or None where it is missing or unreadable (not written yet, an older run)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json; {} where it is missing or unreadable."""
    config = read_json(RunFolder(run_dir).config)
    return config if isinstance(config, dict) else {}


def summarize(run_dir: str | os.PathLike) -> RunSummary:
    run = Path(run_dir)
    events_file = RunFolder(run).events
    s = RunSummary(str(run), run.name, (events_file if events_file.exists() else run).stat().st_mtime)
    s.config = run_config(run)
    s.task = str(s.config.get("task") or "")
    s.backbone = str(s.config.get("backbone") or "")
    if not events_file.is_file():
        return s
    try:
        head, tail = _head_events(events_file), _tail_lines(events_file)
    except OSError:
        return s
    for e in head:
        if e.get("type") == "run_started":
            s.task = str(e.get("task") or s.task)
            s.backbone = str(e.get("backbone") or s.backbone)
            break
    for line in tail:
        if b'"type":"step"' in line:           # most lines: skip them without parsing
            continue
        e = ev.parse_line(line)
        if e is None:
            continue
        kind = e.get("type")
        if kind == "run_finished" and not s.status:
            s.status = str(e.get("status", ""))
            s.epochs_done = int(e.get("epochs_done") or 0)
        elif kind == "run_started" and not s.status:
            break          # started again after the last finish: running, or crashed
        if kind == "epoch_end":
            val = e.get("val") or {}
            if "map" in val and val["map"] is not None:
                s.metric = f"mAP {val['map']:.3f}"
            elif val.get("accuracy") is not None:
                s.metric = f"accuracy {val['accuracy']:.3f}"
            s.epochs_done = max(s.epochs_done, int(e.get("epoch", 0)) + 1)
            break
    return s


def list_runs(runs_dir: str | os.PathLike) -> list[RunSummary]:
    """Every run folder (one holding events.jsonl or config.json), newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and RunFolder(child).is_run():
            try:
                runs.append(summarize(child))
            except OSError:
                continue
    return sorted(runs, key=lambda r: (r.mtime, r.name), reverse=True)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    """(key, value in a, value in b) for every key whose value differs (missing = None)."""
    fa, fb = _flatten(a), _flatten(b)
    keys = sorted(set(fa) | set(fb))
    return [(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]
