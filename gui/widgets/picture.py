"""A picture as large as its place allows and no larger than itself, in proportion (issue 32).

A QLabel holding a pixmap asks for the pixmap's whole size, so a 744 px wide triptych made the
Robustness tab — and with it the window — at least that wide. `Picture` asks for little, fits the
picture into whatever room the layout gives it, and draws it at the screen's device pixel ratio
(sharp on a HiDPI screen).
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QWidget


class Picture(QLabel):
    def __init__(self, parent: QWidget | None = None, minimum: QSize = QSize(160, 100)):
        super().__init__(parent)
        self._picture = QPixmap()
        self._minimum = minimum
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)

    def set_picture(self, pixmap: QPixmap) -> None:
        self._picture = QPixmap(pixmap)
        self.updateGeometry()
        self._fit()

    def picture(self) -> QPixmap:
        """The picture as given (`pixmap()` is what is drawn, fitted to the label)."""
        return self._picture

    def clear(self) -> None:
        self._picture = QPixmap()
        super().clear()

    def setText(self, text: str) -> None:            # noqa: N802 (Qt's name): a message instead of a picture
        self._picture = QPixmap()
        super().setText(text)

    def sizeHint(self) -> QSize:                      # noqa: N802
        if self._picture.isNull():
            return super().sizeHint().expandedTo(self._minimum)
        return self._picture.deviceIndependentSize().toSize()

    def minimumSizeHint(self) -> QSize:               # noqa: N802
        return self._minimum if self._picture.isNull() else self._minimum.boundedTo(self.sizeHint())

    def resizeEvent(self, event) -> None:             # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._picture.isNull():
            return
        room = self.contentsRect().size()
        own = self._picture.deviceIndependentSize().toSize()
        if room.width() <= 0 or room.height() <= 0:
            super().setPixmap(self._picture)
            return
        dpr = self.devicePixelRatioF()
        target = own.scaled(room.boundedTo(own), Qt.AspectRatioMode.KeepAspectRatio) * dpr
        scaled = self._picture.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation)
        scaled.setDevicePixelRatio(dpr)
        super().setPixmap(scaled)
