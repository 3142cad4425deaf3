"""An image with its detections: class-coloured boxes, labels with scores, an optional heatmap.

The score threshold only shows or hides box items already on the scene, so moving the slider
filters at once, without re-running anything. Labels ignore the zoom so they stay readable on
large photos. A heatmap is drawn see-through: transparent where the detector sees nothing.

Scene coordinates are the original picture's pixels (its header gives the size): the boxes are
placed at once, and the picture, decoded at the screen's size off the GUI thread
(gui/image_loader.py), arrives under them, scaled back to original pixels — a 12 MP photo opens
without freezing the window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene,
                               QGraphicsSimpleTextItem, QGraphicsView)

from frelon.common.run_folder import SCORE_THRESHOLD

from frelon.gui import theme
from frelon.gui.image_loader import FULL, ImageLoader, screen_side, zoomed_past
from frelon.gui.images import image_size

HEATMAP = "heatmap"         # the loader's key for a heatmap (the picture's is None)


@dataclass
class Detection:
    label: str
    class_index: int
    box: tuple[float, float, float, float]    # x, y, w, h in image pixels
    score: float


class DetectionView(QGraphicsView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#2b2b2b"))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.threshold = SCORE_THRESHOLD
        self._image_item: QGraphicsPixmapItem | None = None
        self._heatmap_item: QGraphicsPixmapItem | None = None
        self._boxes: list[tuple[Detection, QGraphicsRectItem]] = []
        self._full = QSize()                # the original picture's size: the scene's
        self._heatmap_path = ""
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._picture_loaded)
        self._fitted = True                 # the view shows the whole picture (fit), not a zoom
        self._sharp = False
        self.path = ""

    # ---- content ----
    def show_image(self, path: str, detections: list[Detection], heatmap: str = "") -> bool:
        """Boxes at once, the picture when decoded (`_picture_loaded`); False if unreadable."""
        scene = self.scene()
        self.loader.cancel()
        scene.clear()
        self._boxes = []
        self._image_item = self._heatmap_item = None
        self.path, self._heatmap_path = path, heatmap
        self._sharp = False                 # the full resolution asked for (zoomed in past the decode)
        self._full = image_size(path)
        if not self._full.isValid():
            self._cannot_read(path)
            return False
        for det in sorted(detections, key=lambda d: d.score):
            self._boxes.append((det, self._add_box(det)))
        scene.setSceneRect(QRectF(0, 0, self._full.width(), self._full.height()))
        self.apply_threshold(self.threshold)
        self.loader.request(path, screen_side())
        self.fit()
        return True

    def _cannot_read(self, path: str) -> None:
        text = self.scene().addSimpleText(f"Cannot read {path}")
        text.setBrush(QColor("white"))

    def _picture_loaded(self, key, path: str, image: QImage, full: QSize) -> None:
        if key == HEATMAP:
            self._show_heatmap(image)
            return
        if key == FULL:
            if self._image_item is not None and not image.isNull():
                self._image_item.setPixmap(QPixmap.fromImage(image))
                self._image_item.setScale(self._full.width() / image.width())
            return
        if image.isNull():
            self._cannot_read(path)
            return
        self._image_item = self.scene().addPixmap(QPixmap.fromImage(image))
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._image_item.setScale(self._full.width() / image.width())    # decoded smaller: original pixels
        self._image_item.setZValue(-1)
        if self._heatmap_path:
            self.set_heatmap(self._heatmap_path)
        if self._fitted:
            self.fit()

    def picture_shown(self) -> bool:
        """Whether the picture itself is on the scene (it arrives after `show_image` returns)."""
        return self._image_item is not None

    def _add_box(self, det: Detection) -> QGraphicsRectItem:
        colour = theme.color(det.class_index)
        x, y, w, h = det.box
        rect = QGraphicsRectItem(x, y, w, h)
        pen = QPen(colour, 2.5)
        pen.setCosmetic(True)              # the same on-screen width at any zoom
        rect.setPen(pen)
        rect.setToolTip(f"{det.label}  {det.score:.2f}\nx {x:.0f}  y {y:.0f}  w {w:.0f}  h {h:.0f}")
        label = QGraphicsSimpleTextItem(f"{det.label} {det.score:.2f}", rect)
        label.setBrush(QColor("white"))
        label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        bg = QGraphicsRectItem(label.boundingRect().adjusted(-2, -1, 2, 1), rect)
        bg.setBrush(QBrush(colour))
        bg.setPen(QPen(Qt.PenStyle.NoPen))
        bg.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        label.setParentItem(bg)
        bg.setPos(x, y)
        self.scene().addItem(rect)
        return rect

    def set_heatmap(self, path: str) -> None:
        if self._heatmap_item is not None:
            self.scene().removeItem(self._heatmap_item)
            self._heatmap_item = None
        if not path or self._image_item is None:
            return
        size = self._image_item.pixmap().size()
        self.loader.request(path, max(size.width(), size.height()), HEATMAP)    # 12 MP too: off the GUI thread

    def _show_heatmap(self, image: QImage) -> None:
        if image.isNull() or self._image_item is None:
            return
        if self._heatmap_item is not None:           # asked twice before the first arrived
            self.scene().removeItem(self._heatmap_item)
        size = self._image_item.pixmap().size()
        pm = QPixmap.fromImage(heat_overlay(image)).scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                           Qt.TransformationMode.SmoothTransformation)
        self._heatmap_item = self.scene().addPixmap(pm)
        self._heatmap_item.setScale(self._image_item.scale())
        self._heatmap_item.setZValue(0.5)
        for _det, rect in self._boxes:
            rect.setZValue(1)

    def has_heatmap(self) -> bool:
        return self._heatmap_item is not None

    # ---- filtering and view ----
    def apply_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        for det, rect in self._boxes:
            rect.setVisible(det.score >= threshold)

    def visible_count(self) -> int:
        return sum(1 for _d, r in self._boxes if r.isVisible())

    def total_count(self) -> int:
        return len(self._boxes)

    def fit(self) -> None:
        """The whole picture in the view; kept so through resizes until the user zooms."""
        self._fitted = True
        if self._full.isValid():
            self.fitInView(QRectF(0, 0, self._full.width(), self._full.height()), Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:        # not after a zoom: its scroll bars appearing resize the view too
            self.fit()

    def wheelEvent(self, event) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self._fitted = False
        self.scale(factor, factor)
        if not self._sharp and zoomed_past(self, self._image_item):
            self._sharp = True
            self.loader.request(self.path, None, FULL)


def heat_overlay(image: QImage) -> QImage:
    """A greyscale heatmap (0 = nothing, 255 = certain) as a see-through overlay: transparent where
    the detector sees nothing, warm and more opaque where it sees an object centre."""
    grey_image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, stride = grey_image.width(), grey_image.height(), grey_image.bytesPerLine()
    grey = np.frombuffer(grey_image.constBits(), dtype=np.uint8, count=stride * h)
    v = grey.reshape(h, stride)[:, :w].astype(np.float32) / 255.0
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    rgba[..., 0] = 255                                          # red to yellow as it grows
    rgba[..., 1] = (255 * np.clip(v * 1.6 - 0.3, 0, 1)).astype(np.uint8)
    rgba[..., 2] = 0
    rgba[..., 3] = (230 * np.clip(v * 1.5, 0, 1)).astype(np.uint8)
    out = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return out.copy()                                           # own the pixels (rgba is freed)
