"""COCO mAP (AP over IoU 0.5:0.95), AP50 and per-class AP with pycocotools, from records and detections.

The ground truth is built in memory from `DetectionRecord`s (crowd boxes marked `iscrowd`, so
detections on them count neither as hits nor as misses) and the detections are the decoded ones,
in the same images' pixels. pycocotools prints its progress on stdout, which is the event stream:
what it prints is caught and dropped (the figures are returned).

Edge cases: no ground-truth box at all → every figure is None (undefined, not zero); ground truth
but no detection → 0.0; a class without ground truth → None in `per_class`.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np


def _ground_truth(records: Sequence[Any], num_classes: int) -> dict[str, Any]:
    images, annotations = [], []
    for i, rec in enumerate(records):
        images.append({"id": i + 1, "width": rec.width, "height": rec.height})
        for box, label, crowd in zip(rec.boxes, rec.labels, rec.iscrowd):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": int(bool(crowd))})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}


def _results(detections: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for i, det in enumerate(detections):
        boxes = det.boxes.detach().cpu().double().numpy().reshape(-1, 4)
        scores = det.scores.detach().cpu().double().numpy()
        labels = det.labels.detach().cpu().numpy()
        for box, score, label in zip(boxes, scores, labels):
            out.append({"image_id": i + 1, "category_id": int(label) + 1, "score": float(score),
                        "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    return out


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def coco_map(records: Sequence[Any], detections: Sequence[Any], classes: Sequence[str]) -> dict[str, Any]:
    """{"map", "map_50", "per_class": {name: AP or None}} for detections[i] on records[i].

    `records` need width, height, boxes (xyxy), labels, iscrowd; `detections` boxes (xyxy),
    scores, labels (tensors), in the same pixels."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_doc = _ground_truth(records, len(classes))
    per_class: dict[str, float | None] = {name: None for name in classes}
    if not any(not a["iscrowd"] for a in gt_doc["annotations"]):
        return {"map": None, "map_50": None, "per_class": per_class}
    results = _results(detections)
    if not results:
        present = {a["category_id"] - 1 for a in gt_doc["annotations"] if not a["iscrowd"]}
        return {"map": 0.0, "map_50": 0.0,
                "per_class": {name: (0.0 if c in present else None) for c, name in enumerate(classes)}}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_doc
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]          # [IoU thresholds, recall, classes, areas, max dets]
    for c, name in enumerate(classes):
        per_class[name] = _mean_valid(precision[:, :, c, 0, -1])
    stats = ev.stats
    return {"map": float(max(stats[0], 0.0)), "map_50": float(max(stats[1], 0.0)), "per_class": per_class}
