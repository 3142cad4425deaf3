"""COCO instances JSON: categories, images (resolved against the JSON's folder, then images/ beside
it) and annotations read into `DetectionRecord`s; a folder's one COCO JSON, or its train/ + val/ pair."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from ...errors import DataError
from .checks import VAL_NAMES, BoxCap, add_box, parse_number, probe_many, probe_or_skip, safe_join, visible
from .records import DetectionRecord, ReadLog, ReadResult


def _let_others_run(obj: dict) -> dict:
    """json.loads' hook, called for every object: being Python, it lets the interpreter run a
    signal handler or another thread (a stop's side thread, control.py) while a file of hundreds
    of MB is parsed — the C parser alone holds the interpreter for the whole parse (seconds; with
    the hook a side thread waited 0.6 s at most during a 5 s parse, at no measurable cost)."""
    return obj


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})", hint="save the JSON as UTF-8") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return json.loads(text, object_hook=_let_others_run)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                        hint="fix the annotation file (a JSON validator shows the spot)") from None


def _require(entry: Any, keys: Iterable[str], path: Path, where: str) -> None:
    if not isinstance(entry, dict):
        raise DataError(f"{path}: {where} is not a JSON object")
    for key in keys:
        if key not in entry:
            raise DataError(f"{path}: {where}: missing required key {key!r}",
                            hint="every COCO entry needs its keys; see cocodataset.org/#format-data")


def _entry_problem(entry: Any, keys: Iterable[str], where: str) -> str:
    """Why one images / annotations entry cannot be used ("" when it has its keys): such an entry
    is skipped and reported, the rest of the file is used."""
    if not isinstance(entry, dict):
        return f"{where} is not a JSON object"
    missing = [key for key in keys if key not in entry]
    return f"{where}: missing required key {missing[0]!r}" if missing else ""


def _coco_where(section: str, i: int, entry: Any) -> str:
    ident = entry.get("id") if isinstance(entry, dict) else None
    return f"{section}[{i}]" + (f" (id {ident})" if ident is not None else "")


def _coco_categories(doc: dict, path: Path) -> tuple[list[str], list[int]]:
    cats = doc["categories"]
    if not isinstance(cats, list):
        raise DataError(f"{path}: 'categories' must be a list")
    by_id: dict[int, str] = {}
    for i, cat in enumerate(cats):
        where = _coco_where("categories", i, cat)
        _require(cat, ("id", "name"), path, where)
        cid = cat["id"]
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise DataError(f"{path}: {where}: category id must be a whole number, got {cid!r}")
        if cid in by_id:
            raise DataError(f"{path}: {where}: category id {cid} is listed twice")
        name = str(cat["name"])
        if name in by_id.values():
            other = next(k for k, v in by_id.items() if v == name)
            raise DataError(f"{path}: {where}: category name {name!r} is also id {other}",
                            hint="classes are matched by name: give each category its own name")
        by_id[cid] = name
    ids = sorted(by_id)
    return [by_id[i] for i in ids], ids


def _id_key(value: Any) -> Any:
    """An id as compared (ints usually, strings in some exports; 3.0 is 3); None when it is no id."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value


def _coco_listed_files(images: list, path: Path, log: ReadLog) -> list[tuple[int, dict, str, Any, Path]]:
    """(index, entry, where, image id, file) of the images entries whose file exists inside the
    dataset folder; the others are reported."""
    listed, seen_ids = [], set()
    for i, img in enumerate(images):
        where = _coco_where("images", i, img)
        problem = _entry_problem(img, ("id", "file_name"), where)
        if problem:
            log.skip(path, problem)
            continue
        image_id = _id_key(img["id"])
        name = str(img["file_name"])
        if image_id is None:
            log.skip(path, f"{where}: id {img['id']!r} is not a number or a string")
            continue
        if image_id in seen_ids:
            log.skip(path, f"{where}: image id {image_id} listed twice, this entry ignored")
            continue
        seen_ids.add(image_id)
        file = resolve_coco_image(path.parent, name)
        if file is None:
            log.skip(path, f"{where}: file_name {name!r} points outside the dataset folder, refused")
        elif not file.is_file():
            log.skip(file, f"{where}: missing image file {name!r}")
        else:
            listed.append((i, img, where, image_id, file))
    return listed


def _coco_images(doc: dict, path: Path, log: ReadLog) -> dict[Any, DetectionRecord]:
    """The listed images that exist, can be read, and stay inside the dataset folder."""
    images = doc["images"]
    if not isinstance(images, list):
        raise DataError(f"{path}: 'images' must be a list")
    listed = _coco_listed_files(images, path, log)
    probe_many([entry[-1] for entry in listed], log)
    records: dict[Any, DetectionRecord] = {}
    seen_paths: dict[str, Any] = {}
    mismatched: list[str] = []
    for i, img, where, image_id, file in listed:
        name = str(img["file_name"])
        size = probe_or_skip(file, where, log)
        if size is None:
            continue
        if not _declared_size_matches(img, size):
            mismatched.append(f"{name} ({img.get('width')}×{img.get('height')} listed, {size[0]}×{size[1]} read)")
        if str(file) in seen_paths:
            log.warn(f"{path.name}: {name!r} is listed as several images (ids {seen_paths[str(file)]} and {image_id})")
        seen_paths[str(file)] = image_id
        records[image_id] = DetectionRecord(
            path=str(file), file_name=name, width=size[0], height=size[1],
            image_id=image_id if isinstance(image_id, int) else i)
    if mismatched:
        log.warn(f"{path.name}: {len(mismatched)} image(s) are not the size the file lists (e.g. {mismatched[0]}); "
                 "boxes are checked against the image as read (EXIF orientation applied)")
    return records


def resolve_coco_image(folder: Path, name: str) -> Path | None:
    """file_name against the JSON's folder, then an images/ folder beside it (DESIGN.md)."""
    first = safe_join(folder, name)
    if first is None:
        return None
    if first.is_file():
        return first
    second = safe_join(folder / "images", name)
    return second if second is not None and second.is_file() else first


def _declared_size_matches(img: dict, size: tuple[int, int]) -> bool:
    """False when the entry lists a width and height other than the image's (true when it lists none)."""
    w, h = parse_number(img.get("width")), parse_number(img.get("height"))
    if w is None or h is None or not math.isfinite(w) or not math.isfinite(h):
        return True
    return (int(w), int(h)) == size


def _coco_box(bbox: Any) -> list[float] | str:
    """[x, y, w, h] → [x1, y1, x2, y2], or the reason it is not a box."""
    if not isinstance(bbox, (list, tuple)):
        return f"bbox must be a list [x, y, w, h], got {type(bbox).__name__}"
    if len(bbox) != 4:
        return f"bbox must have 4 values [x, y, w, h], got {len(bbox)}"
    values = [parse_number(v) for v in bbox]
    if any(v is None for v in values):
        return f"bbox has a value that is not a number: {bbox!r}"
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values):
        return "NaN or infinite coordinate"
    if w <= 0 or h <= 0:
        return f"zero or negative size ({w:g} × {h:g} px)"
    return [x, y, x + w, y + h]


