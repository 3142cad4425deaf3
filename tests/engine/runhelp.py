"""Helpers for engine tests: running the CLI, reading a run's events."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


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


def make_colour_folder(root: Path, per_class: int = 10, size=(40, 48), classes=("blue", "red"),
                       seed: int = 0) -> Path:
    """Two (or more) classes a small network can tell apart: noisy images of one dominant colour."""
    colours = {"red": (200, 40, 40), "blue": (40, 40, 200), "green": (40, 190, 40)}
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = (rng.normal(0, 35, (*size, 3)) + colours[c]).clip(0, 255).astype("uint8")
            Image.fromarray(a).save(root / c / f"{i:03d}.png")
    return root


def recording_writer():
    """(an EventWriter writing no file or stream, the list of events it emits) for in-process runs."""
    from frelon.engine.control import EventWriter
    emitted: list[dict] = []
    writer = EventWriter()
    writer.echo = emitted.append
    return writer, emitted
