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


def train_here(*args, threads: int = 1) -> Path:
    """`frelon train ARGS` run in this process; returns the run folder. For tests that need a
    finished run as their input, not the training command under test: the same parser and
    config resolution as the CLI and the same `run_training`, without a process start and
    torch's import (~4 s each). One torch thread, like the OMP_NUM_THREADS=1 subprocesses; the
    caller's thread count and random states are restored afterwards."""
    import random

    import torch

    from frelon.cli import build_parser
    from frelon.common import train_config as C
    from frelon.engine.commands.train import TRAIN_KEYS
    from frelon.engine.control import EventWriter
    from frelon.engine.training.run import run_training
    parsed = build_parser().parse_args(["train", *map(str, args)])
    assert not getattr(parsed, "resume", None), "train_here starts new runs only"
    cfg = C.resolve({k: v for k, v in vars(parsed).items() if k in TRAIN_KEYS})
    before = torch.get_num_threads(), random.getstate(), np.random.get_state()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            fields = run_training(cfg, EventWriter(), lambda: False)
    finally:
        torch.set_num_threads(before[0])
        random.setstate(before[1])
        np.random.set_state(before[2])
    assert fields["status"] == "completed", fields
    return Path(fields["run_dir"])


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
