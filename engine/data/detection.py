"""Detection datasets: COCO JSON, Pascal VOC XML and YOLO txt read into one record type.

This module owns the three readers, layout detection, the train / val split and the detection
report behind `frelon check --task detect` and the `data_report` event. Every image is checked once
with `data.images.probe` (decoded, in parallel threads, as the classification doctor does): its size
after EXIF orientation, and its SHA-1 to find duplicates and train / val leaks.

Every reader returns `DetectionRecord`s with boxes in the image's pixels as (x1, y1, x2, y2),
labels as indices into one class list, and a crowd flag per box (COCO `iscrowd`, VOC `difficult`):
crowd boxes are kept for evaluation (pycocotools ignores detections matched to them) and left out
of the training targets.

What a problem costs (the README's table "What stops a run and what is skipped"; each row is
tested in tests/robustness/test_reader_rules.py):
  * the set: only what defines it — a malformed or unreadable COCO JSON, a missing top-level key,
    a broken `categories` list (the class list would be ambiguous), a missing or malformed YOLO
    data.yaml / classes.txt, a VOC folder without any XML, or no usable image at all — raises
    `DataError` naming the file and the line or entry;
  * one file: an image that is missing or does not decode, a VOC XML that is malformed, unreadable
    or not an <annotation>, a YOLO label file that cannot be read — that image is skipped and
    reported in `skipped`, the rest is used;
  * one entry: an images / annotations entry that is not an object or misses a required key, a VOC
    <object> without <name>, <bndbox> or a coordinate, a bad YOLO line, an unknown class, a box
    outside the image, of zero / negative / NaN size, with the wrong number of values or
    non-numbers, an annotation for an unlisted image, a file name escaping the dataset folder — is
    skipped and reported in `skipped` with its reason;
  * a box only partly outside its image is clipped and reported in `clipped` (more than 1 px out).
Valid edge cases are used as they are: non-contiguous category ids, images without objects (they
are negatives), crowd boxes, fractional coordinates.
"""
from __future__ import annotations

import json
import math
import os
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from concurrent.futures import ThreadPoolExecutor

import yaml

from ..errors import DataError
from .files import is_ignored, walk_files
from .mirror import mirror_note
from .images import IMAGE_SUFFIXES, BadImage, median_size, printable_path, probe

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")  # VOC's fallbacks
REPORT_IMAGES = 200          # boxes of the first N images go into the report (the app's thumbnails)
CLIP_TOLERANCE = 1.0         # pixels a box may overhang its image before the clipping is reported
VAL_NAMES = ("val", "valid", "validation")


# ---------------------------------------------------------------- records and report

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


class _Log:
    """What a reader found wrong: skipped entries, clipped boxes, warnings."""

    def __init__(self, workers: int | None = None) -> None:
        self.skipped: list[dict[str, str]] = []
        self.clipped: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.sha1: dict[str, str] = {}        # image path -> SHA-1 of its bytes (duplicates)
        self.probed: dict[str, Any] = {}      # image path -> ImageInfo or BadImage (probe_many)
        self.workers = workers                # probing threads (None: automatic)

    def skip(self, path: Any, reason: str) -> None:
        self.skipped.append({"path": printable_path(str(path)), "reason": reason})

    def clip(self, path: Any, reason: str) -> None:
        self.clipped.append({"path": printable_path(str(path)), "reason": reason})

    def merge(self, other: "_Log") -> None:
        self.skipped += other.skipped
        self.clipped += other.clipped
        self.sha1.update(other.sha1)
        for w in other.warnings:
            self.warn(w)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass
class _Read:
    """One reader's result: classes, records per split ("all" when the layout has no split)."""
    classes: list[str]
    category_ids: list[int]
    splits: dict[str, list[DetectionRecord]]
    root: Path
    log: _Log


# ---------------------------------------------------------------- shared checks

def safe_join(root: Path, name: str) -> Path | None:
    """`root / name` when `name` is a relative path that stays inside `root`, else None.

    The check is lexical (no symlinks followed): an annotation file cannot make Frelon read
    outside its dataset with `../../x.jpg` or an absolute path, while a dataset the user built
    with symlinks still works."""
    if not name or "\x00" in name:
        return None
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return None
    root_norm = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(root_norm, name.replace("\\", "/")))
    if joined != root_norm and not joined.startswith(root_norm + os.sep):
        return None
    return Path(joined)


