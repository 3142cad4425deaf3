"""The box editor's undo / redo: every change to an image's boxes is one `EditBoxes` command on a
QUndoStack, holding the image's boxes before and after. Undoing a change made on another image
brings that image back into view, so nothing changes out of sight."""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtGui import QUndoCommand

from frelon.gui.annotation_set import Box


class EditBoxes(QUndoCommand):
    def __init__(self, apply: Callable[[Any, list[Box], int], list[Box]], image_id: Any,
                 before: list[Box], after: list[Box], text: str, selected: int = -1):
        super().__init__(text)
        self._apply = apply                  # (image id, boxes, selected) -> boxes as stored
        self.image_id = image_id
        self.before, self.after = list(before), list(after)
        self.selected = selected

    def redo(self) -> None:
        # the first redo gives new boxes their ids; later redos then restore the same ids
        self.after = self._apply(self.image_id, self.after, self.selected)

    def undo(self) -> None:
        self._apply(self.image_id, self.before, self.selected)     # out of range (an added box): none
