"""Predictions across epochs: a fixed handful of validation images, followed from epoch to epoch.

`record_epoch` is the whole interface: the training loop calls it once per epoch on rank 0 after
the evaluation, with what that evaluation already computed for every validation image
(`Evaluation.details`: classification (index, probabilities); detection (index, boxes, scores,
labels) in the image's own pixels) and the validation samples (engine/training/loop.py). Nothing is run
again: the cost is picking COUNT rows and one small JSON write. It keeps RUN_DIR/timelapse.json:

    {"task", "classes", "images": [{"index", "path", "label"? (classification)}],
     "epochs": [{"epoch", "predictions": [per image: classification [[class, probability]] × 3
                 (top 3); detection [[x1, y1, x2, y2, class, score]] (score ≥ MIN_SCORE, at most
                 MAX_BOXES, in the image's own pixels)]}]}

The images (COUNT, chosen with the run seed among the validation images) are chosen once, at the
first epoch, and read back from the file afterwards, so a resumed run follows the same ones; an
epoch recorded again (a resume redoing it) replaces its entry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from frelon.common.run_folder import RunFolder

from .rundir import atomic_write_json, read_json
from .tasks import get_task

COUNT = 8
TOP = 3
MIN_SCORE = 0.05
MAX_BOXES = 20


def chosen(n: int, seed: int, count: int = COUNT) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:count].tolist())


def _predictions(task, details, indices: list[int], classes: Sequence[str]) -> list:
    rows = {row[0]: row[1:] for row in details}
    return [task.summarize(rows[i], classes, top=TOP, min_score=MIN_SCORE, max_boxes=MAX_BOXES) for i in indices]


def record_epoch(run_dir: str | Path, task: str, details, val_samples, classes: Sequence[str], epoch: int,
                 seed: int) -> dict:
    """Store epoch `epoch`'s predictions of the fixed images (from the evaluation's `details`);
    `task` is the run's task name (tasks/: what an image and its predictions are)."""
    path = RunFolder(run_dir).timelapse
    kind = get_task(task)
    doc = read_json(path) if path.is_file() else None
    if not doc or not doc.get("images"):
        doc = {"task": task, "classes": list(classes), "epochs": [],
               "images": [{"index": i, **kind.describe(val_samples[i], classes)}
                          for i in chosen(len(val_samples), seed)]}
    predictions = _predictions(kind, details, [im["index"] for im in doc["images"]], classes)
    doc["epochs"] = [e for e in doc["epochs"] if e["epoch"] != epoch] + [{"epoch": epoch, "predictions": predictions}]
    doc["epochs"].sort(key=lambda e: e["epoch"])
    atomic_write_json(path, doc)
    return doc
