"""Fixing a classification set from the misclassified gallery: a picture moved to the class it
really is, or excluded from training — each one undoable command — and the list of fixes recorded
in the run they were made from (`RUN/data_fixes.json`), so the next run's difference is explained.

A classification set *is* its folders (`DIR/<class>/…`), so relabelling moves the file into the
other class's folder. Excluding moves it into a hidden folder beside the class folders
(`.frelon-excluded/<class>/…`): every Frelon reader ignores hidden folders, and nothing is deleted.
A file already at the target is never overwritten (the new name gets a number).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from PySide6.QtGui import QUndoCommand

from frelon.common import coco_doc
from frelon.common.exclusions import EXCLUDED
from frelon.common.run_folder import RunFolder

def moved_path(path: str | os.PathLike, new_class: str) -> Path:
    """Where `CLASS/name` goes when it is of `new_class`: the sibling folder, a free name."""
    p = Path(path)
    return _free(p.parent.parent / new_class / p.name)


def excluded_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return _free(p.parent.parent / EXCLUDED / p.parent.name / p.name)


def _free(target: Path) -> Path:
    n, candidate = 1, target
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        n += 1
    return candidate


class FixRecord:
    """`RUN/data_fixes.json`: [{action, class, from, to, time}] in the order they were made."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = RunFolder(run_dir).data_fixes

    def entries(self) -> list[dict]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))["fixes"]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _write(self, entries: list[dict]) -> None:
        coco_doc.save({"about": "pictures moved or excluded from the Results tab after this run",
                       "fixes": entries}, self.path)

    def add(self, entry: dict) -> None:
        self._write(self.entries() + [entry])

    def remove(self, entry: dict) -> None:
        entries = self.entries()
        for i in range(len(entries) - 1, -1, -1):
            if entries[i].get("from") == entry["from"] and entries[i].get("to") == entry["to"]:
                del entries[i]
                break
        self._write(entries)


class MoveFile(QUndoCommand):
    """Move one picture (relabel or exclude); undo moves it back. `changed(old, new, label)` tells
    the gallery (label None: excluded)."""

    def __init__(self, source: str, target: Path, label: str | None, record: FixRecord | None,
                 changed: Callable[[str, str, str | None], None], text: str):
        super().__init__(text)
        self.source, self.target, self.label = str(source), str(target), label
        self.previous = Path(source).parent.name
        self.record, self.changed = record, changed
        self.entry = {"action": "move" if label is not None else "exclude", "class": label,
                      "from": self.source, "to": self.target, "time": round(time.time(), 3)}

    def redo(self) -> None:
        Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.target):
            raise FileExistsError(self.target)
        os.replace(self.source, self.target)
        if self.record is not None:
            self.record.add(self.entry)
        self.changed(self.source, self.target, self.label)

    def undo(self) -> None:
        os.replace(self.target, self.source)
        if self.record is not None:
            self.record.remove(self.entry)
        self.changed(self.target, self.source, self.previous)
