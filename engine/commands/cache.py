"""`frelon cache`: what the runs folder's cache holds (common/run_folder.py `CacheFolder`: the
remembered scans, data/probe_cache.py; the copies at training's resolution, data/resized_cache.py)
and, with `--clear`, its removal — only of those two, never of anything else in the folder."""
from __future__ import annotations

import shutil
import sqlite3

from frelon.common.run_folder import CacheFolder

from ..data.resized_cache import LIMIT_BYTES, folder_bytes


def summary(runs: str) -> dict:
    folder = CacheFolder(runs)
    copies = sum(1 for p in folder.resized.rglob("*.npy")) if folder.resized.is_dir() else 0
    return {"folder": str(folder.path),
            "probes": {"files": _probed(folder), "bytes": folder.probes.stat().st_size if folder.probes.is_file() else 0},
            "resized": {"copies": copies, "bytes": folder_bytes(folder.resized), "limit_bytes": LIMIT_BYTES}}


def clear(runs: str) -> dict:
    """Remove the cache's files; what they held (summary's answer, from before)."""
    before = summary(runs)
    folder = CacheFolder(runs)
    folder.probes.unlink(missing_ok=True)
    shutil.rmtree(folder.resized, ignore_errors=True)
    return before


def _probed(folder: CacheFolder) -> int:
    if not folder.probes.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{folder.probes}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM probes").fetchone()[0])
    except sqlite3.Error:
        return 0