def _probe_one(path: str) -> Any:
    try:
        return probe(path)
    except BadImage as e:
        return e


def probe_many(paths: Iterable[Path], log: _Log) -> None:
    """Probe images in parallel threads (decoders release the GIL); results wait in `log.probed`."""
    todo = sorted({str(p) for p in paths} - set(log.probed))
    workers = log.workers if log.workers and log.workers > 0 else min(8, 2 * (os.cpu_count() or 1))
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        log.probed.update((p, _probe_one(p)) for p in todo)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frelon-detect-probe") as pool:
        log.probed.update(zip(todo, pool.map(_probe_one, todo)))


def _probe_or_skip(path: Path, where: str, log: _Log) -> tuple[int, int] | None:
    """(width, height) after EXIF orientation, the file decoded once to be sure; None (reported)
    when it cannot be used."""
    result = log.probed.get(str(path)) or _probe_one(str(path))
    if isinstance(result, BadImage):
        log.skip(path, f"{where}: unreadable image ({result.reason})")
        return None
    log.sha1[str(path)] = result.sha1
    return result.width, result.height


def _number(value: Any) -> float | None:
    """A finite or non-finite float from a JSON / text value; None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def check_box(box: list[float], width: int, height: int) -> tuple[list[float] | None, str]:
    """Validate an (x1, y1, x2, y2) box against its image.

    Returns (box, "") when fine, (clipped box, reason) when partly outside (the reason is ""
    when the overhang is within CLIP_TOLERANCE), (None, reason) when the box must be skipped."""
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        return None, "NaN or infinite coordinate"
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None, f"zero or negative size ({x2 - x1:g} × {y2 - y1:g} px)"
    if x1 >= width or y1 >= height or x2 <= 0 or y2 <= 0:
        return None, f"box outside the image ({width}×{height})"
    clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height),
               min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    if clipped[2] - clipped[0] < 1e-3 or clipped[3] - clipped[1] < 1e-3:
        return None, f"box outside the image ({width}×{height})"
    overhang = max(abs(a - b) for a, b in zip(clipped, box))
    reason = f"box partly outside the image ({width}×{height}), clipped" if overhang > CLIP_TOLERANCE else ""
    return clipped, reason


def _add_box(rec: DetectionRecord, box: list[float], label: int, crowd: bool,
             where: str, log: _Log) -> None:
    """Check a box and add it to the record, or report it."""
    good, reason = check_box(box, rec.width, rec.height)
    if good is None:
        log.skip(rec.path, f"{where}: {reason}")
        return
    if reason:
        log.clip(rec.path, f"{where}: {reason}")
    rec.boxes.append(good)
    rec.labels.append(label)
    rec.iscrowd.append(bool(crowd))


def _visible(name: str) -> bool:
    """Hidden files, AppleDouble files (._x.jpg) and OS clutter are not data."""
    return not is_ignored(name)


def list_images(folder: Path, log: _Log | None = None) -> list[Path]:
    """Files with an image suffix under `folder`, recursively, in a stable order (data/files.py's
    rules: clutter ignored, symlink loops safe; walking problems reported)."""
    problems: list[tuple[str, str]] = []
    found = [Path(p) for p in walk_files(folder, problems) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    if log is not None:
        for path, reason in problems:
            log.skip(path, reason)
    return found


# ---------------------------------------------------------------- COCO

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
        return json.loads(text)
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


def _coco_listed_files(images: list, path: Path, log: _Log) -> list[tuple[int, dict, str, Any, Path]]:
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
        file = _coco_resolve(path.parent, name)
        if file is None:
            log.skip(path, f"{where}: file_name {name!r} points outside the dataset folder, refused")
        elif not file.is_file():
            log.skip(file, f"{where}: missing image file {name!r}")
        else:
            listed.append((i, img, where, image_id, file))
    return listed


def _coco_images(doc: dict, path: Path, log: _Log) -> dict[Any, DetectionRecord]:
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
        size = _probe_or_skip(file, where, log)
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


def _coco_resolve(folder: Path, name: str) -> Path | None:
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
    w, h = _number(img.get("width")), _number(img.get("height"))
    if w is None or h is None or not math.isfinite(w) or not math.isfinite(h):
        return True
    return (int(w), int(h)) == size


def _coco_box(bbox: Any) -> list[float] | str:
    """[x, y, w, h] → [x1, y1, x2, y2], or the reason it is not a box."""
    if not isinstance(bbox, (list, tuple)):
        return f"bbox must be a list [x, y, w, h], got {type(bbox).__name__}"
    if len(bbox) != 4:
        return f"bbox must have 4 values [x, y, w, h], got {len(bbox)}"
    values = [_number(v) for v in bbox]
    if any(v is None for v in values):
        return f"bbox has a value that is not a number: {bbox!r}"
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values):
        return "NaN or infinite coordinate"
    if w <= 0 or h <= 0:
        return f"zero or negative size ({w:g} × {h:g} px)"
    return [x, y, x + w, y + h]


def read_coco(path: str | os.PathLike, workers: int | None = None) -> _Read:
    """A COCO instances JSON; images resolved against its folder, then images/ beside it."""
    path = Path(path).absolute()
    doc = _load_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise DataError(f"{path}: missing required key {key!r}",
                            hint="a COCO file holds 'images', 'annotations' and 'categories'")
    log = _Log(workers)
    classes, category_ids = _coco_categories(doc, path)
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    records = _coco_images(doc, path, log)
    anns = doc["annotations"]
    if not isinstance(anns, list):
        raise DataError(f"{path}: 'annotations' must be a list")
    listed = {_id_key(img.get("id")) for img in doc["images"] if isinstance(img, dict)} - {None}
    for i, ann in enumerate(anns):
        _coco_annotation(i, ann, records, listed, label_of, path, log)
    return _Read(classes, category_ids, {"all": list(records.values())}, path.parent, log)


def _coco_annotation(i: int, ann: Any, records: dict[Any, DetectionRecord], listed: set,
                     label_of: dict[Any, int], path: Path, log: _Log) -> None:
    """Add one annotation's box to its image's record, or report why not."""
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
    crowd = (_number(ann.get("iscrowd", 0)) or 0) >= 1
    _add_box(rec, box, label_of[cid], crowd, f"{path.name} {where}", log)


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
                  if p.is_file() and p.suffix.lower() == ".json" and _visible(p.name))


# ---------------------------------------------------------------- Pascal VOC

def _parse_xml(path: Path, log: _Log) -> ET.Element | None:
    """One VOC annotation file's <annotation> element; None (reported) when the file cannot be
    read or parsed. One XML file describes one image: a broken one costs that image, not the set."""
    hint = "fix or remove this annotation file"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        log.skip(path, f"malformed XML at line {line}, column {col + 1}: {hint}")
        return None
    except OSError as e:
        log.skip(path, f"cannot read ({e.strerror or e})")
        return None
    if root.tag != "annotation":
        log.skip(path, f"not a VOC annotation (root element <{root.tag}>, expected <annotation>)")
        return None
    return root


def _xml_text(elem: ET.Element, tag: str) -> str:
    child = elem.find(tag)
    return child.text.strip() if child is not None and child.text is not None else ""


@dataclass
class _VocObject:
    name: str
    raw: list[str]             # xmin, ymin, xmax, ymax as written
    difficult: bool
    where: str
    problem: str = ""          # why this object cannot be used ("" when it can)


def _voc_objects(root: ET.Element) -> list[_VocObject]:
    """The <object>s of one annotation. An object missing a required element (<name>, <bndbox>,
    xmin…ymax) is returned with its `problem`: it is skipped and reported, its siblings are used."""
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        name = _xml_text(obj, "name")
        where = f"<object> #{k}" + (f" ({name})" if name else "")
        difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true", "True")
        box = obj.find("bndbox")
        raw = [_xml_text(box, tag) if box is not None else "" for tag in ("xmin", "ymin", "xmax", "ymax")]
        missing = ("<name>" if not name else "<bndbox>" if box is None else
                   next((f"<{t}> in <bndbox>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), raw) if not v), ""))
        problem = f"missing required element {missing}" if missing else ""
        objects.append(_VocObject(name, raw, difficult, where, problem))
    return objects


def _voc_image(root_elem: ET.Element, xml: Path, img_dir: Path, log: _Log) -> Path | None:
    """The image an annotation describes: <filename> in JPEGImages/, else the XML's stem."""
    name = (root_elem.findtext("filename") or "").strip()
    if name:
        file = safe_join(img_dir, name)
        if file is None:
            log.skip(xml, f"<filename> {name!r} points outside the dataset folder, refused")
            return None
        if file.is_file():
            return file
    for ext in IMAGE_EXTENSIONS:
        for candidate in (img_dir / (xml.stem + ext), img_dir / (xml.stem + ext.upper())):
            if candidate.is_file():
                return candidate
    log.skip(xml, f"missing image file {name or xml.stem + '.jpg'!r} in JPEGImages/")
    return None


