"""Copies of the training pictures at the resolution training needs (`--cache disk`), as
Ultralytics' `cache=disk` and FFCV keep them: the first epoch decodes each file (images.load_rgb, at
its draft scale) and writes a copy whose short side is the one the transforms need; later epochs
and later runs at that resolution read the copy — a 12-megapixel JPEG costs what a small one does.

Where: the cache folder's `resized/` (common/run_folder.py `CacheFolder`). Each copy is named by a
hash of the file's path, the stat fields that change with its bytes (probe_cache.stat_key: size,
mtime, ctime, inode), the short side and FORMAT: a file changed, replaced or asked for at another
resolution is another name, decoded afresh (stale copies stay until `frelon cache --clear`). A
file that does not decode raises BadImage as it would without the cache, and nothing is written; a
file changed within probe_cache.RACY_S seconds is not copied. A copy holds the decoded pixels
as they are (NumPy's .npy, uint8): reading it is a copy of memory, and training sees the same
pixels with the cache as without it (a resumed run stays exact whatever the cache holds); at 224 px
training (a short side of 438) a copy is about 0.75 MB. The copies stop being written when the
folder reaches LIMIT_BYTES (FRELON_CACHE_LIMIT_GB); a copy that cannot be read is decoded again.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from . import probe_cache
from .images import load_rgb

FORMAT = 1                       # part of every copy's name: a change of what a copy holds renames them all
LIMIT_BYTES = int(float(os.environ.get("FRELON_CACHE_LIMIT_GB", "20")) * 2**30)


class ResizedCache:
    """`load(path, min_short)`: the picture exactly as `load_rgb(path, min_short)` gives it, from
    its copy when there is one. Picklable: each DataLoader worker gets its own,
    with its share of the room left."""

    def __init__(self, folder: str | os.PathLike, limit: Optional[int] = None):
        self.folder = Path(folder)
        self.limit = LIMIT_BYTES if limit is None else limit
        self.room: Optional[int] = None      # bytes this process may still write: measured at its first write
        self.hits = self.writes = 0

    def __getstate__(self) -> dict:
        """A copy sent to a DataLoader worker measures its own share of the room."""
        return {**self.__dict__, "room": None}

    def copy_path(self, path: str, st: os.stat_result, min_short: int) -> Path:
        text = "\0".join(map(str, (os.path.abspath(path), *probe_cache.stat_key(st), min_short, FORMAT)))
        digest = hashlib.sha1(os.fsencode(text)).hexdigest()
        return self.folder / digest[:2] / f"{digest[2:]}.npy"

    def load(self, path: str, min_short: int) -> Image.Image:
        try:
            st = os.stat(path)
        except OSError:
            return load_rgb(path, min_short)             # names the problem (BadImage)
        copy = self.copy_path(path, st, min_short)
        try:
            pixels = np.load(copy, allow_pickle=False)
            if pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3:
                self.hits += 1
                return Image.fromarray(pixels, "RGB")
        except (OSError, ValueError, EOFError):
            pass                                          # no copy yet, or a broken one
        image = load_rgb(path, min_short)
        if min_short > 0:
            self._write(copy, image, st)
        return image

    def _write(self, copy: Path, image: Image.Image, st: os.stat_result) -> None:
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < probe_cache.RACY_S * 1e9:
            return
        if self.room is None:
            self.room = self._my_room()
        if self.room <= 0:
            return
        tmp = copy.with_name(f"{copy.stem}.{os.getpid()}.tmp")
        try:
            copy.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(image, dtype=np.uint8), allow_pickle=False)
            size = tmp.stat().st_size
            os.replace(tmp, copy)
        except OSError:                                   # a full or read-only disk: train on without
            tmp.unlink(missing_ok=True)
            self.room = 0
            return
        self.room -= size
        self.writes += 1

    def _my_room(self) -> int:
        """The room left under the limit (the folder walked once, at the first write: a warm
        cache never walks it); in a DataLoader worker, this worker's share of it."""
        room = max(0, self.limit - folder_bytes(self.folder))
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        return room // info.num_workers if info is not None and info.num_workers > 1 else room


def folder_bytes(folder: Path) -> int:
    """The bytes of the copies under `folder` (0 when it does not exist)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def for_config(cfg) -> "ResizedCache | None":
    """The copies at training's resolution for a run's config: under `--cache disk`, in its runs
    folder's cache (common/run_folder.py `CacheFolder`); None under `--cache off`."""
    if cfg is None or cfg.cache != "disk":
        return None
    from frelon.common.run_folder import CacheFolder
    return ResizedCache(CacheFolder(cfg.out).resized)