def read_coco(path: str | os.PathLike, workers: int | None = None) -> ReadResult:
    """A COCO instances JSON; images resolved against its folder, then images/ beside it."""
    path = Path(path).absolute()
    doc = _load_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise DataError(f"{path}: missing required key {key!r}",
                            hint="a COCO file holds 'images', 'annotations' and 'categories'")
    log = ReadLog(workers)
    classes, category_ids = _coco_categories(doc, path)
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    records = _coco_images(doc, path, log)
    anns = doc["annotations"]
    if not isinstance(anns, list):
        raise DataError(f"{path}: 'annotations' must be a list")
    listed = {_id_key(img.get("id")) for img in doc["images"] if isinstance(img, dict)} - {None}
    cap = BoxCap()
    for i, ann in enumerate(anns):
        _coco_annotation(i, ann, records, listed, label_of, path, log, cap)
    cap.report(log, path.name)
    return ReadResult(classes, category_ids, _marked_splits(doc, records), path.parent, log)


def _marked_splits(doc: dict, records: dict[Any, DetectionRecord]) -> dict[str, list[DetectionRecord]]:
    """{"all": records}, or the file's own train / val split: a reviewed copy of a split set
    (coco_writer.py) marks each image `frelon_split` with the split it came from, so a retrain on
    it validates on the same images as the run it corrects. Images added since (accepted drafts)
    carry no mark and train."""
    mark = {_id_key(img.get("id")): img.get("frelon_split") for img in doc["images"] if isinstance(img, dict)}
    marks = {image_id: mark.get(image_id) for image_id in records}
    if {"train", "val"} <= set(marks.values()):
        return {"train": [r for i, r in records.items() if marks[i] != "val"],
                "val": [r for i, r in records.items() if marks[i] == "val"]}
    return {"all": list(records.values())}


