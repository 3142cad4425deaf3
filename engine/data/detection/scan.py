"""A detection dataset scanned: read in any layout, split into train / val, reported."""
from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

from ...errors import DataError
from .layout import match_classes, read_any
from .records import DetectionData, DetectionRecord
from .report import build_report


def _rarest_class(rec: DetectionRecord, totals: list[int]) -> int:
    present = set(rec.labels)
    return min(present, key=lambda c: (totals[c], c)) if present else -1


def split_records(records: list[DetectionRecord], val_split: float, seed: int,
                  num_classes: int) -> tuple[list[DetectionRecord], list[DetectionRecord]]:
    """A seeded split by image, stratified by each image's rarest class (images without objects
    form their own stratum), so that small classes reach the validation set too."""
    totals = [0] * num_classes
    for rec in records:
        for lab in rec.labels:
            totals[lab] += 1
    rng = random.Random(seed)
    order = sorted(records, key=lambda r: r.path)
    keys = {id(r): (_rarest_class(r, totals), rng.random()) for r in order}
    order.sort(key=lambda r: keys[id(r)])
    train, val = [], []
    # every 1/val_split-th image of the stratified order: each stratum gets its share
    for i, rec in enumerate(order):
        picked = math.floor((i + 1) * val_split + 0.5) > math.floor(i * val_split + 0.5)
        (val if picked else train).append(rec)
    if not train and val:
        train.append(val.pop())
    return sorted(train, key=lambda r: r.path), sorted(val, key=lambda r: r.path)


def scan_detection(data: str | os.PathLike, val_data: str | os.PathLike = "", val_split: float = 0.2,
                   seed: int = 0, workers: int | None = None) -> DetectionData:
    """Read a detection dataset of any layout into classes, train and val records, and a report.

    The validation set is, in order of preference: `val_data` (classes matched by name), the
    layout's own split (COCO train/ + val/, VOC ImageSets, YOLO images/val), a seeded split of
    `val_split` of the images. Raises DataError on a fatal format error or when no image is usable."""
    root = Path(data).absolute()
    layout, read = read_any(root, workers)
    if not read.classes:
        raise DataError(f"{root}: no classes defined", hint="a detection dataset needs at least one class")
    log = read.log
    if val_data:
        _, other = read_any(Path(val_data).absolute(), workers)
        log.merge(other.log)
        train = read.splits.get("train", read.splits.get("all", []))
        if "val" in read.splits:
            log.warn(f"{root.name}'s own val split is not used: --val-data {val_data} is")
        val = match_classes(other, read.classes, log)
    elif "val" in read.splits:
        train, val = read.splits["train"], read.splits["val"]
    else:
        train, val = split_records(read.splits["all"], val_split, seed, len(read.classes))
    if not train and not val:
        raise DataError(f"{root}: no usable image ({len(log.skipped)} entries skipped)",
                        hint="run `frelon check --data PATH --task detect` to see each reason")
    report = build_report(read.root, layout, read.classes, train, val, log)
    report.update({"errors": [], "val_split": val_split, "seed": seed})
    return DetectionData(read.classes, train, val, report, layout, str(read.root), read.category_ids)


def check_detection(data: str | os.PathLike, val_data: str | os.PathLike = "", val_split: float = 0.2,
                    seed: int = 0, workers: int | None = None) -> dict[str, Any]:
    """The report behind `frelon check --task detect --json` (see build_report)."""
    return scan_detection(data, val_data, val_split, seed, workers).report
