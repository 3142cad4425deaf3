"""Which layout a path holds (COCO, VOC, YOLO), read with its reader; a second set's classes
matched to the first's by name."""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import DataError
from .coco import coco_json_in, coco_split_files, read_coco
from .records import DetectionRecord, ReadLog, ReadResult, relabel
from .voc import read_voc
from .yolo import read_yolo


def detect_layout(path: str | os.PathLike) -> str | None:
    """"coco", "voc", "yolo" or None for a file or folder (see DESIGN.md, "Data layouts")."""
    p = Path(path)
    if p.is_file():
        return "coco" if p.suffix.lower() == ".json" else None
    if not p.is_dir():
        return None
    if (p / "Annotations").is_dir() and (p / "JPEGImages").is_dir():
        return "voc"
    if (p / "images").is_dir() and (p / "labels").is_dir():
        return "yolo"
    if any((p / n).is_file() for n in ("data.yaml", "data.yml")) and (p / "train" / "images").is_dir():
        return "yolo"
    if coco_split_files(p) or coco_json_in(p):
        return "coco"
    return None


def read_any(path: Path, workers: int | None = None) -> tuple[str, ReadResult]:
    """Read a dataset of any layout; a COCO train/ + val/ folder gives both splits."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    layout = detect_layout(path)
    if layout is None:
        raise DataError(f"{path}: not a detection dataset",
                        hint="give a COCO JSON, a VOC folder (Annotations/ + JPEGImages/) or a YOLO "
                             "folder (images/ + labels/ + data.yaml)")
    if layout == "voc":
        return layout, read_voc(path, workers)
    if layout == "yolo":
        return layout, read_yolo(path, workers)
    if path.is_file():
        return layout, read_coco(path, workers)
    pair = coco_split_files(path)
    if pair is None:
        return layout, read_coco(coco_json_in(path), workers)
    train, val = read_coco(pair["train"], workers), read_coco(pair["val"], workers)
    val_records = match_classes(val, train.classes, train.log)
    train.log.merge(val.log)
    return layout, ReadResult(train.classes, train.category_ids,
                         {"train": train.splits["all"], "val": val_records}, path.absolute(), train.log)


def match_classes(other: ReadResult, classes: list[str], log: ReadLog) -> list[DetectionRecord]:
    """`other`'s records relabelled into `classes` by name; boxes of unknown classes reported."""
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for rec in (r for recs in other.splits.values() for r in recs):
        for name in relabel(rec, other.classes, index):
            log.skip(rec.path, f"class {name!r} is not among the training classes")
        out.append(rec)
    return out
