"""Reading pictures for display (Qt only, no torch): EXIF-rotated, optionally scaled while decoding
(a JPEG at a reduced DCT scale: a 12 MP photo's thumbnail costs a fraction of its full decode), a
picture's size from its header alone, and a quick sample of a classification folder's images for
the thumbnail grid. Off the GUI thread: gui/image_loader.py."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_image(path: str | os.PathLike, max_side: int | None = None) -> tuple[QImage, QSize]:
    """The picture (EXIF orientation applied) and its full size; a null QImage if unreadable.
    With `max_side`, JPEGs are decoded directly at a smaller size (fast thumbnails)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    full = reader.size()
    if max_side and full.isValid() and max(full.width(), full.height()) > max_side:
        reader.setScaledSize(full.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image, QSize()
    if not full.isValid():
        full = image.size()
    if _rotated(reader):     # rotated by 90°: the full size swaps
        full = QSize(full.height(), full.width())
    return image, full


def image_size(path: str | os.PathLike) -> QSize:
    """The picture's size as shown (EXIF orientation applied), from its header alone; invalid if
    unreadable."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and _rotated(reader):
        size = QSize(size.height(), size.width())
    return size


def sample_class_images(root: str | os.PathLike, classes: list[str], per_class: int = 8,
                        limit: int = 240) -> list[tuple[str, str]]:
    """(path, class) pairs, a few per class, from `root/<class>/` or `root/train/<class>/`."""
    root = Path(root)
    base = root / "train" if (root / "train").is_dir() else root
    out: list[tuple[str, str]] = []
    per_class = max(1, min(per_class, limit // max(1, len(classes))))
    for cls in classes:
        folder = base / cls
        if not folder.is_dir():
            continue
        found = 0
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            out.append((entry.path, cls))
            found += 1
            if found >= per_class:
                break
    return out


def _rotated(reader: QImageReader) -> bool:
    from PySide6.QtGui import QImageIOHandler
    return bool(reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90)
