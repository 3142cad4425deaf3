"""Image classification data: folder layouts, the stratified seeded split, and `ImageDataset`.

Layouts, detected in this order (class names are folder names, sorted):
- ``explicit_val``:  ``--data DIR/<class>/*`` for training, ``--val-data VDIR/<class>/*`` for validation;
- ``train_val``:     ``DIR/train/<class>/*`` + ``DIR/val/<class>/*`` (``valid``/``validation`` also work,
                     and ``test`` when there is no val folder);
- ``class_folders``: ``DIR/<class>/*``, split per class into train / val by ``val_split`` with a seeded
                     shuffle. Every class keeps at least one training image, and with ``val_split > 0``
                     every class with two images or more gets at least one validation image. Byte-identical
                     files of a class always land in the same split, so the split itself never leaks.

Images inside a class folder may sit in sub-folders (``cat/2019/a.jpg`` is a cat).

`scan_classification` runs the data doctor (every file decoded once, in parallel) and keeps only the
files that decode. `ImageDataset` reads them during training, and survives a file that has become
unreadable since the scan.

torch is imported only when `ImageDataset` is first used, so `frelon check` (which needs the rest of
this module) starts in a fraction of a second instead of two.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import DataError
from .files import list_subdirs
from .images import PathLike, printable_path

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------------
# Scanning


def scan_classification(data: PathLike, val_data: PathLike = "", val_split: float = 0.2, seed: int = 0,
                        workers: Optional[int] = None, *,
                        progress: Optional[Callable[[int, int], None]] = None) -> ClassificationData:
    """The usable images of a classification folder, split into train / val, with the doctor's report.

    Every file is decoded once (in parallel); files that do not decode are left out and listed in
    report["skipped"]. Raises DataError when nothing trainable is left (fewer than 2 classes with
    images, or no usable image at all)."""
    from .doctor import check_classification  # the doctor uses this module's layouts and split

    report, samples = check_classification(data, val_data, val_split, seed, workers, progress=progress)
    if report["errors"]:
        first = report["errors"][0]
        raise DataError(first["message"], first["hint"])
    return samples


# ---------------------------------------------------------------------------------------------
# ImageDataset (defined on first use: see the module docstring)


def _define_image_dataset():
    import numpy as np
    import torch
    from torch.utils.data import Dataset

    from .images import BadImage, load_rgb

    class ImageDataset(Dataset):
        """`(path, label)` pairs -> `(image, label)`, the image passed through `transform`
        (default: a float CHW tensor in [0, 1]).

        A file that cannot be read any more (deleted, drive gone, rewritten) does not stop the run:
        the next sample in the list is used in its place (deterministically), the failure is logged
        once and recorded in `failures` as (path, reason). With DataLoader workers each worker
        records its own failures (in its copy of the dataset); the log line is what reaches the user.
        If many files in a row fail, the data is gone and DataError is raised."""

        MAX_SUBSTITUTES = 16

        def __init__(self, samples: Sequence[Tuple[str, int]],
                     transform: Optional[Callable[[Any], Any]] = None):
            self.samples = list(samples)
            self.targets = [label for _, label in self.samples]
            self.transform = transform
            self.failures: List[Tuple[str, str]] = []
            self._failed = set()

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, index: int):
            n = len(self.samples)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for {n} samples")
            first_error = None
            for attempt in range(min(n, self.MAX_SUBSTITUTES)):
                path, label = self.samples[(index + attempt) % n]
                try:
                    image = load_rgb(path)
                except BadImage as e:
                    first_error = first_error or e
                    self._record(path, e.reason)
                    continue
                return self._convert(image), label
            raise DataError(f"{first_error}: and the {min(n, self.MAX_SUBSTITUTES) - 1} images after it "
                            "could not be read either",
                            "the data changed since it was checked: is the drive still connected? "
                            "Run `frelon check` on it")

        def _convert(self, image):
            if self.transform is not None:
                return self.transform(image)
            array = np.asarray(image, dtype=np.uint8).copy()
            return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)

        def _record(self, path: str, reason: str) -> None:
            self.failures.append((path, reason))
            if path not in self._failed:
                self._failed.add(path)
                log.warning("%s: %s (since the data check); using another image in its place",
                            printable_path(path), reason)

    ImageDataset.__module__ = __name__
    ImageDataset.__qualname__ = "ImageDataset"  # so pickle (DataLoader spawn workers) finds it here
    return ImageDataset


def __getattr__(name: str):
    if name == "ImageDataset":
        cls = _define_image_dataset()
        globals()["ImageDataset"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClassificationData", "ImageDataset", "Layout", "find_layout", "scan_classification",
           "stratified_split", "val_count"]
