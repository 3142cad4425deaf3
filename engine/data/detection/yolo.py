"""YOLO txt: images/ + labels/ (or their train / val subfolders), class names from data.yaml (read
with PyYAML's safe loader, without aliases, at most 1 MiB; each name text or a whole number of at
most 200 characters) or classes.txt."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

from ...errors import DataError
from .checks import (VAL_NAMES, BoxCap, add_box, list_images, parse_number, probe_many, probe_or_skip,
                     read_names_file, visible)
from .records import DetectionRecord, ReadLog, ReadResult


MAX_YAML_BYTES = 1 << 20      # a data.yaml names a few thousand classes at most (LVIS: 1203, ~30 KB)
MAX_NAME_CHARS = 200


class _AliasRefused(yaml.YAMLError):
    def __init__(self, anchor: str, line: int):
        super().__init__(anchor)
        self.anchor, self.line = anchor, line


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (`*name`): a few of them nest into billions of nodes
    (billion laughs, or `<<` merge chains, which the safe loader expands for minutes). A data.yaml
    has no use for them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(event.anchor, event.start_mark.line + 1)
        return super().compose_node(parent, index)


def parse_yaml_names(text: str, path: Path) -> list[str]:
    """The `names` of a YOLO data.yaml: a list (flow or block) or a mapping {index: name}."""
    try:
        doc = yaml.load(text, Loader=_NoAliasLoader)
    except _AliasRefused as e:
        raise DataError(f"{path}: line {e.line}: alias *{e.anchor} refused (YAML aliases can nest into billions "
                        "of entries)", hint="write the values out instead of *aliases") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}: malformed YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise DataError(f"{path}: missing required key 'names'", hint="names: [class0, class1, ...]")
    return _names_from_value(doc["names"], path)


def _names_from_value(value: Any, path: Path) -> list[str]:
    if isinstance(value, list):
        names = [_class_name(v, f"names[{i}]", path) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        try:
            by_index = {_index(k): v for k, v in value.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: 'names' keys must be class indices 0, 1, …") from None
        if sorted(by_index) != list(range(len(by_index))):
            raise DataError(f"{path}: 'names' indices must be 0 to {len(by_index) - 1} without gaps")
        names = [_class_name(by_index[i], f"names[{i}]", path) for i in range(len(by_index))]
    else:
        raise DataError(f"{path}: 'names' must be a list or a mapping index: name")
    if not names:
        raise DataError(f"{path}: 'names' is empty")
    return names


def _index(key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(key)
    return int(key)


def _class_name(value: Any, where: str, path: Path) -> str:
    """A class name: text or a whole number, of reasonable length; anything else is one line."""
    hint = "write each class name as text, quoted when YAML would read it as something else ('null', 'no', '1.5')"
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
        kind = ("a boolean (YAML reads yes, no, on, off, true, false so)" if isinstance(value, bool)
                else "empty (null)" if value is None else f"a {type(value).__name__}, not text")
        raise DataError(f"{path}: {where} is {kind}", hint=hint)
    name = str(value)
    if len(name) > MAX_NAME_CHARS:
        raise DataError(f"{path}: {where} is {len(name)} characters long (at most {MAX_NAME_CHARS})", hint=hint)
    return name


def yolo_names(root: Path) -> list[str]:
    """Class names from data.yaml (or .yml) at the root, else classes.txt (root or labels/)."""
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        p = root / name
        if p.is_file():
            if p.stat().st_size > MAX_YAML_BYTES:
                raise DataError(f"{p}: {p.stat().st_size} bytes, more than a data.yaml holds "
                                f"(at most {MAX_YAML_BYTES >> 20} MiB)", hint="keep `names` (and the paths) in it")
            return parse_yaml_names(p.read_text(encoding="utf-8-sig", errors="replace"), p)
    for p in (root / "classes.txt", root / "labels" / "classes.txt", root / "obj.names"):
        if p.is_file():
            return read_names_file(p)
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
    cls = parse_number(tokens[0])
    if cls is None or not math.isfinite(cls) or not cls.is_integer():
        return f"class index {tokens[0]!r} is not a whole number"
    if not 0 <= cls < n_classes:
        return f"class index {int(cls)} but there are {n_classes} class names (0–{n_classes - 1})"
    values = [parse_number(t) for t in tokens[1:]]
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


def _yolo_record(image: Path, root: Path, n_classes: int, log: ReadLog) -> DetectionRecord | None:
    size = probe_or_skip(image, "image", log)
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
    cap = BoxCap()
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens or cap.full(rec):
            continue
        parsed = _yolo_line(tokens, n_classes)
        if isinstance(parsed, str):
            log.skip(label_file, f"{rel} line {n}: {parsed}")
            continue
        cls, (cx, cy, w, h) = parsed
        box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        add_box(rec, box, cls, False, f"{rel} line {n}", log)
    cap.report(log, str(rel))
    return rec


def _orphan_labels(images: list[Path], image_dir: Path, log: ReadLog) -> None:
    """Label files whose image is not there: reported, not used."""
    label_dir = yolo_label_path(image_dir / "x.jpg").parent
    if not label_dir.is_dir():
        return
    wanted = {yolo_label_path(p) for p in images}
    for txt in sorted(label_dir.rglob("*.txt")):
        if txt.name == "classes.txt" or not visible(txt.name) or txt in wanted:
            continue
        log.skip(txt, "labels for an image that is not in the images folder")


def read_yolo(root: str | os.PathLike, workers: int | None = None) -> ReadResult:
    """images/ + labels/ (or their train/val subfolders) with data.yaml or classes.txt.

    An image without a label file, or with an empty one, has no objects."""
    root = Path(root).absolute()
    classes = yolo_names(root)
    log = ReadLog(workers)
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
    return ReadResult(classes, list(range(1, len(classes) + 1)), splits, root, log)
