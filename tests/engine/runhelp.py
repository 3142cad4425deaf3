"""Helpers for engine tests: running the CLI, reading a run's events."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args, cwd=None, timeout=240, input=None, env=None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, input=input, env=e)


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def only_run(runs: Path) -> Path:
    dirs = [d for d in Path(runs).iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


TINY = ["--image-size", "32", "--batch-size", "4", "--weights", "none", "--workers", "0"]