def _voc_box(raw: list[str]) -> list[float] | str:
    """VOC's 1-based pixel indices → [x1, y1, x2, y2] in pixel edges (as Detectron2 reads them)."""
    values = [_number(v) for v in raw]
    if any(v is None for v in values):
        return f"bndbox has a value that is not a number: {raw!r}"
    xmin, ymin, xmax, ymax = values
    return [xmin - 1.0, ymin - 1.0, xmax, ymax]


def _voc_class_list(root: Path) -> list[str] | None:
    for name in ("classes.txt", "labels.txt"):
        if (root / name).is_file():
            return _read_names_file(root / name)
    return None


def read_voc(root: str | os.PathLike, workers: int | None = None) -> _Read:
    """Annotations/*.xml + JPEGImages/, split by ImageSets/Main/{train,val}.txt when both exist.

    Classes come from classes.txt (or labels.txt) at the root when present — then an object of
    another class is skipped — else from the names found, sorted. `difficult` objects are kept as
    crowd boxes: ignored in training, neither hit nor miss in evaluation (as VOC's own metric)."""
    root = Path(root).absolute()
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    xmls = sorted(p for p in ann_dir.iterdir() if p.suffix.lower() == ".xml" and _visible(p.name))
    if not xmls:
        raise DataError(f"{ann_dir}: no .xml annotation files")
    log = _Log(workers)
    parsed = [(xml, elem) for xml in xmls if (elem := _parse_xml(xml, log)) is not None]
    objects = {xml: _voc_objects(elem) for xml, elem in parsed}
    classes = _voc_class_list(root) or sorted({o.name for objs in objects.values() for o in objs if o.name})
    label_of = {name: i for i, name in enumerate(classes)}
    files = {xml: _voc_image(elem, xml, img_dir, log) for xml, elem in parsed}
    probe_many([f for f in files.values() if f is not None], log)
    by_stem: dict[str, DetectionRecord] = {}
    for i, (xml, _) in enumerate(parsed):
        rec = _voc_record(xml, files[xml], objects[xml], label_of, log, root) if files[xml] else None
        if rec is not None:
            rec.image_id = i
            by_stem[xml.stem] = rec
    splits = _voc_splits(root, by_stem, log)
    return _Read(classes, list(range(1, len(classes) + 1)), splits, root, log)


