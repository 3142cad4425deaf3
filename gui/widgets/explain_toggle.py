""""Where it looks": the gallery's pictures shown with the model's map over them, on a toggle.

A checkable button. Checked, it runs `frelon explain --run RUN --input <the pictures shown> --out
RUN/explain --json` in the background (JsonCommand, like every short command) and, when it
answers, `overlay(path)` gives each picture's first map (a Grad-CAM PNG the engine drew) and
`changed` asks the gallery to redraw; unchecked, the pictures come back. The map of a picture is
kept until the run changes: a filter or a redraw asks the engine again only when a picture shown
has none (then for all those shown: each answer replaces the folder's previous maps).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QPushButton

from frelon.common.run_folder import RunFolder
from frelon.gui.engine_command import JsonCommand

MAX_PICTURES = 48          # one request: Grad-CAM is a forward and a backward pass per picture


class ExplainToggle(QPushButton):
    changed = Signal()               # maps arrived or the toggle flipped: redraw the gallery
    status = Signal(str)             # what it is doing, or why it failed, in words

    def __init__(self, parent=None):
        super().__init__("Where it looks", parent)
        self.setCheckable(True)
        self.setToolTip("Lay the model's Grad-CAM map over each picture: red where the evidence for "
                        "the predicted class lies (`frelon explain`)")
        self.run_dir = ""
        self.maps: dict[str, str] = {}           # picture path → overlay PNG
        self._wanted: list[str] = []
        self.command = JsonCommand(self)
        self.command.done.connect(self._done)
        self.command.failed.connect(lambda message, _details: self._failed(message))
        self.toggled.connect(self._toggled)

    def set_run(self, run_dir: str) -> None:
        if run_dir != self.run_dir:
            self.command.cancel()
            self.run_dir, self.maps = run_dir, {}

    def overlay(self, path: str) -> str:
        """The picture to show for `path`: its map when the toggle is on and the map is there."""
        return self.maps.get(path, "") if self.isChecked() else ""

    def want(self, paths: list[str]) -> list[str] | None:
        """The pictures the gallery shows; with the toggle on, those without a map are asked for
        (the arguments of the command started, else None)."""
        self._wanted = [p for p in paths if p][:MAX_PICTURES]
        missing = [p for p in self._wanted if p not in self.maps]
        if not self.isChecked() or not missing or not self.run_dir:
            return None
        args = ["explain", "--run", self.run_dir, "--input", *self._wanted,
                "--out", str(RunFolder(self.run_dir).explain), "--json"]
        self.status.emit(f"Drawing where the model looks in {len(self._wanted)} picture(s)…")
        self.command.start(args)
        return args

    def _toggled(self, on: bool) -> None:
        if on:
            self.want(self._wanted)
        else:
            self.command.cancel()
        self.changed.emit()

    def _done(self, result) -> None:
        out = Path(str(result.get("out", ""))) if isinstance(result, dict) else Path()
        self.maps = {}                           # the engine replaced the folder's previous maps
        for entry in (result or {}).get("images", []) if isinstance(result, dict) else []:
            maps = entry.get("maps") or []
            if maps and entry.get("path"):
                self.maps[str(entry["path"])] = str(out / str(maps[0].get("png", "")))
        skipped = len(result.get("skipped", [])) if isinstance(result, dict) else 0
        self.status.emit("" if not skipped else f"{skipped} picture(s) could not be read")
        self.changed.emit()

    def _failed(self, message: str) -> None:
        self.setChecked(False)
        self.status.emit(f"Could not draw the maps: {message}")
