"""Classification data as training reads it: `scan_classification` and `ImageDataset`.

`scan_classification` runs the data doctor (doctor.py: every file decoded once, in parallel, over the
layouts of class_folders.py) and keeps only the files that decode. `ImageDataset` (image_dataset.py)
reads them during training, and survives a file that has become unreadable since the scan.

`ImageDataset` (and with it torch) is imported only when it is first asked for, so `frelon check`
(which needs the rest of the data layer) starts in a fraction of a second instead of two.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..errors import DataError
from .class_folders import ClassificationData, find_layout  # noqa: F401  (part of this module's face)
from .doctor import check_classification
from .images import PathLike


# ---------------------------------------------------------------------------------------------
# Scanning


def scan_classification(data: PathLike, val_data: PathLike = "", val_split: float = 0.2, seed: int = 0,
                        workers: Optional[int] = None, *,
                        progress: Optional[Callable[[int, int], None]] = None) -> ClassificationData:
    """The usable images of a classification folder, split into train / val, with the doctor's report.

    Every file is decoded once (in parallel); files that do not decode are left out and listed in
    report["skipped"]. Raises DataError when nothing trainable is left (fewer than 2 classes with
    images, or no usable image at all)."""
    report, samples = check_classification(data, val_data, val_split, seed, workers, progress=progress)
    if report["errors"]:
        first = report["errors"][0]
        raise DataError(first["message"], first["hint"])
    return samples


# ---------------------------------------------------------------------------------------------
# ImageDataset (imported on first use: see the module docstring)


def __getattr__(name: str):
    if name == "ImageDataset":
        from .image_dataset import ImageDataset
        globals()["ImageDataset"] = ImageDataset
        return ImageDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClassificationData", "ImageDataset", "find_layout", "scan_classification"]
