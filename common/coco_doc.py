"""A COCO annotations document as plain JSON: where the reviewed copy goes, editing one image's
boxes, draft marks, the editor's place, and the atomic save. Stdlib only: the engine (`frelon
annotations`, `frelon predict --as-annotations`) and the app's box editor both use it.

Saving never loses anything: edits go to a *reviewed* copy beside the original
(`annotations.json` → `annotations.reviewed.json`; a folder set → `FOLDER/annotations.reviewed.json`),
written to a temporary file and renamed into place; the original file is never written. Everything
the original holds is kept — its `info`, `licenses`, `categories`, images (ids and extra fields)
and the annotations of images nobody edited — so `frelon eval` and earlier runs still match it.

Boxes are COCO `bbox` [x, y, width, height] in the original image's pixels. A model's proposal is
a *draft*: `"frelon_draft": true` and its `score`; accepting it drops both. Frelon's own
bookkeeping (the image the editor was on, the images someone has looked at) lives in
`info.frelon_review`, which COCO tools ignore.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

REVIEWED_SUFFIX = ".reviewed.json"
FOLDER_FILE = "annotations" + REVIEWED_SUFFIX
DRAFT = "frelon_draft"
REVIEW_KEY = "frelon_review"


def reviewed_path(source: str | os.PathLike) -> Path:
    """Where the reviewed copy of `source` (a COCO JSON or a dataset folder) is saved."""
    source = Path(source)
    if source.is_dir():
        return source / FOLDER_FILE
    if source.name.endswith(REVIEWED_SUFFIX):
        return source
    return source.with_name(source.stem + REVIEWED_SUFFIX)


def load(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError(f"{path}: not a COCO annotations file (needs images, annotations and categories lists)")
    return doc


def save(doc: dict[str, Any], path: str | os.PathLike, original: str | os.PathLike | None = None) -> Path:
    """Write `doc` to `path` atomically (temporary file, fsync, rename). Refuses to write over
    `original`: the file a set was read from is never changed."""
    path = Path(path)
    if original is not None and Path(original).exists() and path.exists() and os.path.samefile(path, original):
        raise ValueError(f"{path} is the original annotations file: save the edits beside it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ---------------------------------------------------------------- boxes

def xyxy_to_bbox(box: Iterable[float]) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]


def annotation(ann_id: int, image_id: Any, category_id: int, bbox: Iterable[float],
               score: float | None = None, draft: bool = False) -> dict[str, Any]:
    """One COCO annotation; `draft` marks a model's proposal (with its `score`)."""
    x, y, w, h = (round(float(v), 2) for v in bbox)
    ann = {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": [x, y, w, h],
           "area": round(w * h, 2), "iscrowd": 0}
    if draft:
        ann[DRAFT] = True
    if score is not None:
        ann["score"] = round(float(score), 5)
    return ann


def is_draft(ann: dict[str, Any]) -> bool:
    return bool(ann.get(DRAFT))


def accepted(ann: dict[str, Any]) -> dict[str, Any]:
    """A draft turned into a plain annotation (the draft mark and score dropped)."""
    return {k: v for k, v in ann.items() if k not in (DRAFT, "score")}


def next_annotation_id(doc: dict[str, Any]) -> int:
    ids = [a["id"] for a in doc["annotations"] if isinstance(a, dict) and isinstance(a.get("id"), int)]
    return max(ids, default=0) + 1


def image_annotations(doc: dict[str, Any], image_id: Any) -> list[dict[str, Any]]:
    return [a for a in doc["annotations"] if isinstance(a, dict) and a.get("image_id") == image_id]


def set_image_annotations(doc: dict[str, Any], image_id: Any, boxes: list[dict[str, Any]]) -> None:
    """Replace the annotations of one image by `boxes` [{id?, category_id, bbox, score?, draft?}],
    in place. A box keeps its `id` (and the original annotation's other fields) when it has one;
    new boxes get fresh ids. Other images' annotations and their order are untouched."""
    old = {a.get("id"): a for a in image_annotations(doc, image_id)}
    new_id = next_annotation_id(doc)
    replaced: list[dict[str, Any]] = []
    for box in boxes:
        ann_id = box.get("id")
        if ann_id is None or ann_id not in old:
            ann_id, new_id = new_id, new_id + 1
        ann = annotation(ann_id, image_id, int(box["category_id"]), box["bbox"], box.get("score"),
                         bool(box.get("draft")))
        base = {k: v for k, v in old.get(box.get("id"), {}).items()
                if k not in ("bbox", "area", "category_id", "segmentation", DRAFT, "score")}
        replaced.append({**base, **ann})
    first = next((i for i, a in enumerate(doc["annotations"]) if isinstance(a, dict) and a.get("image_id") == image_id),
                 len(doc["annotations"]))
    kept = [a for a in doc["annotations"] if not (isinstance(a, dict) and a.get("image_id") == image_id)]
    before = sum(1 for a in doc["annotations"][:first] if not (isinstance(a, dict) and a.get("image_id") == image_id))
    doc["annotations"] = kept[:before] + replaced + kept[before:]


def add_image(doc: dict[str, Any], file_name: str, width: int, height: int) -> Any:
    """The id of the image entry for `file_name`, added (with a fresh id) when the document lacks it."""
    for image in doc["images"]:
        if isinstance(image, dict) and image.get("file_name") == file_name:
            return image["id"]
    ids = [im["id"] for im in doc["images"] if isinstance(im, dict) and isinstance(im.get("id"), int)]
    image_id = max(ids, default=0) + 1
    doc["images"].append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
    return image_id


# ---------------------------------------------------------------- the editor's bookkeeping

def review_state(doc: dict[str, Any]) -> dict[str, Any]:
    """`info.frelon_review` ({source, position, reviewed: [image ids]}), created when absent."""
    info = doc.setdefault("info", {})
    if not isinstance(info, dict):
        info = doc["info"] = {"original_info": info}
    state = info.setdefault(REVIEW_KEY, {})
    state.setdefault("reviewed", [])
    return state


def set_position(doc: dict[str, Any], image_id: Any) -> None:
    review_state(doc)["position"] = image_id


def position(doc: dict[str, Any]) -> Any:
    return (doc.get("info") or {}).get(REVIEW_KEY, {}).get("position") if isinstance(doc.get("info"), dict) else None


def mark_reviewed(doc: dict[str, Any], image_id: Any) -> None:
    reviewed = review_state(doc)["reviewed"]
    if image_id not in reviewed:
        reviewed.append(image_id)
