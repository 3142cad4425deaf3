"""Beside the augmentation choice: training images as the training pipeline will transform them.

"Preview" runs `frelon preview-augment` with the current choices (data, image size, augmentation,
flip, noise, seed…) in the background (JsonCommand, like `frelon lr-find`), into a folder this
widget owns, and shows the pictures in a grid: one row per training image, one column per epoch,
with the boxes the engine moved along for detection. "Re-draw" asks for the next epochs. What is
shown is the engine's own output (engine/commands/preview.py), so it is exactly what trains.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QRectF, QTemporaryDir, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from frelon.gui import theme
from frelon.gui.engine_command import JsonCommand
from frelon.gui.widgets.labels import WrapLabel

IMAGES = 2
COUNT = 6
SIDE = 112


def drawn(path: str, boxes: list[dict] | None, classes: list[str], side: int = SIDE) -> QPixmap:
    """The picture scaled to `side`, with its boxes (xyxy in the picture's pixels) in class colours."""
    pixmap = QPixmap(path)
    if pixmap.isNull():
        return pixmap
    scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    if boxes:
        k = scaled.width() / pixmap.width()
        p = QPainter(scaled)
        for b in boxes:
            i = classes.index(b["class"]) if b["class"] in classes else 0
            p.setPen(QPen(QColor(theme.PALETTE[i % len(theme.PALETTE)]), 2))
            x1, y1, x2, y2 = (v * k for v in b["box"])
            p.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        p.end()
    return scaled


class AugmentPreview(QWidget):
    shown = Signal(object)             # the preview JSON, once drawn
    failed = Signal(str)

    def __init__(self, flags: Callable[[], list[str]], parent: QWidget | None = None):
        super().__init__(parent)
        self._flags = flags
        self._folder = QTemporaryDir()
        self.epoch = 0
        self.result: dict | None = None
        self.button = QPushButton("Preview augmentation")
        self.button.setToolTip("Shows training pictures as the engine's training pipeline transforms them "
                               "with these choices (frelon preview-augment): one row per picture, one column per epoch")
        self.redraw = QPushButton("Re-draw")
        self.redraw.setToolTip("The same pictures as the next epochs will see them")
        self.redraw.setEnabled(False)
        self.label = WrapLabel("")            # an engine message may name a long path
        cells = QWidget()
        self.grid = QGridLayout(cells)
        self.grid.setSpacing(4)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()       # six epochs side by side are wider than the side panel: they scroll
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(cells)
        self.scroll.setVisible(False)
        bar = QHBoxLayout()
        bar.addWidget(self.button)
        bar.addWidget(self.redraw)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.label)
        layout.addWidget(self.scroll)
        self.command = JsonCommand(self)
        self.command.done.connect(self._show)
        self.command.failed.connect(self._failed)
        self.button.clicked.connect(lambda: self.start(0))
        self.redraw.clicked.connect(lambda: self.start(self.epoch + COUNT))

    def set_flags(self, flags: Callable[[], list[str]]) -> None:
        self._flags = flags

    def start(self, epoch: int = 0) -> list[str]:
        self.epoch = epoch
        args = ["preview-augment", *self._flags(), "--out", self._folder.path(), "--images", str(IMAGES),
                "--count", str(COUNT), "--epoch", str(epoch), "--json"]
        self.button.setEnabled(False)
        self.redraw.setEnabled(False)
        self.label.setText("Drawing training pictures through the training pipeline …")
        self.command.start(args)
        return args

    def _clear(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()

    def _show(self, result) -> None:
        self.button.setEnabled(True)
        self.redraw.setEnabled(True)
        self._clear()
        self.result = result
        classes = result.get("classes") or []
        for row, image in enumerate(result.get("images") or []):
            for col, v in enumerate(image["variants"]):
                cell = QLabel()
                cell.setPixmap(drawn(f"{result['out']}/{v['file']}", v.get("boxes"), classes))
                cell.setToolTip(f"{image['path']}\nepoch {v['epoch'] + 1} (seed {v['seed']})")
                self.grid.addWidget(cell, row, col)
        rows = len(result.get("images") or [])
        self.scroll.setFixedHeight(rows * (SIDE + self.grid.spacing()) + self.scroll.horizontalScrollBar().sizeHint().height())
        self.scroll.setVisible(rows > 0)
        noise = f", noise σ {result['noise']:g} levels" if result.get("noise") else ""
        self.label.setText(f"{result['task']}: '{result['augment']}' at {result['size']} px, flip {result['flip']}"
                           f"{noise} — epochs {self.epoch + 1}–{self.epoch + COUNT}, seed {result['seed']}")
        self.shown.emit(result)

    def _failed(self, message: str, details: str) -> None:
        self.button.setEnabled(True)
        self.redraw.setEnabled(self.result is not None)
        self.label.setText(f"<span style='color:{theme.BAD}'>Preview failed: {message}</span>")
        self.label.setToolTip(details)
        self.failed.emit(message)
