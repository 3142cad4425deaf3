"""What every detection reader checks the same way: file names kept inside the dataset folder, each
image probed once (in data/probing.py's thread pool), numbers and boxes validated (clipped or
skipped, and reported), image folders listed, class name files read."""
from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from ...errors import DataError
from ..files import is_ignored, walk_files
from ..images import IMAGE_SUFFIXES, BadImage
from ..probing import probe_all, probe_result
from .records import DetectionRecord, ReadLog

CLIP_TOLERANCE = 1.0         # pixels a box may overhang its image before the clipping is reported
VAL_NAMES = ("val", "valid", "validation")
# Box entries read per image, whatever the format. COCO's most crowded image holds under a hundred
# objects, dense shelf or crowd sets a few hundred, and the detector returns at most 100 per image
# (centernet/decode.py's TOP_K): no real image comes near 1000. A file past it is broken or hostile
# (2.3 M boxes on 2 images made the first training step take minutes): the rest of that image's
# entries are not read, and one `skipped` entry per image says how many.
MAX_BOXES_PER_IMAGE = 1000


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


def probe_many(paths: Iterable[Path], log: ReadLog) -> None:
    """Probe images in data/probing.py's thread pool; results wait in `log.probed`."""
    todo = sorted({str(p) for p in paths} - set(log.probed))
    log.probed.update(zip(todo, probe_all(todo, log.workers)))


def probe_or_skip(path: Path, where: str, log: ReadLog) -> tuple[int, int] | None:
    """(width, height) after EXIF orientation, the file decoded once to be sure; None (reported)
    when it cannot be used."""
    result = log.probed.get(str(path)) or probe_result(str(path))
    if isinstance(result, BadImage):
        log.skip(path, f"{where}: unreadable image ({result.reason})")
        return None
    log.sha1[str(path)] = result.sha1
    return result.width, result.height


def parse_number(value: Any) -> float | None:
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


def add_box(rec: DetectionRecord, box: list[float], label: int, crowd: bool,
             where: str, log: ReadLog) -> None:
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


class BoxCap:
    """Counts each image's box entries (valid or not) as a reader meets them: `full(rec)` is true
    past the first MAX_BOXES_PER_IMAGE, and the reader then skips the entry unread; `report` adds
    one `skipped` entry per image that went past. Constant time per entry: a file of millions of
    entries is read in one pass."""

    def __init__(self) -> None:
        self._seen: dict[int, list] = {}        # id(record) -> [record, entries met]

    def full(self, rec: DetectionRecord) -> bool:
        entry = self._seen.setdefault(id(rec), [rec, 0])
        entry[1] += 1
        return entry[1] > MAX_BOXES_PER_IMAGE

    def report(self, log: ReadLog, source: str) -> None:
        for rec, n in self._seen.values():
            if n > MAX_BOXES_PER_IMAGE:
                log.skip(rec.path, f"{source}: {n} box entries for this image, only the first {MAX_BOXES_PER_IMAGE} "
                                   f"read ({n - MAX_BOXES_PER_IMAGE} not used: no real image holds that many objects)")


def visible(name: str) -> bool:
    """Hidden files, AppleDouble files (._x.jpg) and OS clutter are not data."""
    return not is_ignored(name)


def list_images(folder: Path, log: ReadLog | None = None) -> list[Path]:
    """Files with an image suffix under `folder`, recursively, in a stable order (data/files.py's
    rules: clutter ignored, symlink loops safe; walking problems reported)."""
    problems: list[tuple[str, str]] = []
    found = [Path(p) for p in walk_files(folder, problems) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    if log is not None:
        for path, reason in problems:
            log.skip(path, reason)
    return found


def read_names_file(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise DataError(f"{path}: expected one class name per line, without blank lines")
    return names
