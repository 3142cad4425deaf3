"""The data doctor: what is in a classification folder, and what is wrong with it.

`check_classification` decodes every file once (in data/probing.py's thread pool), splits the good
ones into train / val, and writes a report. The same report is printed by `frelon check --json` and
sent as the `data_report` event's fields when training starts, so the app shows one picture of the
data whichever way it was asked. Its fields (all JSON-able: paths and class
names are in printable form, see files.printable_path):

    task           "classify"
    root           the --data folder, absolute
    val_root       the folder validation images come from ("" when split from root)
    layout         "class_folders" | "train_val" | "explicit_val"
    classes        class names with usable training images, sorted (label i = classes[i])
    splits         {"train": {"counts": {class: n}, "images": n}, "val": {...}}
    files_checked  how many candidate files were decoded
    skipped        [{"path", "reason"}]: every file (or folder, link) that is not used, and why
    imbalance      {"ratio", "largest", "smallest", "threshold", "balance"}: the training split's
                   largest / smallest class (common/balance.py), and what `--balance auto` does
                   with it ("sampler" above the threshold, else "off"); null with fewer than 2 classes
    warnings       [str]: imbalance, tiny or empty classes, duplicates, leaks, unused folders...
    errors         [{"message", "hint"}]: what makes training impossible (scan_classification raises
                   the first as DataError); empty when the data can be trained on
    empty_classes  class folders with no usable training image (left out of `classes`)
    duplicates     [{"paths", "classes", "splits", "kind"}]: byte-identical files (same SHA-1);
                   kind "cross_class" (one picture, two labels), "train_val" (in both splits: a leak)
                   or "same_class"
    val_split, seed  the split's settings (used by the class_folders layout only)

Hidden and system files (dot-files, AppleDouble, Thumbs.db...) are ignored silently, not reported.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from frelon.common.balance import AUTO, IMBALANCE_RATIO, MODE_WORDS, imbalance, settled_mode
from frelon.common.choices import CLASSIFY
from frelon.common.exclusions import EXCLUDED, excluded_files

from .class_folders import LAYOUT_HINT, ClassificationData, Layout, find_layout, stratified_split
from .files import list_subdirs, list_top_files, walk_files
from .mirror import mirror_note
from .images import IMAGE_SUFFIXES, BadImage, ImageInfo, PathLike, median_size, printable_path
from .probing import probe_all, same_bytes

TINY_CLASS = 10        # fewer training images than this: warn


@dataclass
class _File:
    path: str                  # real path (may hold surrogates for non-UTF-8 names: it still opens)
    cls: str                   # class name, printable
    split: str                 # "train" | "val" | "" (= split by val_split)
    result: Union[ImageInfo, BadImage, None] = None

    @property
    def ok(self) -> bool:
        return isinstance(self.result, ImageInfo)


def check_classification(data: PathLike, val_data: PathLike = "", val_split: float = 0.2, seed: int = 0,
                         workers: Optional[int] = None, *,
                         progress: Optional[Callable[[int, int], None]] = None
                         ) -> Tuple[Dict[str, Any], ClassificationData]:
    """(report, samples) for a classification folder; see the module docstring for the report.

    Raises DataError only when the folder cannot be read as a dataset at all (missing, not a folder,
    no class folders); everything else is described in the report. `progress(done, total)` is called
    from this thread as files are decoded."""
    layout = find_layout(data, val_data)
    problems: List[Tuple[str, str]] = []
    warnings: List[str] = list(layout.notes)

    files, folders, stray = _collect(layout, problems)
    _probe_all(files, workers, progress)
    _assign_splits(files, val_split, seed)

    classes = sorted({f.cls for f in files if f.ok and f.split == "train"})
    label = {c: i for i, c in enumerate(classes)}
    kept = [f for f in files if f.ok and f.cls in label]
    train = sorted((f.path, label[f.cls]) for f in kept if f.split == "train")
    val = sorted((f.path, label[f.cls]) for f in kept if f.split == "val")

    skipped = sorted(
        [{"path": printable_path(f.path), "reason": f.result.reason} for f in files if not f.ok]
        + [{"path": printable_path(p), "reason": r} for p, r in problems],
        key=lambda s: s["path"])
    duplicates = _duplicates(kept)
    empty_classes = sorted(set(folders) - set(classes))
    tally = Counter((f.split, f.cls) for f in kept)
    counts = {s: {c: tally[s, c] for c in classes} for s in ("train", "val")}

    warnings += _warnings(layout, files, folders, stray, classes, counts, duplicates, empty_classes)
    warnings += [n for n in [mirror_note(classes)] if n]
    excluded = [printable_path(p) for root in (layout.root, layout.val_root) if root for p in excluded_files(root)]
    if excluded:
        warnings.append(f"{len(excluded)} picture(s) you excluded (in {EXCLUDED}/) are not trained on")
    report: Dict[str, Any] = {
        "task": CLASSIFY,
        "root": printable_path(layout.root),
        "val_root": printable_path(layout.val_root) if layout.val_root else "",
        "layout": layout.kind,
        "classes": classes,
        "splits": {s: {"counts": counts[s], "images": sum(counts[s].values())} for s in ("train", "val")},
        "median_size": median_size([(f.result.width, f.result.height) for f in kept if f.split == "train"]),
        "files_checked": len(files),
        "skipped": skipped,
        "imbalance": _imbalance(counts["train"]),
        "warnings": warnings,
        "errors": _errors(layout, files, folders, classes),
        "empty_classes": empty_classes,
        "duplicates": duplicates,
        "excluded": excluded,
        "val_split": val_split,
        "seed": seed,
    }
    samples = ClassificationData(classes=classes, train=train, val=val, report=report,
                                 layout=layout.kind, root=layout.root)
    return report, samples


# ---------------------------------------------------------------------------------------------
# Steps


def _collect(layout: Layout, problems: List[Tuple[str, str]]
             ) -> Tuple[List[_File], Dict[str, Dict[str, int]], List[str]]:
    """Candidate files under every class folder; class -> {split: file count}; stray images."""
    roots = [("train" if layout.val_root else "", layout.train_root)]
    if layout.val_root:
        roots.append(("val", layout.val_root))
    files: List[_File] = []
    folders: Dict[str, Dict[str, int]] = {}
    stray: List[str] = []
    for split, root in roots:
        for name in list_subdirs(root):
            cls = printable_path(name)
            found = [_File(p, cls, split) for p in walk_files(os.path.join(root, name), problems)]
            files.extend(found)
            folders.setdefault(cls, {})[split or "all"] = len(found)
        stray += [p for p in list_top_files(root) if os.path.splitext(p)[1].lower() in IMAGE_SUFFIXES]
    return files, folders, stray


def _probe_all(files: List[_File], workers: Optional[int],
               progress: Optional[Callable[[int, int], None]]) -> None:
    """Decode every file once (data/probing.py's thread pool)."""
    for f, result in zip(files, probe_all([f.path for f in files], workers, progress)):
        f.result = result


def _assign_splits(files: List[_File], val_split: float, seed: int) -> None:
    """Files of the class_folders layout (split "") go to train or val by the stratified split."""
    todo: Dict[str, List[Tuple[str, str]]] = {}
    for f in files:
        if f.ok and not f.split:
            todo.setdefault(f.cls, []).append((f.path, f.result.sha1))
    if not todo:
        return
    _, val = stratified_split(todo, val_split, seed)
    in_val = {p for paths in val.values() for p in paths}
    for f in files:
        if f.ok and not f.split:
            f.split = "val" if f.path in in_val else "train"


def _duplicates(kept: List[_File]) -> List[Dict[str, Any]]:
    order = {"cross_class": 0, "train_val": 1, "same_class": 2}
    out = []
    for group in same_bytes((f.result.sha1, f) for f in kept):
        classes = sorted({f.cls for f in group})
        splits = sorted({f.split for f in group})
        kind = "cross_class" if len(classes) > 1 else "train_val" if len(splits) > 1 else "same_class"
        out.append({"paths": sorted(printable_path(f.path) for f in group), "classes": classes,
                    "splits": splits, "kind": kind})
    return sorted(out, key=lambda d: (order[d["kind"]], d["paths"]))


def _imbalance(train: Dict[str, int]) -> Optional[Dict[str, Any]]:
    uneven = imbalance(train)
    if uneven is None:
        return None
    return {**uneven, "threshold": IMBALANCE_RATIO, "balance": settled_mode(AUTO, uneven["ratio"])}


# ---------------------------------------------------------------------------------------------
# What to tell the user


def _warnings(layout, files, folders, stray, classes, counts, duplicates, empty_classes) -> List[str]:
    out: List[str] = []
    if stray:
        out.append(f"{len(stray)} image file(s) directly in {printable_path(os.path.dirname(stray[0]))} "
                   "are not in a class folder: not used")
    bad = [f for f in files if not f.ok]
    if bad:
        out.append(f"{len(bad)} of {len(files)} files skipped ({_reason_summary(bad)}): see 'skipped'")

    with_good_files = {f.cls for f in files if f.ok}
    for cls in empty_classes:
        n_files = sum(folders[cls].values())
        if n_files == 0:
            out.append(f"class folder '{cls}' is empty: left out")
        elif cls in with_good_files:  # usable, but all in the val split
            out.append(f"class '{cls}' has validation images but no training images: left out")
        else:
            out.append(f"class '{cls}': none of its {n_files} files is a usable image: left out")

    train, val = counts["train"], counts["val"]
    for cls in classes:
        if train[cls] < TINY_CLASS:
            out.append(f"class '{cls}' has only {train[cls]} training image(s): "
                       f"aim for {TINY_CLASS * 2} or more per class")
    uneven = imbalance(train)
    if uneven and uneven["ratio"] > IMBALANCE_RATIO:
        big, small = uneven["largest"], uneven["smallest"]
        how = MODE_WORDS[settled_mode(AUTO, uneven["ratio"])]
        out.append(f"class imbalance {uneven['ratio']:.3g}:1 ('{big}' {train[big]} vs '{small}' {train[small]} "
                   f"training images): unbalanced, the model would favour '{big}'; Frelon balances by default "
                   f"(--balance auto: {how}); add '{small}' images if you can")
    if classes and sum(val.values()) == 0:
        why = "val_split is 0 or every class has a single image" if layout.kind == "class_folders" \
            else "the validation folders hold no usable image of these classes"
        out.append(f"no validation images ({why}): accuracy cannot be measured")
    elif classes:
        for cls in classes:
            if val[cls] == 0:
                where = "it has a single image, used for training" if layout.kind == "class_folders" \
                    else "none in the validation folder"
                out.append(f"class '{cls}' has no validation images ({where})")

    kinds = Counter(d["kind"] for d in duplicates)
    if kinds["cross_class"]:
        out.append(f"{kinds['cross_class']} picture(s) are byte-identical copies in different classes: "
                   "multi-label data (a picture with several labels) — train it with --task multilabel; "
                   "otherwise contradicting labels: see 'duplicates'")
    if kinds["train_val"]:
        out.append(f"{kinds['train_val']} picture(s) are in both train and val (a leak: validation "
                   "accuracy will look better than it is): see 'duplicates'")
    if kinds["same_class"]:
        out.append(f"{kinds['same_class']} picture(s) appear more than once in the same class: "
                   "see 'duplicates'")
    return out


def _errors(layout: Layout, files: List[_File], folders, classes: List[str]) -> List[Dict[str, str]]:
    root = printable_path(layout.root)
    check = f"run `frelon check --data {root}` to see every file's problem"
    if not files:
        names = ", ".join(sorted(folders)[:5]) + (", ..." if len(folders) > 5 else "")
        return [{"message": f"{root}: no files in the class folders ({names})",
                 "hint": LAYOUT_HINT}]
    good = [f for f in files if f.ok]
    if not good:
        return [{"message": f"{root}: no usable images: all {len(files)} files were skipped "
                            f"({_reason_summary(files)})",
                 "hint": check}]
    if len(classes) < 2:
        if not classes:
            return [{"message": f"{root}: no class has usable training images", "hint": check}]
        only = classes[0]
        hint = "add a folder of images for each other class (at least 2 classes are needed)"
        nested = _nested_class_folders(layout, only)
        if nested:
            hint = (f"did you mean --data {nested}? Its sub-folders look like classes "
                    "(a class folder's sub-folders are part of that class)")
        return [{"message": f"{root}: only one class has usable images ('{only}'); "
                            "classification needs at least 2",
                 "hint": hint}]
    return []


def _nested_class_folders(layout: Layout, cls: str) -> str:
    """The folder the user probably meant when their only 'class' holds class-like sub-folders."""
    for name in list_subdirs(layout.train_root):
        if printable_path(name) == cls:
            inner = os.path.join(layout.train_root, name)
            if len(list_subdirs(inner)) >= 2:
                return printable_path(inner)
    return ""


def _reason_summary(bad: List[_File]) -> str:
    """'3 truncated, 2 not an image': reasons without their details, most common first."""
    heads = Counter(f.result.reason.split(" (")[0] for f in bad if isinstance(f.result, BadImage))
    return ", ".join(f"{n} {reason}" for reason, n in heads.most_common())
