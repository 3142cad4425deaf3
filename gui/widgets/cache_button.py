"""The runs folder's cache (`frelon cache`: remembered checks, copies at training's resolution) as one
button: its size on the button, what it holds in the tooltip, a click offers to clear it.

Both the size and the clearing are `frelon cache --out RUNS [--clear] --json`, run in the engine's
process like every other command (the app never reads the cache's files itself).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from frelon.gui.engine_command import JsonCommand

MIB = 2 ** 20


def in_words(summary: dict) -> tuple[str, str]:
    """(the button's text, its tooltip) for `frelon cache --json`'s answer."""
    probes, resized = summary["probes"], summary["resized"]
    size = probes["bytes"] + resized["bytes"]
    text = "Cache: empty" if size == 0 else (f"Cache: {max(1, round(size / 1024))} KiB" if size < MIB else
                                             f"Cache: {size / MIB:.1f} MiB" if size < 2 ** 30 else
                                             f"Cache: {size / 2 ** 30:.2f} GiB")
    tip = (f"{summary['folder']}\n{probes['files']} file check(s) remembered (a second check or training start "
           f"reads them instead of every file)\n{resized['copies']} picture(s) kept at training resolution "
           f"({resized['bytes'] / MIB:.1f} MiB of at most {resized['limit_bytes'] / 2 ** 30:.0f} GiB)\n"
           "Click to clear it (your pictures and runs are not touched).")
    return text, tip


class CacheButton(QPushButton):
    def __init__(self, runs: Callable[[], str], parent: QWidget | None = None):
        super().__init__("Cache", parent)
        self.runs = runs
        self.summary: dict | None = None
        self.command = JsonCommand(self)
        self.command.done.connect(self._show)
        self.command.failed.connect(lambda message, _details: self.setToolTip(message))
        self.clicked.connect(self.ask_to_clear)

    def refresh(self) -> None:
        self.command.start(["cache", "--out", self.runs(), "--json"])

    def ask_to_clear(self) -> None:
        if self.summary is None:
            return
        answer = QMessageBox.question(self, "Clear the cache", self.toolTip().rsplit("\n", 1)[0] +
                                      "\n\nRemove these? The next check and training start read every file again.")
        if answer == QMessageBox.StandardButton.Yes:
            self.command.start(["cache", "--out", self.runs(), "--clear", "--json"])
            self.command.done.connect(self._cleared)

    def _cleared(self, _summary) -> None:
        self.command.done.disconnect(self._cleared)
        self.refresh()

    def _show(self, summary: dict) -> None:
        self.summary = summary
        text, tip = in_words(summary)
        self.setText(text)
        self.setToolTip(tip)
