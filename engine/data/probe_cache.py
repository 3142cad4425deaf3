"""Probe results remembered between scans: a second `frelon check` or `frelon train` start on an
unchanged folder reads them instead of decoding and hashing every file again.

One SQLite table in the cache folder (common/run_folder.py `CacheFolder.probes`), one row per
file: its path, the stat fields that change whenever its bytes do — size, mtime, ctime, inode (ctime
cannot be set back by a program, as mtime can: a file rewritten and given its old mtime is probed
again; a file replaced by another is another inode) — and what the probe found: size after EXIF
orientation, SHA-1, format, or the reason it cannot be used. A row whose stat differs is stale:
the file is probed again and the new result reported. What is checked before any decoding
(missing, unreadable, not a regular file, empty: images.py `_check_file`) is checked every time.

A file changed within RACY_S seconds of its probe is not remembered (git's "racy" rule: a file
system whose clock ticks coarsely could show the same mtime after a second write). A cache that
cannot be opened or written is left out with one log line: the scan works without it.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Optional, Union

from .images import BadImage, ImageInfo

log = logging.getLogger(__name__)

RACY_S = 2.0             # a file changed this recently is probed but not remembered
Probed = Union[ImageInfo, BadImage]

_FIELDS = "size, mtime_ns, ctime_ns, ino, width, height, sha1, format, reason"
_SCHEMA = """CREATE TABLE IF NOT EXISTS probes (
    path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER,
    width INTEGER, height INTEGER, sha1 TEXT, format TEXT, reason TEXT)"""


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must be the same for a remembered probe to still hold."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class ProbeCache:
    """`lookup(path, st)` a remembered result or None; `store(path, st, result)`; `close()` writes
    what was stored (also every few hundred files, so a scan stopped halfway keeps its work)."""

    def __init__(self, file: Union[str, os.PathLike]):
        self.file = Path(file)
        self._db: Optional[sqlite3.Connection] = None
        self._pending: list[tuple] = []
        self._broken = False
        self._rows: Optional[dict[bytes, tuple]] = None     # prefetch()'s: every row under a folder
        self._under = b""
        self.hits = 0

    def _open(self) -> Optional[sqlite3.Connection]:
        if self._db is None and not self._broken:
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.file), timeout=10, check_same_thread=False)
                self._db.execute(_SCHEMA)
            except (sqlite3.Error, OSError) as e:
                self._give_up(e)
        return self._db

    def _give_up(self, error: BaseException) -> None:
        self._broken, self._db = True, None
        log.warning("%s: the scan cache cannot be used (%s); every file is probed", self.file, error)

    def prefetch(self, paths: list[str]) -> None:
        """Read every row under the folder that holds `paths` at once (one query instead of one per
        file: 20,000 lookups in a tenth of the time)."""
        db = self._open()
        if db is None or not paths:
            return
        try:
            under = os.path.join(os.path.commonpath([os.path.abspath(p) for p in paths]), "")
        except ValueError:                  # paths on several drives: looked up one by one
            return
        low = os.fsencode(under)
        try:
            rows = db.execute(f"SELECT path, {_FIELDS} FROM probes WHERE path >= ? AND path < ?",
                              (low, low + b"\xff")).fetchall()
        except sqlite3.Error as e:
            self._give_up(e)
            return
        self._rows, self._under = {row[0]: row[1:] for row in rows}, low

    def lookup(self, path: str, st: os.stat_result) -> Optional[Probed]:
        db = self._open()
        if db is None:
            return None
        key = _key(path)
        if self._rows is not None and key.startswith(self._under) and b"\xff" not in key:
            row = self._rows.get(key)
        else:
            try:
                row = db.execute(f"SELECT {_FIELDS} FROM probes WHERE path = ?", (key,)).fetchone()
            except sqlite3.Error as e:
                self._give_up(e)
                return None
        if row is None or tuple(row[:4]) != stat_key(st):
            return None
        self.hits += 1
        width, height, sha1, fmt, reason = row[4:]
        if reason is not None:
            return BadImage(path, reason)
        return ImageInfo(width=width, height=height, sha1=sha1, format=fmt)

    def store(self, path: str, st: os.stat_result, result: Probed) -> None:
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_S * 1e9:
            return
        if isinstance(result, BadImage):
            values = (None, None, None, None, result.reason)
        else:
            values = (result.width, result.height, result.sha1, result.format, None)
        self._pending.append((_key(path), *stat_key(st), *values))
        if len(self._pending) >= 500:
            self.flush()

    def flush(self) -> None:
        db = self._open()
        rows, self._pending = self._pending, []
        if db is None or not rows:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO probes VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.Error as e:
            self._give_up(e)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


def _key(path: str) -> bytes:
    """The path as the bytes the file system holds (a non-UTF-8 name too)."""
    return os.fsencode(os.path.abspath(path))
