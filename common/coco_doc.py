"""A COCO annotations document as plain JSON: where the reviewed copy goes, which files Frelon may
write annotations to, editing one image's boxes, draft marks, the editor's place, and the atomic
save. Stdlib only: the engine (`frelon annotations`, `frelon predict --as-annotations`) and the
app's box editor both use it.

Saving never loses anything: edits go to a *reviewed* copy beside the original
(`annotations.json` → `annotations.reviewed.json`; a folder set → `FOLDER/annotations.reviewed.json`),
written to a temporary file and renamed into place; the original file is never written. Everything
the original holds is kept — its `info`, `licenses`, `categories`, images (ids and extra fields)
and the annotations of images nobody edited — so `frelon eval` and earlier runs still match it.

The rule every writer of annotations obeys (`check_target`, through `save_annotations`): Frelon
writes annotations only to a file that is new, or that is itself one Frelon wrote — known by its
name (`NAME.reviewed.json`, or `NAME.drafts.json` for a model's drafts) AND the mark inside it
(`info.frelon_review`, `info.frelon_drafts`); never to the file a command reads (`os.path.samefile`:
hard and symbolic links included); and inside a dataset folder only to a `*.reviewed.json`, the one
name no reader takes for the set's own. Whatever `--force` says: force only chooses between
keeping and rewriting Frelon's own copy.

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
from typing import Any, Iterable, Sequence

from .errors import DataError

REVIEWED_SUFFIX = ".reviewed.json"
DRAFTS_SUFFIX = ".drafts.json"
FOLDER_FILE = "annotations" + REVIEWED_SUFFIX
DRAFT = "frelon_draft"
REVIEW_KEY = "frelon_review"
DRAFTS_KEY = "frelon_drafts"
# the annotation files Frelon writes, each known by its name AND the mark in its `info`
OWN_FILES = {"reviewed": (REVIEWED_SUFFIX, REVIEW_KEY), "drafts": (DRAFTS_SUFFIX, DRAFTS_KEY)}


def reviewed_path(source: str | os.PathLike) -> Path:
    """Where the reviewed copy of `source` (a COCO JSON or a dataset folder) is saved."""
    source = Path(source)
    if source.is_dir():
        return source / FOLDER_FILE
    if source.name.endswith(REVIEWED_SUFFIX):
        return source
    return source.with_name(source.stem + REVIEWED_SUFFIX)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The COCO document in `path`; DataError (one line naming the file) when it cannot be."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found", hint="check the path") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})", hint="save the JSON as UTF-8") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                        hint="fix the annotation file (a JSON validator shows the spot)") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be annotations", hint="give a COCO annotations file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})", hint="check the path and its permissions") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        raise DataError(f"{path}: not a COCO annotations file",
                        hint="a COCO JSON holds images, annotations and categories lists (cocodataset.org/#format-data)")
    return doc


def save(doc: dict[str, Any], path: str | os.PathLike, original: str | os.PathLike | None = None) -> Path:
    """Write `doc` to `path` atomically (temporary file, fsync, rename). Refuses to write over
    `original`: the file a set was read from is never changed."""
    path = Path(path)
    if original is not None and Path(original).exists() and path.exists() and os.path.samefile(path, original):
        raise DataError(f"{path}: is the original annotations file", hint="save the edits beside it")
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


# ---------------------------------------------------------------- which files annotations may go to

def is_coco_document(path: str | os.PathLike) -> bool:
    """Whether `path` holds a COCO annotations document (a JSON list, such as predictions, is
    told from the first bytes without reading the rest)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"{"):
            return False
        load(path)
    except (OSError, DataError):
        return False
    return True


def own_kind(path: str | os.PathLike, doc: dict[str, Any] | None = None) -> str | None:
    """"reviewed" or "drafts" when `path` is an annotations file Frelon wrote — its name ends in
    that kind's suffix and its `info` holds that kind's mark —; None for any other file. `doc`:
    the document already read from `path`."""
    path = Path(path)
    for kind, (suffix, key) in OWN_FILES.items():
        if path.name.endswith(suffix) and (doc is not None or path.is_file()):
            info = (doc if doc is not None else marked_document(path, key) or {}).get("info")
            return kind if isinstance(info, dict) and key in info else None
    return None


def marked_document(path: str | os.PathLike, key: str = REVIEW_KEY) -> dict[str, Any] | None:
    """The COCO document in `path` when its `info` holds Frelon's mark `key`, else None."""
    try:
        doc = load(path)
    except DataError:
        return None
    info = doc.get("info")
    return doc if isinstance(info, dict) and key in info else None


def free_name(near: str | os.PathLike, suffix: str = REVIEWED_SUFFIX) -> Path:
    """A file that does not exist yet, beside `near`, named after it with `suffix`."""
    near = Path(near).absolute()
    stem = near.name[:-len(suffix)] if near.name.endswith(suffix) else near.stem
    candidate, n = near.with_name(stem + suffix), 1
    while os.path.lexists(candidate):
        n += 1
        candidate = near.with_name(f"{stem}-{n}{suffix}")
    return candidate


def check_target(target: str | os.PathLike, may_replace: Sequence[str] = ("reviewed",),
                 inputs: Iterable[str | os.PathLike | None] = (), inside: str | os.PathLike | None = None,
                 instead: str = "") -> Path:
    """`target` (absolute) when annotations may be written to it, else DataError naming the file
    that would be destroyed and `instead` (what to use). Allowed: a new file, or an existing one
    Frelon wrote of a kind in `may_replace` (name and mark, see `own_kind`). Never a file in
    `inputs` (the command's own input, links included); never, inside the dataset folder `inside`,
    a new file but a `*.reviewed.json` (any other name may be read as the set's own)."""
    target = Path(target).absolute()
    kinds = " or ".join(f"a *{OWN_FILES[k][0]} holding info.{OWN_FILES[k][1]}" for k in may_replace)
    hint = instead or f"write to a new file, e.g. {free_name(target, OWN_FILES[may_replace[0]][0])}"
    if target.is_dir():
        raise DataError(f"{target}: is a folder, not an annotations file", hint=hint)
    for source in inputs:
        if source is not None and os.path.exists(source) and target.exists() and os.path.samefile(target, source):
            raise DataError(f"{target}: is this command's input ({source}); writing it would destroy it", hint=hint)
    if target.exists():
        if own_kind(target) not in may_replace:
            raise DataError(f"{target}: exists and is not annotations Frelon wrote ({kinds}); "
                            "writing it would destroy it", hint=hint)
    elif inside is not None and not target.name.endswith(REVIEWED_SUFFIX):
        folder = Path(os.path.realpath(inside))
        if folder in Path(os.path.realpath(target.parent)).joinpath(target.name).parents:
            raise DataError(f"{target}: inside the dataset folder {inside}, where a reader of the set could "
                            "take it for the set's own annotations", hint=hint)
    return target


def save_annotations(doc: dict[str, Any], path: str | os.PathLike, may_replace: Sequence[str] = ("reviewed",),
                     inputs: Iterable[str | os.PathLike | None] = (), inside: str | os.PathLike | None = None,
                     instead: str = "") -> Path:
    """`save` under `check_target`'s rule; a `*.reviewed.json` gets its mark (`info.frelon_review`),
    so that the next save may replace it."""
    path = check_target(path, may_replace, list(inputs), inside, instead)
    if path.name.endswith(REVIEWED_SUFFIX):
        review_state(doc)
    return save(doc, path)


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
