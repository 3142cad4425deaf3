"""Multi-label data: pictures that may carry several labels (a hornet *and* a bee), or none.

Two forms, read into one `MultiLabelData` (no torch):

- class folders (any layout of class_folders.py) where a picture may sit in several folders: the
  copies are one picture, recognised by the SHA-1 the probe takes (probing.same_bytes), its labels
  the union of its folders. A picture in one folder has one label.
- a CSV `file,labels` (``--data labels.csv``, or a folder holding ``labels.csv``): `file` relative to
  the CSV's folder, `labels` separated by `;` (empty: a picture with no label). A header row whose
  first cell is `file` is skipped. ``--val-data`` may name a second CSV, the validation pictures.

Pictures (not files) are split into train / val by a seeded shuffle (`val_split`); a layout with
its own val/ folder keeps it. Label i is `classes[i]`; a sample is (path, (label, ...)).
The report is the doctor's (doctor.py's fields, `task` "multilabel"), plus `label_sets`: how many
pictures carry 0, 1, 2... labels, and `multi_folder`: the pictures found in several class folders.
"""
from __future__ import annotations

import csv
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from frelon.common.choices import MULTILABEL

from ..errors import DataError
from .class_folders import find_layout, val_count
from .files import list_subdirs, walk_files
from .images import ImageInfo, PathLike, median_size, printable_path
from .probing import probe_all, same_bytes

CSV_NAME = "labels.csv"
SEPARATOR = ";"
CSV_HINT = f"a CSV needs rows `file,labels` with labels separated by '{SEPARATOR}' (e.g. `a.jpg,bee;hornet`)"

Sample = Tuple[str, Tuple[int, ...]]


@dataclass
class MultiLabelData:
    classes: List[str]
    train: List[Sample]
    val: List[Sample]
    report: Dict[str, Any]
    layout: str                 # "csv" or a class_folders.py layout
    root: str


def csv_file(data: PathLike) -> str:
    """The CSV `data` names (the file itself, or a folder's labels.csv); "" for class folders."""
    path = os.fsdecode(data)
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return os.path.abspath(path)
    inside = os.path.join(path, CSV_NAME)
    return os.path.abspath(inside) if os.path.isfile(inside) else ""


def check_multilabel(data: PathLike, val_data: PathLike = "", val_split: float = 0.2, seed: int = 0,
                     workers: Optional[int] = None) -> Tuple[Dict[str, Any], MultiLabelData]:
    """(report, samples) of a multi-label set in either form; DataError when it cannot be read."""
    table = csv_file(data)
    if table:
        root, kind = os.path.dirname(table), "csv"
        rows, problems = _read_csv(table)
        if val_data:                                   # its own validation CSV: these rows are training
            val_rows, val_problems = _read_csv(csv_file(val_data) or _no_csv(val_data))
            rows = [(p, labels, "train") for p, labels, _ in rows] + [(p, labels, "val") for p, labels, _ in val_rows]
            problems += val_problems
    else:
        rows, problems, kind, root = _read_folders(data, val_data)
    probed = probe_all([path for path, _, _ in rows], workers)
    pictures: Dict[str, dict] = {}                      # sha1 -> {path, labels, split, size}
    for (path, labels, split), result in zip(rows, probed):
        if not isinstance(result, ImageInfo):
            problems.append((path, result.reason))
            continue
        p = pictures.setdefault(result.sha1, {"path": path, "labels": set(), "split": split,
                                              "size": (result.width, result.height)})
        p["labels"] |= set(labels)
        p["leak"] = p.get("leak", False) or bool(p["split"] and split and split != p["split"])
    multi = same_bytes((result.sha1, path) for (path, _, _), result in zip(rows, probed)
                       if isinstance(result, ImageInfo))
    _split(pictures, val_split, seed)
    classes = sorted({label for p in pictures.values() for label in p["labels"]})
    report = _report(kind, root, pictures, classes, problems, multi, val_split, seed)
    report["files_checked"] = len(rows)
    index = {c: i for i, c in enumerate(classes)}
    samples = {s: sorted((p["path"], tuple(sorted(index[x] for x in p["labels"])))
                         for p in pictures.values() if p["split"] == s) for s in ("train", "val")}
    return report, MultiLabelData(classes, samples["train"], samples["val"], report, kind, root)


def scan_multilabel(data: PathLike, val_data: PathLike = "", val_split: float = 0.2, seed: int = 0,
                    workers: Optional[int] = None) -> MultiLabelData:
    """The usable pictures, or the report's first error as a DataError."""
    report, samples = check_multilabel(data, val_data, val_split, seed, workers)
    if report["errors"]:
        raise DataError(report["errors"][0]["message"], report["errors"][0]["hint"])
    return samples


