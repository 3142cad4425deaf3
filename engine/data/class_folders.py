"""Image classification folders: the layouts, and the stratified seeded split.

Layouts, detected in this order (class names are folder names, sorted):
- ``explicit_val``:  ``--data DIR/<class>/*`` for training, ``--val-data VDIR/<class>/*`` for validation;
- ``train_val``:     ``DIR/train/<class>/*`` + ``DIR/val/<class>/*`` (``valid``/``validation`` also work,
                     and ``test`` when there is no val folder);
- ``class_folders``: ``DIR/<class>/*``, split per class into train / val by ``val_split`` with a seeded
                     shuffle. Every class keeps at least one training image, and with ``val_split > 0``
                     every class with two images or more gets at least one validation image. Byte-identical
                     files of a class always land in the same split, so the split itself never leaks.

Images inside a class folder may sit in sub-folders (``cat/2019/a.jpg`` is a cat).
The data doctor (doctor.py) reads the folders this module finds; classify.py is what training uses.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ..errors import DataError
from .files import list_subdirs
from .images import PathLike, printable_path

TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("val", "valid", "validation")
TEST_NAMES = ("test", "testing")

LAYOUT_HINT = "put each class's images in its own sub-folder: DIR/cat/*.jpg, DIR/dog/*.jpg " \
              "(or DIR/train/<class>/ and DIR/val/<class>/)"


@dataclass(frozen=True)
class Layout:
    kind: str               # "class_folders" | "train_val" | "explicit_val"
    root: str               # the --data folder, absolute
    train_root: str         # the folder holding the training class folders
    val_root: str = ""      # the folder holding the validation class folders; "" = split from train
    notes: Tuple[str, ...] = ()   # what the user should know about how the layout was read


@dataclass
class ClassificationData:
    classes: List[str]                  # sorted; label i is classes[i]
    train: List[Tuple[str, int]]        # (path, label), only files that decoded
    val: List[Tuple[str, int]]
    report: Dict[str, Any]              # the data doctor's report (see doctor.py)
    layout: str
    root: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ---------------------------------------------------------------------------------------------
# Layouts


def find_layout(data: PathLike, val_data: PathLike = "") -> Layout:
    """Which layout `data` (and `val_data`) follow. Raises DataError when it is none of them."""
    root = _existing_folder(data, "--data")
    subdirs = _subdirs(root)
    train_dir, val_dir, notes = _split_folders(root, subdirs)

    if val_data:
        val_root = _existing_folder(val_data, "--val-data")
        _require_class_folders(val_root, _subdirs(val_root), "--val-data")
        if train_dir:  # DIR/train/<class> given with a separate validation folder
            notes = [f"training on {printable_path(train_dir)} and validating on "
                     f"{printable_path(val_root)} (--val-data); other folders of "
                     f"{printable_path(root)} are not used"]
            return Layout("explicit_val", root, train_dir, val_root, tuple(notes))
        _require_class_folders(root, subdirs)
        return Layout("explicit_val", root, root, val_root, ())

    if train_dir and val_dir:
        return Layout("train_val", root, train_dir, val_dir, tuple(notes))
    _require_class_folders(root, subdirs)
    return Layout("class_folders", root, root, "", ())


def _split_folders(root: str, subdirs: List[str]) -> Tuple[str, str, List[str]]:
    """(train folder, val folder, notes) when `root` holds train/ and val/ folders of class folders."""
    by_lower = {name.lower(): name for name in subdirs}

    def pick(names: Sequence[str]) -> str:
        for n in names:
            if n in by_lower:
                path = os.path.join(root, by_lower[n])
                if _subdirs(path):  # a split folder holds class folders; otherwise "train" is a class
                    return path
        return ""

    train_dir, val_dir, notes = pick(TRAIN_NAMES), pick(VAL_NAMES), []
    if train_dir and not val_dir:
        val_dir = pick(TEST_NAMES)
        if val_dir:
            notes.append(f"no val folder: using {printable_path(val_dir)} as the validation set")
    if train_dir and val_dir:
        used = {os.path.basename(train_dir), os.path.basename(val_dir)}
        unused = [n for n in subdirs if n not in used]
        if unused:
            notes.append(f"folders not used (only {os.path.basename(train_dir)}/ and "
                         f"{os.path.basename(val_dir)}/ are): {', '.join(printable_path(n) for n in unused)}")
    return train_dir, val_dir, notes


def _existing_folder(path: PathLike, option: str) -> str:
    text = os.fsdecode(path)
    absolute = os.path.abspath(os.path.expanduser(text))
    shown = printable_path(text)
    if not os.path.exists(absolute):
        raise DataError(f"{shown}: folder not found ({option})",
                        "check the path; " + LAYOUT_HINT)
    if not os.path.isdir(absolute):
        hint = "a COCO JSON file is for --task detect; " if absolute.lower().endswith(".json") else ""
        raise DataError(f"{shown}: is a file, not a folder ({option})", hint + LAYOUT_HINT)
    return absolute


def _subdirs(folder: str) -> List[str]:
    try:
        return list_subdirs(folder)
    except PermissionError:
        raise DataError(f"{printable_path(folder)}: cannot read this folder (permission denied)",
                        "check the folder's permissions") from None
    except OSError as e:
        raise DataError(f"{printable_path(folder)}: cannot read this folder ({e.strerror or e})",
                        "check that the drive is connected") from None


def _require_class_folders(root: str, subdirs: List[str], option: str = "--data") -> None:
    if subdirs:
        return
    from .files import list_top_files
    from .images import IMAGE_SUFFIXES
    images = [p for p in list_top_files(root) if os.path.splitext(p)[1].lower() in IMAGE_SUFFIXES]
    found = f" ({len(images)} images directly in it)" if images else ""
    raise DataError(f"{printable_path(root)}: no class folders found{found} ({option})", LAYOUT_HINT)


# ---------------------------------------------------------------------------------------------
# The split


def val_count(n: int, val_split: float) -> int:
    """How many of a class's n images go to validation: round(n * val_split), but at least one when
    val_split > 0 and n >= 2, and never all of them."""
    if val_split <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * val_split)))


def stratified_split(files: Mapping[str, Sequence[Tuple[str, str]]], val_split: float, seed: int
                     ) -> Tuple[Dict[str, List[str]], Dict[str, List[str]]]:
    """Split each class's files into (train, val), seeded; `files` maps class -> [(path, sha1)].

    Each class is shuffled by its own generator seeded with (seed, class name): adding a class or an
    image elsewhere does not reshuffle the others. Files with the same SHA-1 move together."""
    train: Dict[str, List[str]] = {}
    val: Dict[str, List[str]] = {}
    for cls in sorted(files):
        groups: Dict[str, List[str]] = {}
        for path, sha1 in sorted(files[cls]):
            groups.setdefault(sha1, []).append(path)
        ordered = sorted(groups.values())
        random.Random(f"frelon-split:{seed}:{cls}").shuffle(ordered)
        n = sum(len(g) for g in ordered)
        want = val_count(n, val_split)
        train[cls], val[cls] = [], []
        taken = 0
        for group in ordered:
            if taken < want and n - taken - len(group) >= 1:
                val[cls].extend(group)
                taken += len(group)
            else:
                train[cls].extend(group)
        train[cls].sort()
        val[cls].sort()
    return train, val
