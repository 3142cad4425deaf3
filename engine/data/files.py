"""Walking the user's folders: which files are candidates, in a stable order, without surprises.

Owns the rules every dataset reader shares:
- hidden and system clutter is ignored silently: dot-files and dot-folders, macOS AppleDouble `._*`
  files and `__MACOSX` folders, Windows `Thumbs.db` / `desktop.ini` / `$RECYCLE.BIN`, Synology `@eaDir`;
- symbolic links are followed, but a link back to a folder above it (a loop) or to a folder already
  walked is not entered again;
- a folder named like an image (`holiday.jpg/`) is a folder;
- file names that are not valid UTF-8 (possible on Linux) never crash anything: paths stay `str`
  (bytes kept as lone surrogates by `os.fsdecode`, so the file still opens) and `printable_path`
  gives the form to show or put in JSON.

Problems found while walking (an unreadable folder, a loop, a broken link, a FIFO) are passed to an
optional `problems` list as `(path, reason)` so the data doctor can report them.
"""
from __future__ import annotations

import os
import stat
from typing import Iterator, List, Optional, Tuple

from .images import PathLike, printable_path

__all__ = ["walk_files", "list_subdirs", "list_top_files", "is_ignored", "printable_path"]

Problems = Optional[List[Tuple[str, str]]]

# Compared lower-case. Names starting with "." (including AppleDouble "._x.jpg") are ignored too.
_IGNORED_NAMES = frozenset({
    "thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx", "$recycle.bin",
    "system volume information", "@eadir", "icon\r",
})


def is_ignored(name: str) -> bool:
    """True for hidden files/folders and OS clutter that is never part of a dataset."""
    return name.startswith(".") or name.lower() in _IGNORED_NAMES


def walk_files(root: PathLike, problems: Problems = None) -> Iterator[str]:
    """Every candidate file under `root` (recursively), depth first, names sorted at each level.

    Follows symlinks to files and folders; never enters the same real folder twice and never follows
    a link to a folder that contains it (no infinite loops). Yields `str` paths that start with `root`.
    """
    root = os.fsdecode(root)
    visited = {os.path.realpath(root)}
    yield from _walk(root, visited, problems)


def _walk(folder: str, visited: set, problems: Problems) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError:
        _note(problems, folder, "unreadable folder (permission denied)")
        return
    except OSError as e:
        _note(problems, folder, f"unreadable folder ({e.strerror or e})")
        return
    here = os.path.realpath(folder)
    for entry in entries:
        if is_ignored(entry.name):
            continue
        path = entry.path
        kind = _kind(entry)
        if kind == "dir":
            real = os.path.realpath(path)
            if real == here or _is_inside(here, real):
                _note(problems, path, "symlink loop (links to a folder that contains it): not followed")
                continue
            if real in visited:
                continue  # the same folder reached through another link: its files are already listed
            visited.add(real)
            yield from _walk(path, visited, problems)
        elif kind == "file":
            yield path
        elif kind == "broken":
            _note(problems, path, "broken link (its target is missing)")
        elif kind == "other":
            _note(problems, path, "not a regular file")


def list_subdirs(folder: PathLike) -> List[str]:
    """The non-ignored sub-folders of `folder` (symlinks to folders included), as sorted names."""
    folder = os.fsdecode(folder)
    names = []
    with os.scandir(folder) as it:
        for entry in it:
            if not is_ignored(entry.name) and _kind(entry) == "dir":
                names.append(entry.name)
    return sorted(names)


def list_top_files(folder: PathLike) -> List[str]:
    """The non-ignored regular files directly in `folder` (not recursive), as sorted paths."""
    folder = os.fsdecode(folder)
    with os.scandir(folder) as it:
        return sorted(e.path for e in it if not is_ignored(e.name) and _kind(e) == "file")


def _kind(entry: os.DirEntry) -> str:
    """'dir', 'file', 'broken' (dangling symlink or link loop) or 'other' (FIFO, socket, device)."""
    try:
        st = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        return "broken"
    except OSError:
        # e.g. a link loop "a -> b -> a" (ELOOP) or a permission problem on the target
        return "broken" if entry.is_symlink() else "other"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def _is_inside(child: str, parent: str) -> bool:
    """Is real path `child` inside real path `parent`? (Both already realpath'ed.)"""
    try:
        return os.path.commonpath([child, parent]) == parent
    except ValueError:  # different drives on Windows
        return False


def _note(problems: Problems, path: str, reason: str) -> None:
    if problems is not None:
        problems.append((path, reason))