def _no_csv(path: PathLike) -> str:
    raise DataError(f"{printable_path(os.fsdecode(path))}: not a CSV (--val-data of a CSV set)", CSV_HINT)


def _read_csv(table: str):
    """([(path, labels, "")], [(path, problem)]): files outside the CSV's folder are refused."""
    folder = os.path.dirname(table)
    inside = os.path.realpath(folder) + os.sep
    rows, problems = [], []
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or (n == 1 and row[0].strip().lower() == "file"):
                    continue
                if len(row) != 2:
                    raise DataError(f"{printable_path(table)}: line {n} has {len(row)} cells, not 2", CSV_HINT)
                labels = [x.strip() for x in row[1].split(SEPARATOR) if x.strip()]
                path = os.path.join(folder, row[0].strip())
                if not os.path.realpath(path).startswith(inside):
                    problems.append((path, f"line {n}: outside the CSV's folder"))
                    continue
                rows.append((path, labels, ""))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{printable_path(table)}: not a readable CSV ({e})", CSV_HINT) from None
    return rows, problems


def _read_folders(data: PathLike, val_data: PathLike):
    layout = find_layout(data, val_data)
    problems: List[Tuple[str, str]] = []
    rows = []
    roots = [("train" if layout.val_root else "", layout.train_root)]
    roots += [("val", layout.val_root)] if layout.val_root else []
    for split, root in roots:
        for name in list_subdirs(root):
            label = printable_path(name)
            rows += [(p, [label], split) for p in walk_files(os.path.join(root, name), problems)]
    return rows, problems, layout.kind, layout.root


def _split(pictures: Dict[str, dict], val_split: float, seed: int) -> None:
    """Pictures without a split from their layout: a seeded shuffle, val_count of them to val."""
    todo = sorted(sha for sha, p in pictures.items() if not p["split"])
    random.Random(f"frelon-split:{seed}:multilabel").shuffle(todo)
    want = val_count(len(todo), val_split)
    for k, sha in enumerate(todo):
        pictures[sha]["split"] = "val" if k < want else "train"


def _report(kind, root, pictures, classes, problems, multi, val_split, seed) -> Dict[str, Any]:
    counts = {s: Counter(x for p in pictures.values() if p["split"] == s for x in p["labels"])
              for s in ("train", "val")}
    sets = Counter(len(p["labels"]) for p in pictures.values())
    images = {s: sum(1 for p in pictures.values() if p["split"] == s) for s in ("train", "val")}
    warnings = [f"{len(multi)} picture(s) sit in several class folders: each is one picture with all "
                "their labels"] if multi else []
    leaks = sum(1 for p in pictures.values() if p.get("leak"))
    warnings += [f"{leaks} picture(s) are in both train and val (a leak: kept in the split met first)"] if leaks else []
    if images["train"] and not images["val"]:
        warnings.append("no validation pictures (val_split is 0 or the set is tiny): mAP cannot be measured")
    warnings += [f"label '{c}' has no validation picture: its AP cannot be measured"
                 for c in classes if not counts["val"][c] and images["val"]]
    errors = []
    if len(classes) < 1 or not images["train"]:
        errors.append({"message": f"{printable_path(root)}: no labelled picture to train on",
                       "hint": CSV_HINT if kind == "csv" else "put pictures in class folders"})
    return {
        "task": MULTILABEL, "root": printable_path(root), "val_root": "", "layout": kind, "classes": classes,
        "splits": {s: {"counts": {c: counts[s][c] for c in classes}, "images": images[s]} for s in counts},
        "median_size": median_size([p["size"] for p in pictures.values() if p["split"] == "train"]),
        "skipped": sorted(({"path": printable_path(p), "reason": r} for p, r in problems), key=lambda s: s["path"]),
        "warnings": warnings, "errors": errors, "empty_classes": [], "duplicates": [],
        "label_sets": {str(n): sets[n] for n in sorted(sets)},
        "multi_folder": [[printable_path(p) for p in group] for group in multi],
        "excluded": [], "val_split": val_split, "seed": seed,
    }


def label_count(data: PathLike, val_data: PathLike = "") -> int:
    """The labels of a set, quickly (no picture read): the CSV's, or the class folders'."""
    table = csv_file(data)
    if table:
        rows, _ = _read_csv(table)
        return len({label for _, labels, _ in rows for label in labels})
    return len(list_subdirs(find_layout(data, val_data).train_root))