def _voc_record(xml: Path, file: Path, objects: list[_VocObject], label_of: dict[str, int],
                log: _Log, root: Path) -> DetectionRecord | None:
    size = _probe_or_skip(file, xml.name, log)
    if size is None:
        return None
    rec = DetectionRecord(path=str(file), file_name=str(file.relative_to(root)), width=size[0], height=size[1])
    for obj in objects:
        where = f"{xml.name} {obj.where}"
        if obj.problem:
            log.skip(file, f"{where}: {obj.problem}")
            continue
        if obj.name not in label_of:
            log.skip(file, f"{where}: unknown class {obj.name!r}")
            continue
        box = _voc_box(obj.raw)
        if isinstance(box, str):
            log.skip(file, f"{where}: {box}")
            continue
        _add_box(rec, box, label_of[obj.name], obj.difficult, where, log)
    return rec


def _voc_splits(root: Path, by_stem: dict[str, DetectionRecord], log: _Log) -> dict[str, list[DetectionRecord]]:
    main = root / "ImageSets" / "Main"
    lists = {split: main / f"{split}.txt" for split in ("train", "val")}
    if not all(p.is_file() for p in lists.values()):
        return {"all": list(by_stem.values())}
    splits: dict[str, list[DetectionRecord]] = {}
    used: set[str] = set()
    for split, txt in lists.items():
        splits[split] = []
        for n, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            ident = line.split()[0] if line.split() else ""
            if not ident:
                continue
            if ident not in by_stem:
                if not (root / "Annotations" / f"{ident}.xml").is_file():
                    log.skip(txt, f"line {n}: {ident!r} has no Annotations/{ident}.xml")
                continue  # otherwise its image was skipped and reported already
            splits[split].append(by_stem[ident])
            used.add(ident)
    unused = len(by_stem) - len(used)
    if unused:
        log.warn(f"{unused} annotated image(s) are in neither ImageSets/Main/train.txt nor val.txt: not used")
    return splits


