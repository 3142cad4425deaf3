"""`frelon review`: a run's detector against a set's annotations, images ranked by disagreement.

Where a good model and the labels disagree, the label is often the one that is wrong. For each
image the model's detections are matched to the annotations (torchvision's `box_iou`, greedily by
score) and every disagreement is given a reason and a weight:

  * "missing annotation" — a confident detection (score ≥ `confidence`) overlapping no annotation
    (IoU < `min_iou`): a likely forgotten label; weight = its score;
  * "class conflict" — the most confident detection on an annotation (IoU ≥ `min_iou`) is of
    another class; weight = its score − the best score of the annotation's class there (a model
    torn between two classes says little);
  * "low-IoU match" — a confident detection of the annotation's class that overlaps it only
    loosely (`min_iou` ≤ IoU < `match_iou`): a sloppy box; weight = score × (1 − IoU / match_iou);
  * "missed annotation" — an annotation no confident detection matched: a box on nothing, or a
    hard object; weight = 1 − s / `confidence`, s the best score of a same-class detection on it
    (IoU ≥ `match_iou`): 1 when the model sees nothing there, near 0 when it almost agrees.

One object, one judgement: a less sure detection on an annotation already judged (IoU ≥ `min_iou`)
or on a detection already weighed (IoU ≥ `match_iou`), whatever its class, is not counted again.

An image's disagreement is the sum of its weights; images are listed worst first. Crowd
annotations are not reviewed, and detections on them are not counted. Every image's detections
down to `floor` come along, so the app can show them and accept one as an annotation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torchvision.ops import box_iou

from frelon.common import coco_doc
from frelon.common.run_folder import SCORE_THRESHOLD, data_or_sample

from ..errors import DataError
from ..inference import load_run

MISSING, MISSED, CONFLICT, LOOSE = "missing annotation", "missed annotation", "class conflict", "low-IoU match"
REASONS = (MISSING, CONFLICT, LOOSE, MISSED)


def disagreements(det_boxes: torch.Tensor, det_scores: torch.Tensor, det_labels: torch.Tensor,
                  gt_boxes: torch.Tensor, gt_labels: torch.Tensor, gt_crowd: torch.Tensor,
                  confidence: float = SCORE_THRESHOLD, match_iou: float = 0.5, min_iou: float = 0.1) -> list[dict[str, Any]]:
    """The disagreements of one image (see the module docstring). Boxes are xyxy tensors;
    issues are [{reason, weight, detection (index) | None, annotation (index) | None, iou}]."""
    issues: list[dict[str, Any]] = []
    confident = (det_scores >= confidence).nonzero().flatten().tolist()
    confident.sort(key=lambda i: -float(det_scores[i]))
    iou = box_iou(det_boxes, gt_boxes) if len(det_boxes) and len(gt_boxes) else torch.zeros(len(det_boxes), len(gt_boxes))
    crowd = gt_crowd.bool() if len(gt_boxes) else torch.zeros(0, dtype=torch.bool)
    taken = crowd.clone()
    judged: list[int] = []                                      # confident detections already weighed

    def seen(g: int, overlap: float) -> float:
        """The best score of a detection of annotation g's class on it (IoU ≥ overlap)."""
        same = (det_labels == gt_labels[g]) & (iou[:, g] >= overlap)
        return float(det_scores[same].max()) if bool(same.any()) else 0.0

    for d in confident:
        score = float(det_scores[d])
        if len(gt_boxes) and bool((iou[d] >= min_iou)[crowd].any()):
            continue                                            # on a crowd region: not judged
        if len(gt_boxes) and bool((iou[d] >= match_iou)[taken].any()):
            continue                                            # a less sure guess on an annotation already judged
        if judged and float(box_iou(det_boxes[d:d + 1], det_boxes[judged]).max()) >= match_iou:
            continue                                            # ... or on an object already judged
        judged.append(d)
        free = iou[d].masked_fill(taken, -1.0) if len(gt_boxes) else iou[d]
        g = int(free.argmax()) if len(gt_boxes) else -1
        best = float(free[g]) if g >= 0 else 0.0
        if best < min_iou:
            if len(gt_boxes) and float(iou[d].max()) >= min_iou:
                continue                                        # a looser guess at an annotation already judged
            issues.append(_issue(MISSING, score, d, None, max(best, 0.0)))
            continue
        taken[g] = True
        if int(det_labels[d]) != int(gt_labels[g]):             # how much more it believes the other class
            issues.append(_issue(CONFLICT, score - seen(g, min_iou), d, g, best))
        elif best < match_iou:
            issues.append(_issue(LOOSE, score * (1.0 - best / match_iou), d, g, best))
    for g in range(len(gt_boxes)):
        if not taken[g]:
            issues.append(_issue(MISSED, 1.0 - min(seen(g, match_iou) / confidence, 1.0), None, g, float(iou[:, g].max())
                                 if len(det_boxes) else 0.0))
    return issues


def _issue(reason: str, weight: float, det: int | None, gt: int | None, iou: float) -> dict[str, Any]:
    return {"reason": reason, "weight": round(weight, 5), "detection": det, "annotation": gt, "iou": round(iou, 4)}


