"""Labels that never make the window wider than the screen (issue 32).

A QLabel asks for the width of its longest unbreakable word — a path, an engine message naming a
file — so one long name could push the whole window past a laptop's screen. Two answers:

  * `WrapLabel`: word-wrapped, and a long word (a path, a file name) may break after / _ - . too;
  * `ElidedLabel`: one line, shown elided ("…", in the middle for paths) when narrower than its
    text, the whole text in its tooltip.

Both give back the text they were given (`text()`), not what they draw.
"""
from __future__ import annotations

import html
import math
import re

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

ZWSP = "\u200b"             # a zero-width space: where Qt's line breaking may break a word
LONG_WORD = 24              # words longer than this (characters) get break opportunities
_TAG_OR_WORD = re.compile(r"(<[^>]*>)|([^\s<]{%d,})" % (LONG_WORD + 1))
_BREAK_AFTER = re.compile(r"([/\\_.\-,;:=)\]])(?=[^\s])")


def breakable(text: str) -> str:
    """`text` with a zero-width space after / \\ _ . - , ; : = ) ] inside each long word (markup untouched)."""
    def one(m: re.Match) -> str:
        return m.group(1) or _BREAK_AFTER.sub(r"\1" + ZWSP, m.group(2))
    return _TAG_OR_WORD.sub(one, text)


def plain(text: str) -> str:
    """Rich text as the words it shows (tags dropped, entities read)."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(re.sub(r"<br\s*/?>", " ", re.sub(r"<(?!br)[^>]*>", "", text)))


class WrapLabel(QLabel):
    """A word-wrapped label whose long words (paths) wrap too, so its minimum width stays small."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self._text = ""
        self.setText(text)

    def setText(self, text: str) -> None:          # noqa: N802 (Qt's name)
        self._text = str(text)
        super().setText(breakable(self._text))

    def text(self) -> str:
        return self._text


class ElidedLabel(QLabel):
    """One line that never widens its window: elided when narrower than its text, whole in the tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, min_chars: int = 12):
        super().__init__(parent)
        self._mode = mode
        self._min_chars = min_chars
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:          # noqa: N802
        self._full = str(text)
        self._fit()
        self.updateGeometry()

    def text(self) -> str:
        return self._full

    def is_elided(self) -> bool:
        return super().text() != self._full

    def sizeHint(self) -> QSize:                    # noqa: N802
        m = self.contentsMargins()
        return QSize(self._width(self._full) + m.left() + m.right() + 2 * self.margin(),
                     super().minimumSizeHint().height())

    def minimumSizeHint(self) -> QSize:             # noqa: N802
        full = self.sizeHint()
        return QSize(min(full.width(), self.fontMetrics().averageCharWidth() * self._min_chars), full.height())

    def resizeEvent(self, event) -> None:           # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _rich(self, text: str) -> bool:
        fmt = self.textFormat()
        return fmt == Qt.TextFormat.RichText or fmt == Qt.TextFormat.AutoText and ("<" in text or "&" in text)

    def _width(self, text: str) -> int:
        if not self._rich(text):
            return self.fontMetrics().horizontalAdvance(text)
        doc = QTextDocument()
        doc.setDefaultFont(self.font())
        doc.setDocumentMargin(0)
        doc.setHtml(text)
        return math.ceil(doc.idealWidth())

    def _fit(self) -> None:
        room = self.contentsRect().width() - 2 * self.margin()
        if room <= 0 or self._width(self._full) <= room:
            if super().text() != self._full:
                super().setText(self._full)
                self.setToolTip("")
            return
        words = plain(self._full)
        shown = self.fontMetrics().elidedText(words, self._mode, room)
        super().setText(f"<span>{html.escape(shown)}</span>" if self._rich(self._full) else shown)
        self.setToolTip(words)
