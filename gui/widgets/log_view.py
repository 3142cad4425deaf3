"""The log panel: engine stderr, non-JSON stdout and `log` events, coloured by level, bounded."""
from __future__ import annotations

import html
import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit

from frelon.gui import theme

COLOURS = {"error": theme.BAD, "warning": theme.WARN, "stderr": "#666666", "stdout": "#666666"}


class LogView(QPlainTextEdit):
    def __init__(self, parent=None, max_lines: int = 5000):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        self.setFont(font)
        self.setPlaceholderText("The engine's messages appear here.")

    def add(self, level: str, text: str) -> None:
        colour = COLOURS.get(level, "")
        stamp = time.strftime("%H:%M:%S")
        body = html.escape(text)
        if colour:
            body = f"<span style='color:{colour}'>{body}</span>"
        self.appendHtml(f"<span style='color:#999999'>{stamp}</span> {body}")
