"""The record types the detection readers return, relabelling a record into another class list,
and the log of what a reader found wrong."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..images import printable_path


@dataclass
class DetectionRecord:
    """One image and its boxes. `boxes` are [x1, y1, x2, y2] in the image's pixels (after EXIF
    orientation), `labels` index `DetectionData.classes`, `iscrowd` marks boxes ignored in training."""
    path: str                          # absolute path of the image file
    file_name: str                     # as the annotation file names it (for predictions output)
    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    iscrowd: list[bool] = field(default_factory=list)
    image_id: int = 0                  # COCO's id when read from COCO, else a running number


@dataclass
class DetectionData:
    """A scanned detection dataset: classes, the two splits and the report (see `check_detection`)."""
    classes: list[str]
    train: list[DetectionRecord]
    val: list[DetectionRecord]
    report: dict[str, Any]
    layout: str
    root: str
    category_ids: list[int]            # classes[i] is COCO category category_ids[i]


def relabel(rec: DetectionRecord, classes: Sequence[str], index: Mapping[str, int]) -> list[str]:
    """Re-index `rec`'s labels (into `classes`) by class name with `index` (name -> new label), in
    place: boxes of a class `index` lacks are dropped, and their class names returned in box order."""
    names = [classes[lab] for lab in rec.labels]
    keep = [k for k, name in enumerate(names) if name in index]
    rec.boxes = [rec.boxes[k] for k in keep]
    rec.iscrowd = [rec.iscrowd[k] for k in keep]
    rec.labels = [index[names[k]] for k in keep]
    return [name for name in names if name not in index]


class ReadLog:
    """What a reader found wrong: skipped entries, clipped boxes, warnings."""

    def __init__(self, workers: int | None = None) -> None:
        self.skipped: list[dict[str, str]] = []
        self.clipped: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.sha1: dict[str, str] = {}        # image path -> SHA-1 of its bytes (duplicates)
        self.probed: dict[str, Any] = {}      # image path -> ImageInfo or BadImage (probe_many)
        self.workers = workers                # probing threads (probing.worker_count)

    def skip(self, path: Any, reason: str) -> None:
        self.skipped.append({"path": printable_path(str(path)), "reason": reason})

    def clip(self, path: Any, reason: str) -> None:
        self.clipped.append({"path": printable_path(str(path)), "reason": reason})

    def merge(self, other: "ReadLog") -> None:
        self.skipped += other.skipped
        self.clipped += other.clipped
        self.sha1.update(other.sha1)
        for w in other.warnings:
            self.warn(w)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass
class ReadResult:
    """One reader's result: classes, records per split ("all" when the layout has no split)."""
    classes: list[str]
    category_ids: list[int]
    splits: dict[str, list[DetectionRecord]]
    root: Path
    log: ReadLog