def own_data(data: str, trained_on: str) -> bool:
    """Whether `data` is the set the run was trained on: the same file or folder, or its reviewed copy."""
    a, b = Path(data).resolve(), Path(trained_on).resolve()
    return a == b or a == coco_doc.reviewed_path(b).resolve()


@torch.no_grad()
def review_run(run: str, data: str | None = None, splits: str | None = None, checkpoint: str = "best",
               device: str = "auto", confidence: float = SCORE_THRESHOLD, match_iou: float = 0.5, min_iou: float = 0.1,
               floor: float = 0.05) -> dict[str, Any]:
    """The review queue of `run` on `data` (default: the data it was trained on). The split is the
    run's own (same `--val-split` and seed, or the layout's); `splits` is "val", "train" or "all",
    or None: the validation split of the run's own data (its training images the model has learnt
    by heart), every image of a set it never trained on. The answer's `splits` and `own_data` say which."""
    from ..centernet.decode import decode_to_original
    from ..centernet.predict import image_batches, relabel_to_model, run_model, sliced_if_trained
    from ..centernet.transforms import eval_transform
    from ..data.detection import scan_detection
    loaded = load_run(run, checkpoint, device)
    if not loaded.task.boxes:
        raise DataError(f"{run}: a {loaded.task_name} run; review ranks detection annotations",
                        hint="for classification, the Results tab's misclassified gallery shows the doubtful labels")
    cfg = loaded.config
    trained_on = data_or_sample(cfg.data, loaded.task_name)
    data = data or trained_on
    own = own_data(data, trained_on)
    splits = splits or ("val" if own else "all")
    scanned = scan_detection(data, val_data=(cfg.val_data or "") if data == cfg.data else "",
                             val_split=cfg.val_split, seed=cfg.seed)
    chosen = {"val": scanned.val, "train": scanned.train, "all": scanned.train + scanned.val}[splits]
    split_of = {id(r): "val" for r in scanned.val}
    records, dropped = relabel_to_model(chosen, scanned.classes, loaded.classes)
    by_name = {name: cid for name, cid in zip(scanned.classes, scanned.category_ids)}
    ids = [by_name.get(c) for c in loaded.classes]
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    items = [{"path": r.path, "file_name": r.file_name, "record": r} for r in records]
    skipped: list[dict] = []
    out = []
    for batch in image_batches(items, skipped, transform, loaded.size):
        outputs = run_model(loaded.model, torch.stack([b[2] for b in batch]), loaded.device)
        whole = decode_to_original(outputs, [b[3] for b in batch])
        for (item, *_), det in zip(batch, sliced_if_trained(loaded, batch, whole, transform)):
            rec = item["record"]
            keep = det.scores >= floor
            boxes, scores, labels = det.boxes[keep].cpu(), det.scores[keep].cpu(), det.labels[keep].cpu()
            issues = disagreements(boxes, scores, labels, torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4),
                                   torch.tensor(rec.labels, dtype=torch.long), torch.tensor(rec.iscrowd, dtype=torch.bool),
                                   confidence, match_iou, min_iou)
            out.append(_image_entry(rec, split_of.get(id(rec), "train"), boxes, scores, labels, issues,
                                    loaded.classes, ids))
    out.sort(key=lambda e: (-e["disagreement"], str(e["file_name"])))
    return {"run": str(loaded.run_dir), "data": str(Path(data).absolute()), "splits": splits, "own_data": own,
            "classes": list(loaded.classes), "category_ids": ids, "confidence": confidence,
            "match_iou": match_iou, "min_iou": min_iou, "reasons": list(REASONS),
            "images": out, "skipped": skipped + list(scanned.report["skipped"]),
            "warnings": [f"{n} box(es) of class {c!r}, which the model does not know, are not reviewed"
                         for c, n in sorted(dropped.items())]}


def _image_entry(rec, split: str, boxes, scores, labels, issues: list[dict], classes: Sequence[str],
                 ids: Sequence[int | None]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue["reason"]] = counts.get(issue["reason"], 0) + 1
    weights = {r: sum(i["weight"] for i in issues if i["reason"] == r) for r in counts}
    return {
        "image_id": rec.image_id, "file_name": rec.file_name, "path": rec.path, "split": split,
        "width": rec.width, "height": rec.height,
        "disagreement": round(sum(i["weight"] for i in issues), 5),
        "reasons": sorted(counts, key=lambda r: -weights[r]), "counts": counts, "issues": issues,
        "annotations": [{"category": classes[lab], "category_id": ids[lab], "bbox": coco_doc.xyxy_to_bbox(b),
                         "iscrowd": int(c)} for b, lab, c in zip(rec.boxes, rec.labels, rec.iscrowd)],
        "detections": [{"category": classes[int(lab)], "category_id": ids[int(lab)], "bbox": coco_doc.xyxy_to_bbox(b),
                        "score": round(float(s), 5)} for b, s, lab in zip(boxes.tolist(), scores, labels)],
    }
