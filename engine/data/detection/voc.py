"""Pascal VOC: Annotations/*.xml + JPEGImages/, split by ImageSets/Main when it lists both splits."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from .checks import BoxCap, add_box, parse_number, probe_many, probe_or_skip, read_names_file, safe_join, visible
from .records import DetectionRecord, ReadLog, ReadResult

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")  # VOC's fallbacks


def _parse_xml(path: Path, log: ReadLog) -> ET.Element | None:
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


def _voc_image(root_elem: ET.Element, xml: Path, img_dir: Path, log: ReadLog) -> Path | None:
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
    values = [parse_number(v) for v in raw]
    if any(v is None for v in values):
        return f"bndbox has a value that is not a number: {raw!r}"
    xmin, ymin, xmax, ymax = values
    return [xmin - 1.0, ymin - 1.0, xmax, ymax]


def _voc_class_list(root: Path) -> list[str] | None:
    for name in ("classes.txt", "labels.txt"):
        if (root / name).is_file():
            return read_names_file(root / name)
    return None


def read_voc(root: str | os.PathLike, workers: int | None = None) -> ReadResult:
    """Annotations/*.xml + JPEGImages/, split by ImageSets/Main/{train,val}.txt when both exist.

    Classes come from classes.txt (or labels.txt) at the root when present — then an object of
    another class is skipped — else from the names found, sorted. `difficult` objects are kept as
    crowd boxes: ignored in training, neither hit nor miss in evaluation (as VOC's own metric)."""
    root = Path(root).absolute()
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    xmls = sorted(p for p in ann_dir.iterdir() if p.suffix.lower() == ".xml" and visible(p.name))
    if not xmls:
        raise DataError(f"{ann_dir}: no .xml annotation files")
    log = ReadLog(workers)
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
    return ReadResult(classes, list(range(1, len(classes) + 1)), splits, root, log)


def _voc_record(xml: Path, file: Path, objects: list[_VocObject], label_of: dict[str, int],
                log: ReadLog, root: Path) -> DetectionRecord | None:
    size = probe_or_skip(file, xml.name, log)
    if size is None:
        return None
    rec = DetectionRecord(path=str(file), file_name=str(file.relative_to(root)), width=size[0], height=size[1])
    cap = BoxCap()
    for obj in objects:
        if cap.full(rec):
            continue
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
        add_box(rec, box, label_of[obj.name], obj.difficult, where, log)
    cap.report(log, xml.name)
    return rec


def _voc_splits(root: Path, by_stem: dict[str, DetectionRecord], log: ReadLog) -> dict[str, list[DetectionRecord]]:
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