def _coco_annotation(i: int, ann: Any, records: dict[Any, DetectionRecord], listed: set,
                     label_of: dict[Any, int], path: Path, log: ReadLog, cap: BoxCap) -> None:
    """Add one annotation's box to its image's record, or report why not (past the cap: counted
    before anything else is done with it)."""
    rec = records.get(_id_key(ann.get("image_id"))) if isinstance(ann, dict) else None
    if rec is not None and cap.full(rec):
        return
    where = _coco_where("annotations", i, ann)
    problem = _entry_problem(ann, ("image_id", "category_id", "bbox"), where)
    if problem:
        log.skip(path, problem)
        return
    image_id = _id_key(ann["image_id"])
    rec = records.get(image_id)
    if rec is None:
        if image_id not in listed:
            log.skip(path, f"{where}: annotation for image id {ann['image_id']!r}, which is not in 'images'")
        return  # otherwise the image itself was skipped and reported
    cid = _id_key(ann["category_id"])
    if cid not in label_of:
        log.skip(rec.path, f"{path.name} {where}: unknown category id {ann['category_id']!r}")
        return
    box = _coco_box(ann["bbox"])
    if isinstance(box, str):
        log.skip(rec.path, f"{path.name} {where}: {box}")
        return
    crowd = (parse_number(ann.get("iscrowd", 0)) or 0) >= 1
    add_box(rec, box, label_of[cid], crowd, f"{path.name} {where}", log)


def coco_split_files(folder: Path) -> dict[str, Path] | None:
    """{'train': json, 'val': json} for a folder holding train/ and val/ (or valid/), each with
    exactly one COCO JSON; None otherwise."""
    found = {}
    for split, names in (("train", ("train",)), ("val", VAL_NAMES)):
        for name in names:
            sub = folder / name
            jsons = _json_files(sub) if sub.is_dir() else []
            if len(jsons) == 1:
                found[split] = jsons[0]
                break
    return found if len(found) == 2 else None


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() == ".json" and visible(p.name))


def _looks_like_coco(path: Path) -> bool:
    """A cheap look at a JSON's first 64 KiB for COCO's keys (files can be hundreds of MB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return any(key in head for key in (b'"images"', b'"annotations"', b'"categories"'))


def coco_json_in(folder: Path) -> Path | None:
    """The one COCO JSON in a folder (or in its annotations/ subfolder). A reviewed copy the app's
    box editor saved beside it (NAME.reviewed.json) is not a second set: the folder still means
    the original; train on the copy by naming it (`--data …/NAME.reviewed.json`)."""
    for where in (folder, folder / "annotations"):
        if where.is_dir():
            jsons = [p for p in _json_files(where) if _looks_like_coco(p) and not p.name.endswith(".reviewed.json")]
            if len(jsons) == 1:
                return jsons[0]
    return None
