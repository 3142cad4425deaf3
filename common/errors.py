"""The errors a user can fix, shared by every side: common/ raises them (a COCO document that
cannot be read, a file Frelon must not overwrite), the engine raises them and its subclasses
(engine/errors.py), the app shows their message.

Each carries the `error` event's `kind` (one of common.events.ERROR_KINDS), a one-line message
naming the file or option at fault, and a hint saying what to do. The command line prints
`frelon: error: <message> — <hint>` and exits 1; the traceback only with --debug.
"""
from __future__ import annotations


class FrelonError(Exception):
    kind = "internal"

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


class DataError(FrelonError):
    """The data cannot be used, or would be destroyed: a missing folder, no images, a malformed
    annotation file, an output that would overwrite a set's own annotations."""
    kind = "data"


class OutputError(FrelonError):
    """An output that cannot be written: a read-only folder, a path through a file, /proc."""
    kind = "io"