# ---------------------------------------------------------------- YOLO

def _read_names_file(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise DataError(f"{path}: expected one class name per line, without blank lines")
    return names


def parse_yaml_names(text: str, path: Path) -> list[str]:
    """The `names` of a YOLO data.yaml: a list (flow or block) or a mapping {index: name}."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}: malformed YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise DataError(f"{path}: missing required key 'names'", hint="names: [class0, class1, ...]")
    return _names_from_value(doc["names"], path)


def _names_from_value(value: Any, path: Path) -> list[str]:
    if isinstance(value, list):
        names = [str(v) for v in value]
    elif isinstance(value, dict):
        try:
            by_index = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: 'names' keys must be class indices 0, 1, …") from None
        if sorted(by_index) != list(range(len(by_index))):
            raise DataError(f"{path}: 'names' indices must be 0 to {len(by_index) - 1} without gaps")
        names = [by_index[i] for i in range(len(by_index))]
    else:
        raise DataError(f"{path}: 'names' must be a list or a mapping index: name")
    if not names:
        raise DataError(f"{path}: 'names' is empty")
    return names


def yolo_names(root: Path) -> list[str]:
    """Class names from data.yaml (or .yml) at the root, else classes.txt (root or labels/)."""
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        p = root / name
        if p.is_file():
            names = parse_yaml_names(p.read_text(encoding="utf-8-sig", errors="replace"), p)
            return names
    for p in (root / "classes.txt", root / "labels" / "classes.txt", root / "obj.names"):
        if p.is_file():
            return _read_names_file(p)
    raise DataError(f"{root}: YOLO layout without class names",
                    hint="add data.yaml with `names: [...]` or classes.txt with one name per line")


def _yolo_image_dirs(root: Path) -> dict[str, Path]:
    """{'train': dir, 'val': dir} for images/train + images/val (or Roboflow's train/images +
    valid/images); else the one images folder, read recursively, as {'all': dir}."""
    for layout in (lambda s: root / "images" / s, lambda s: root / s / "images"):
        train = layout("train")
        vals = [layout(v) for v in VAL_NAMES if layout(v).is_dir()]
        if train.is_dir() and vals:
            return {"train": train, "val": vals[0]}
    if not (root / "images").is_dir() and (root / "train" / "images").is_dir():
        return {"all": root / "train" / "images"}
    return {"all": root / "images"}


def yolo_label_path(image: Path) -> Path:
    """YOLO's rule: the last `images` folder in the path becomes `labels`, the suffix `.txt`."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _yolo_line(tokens: list[str], n_classes: int) -> tuple[int, list[float]] | str:
    """(class, [cx, cy, w, h]) of one label line, or the reason it is skipped."""
    if len(tokens) != 5:
        return f"expected 5 values (class x_center y_center width height), got {len(tokens)}"
    cls = _number(tokens[0])
    if cls is None or not math.isfinite(cls) or not cls.is_integer():
        return f"class index {tokens[0]!r} is not a whole number"
    if not 0 <= cls < n_classes:
        return f"class index {int(cls)} but there are {n_classes} class names (0–{n_classes - 1})"
    values = [_number(t) for t in tokens[1:]]
    if any(v is None for v in values):
        return f"a value is not a number: {' '.join(tokens[1:])}"
    if not all(math.isfinite(v) for v in values):
        return "NaN or infinite coordinate"
    cx, cy, w, h = values
    if w <= 0 or h <= 0:
        return f"zero or negative size ({w:g} × {h:g})"
    if not all(0.0 <= v <= 1.0 for v in values):
        return "values out of [0, 1] (YOLO coordinates are fractions of the image size)"
    return int(cls), values


def _yolo_record(image: Path, root: Path, n_classes: int, log: _Log) -> DetectionRecord | None:
    size = _probe_or_skip(image, "image", log)
    if size is None:
        return None
    width, height = size
    rec = DetectionRecord(path=str(image), file_name=str(image.relative_to(root)), width=width, height=height)
    label_file = yolo_label_path(image)
    if not os.path.lexists(label_file):
        return rec          # no label file: an image without objects
    rel = label_file.relative_to(root)
    try:
        if not label_file.is_file():
            raise OSError(0, "not a regular file")
        text = label_file.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        # its boxes are unknown: used as a negative, the image would teach "nothing here"
        log.skip(image, f"{rel}: label file cannot be read ({e.strerror or e}), image not used")
        return None
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        parsed = _yolo_line(tokens, n_classes)
        if isinstance(parsed, str):
            log.skip(label_file, f"{rel} line {n}: {parsed}")
            continue
        cls, (cx, cy, w, h) = parsed
        box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        _add_box(rec, box, cls, False, f"{rel} line {n}", log)
    return rec


def _orphan_labels(images: list[Path], image_dir: Path, log: _Log) -> None:
    """Label files whose image is not there: reported, not used."""
    label_dir = yolo_label_path(image_dir / "x.jpg").parent
    if not label_dir.is_dir():
        return
    wanted = {yolo_label_path(p) for p in images}
    for txt in sorted(label_dir.rglob("*.txt")):
        if txt.name == "classes.txt" or not _visible(txt.name) or txt in wanted:
            continue
        log.skip(txt, "labels for an image that is not in the images folder")


def read_yolo(root: str | os.PathLike, workers: int | None = None) -> _Read:
    """images/ + labels/ (or their train/val subfolders) with data.yaml or classes.txt.

    An image without a label file, or with an empty one, has no objects."""
    root = Path(root).absolute()
    classes = yolo_names(root)
    log = _Log(workers)
    splits: dict[str, list[DetectionRecord]] = {}
    counter = 0
    for split, image_dir in _yolo_image_dirs(root).items():
        images = list_images(image_dir, log) if image_dir.is_dir() else []
        probe_many(images, log)
        records = []
        for image in images:
            rec = _yolo_record(image, root, len(classes), log)
            if rec is not None:
                rec.image_id = counter
                records.append(rec)
            counter += 1
        _orphan_labels(images, image_dir, log)
        splits[split] = records
    return _Read(classes, list(range(1, len(classes) + 1)), splits, root, log)


# ---------------------------------------------------------------- layouts

def _looks_like_coco(path: Path) -> bool:
    """A cheap look at a JSON's first 64 KiB for COCO's keys (files can be hundreds of MB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return any(key in head for key in (b'"images"', b'"annotations"', b'"categories"'))


def _coco_json_in(folder: Path) -> Path | None:
    """The one COCO JSON in a folder (or in its annotations/ subfolder). A reviewed copy the app's
    box editor saved beside it (NAME.reviewed.json) is not a second set: the folder still means
    the original; train on the copy by naming it (`--data …/NAME.reviewed.json`)."""
    for where in (folder, folder / "annotations"):
        if where.is_dir():
            jsons = [p for p in _json_files(where) if _looks_like_coco(p) and not p.name.endswith(".reviewed.json")]
            if len(jsons) == 1:
                return jsons[0]
    return None


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
    if coco_split_files(p) or _coco_json_in(p):
        return "coco"
    return None


def _read_any(path: Path, workers: int | None = None) -> tuple[str, _Read]:
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
        return layout, read_coco(_coco_json_in(path), workers)
    train, val = read_coco(pair["train"], workers), read_coco(pair["val"], workers)
    val_records = _match_classes(val, train.classes, train.log)
    train.log.merge(val.log)
    return layout, _Read(train.classes, train.category_ids,
                         {"train": train.splits["all"], "val": val_records}, path.absolute(), train.log)


def _match_classes(other: _Read, classes: list[str], log: _Log) -> list[DetectionRecord]:
    """`other`'s records relabelled into `classes` by name; boxes of unknown classes reported."""
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for rec in (r for recs in other.splits.values() for r in recs):
        keep = [k for k, lab in enumerate(rec.labels) if other.classes[lab] in index]
        for k in set(range(len(rec.labels))) - set(keep):
            log.skip(rec.path, f"class {other.classes[rec.labels[k]]!r} is not among the training classes")
        rec.boxes = [rec.boxes[k] for k in keep]
        rec.iscrowd = [rec.iscrowd[k] for k in keep]
        rec.labels = [index[other.classes[rec.labels[k]]] for k in keep]
        out.append(rec)
    return out


# ---------------------------------------------------------------- split and report

def _rarest_class(rec: DetectionRecord, totals: list[int]) -> int:
    present = set(rec.labels)
    return min(present, key=lambda c: (totals[c], c)) if present else -1


def split_records(records: list[DetectionRecord], val_split: float, seed: int,
                  num_classes: int) -> tuple[list[DetectionRecord], list[DetectionRecord]]:
    """A seeded split by image, stratified by each image's rarest class (images without objects
    form their own stratum), so that small classes reach the validation set too."""
    totals = [0] * num_classes
    for rec in records:
        for lab in rec.labels:
            totals[lab] += 1
    rng = random.Random(seed)
    order = sorted(records, key=lambda r: r.path)
    keys = {id(r): (_rarest_class(r, totals), rng.random()) for r in order}
    order.sort(key=lambda r: keys[id(r)])
    train, val = [], []
    # every 1/val_split-th image of the stratified order: each stratum gets its share
    for i, rec in enumerate(order):
        picked = math.floor((i + 1) * val_split + 0.5) > math.floor(i * val_split + 0.5)
        (val if picked else train).append(rec)
    if not train and val:
        train.append(val.pop())
    return sorted(train, key=lambda r: r.path), sorted(val, key=lambda r: r.path)


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
    groups: dict[str, list[tuple[str, str]]] = {}
    for split, records in (("train", train), ("val", val)):
        for rec in records:
            groups.setdefault(sha1.get(rec.path, rec.path), []).append((split, rec.path))
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        splits = sorted({s for s, _ in members})
        leak = len(splits) == 2
        reason = ("the same picture is in train and val: the validation score is inflated" if leak
                  else f"the same picture appears {len(members)} times in {splits[0]}")
        out.append({"paths": [printable_path(p) for _, p in members], "classes": [], "splits": splits,
                    "kind": "train_val" if leak else "repeated", "reason": reason})
    return out


def _warnings(train: list[DetectionRecord], val: list[DetectionRecord], stats: dict, log: _Log,
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


def build_report(root: Path, layout: str, classes: list[str], train: list[DetectionRecord],
                 val: list[DetectionRecord], log: _Log) -> dict[str, Any]:
    """The detection report: the classification report's keys, plus clipped boxes and images."""
    stats = {"train": _split_stats(train, classes), "val": _split_stats(val, classes)}
    warnings, empty_classes = _warnings(train, val, stats, log, classes)
    warnings += [n for n in [mirror_note(list(classes))] if n]
    return {"task": "detect", "root": str(root), "layout": layout, "classes": list(classes),
            "splits": stats, "median_size": median_size([(r.width, r.height) for r in train]),
            "skipped": log.skipped, "clipped": log.clipped, "warnings": warnings,
            "empty_classes": empty_classes, "duplicates": _duplicates(train, val, log.sha1),
            "images": _report_images(train, val, classes)}


def scan_detection(data: str | os.PathLike, val_data: str | os.PathLike = "", val_split: float = 0.2,
                   seed: int = 0, workers: int | None = None) -> DetectionData:
    """Read a detection dataset of any layout into classes, train and val records, and a report.

    The validation set is, in order of preference: `val_data` (classes matched by name), the
    layout's own split (COCO train/ + val/, VOC ImageSets, YOLO images/val), a seeded split of
    `val_split` of the images. Raises DataError on a fatal format error or when no image is usable."""
    root = Path(data).absolute()
    layout, read = _read_any(root, workers)
    if not read.classes:
        raise DataError(f"{root}: no classes defined", hint="a detection dataset needs at least one class")
    log = read.log
    if val_data:
        _, other = _read_any(Path(val_data).absolute(), workers)
        log.merge(other.log)
        train = read.splits.get("train", read.splits.get("all", []))
        if "val" in read.splits:
            log.warn(f"{root.name}'s own val split is not used: --val-data {val_data} is")
        val = _match_classes(other, read.classes, log)
    elif "val" in read.splits:
        train, val = read.splits["train"], read.splits["val"]
    else:
        train, val = split_records(read.splits["all"], val_split, seed, len(read.classes))
    if not train and not val:
        raise DataError(f"{root}: no usable image ({len(log.skipped)} entries skipped)",
                        hint="run `frelon check --data PATH --task detect` to see each reason")
    report = build_report(read.root, layout, read.classes, train, val, log)
    report.update({"errors": [], "val_split": val_split, "seed": seed})
    return DetectionData(read.classes, train, val, report, layout, str(read.root), read.category_ids)


def check_detection(data: str | os.PathLike, val_data: str | os.PathLike = "", val_split: float = 0.2,
                    seed: int = 0, workers: int | None = None) -> dict[str, Any]:
    """The report behind `frelon check --task detect --json` (see build_report)."""
    return scan_detection(data, val_data, val_split, seed, workers).report
