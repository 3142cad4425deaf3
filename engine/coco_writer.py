"""Detection annotations written as COCO: a set of any layout as one COCO document, and a run's
detections as draft annotations. Behind `frelon annotations` and `frelon predict --as-annotations`.

The document itself (reviewed path, draft marks, atomic save) is `common/coco_doc.py`, shared with
the app's box editor. What this module adds needs the readers or the model:

  * `dataset_document`: a single COCO JSON is taken verbatim (its ids, categories and everything
    else kept); VOC, YOLO and COCO train/ + val/ folders are read as training reads them and
    written as one COCO document at the set's root (file names relative to it; image ids are
    the readers' running numbers, made unique across the two splits);
  * `write_reviewed`: that document saved as the reviewed copy (never over the original, nor
    over any file Frelon did not write: common/coco_doc.py's `check_target`);
  * `drafts_document`: detections above a threshold as draft annotations of the images they
    came from, for a person to accept, edit or reject.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from frelon.common import coco_doc

from .data.detection import DetectionRecord, coco_json_in, coco_split_files, detect_layout, scan_detection
from .data.images import BadImage, probe
from .errors import DataError


def source_file(data: str | os.PathLike) -> Path:
    """The file edits are made beside: the COCO JSON itself (also the one JSON in a COCO folder),
    else the dataset folder (VOC, YOLO, COCO train/ + val/)."""
    p = Path(data).absolute()
    if detect_layout(p) is None:
        raise DataError(f"{p}: not a detection dataset",
                        hint="give a COCO JSON, a VOC folder (Annotations/ + JPEGImages/) or a YOLO folder")
    if p.is_dir() and detect_layout(p) == "coco" and coco_split_files(p) is None:
        return coco_json_in(p) or p
    return p


def dataset_document(data: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(COCO document of the whole set, summary {layout, source, images, annotations, skipped})."""
    src = source_file(data)
    if src.is_file():
        doc = coco_doc.load(src)
        return doc, {"layout": "coco", "source": str(src), "images": len(doc["images"]),
                     "annotations": len(doc["annotations"]), "skipped": 0}
    scanned = scan_detection(src, val_split=0.0)
    records = [("train", r) for r in scanned.train] + [("val", r) for r in scanned.val]
    doc = coco_from_records(scanned.classes, scanned.category_ids, records, src)
    doc["info"] = {"description": f"{src.name} ({scanned.layout}) saved as COCO by Frelon"}
    return doc, {"layout": scanned.layout, "source": str(src), "images": len(doc["images"]),
                 "annotations": len(doc["annotations"]), "skipped": len(scanned.report["skipped"])}


def coco_from_records(classes: Sequence[str], category_ids: Sequence[int],
                      records: Sequence[tuple[str, DetectionRecord]], root: Path) -> dict[str, Any]:
    """A COCO document of (split, record) pairs, file names relative to `root`, crowd flags kept;
    each image entry says which split it came from (`frelon_split`)."""
    images, annotations, used = [], [], set()
    next_id = max((r.image_id for _, r in records), default=0) + 1
    for split, rec in records:
        image_id = rec.image_id
        if image_id in used:                      # COCO train/ and val/ each number from 1
            image_id, next_id = next_id, next_id + 1
        used.add(image_id)
        name = Path(os.path.relpath(rec.path, root)).as_posix()
        images.append({"id": image_id, "file_name": name, "width": rec.width, "height": rec.height,
                       "frelon_split": split})
        for box, label, crowd in zip(rec.boxes, rec.labels, rec.iscrowd):
            ann = coco_doc.annotation(len(annotations) + 1, image_id, category_ids[label], coco_doc.xyxy_to_bbox(box))
            ann["iscrowd"] = int(crowd)
            annotations.append(ann)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for cid, name in zip(category_ids, classes)]}


def write_reviewed(data: str | os.PathLike, out: str | os.PathLike | None = None, force: bool = False) -> dict[str, Any]:
    """Save the set as COCO at `out` (default: its reviewed path). An existing reviewed copy holds
    someone's edits: it is kept (and its path returned) unless `force`. The target is checked
    before the set is read: never the set's own file, nor any file Frelon did not write
    (common/coco_doc.py, `check_target`), and it must be writable."""
    from .outputs import writable_file
    src = source_file(data)
    default = coco_doc.reviewed_path(src)
    target = Path(out).absolute() if out else default
    given = Path(data).absolute()
    rule = {"inputs": [src], "inside": given if given.is_dir() else None,
            "instead": (f"leave out --out: the reviewed copy goes to {default}" if target != default else
                        f"give --out a new file, e.g. {coco_doc.free_name(target)}")
            + " (--force only rewrites a reviewed copy Frelon wrote)"}
    if target.is_file() and not force:
        kept = coco_doc.marked_document(target)
        if kept is not None:            # an earlier copy, with its edits: kept, nothing written
            return {"path": str(target), "source": str(src), "created": False, "images": len(kept["images"]),
                    "annotations": len(kept["annotations"])}
    coco_doc.check_target(target, ("reviewed",), **rule)
    writable_file(target, "--out")
    doc, summary = dataset_document(src)
    coco_doc.review_state(doc)["source"] = str(src)
    coco_doc.save_annotations(doc, target, ("reviewed",), **rule)
    return {**summary, "path": str(target), "created": True}


def drafts_document(results: Sequence[dict], items: Sequence[dict], classes: Sequence[str],
                    category_ids: Sequence[int], threshold: float, root: Path, run: str) -> dict[str, Any]:
    """COCO document of `items` (the inputs of `frelon predict`) whose annotations are the
    detections scoring ≥ `threshold`, each marked as a draft with its score."""
    images, by_key = [], {}
    for n, item in enumerate(items, start=1):
        if item.get("path") is None:
            continue
        try:
            info = probe(item["path"])
        except BadImage:
            continue
        image_id = item.get("image_id", n)
        images.append({"id": image_id, "file_name": Path(str(item["file_name"])).as_posix(),
                       "width": info.width, "height": info.height})
        by_key[("image_id", image_id) if "image_id" in item else ("file_name", item["file_name"])] = image_id
    annotations = []
    for r in results:
        key = ("image_id", r["image_id"]) if "image_id" in r else ("file_name", r.get("file_name"))
        if r["score"] < threshold or key not in by_key:
            continue
        annotations.append(coco_doc.annotation(len(annotations) + 1, by_key[key], r["category_id"], r["bbox"],
                                               score=r["score"], draft=True))
    return {"info": {"description": f"draft annotations by {run}",
                     coco_doc.DRAFTS_KEY: {"run": str(run), "threshold": threshold, "image_root": str(Path(root).absolute())}},
            "images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for cid, name in zip(category_ids, classes)]}


def drafts_hint(as_annotations: str) -> str:
    """What to give `--as-annotations` instead of a file Frelon may not write."""
    return (f"give --as-annotations a new file, e.g. {coco_doc.free_name(as_annotations, coco_doc.DRAFTS_SUFFIX)} "
            f"(a later run may replace a *{coco_doc.DRAFTS_SUFFIX} Frelon wrote)")
