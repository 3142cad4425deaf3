"""The detection report behind `frelon check --task detect` and the `data_report` event: the
classification report's keys, plus clipped boxes, the first images' boxes and the objects' scale
against their pictures (`objects`: what `--slicing auto` decides from, with a note when it slices)."""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from frelon.common.choices import DETECT
from frelon.common.train_config import SMALL_OBJECT_PX, auto_image_size, slicing_wanted

from ..images import median_size, printable_path
from ..mirror import mirror_note
from ..probing import same_bytes
from .records import DetectionRecord, ReadLog

REPORT_IMAGES = 200          # boxes of the first N images go into the report (the app's thumbnails)


def _split_stats(records: list[DetectionRecord], classes: list[str]) -> dict[str, Any]:
    counts = {name: 0 for name in classes}
    crowd = 0
    for rec in records:
        for lab, is_crowd in zip(rec.labels, rec.iscrowd):
            if is_crowd:
                crowd += 1
            else:
                counts[classes[lab]] += 1
    empty = sum(1 for r in records if not any(not c for c in r.iscrowd))
    # "boxes" repeats the counts under the name the app looks for to label its bars "boxes"
    return {"counts": counts, "boxes": dict(counts), "images": len(records), "empty_images": empty,
            "crowd_boxes": crowd}


def _xywh(box: list[float]) -> list[float]:
    return [round(box[0], 2), round(box[1], 2), round(box[2] - box[0], 2), round(box[3] - box[1], 2)]


def _report_images(train: list[DetectionRecord], val: list[DetectionRecord],
                   classes: list[str]) -> list[dict[str, Any]]:
    out = []
    for split, records in (("train", train), ("val", val)):
        for rec in records:
            if len(out) >= REPORT_IMAGES:
                return out
            out.append({"path": printable_path(rec.path), "split": split, "width": rec.width, "height": rec.height,
                        "boxes": [_xywh(b) for b in rec.boxes],
                        "labels": [classes[lab] for lab in rec.labels], "crowd": list(rec.iscrowd)})
    return out


def _duplicates(train: list[DetectionRecord], val: list[DetectionRecord],
                sha1: dict[str, str]) -> list[dict[str, Any]]:
    """Byte-identical images (by SHA-1): kind "train_val" when they sit in both splits (a leak),
    "repeated" when one split holds the same picture twice (the doctor's entry format)."""
    members = [(split, rec.path) for split, records in (("train", train), ("val", val)) for rec in records]
    out = []
    for group in same_bytes((sha1.get(path, path), (split, path)) for split, path in members):
        splits = sorted({s for s, _ in group})
        leak = len(splits) == 2
        reason = ("the same picture is in train and val: the validation score is inflated" if leak
                  else f"the same picture appears {len(group)} times in {splits[0]}")
        out.append({"paths": [printable_path(p) for _, p in group], "classes": [], "splits": splits,
                    "kind": "train_val" if leak else "repeated", "reason": reason})
    return out


def _warnings(train: list[DetectionRecord], val: list[DetectionRecord], stats: dict, log: ReadLog,
              classes: list[str]) -> tuple[list[str], list[str]]:
    warnings = list(log.warnings)
    empty_classes = [c for c in classes if stats["train"]["counts"][c] == 0]
    if empty_classes:
        warnings.append(f"class(es) without any box in train: {', '.join(empty_classes)}")
    if sum(stats["train"]["counts"].values()) == 0:
        warnings.append("no objects annotated in train: there is nothing to learn")
    if not val:
        warnings.append("no validation images: mAP cannot be measured (use --val-split or --val-data)")
    else:
        missing = [c for c in classes if stats["val"]["counts"][c] == 0 and c not in empty_classes]
        if missing:
            warnings.append(f"class(es) without any box in val (their AP is undefined): {', '.join(missing)}")
    negatives = stats["train"]["empty_images"] + stats["val"]["empty_images"]
    if negatives:
        warnings.append(f"{negatives} image(s) without objects: used as negatives")
    if log.clipped:
        warnings.append(f"{len(log.clipped)} box(es) partly outside their image were clipped (see 'clipped')")
    if log.skipped:
        warnings.append(f"{len(log.skipped)} entry(ies) skipped (see 'skipped')")
    return warnings, empty_classes


def object_scale(train: list[DetectionRecord]) -> dict[str, Any] | None:
    """The training objects' median side (√(w·h), px), the median of side / its picture's long
    side, and the pictures' median long side; None without objects."""
    sides, fractions = [], []
    for rec in train:
        for box, crowd in zip(rec.boxes, rec.iscrowd):
            if not crowd:
                side = math.sqrt(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))
                sides.append(side)
                fractions.append(side / max(rec.width, rec.height, 1))
    if not sides:
        return None
    return {"median_side": round(statistics.median(sides), 1),
            "median_fraction": round(statistics.median(fractions), 5),
            "median_long_side": statistics.median(max(r.width, r.height) for r in train)}


def slicing_note(objects: dict[str, Any] | None, median: list[int] | None) -> str:
    """The report's line when `--slicing auto` slices at the automatic image size."""
    size = auto_image_size(DETECT, median)
    if not slicing_wanted(objects, size):
        return ""
    return (f"small objects in big pictures: the median object is {objects['median_side']:g} px in "
            f"{objects['median_long_side']:g}-px pictures, {objects['median_fraction'] * size:.1f} px once "
            f"letterboxed to {size} (under {SMALL_OBJECT_PX}): --slicing auto trains on {size}-px crops at "
            "native resolution and predicts on overlapping tiles plus the whole picture")


def build_report(root: Path, layout: str, classes: list[str], train: list[DetectionRecord],
                 val: list[DetectionRecord], log: ReadLog) -> dict[str, Any]:
    """The detection report: the classification report's keys, plus clipped boxes and images."""
    stats = {"train": _split_stats(train, classes), "val": _split_stats(val, classes)}
    warnings, empty_classes = _warnings(train, val, stats, log, classes)
    median = median_size([(r.width, r.height) for r in train])
    objects = object_scale(train)
    warnings += [n for n in [mirror_note(list(classes)), slicing_note(objects, median)] if n]
    return {"task": DETECT, "root": str(root), "layout": layout, "classes": list(classes),
            "splits": stats, "median_size": median, "objects": objects,
            "skipped": log.skipped, "clipped": log.clipped, "warnings": warnings,
            "empty_classes": empty_classes, "duplicates": _duplicates(train, val, log.sha1),
            "images": _report_images(train, val, classes)}
