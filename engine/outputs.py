"""Every output a command writes, checked before the work starts.

A command that computes for minutes and then cannot write its answer has wasted the minutes; one
that writes its answer over what it read has destroyed the user's data. So each command names its
outputs here first, and each is refused with one line (`OutputError`, or `DataError` when the data
is what would be lost):

  * `writable_file` / `writable_folder`: a file can be created in the folder, or in its nearest
    existing parent when it is still to be made (a real probe: a temporary file made and removed —
    permission bits say nothing for root, nor for a read-only mount or /proc);
  * `result_file`: also never one of the command's inputs (`os.path.samefile`: hard and symbolic
    links included) nor an annotations file (a COCO document, a YOLO data.yaml, a VOC XML);
  * `holds_no_input`: a folder of drawn pictures (`--draw`, `--heatmaps`) never one that holds
    input pictures, which the drawings would overwrite; `outside`: `preview-augment --out` never
    inside the data.

Annotations themselves (`frelon annotations`, `--as-annotations`, the app's box editor) follow
common/coco_doc.py's `check_target`. `oserror_line` turns any other OSError into the one line.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from frelon.common import coco_doc

from .errors import DataError, OutputError

ANNOTATION_SUFFIXES = (".yaml", ".yml", ".xml")       # YOLO data.yaml, VOC annotations


def writable_folder(folder: str | os.PathLike, option: str, hint: str = "", subject: Path | None = None) -> Path:
    """`folder` (absolute) when it can be written, or made: a temporary file is created and removed
    in it, or in its nearest existing parent (nothing is made or left behind); else OutputError
    naming `subject` (default: the folder)."""
    folder = Path(folder).absolute()
    subject = subject or folder
    hint = hint or f"choose another {option}, a folder you can write to"
    base = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
    if base is None or not base.is_dir():
        raise OutputError(f"{base or folder}: is a file, not a folder", hint=hint)
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".frelon-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = "cannot write in this folder" if base == subject else f"cannot be written: cannot write in {base}"
        raise OutputError(f"{subject}: {where} ({_reason(e)})", hint=hint) from None
    return folder


def writable_file(path: str | os.PathLike, option: str) -> Path:
    """`path` (absolute) when a file can be written there; else OutputError."""
    path = Path(path).absolute()
    if path.is_dir():
        raise OutputError(f"{path}: is a folder", hint=f"give {option} a file name")
    writable_folder(path.parent, option, subject=path)
    return path


def result_file(path: str | os.PathLike, option: str, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """`writable_file`, and never an input of the command nor a file that holds annotations."""
    path = Path(path).absolute()
    for source in (inputs if os.path.lexists(path) else ()):
        if source and _same(path, source):
            raise DataError(f"{path}: is this command's input; writing {option} there would destroy it",
                            hint=f"give {option} a new file")
    if path.is_file() and (path.suffix.lower() in ANNOTATION_SUFFIXES or coco_doc.is_coco_document(path)):
        raise DataError(f"{path}: holds annotations; writing {option} there would destroy them",
                        hint=f"give {option} a new file")
    return writable_file(path, option)


def outside(folder: str | os.PathLike, source: str | os.PathLike, option: str) -> None:
    """Refuse a pictures folder `folder` equal to or inside `source`, the data read from."""
    out, src = Path(os.path.realpath(folder)), Path(os.path.realpath(source))
    if out == src or src in out.parents:
        raise DataError(f"{folder}: inside {source}, the data the pictures are read from; the pictures "
                        f"{option} writes would join them", hint=f"choose a {option} folder outside it")


def holds_no_input(folder: str | os.PathLike, pictures: Iterable[str | os.PathLike | None], option: str) -> None:
    """Refuse a folder for drawn pictures that holds any of the input `pictures` (the input
    folder itself, or one of its folders with pictures): a drawing would overwrite a picture."""
    out = os.path.realpath(folder) + os.sep
    for picture in pictures:
        if picture is not None and os.path.realpath(picture).startswith(out):
            raise DataError(f"{folder}: holds input pictures (e.g. {picture}); the ones {option} writes "
                            "would overwrite them", hint=f"choose a {option} folder without input pictures")


def oserror_line(e: OSError) -> tuple[str, str]:
    """(message, hint) of an OSError no check caught: the file, the reason, what to do."""
    where = e.filename if e.filename is not None else ""
    message = f"{where}: {_reason(e)}" if where else _reason(e)
    return message, "check the path, its permissions and the free space, or choose another path"


def _reason(e: OSError) -> str:
    return e.strerror or e.__class__.__name__


def _same(a: Path, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:               # either is missing: not the same file
        return False
