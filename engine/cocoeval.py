"""COCO mAP (AP over IoU 0.5:0.95), AP50, per-class AP and precision–recall curves with pycocotools.

The ground truth is built in memory from `DetectionRecord`s (crowd boxes marked `iscrowd`, so
detections on them count neither as hits nor as misses) and the detections are the decoded ones,
in the same images' pixels. pycocotools prints its progress on stdout, which is the event stream:
what it prints is caught and dropped (the figures are returned).

The precision–recall curves are pycocotools' own accumulated array, `eval["precision"]`
([IoU thresholds, 101 recall points, classes, areas, max detections]), read at area "all" and 100
detections: per class and for all classes (the mean over the classes that have ground truth, point
by point), at IoU 0.5 and averaged over IoU 0.5:0.95. Each curve's mean is exactly its AP (COCO's
101-point interpolated AP), so the curves and the figures can never disagree.

Edge cases: no ground-truth box at all → every figure is None (undefined, not zero) and no curves;
ground truth but no detection → 0.0 and flat zero curves; a class without ground truth → None in
`per_class` and in the curves.
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


IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)      # pycocotools' defaults (Params.iouThrs, recThrs)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _curve(precision: np.ndarray) -> list[float | None] | None:
    """(..., 101) precisions, -1 where undefined → the mean over the leading axes, per recall point."""
    valid = precision > -1
    if not valid.any():
        return None
    flat = precision.reshape(-1, precision.shape[-1])
    mask = valid.reshape(flat.shape)
    return [round(float(flat[mask[:, r], r].mean()), 5) for r in range(flat.shape[-1])]


def pr_curves(precision: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """{"recall": 101 points, "iou_50" / "iou_50_95": {"all": curve, class: curve or None}} from
    pycocotools' accumulated eval["precision"] (area "all", the last max-detections setting)."""
    p = precision[:, :, :, 0, -1]                                 # [IoU, recall, class]
    i50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    out: dict[str, Any] = {"recall": [round(float(r), 2) for r in RECALL_POINTS]}
    for key, sel in (("iou_50", p[i50:i50 + 1]), ("iou_50_95", p)):
        curves = {"all": _curve(np.moveaxis(sel, 2, 0))}          # mean over classes (and IoUs)
        for c, name in enumerate(classes):
            curves[name] = _curve(sel[:, :, c])
        out[key] = curves
    return out


PIP_NAME = "pycocotools"


def require() -> None:
    """pycocotools importable, or a ConfigurationError saying what to install: a detection run
    with validation images checks this before it reads its data, not at its first epoch's end."""
    try:
        import pycocotools.cocoeval  # noqa: F401
    except ImportError:
        from .errors import ConfigurationError
        raise ConfigurationError(
            f"detection's validation (mAP) needs the Python package {PIP_NAME}, which is not installed",
            hint=f"pip install {PIP_NAME}; without it only data with no validation images can train "
                 "(--val-split 0, no --val-data, no val/ folder), and no mAP is measured") from None


def coco_map(records: Sequence[Any], detections: Sequence[Any], classes: Sequence[str]) -> dict[str, Any]:
    """{"map", "map_50", "per_class": {name: AP or None}, "per_class_50": {name: AP@0.5 or None},
    "pr_curves": see `pr_curves` (None without ground truth)} for detections[i] on records[i].

    `records` need width, height, boxes (xyxy), labels, iscrowd; `detections` boxes (xyxy),
    scores, labels (tensors), in the same pixels."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_doc = _ground_truth(records, len(classes))
    per_class: dict[str, float | None] = {name: None for name in classes}
    if not any(not a["iscrowd"] for a in gt_doc["annotations"]):
        return {"map": None, "map_50": None, "per_class": per_class, "per_class_50": dict(per_class),
                "pr_curves": None}
    results = _results(detections)
    if not results:
        present = {a["category_id"] - 1 for a in gt_doc["annotations"] if not a["iscrowd"]}
        zero = {name: (0.0 if c in present else None) for c, name in enumerate(classes)}
        precision = np.full((len(IOU_THRESHOLDS), len(RECALL_POINTS), len(classes), 4, 3), -1.0)
        precision[:, :, sorted(present)] = 0.0
        return {"map": 0.0, "map_50": 0.0, "per_class": zero, "per_class_50": dict(zero),
                "pr_curves": pr_curves(precision, classes)}
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
    i50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    per_class_50 = {}
    for c, name in enumerate(classes):
        per_class[name] = _mean_valid(precision[:, :, c, 0, -1])
        per_class_50[name] = _mean_valid(precision[i50, :, c, 0, -1])
    stats = ev.stats
    return {"map": float(max(stats[0], 0.0)), "map_50": float(max(stats[1], 0.0)), "per_class": per_class,
            "per_class_50": per_class_50, "pr_curves": pr_curves(precision, classes)}
