"""A grid of image thumbnails with captions, and boxes drawn on them for detection sets.

Pictures are asked for a few at a time from a timer and decoded off the GUI thread at thumbnail
scale (gui/image_loader.py: a JPEG at a reduced DCT scale), so neither a folder of thousands nor
12 MP photos freeze the window; items appear as they load. Double-click emits the picture's path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from frelon.gui import theme
from frelon.gui.image_loader import ImageLoader

PER_TICK = 6
SYNC_PIXELS = 250_000        # thumbnails of pictures up to this size are decoded on the spot (~1 ms)


@dataclass
class Thumb:
    path: str
    caption: str
    tooltip: str = ""
    color: str = ""                      # caption/border colour ("" = none)
    boxes: list = field(default_factory=list)   # [(x, y, w, h, label, colour)] in full-image pixels
    display: str = ""                    # a picture shown in its place, same size (e.g. its map); "" = path


class ThumbnailGrid(QListWidget):
    activated_path = Signal(str)

    def __init__(self, parent=None, side: int = 128):
        super().__init__(parent)
        self.side = side
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(side, side))
        self.setGridSize(QSize(side + 16, side + 36))
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSpacing(4)
        self._queue: list[tuple[QListWidgetItem, Thumb]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._load_some)
        self.loader = ImageLoader(self, sync_pixels=SYNC_PIXELS)
        self.loader.loaded.connect(self._loaded)
        self.itemDoubleClicked.connect(lambda item: self.activated_path.emit(item.data(Qt.ItemDataRole.UserRole)))

    def set_thumbs(self, thumbs: list[Thumb]) -> None:
        self.loader.cancel()
        self.clear()
        self._queue = []
        blank = QPixmap(self.side, self.side)
        blank.fill(QColor("#eeeeee"))
        for t in thumbs:
            item = QListWidgetItem(QIcon(blank), t.caption)
            item.setData(Qt.ItemDataRole.UserRole, t.path)
            item.setToolTip(t.tooltip or t.path)
            if t.color:
                item.setForeground(QColor(t.color))
            self.addItem(item)
            self._queue.append((item, t))
        if self._queue:
            self._timer.start()

    def pending(self) -> int:
        """Thumbnails still to be asked for, or to arrive."""
        return len(self._queue) + (1 if self.loader.busy() else 0)

    def _load_some(self) -> None:
        for _ in range(PER_TICK):
            if not self._queue:
                self._timer.stop()
                return
            item, thumb = self._queue.pop(0)
            self.loader.request(thumb.display or thumb.path, self.side * 2, (item, thumb))

    def _loaded(self, key, _path: str, image: QImage, full: QSize) -> None:
        item, thumb = key
        item.setIcon(QIcon(self._render(thumb, image, full)))

    def _render(self, t: Thumb, image: QImage, full: QSize) -> QPixmap:
        if image.isNull():
            pm = QPixmap(self.side, self.side)
            pm.fill(QColor("#f3d6d6"))
            p = QPainter(pm)
            p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "unreadable")
            p.end()
            return pm
        pm = QPixmap.fromImage(image).scaled(self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
        if t.boxes or t.color:
            p = QPainter(pm)
            scale = pm.width() / max(1, full.width())
            for x, y, w, h, _label, colour in t.boxes:
                p.setPen(QPen(QColor(colour), 2))
                p.drawRect(int(x * scale), int(y * scale), max(1, int(w * scale)), max(1, int(h * scale)))
            if t.color:
                p.setPen(QPen(QColor(t.color), 4))
                p.drawRect(pm.rect().adjusted(2, 2, -2, -2))
            p.end()
        return pm


def class_colour(classes: list[str], name: str) -> str:
    try:
        return theme.PALETTE[classes.index(name) % len(theme.PALETTE)]
    except ValueError:
        return "#444444"
