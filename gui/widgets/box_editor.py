"""The box editor's canvas: one image and its boxes, edited with the mouse.

Scene coordinates are the ORIGINAL image's pixels, whatever size the picture is decoded at, so a
box read from or written to COCO needs no conversion. The boxes are there at once; the picture is
decoded at the screen's size off the GUI thread (gui/image_loader.py) and arrives under them: a
12 MP photo opens without freezing the window. The canvas never changes the boxes it was
given: a finished gesture emits `edited(new boxes, description)` and the owner pushes an undo
command that calls `set_boxes` — one path for every change, so undo / redo always match.

Mouse: drag on the picture draws a box of the current class; click a box to select it, drag it to
move it, drag one of its eight handles to resize it; click a model suggestion (dashed) to accept
it; wheel zooms under the pointer; middle button (or Space + left) drags to pan.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView

from frelon.gui import theme
from frelon.gui.annotation_set import Box
from frelon.gui.image_loader import FULL, ImageLoader, screen_side, zoomed_past
from frelon.gui.images import image_size

HANDLE_PX = 7          # handle size on screen
MIN_SIDE = 2.0         # smallest box drawn, in image pixels
# handle i: (which x edge, which y edge) moves; 0 = left/top, 1 = right/bottom, None = neither
HANDLES = [(0, 0), (None, 0), (1, 0), (1, None), (1, 1), (None, 1), (0, 1), (0, None)]


def _xyxy(b: Box) -> tuple[float, float, float, float]:
    x, y, w, h = b.bbox
    return x, y, x + w, y + h


class BoxEditor(QGraphicsView):
    edited = Signal(list, str)              # the image's new boxes, what changed in words
    suggestion_clicked = Signal(int)        # index into the suggestions
    selection_changed = Signal(int)         # selected box index, -1 for none

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#2b2b2b"))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.class_names: list[str] = []
        self.category_ids: list[int] = []
        self.current_category = 0
        self.boxes: list[Box] = []
        self.suggestions: list[Box] = []
        self.selected = -1
        self.image_size = (0, 0)
        self._items: list[QGraphicsRectItem] = []
        self._suggestion_items: list[QGraphicsRectItem] = []
        self._handles: list[QGraphicsRectItem] = []
        self._drag: dict | None = None
        self._pan: QPointF | None = None
        self._space = False
        self._picture = None                # the decoded picture's item, once it arrived
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._picture_loaded)
        self._fitted = True                 # the view shows the whole picture (fit), not a zoom
        self._sharp = False
        self.path = ""

    # ---- content
    def set_classes(self, names: list[str], category_ids: list[int]) -> None:
        self.class_names, self.category_ids = list(names), list(category_ids)
        if category_ids and self.current_category not in category_ids:
            self.current_category = category_ids[0]

    def show_image(self, path: str, size: tuple[int, int] | None, boxes: list[Box],
                   suggestions: list[Box] | None = None) -> bool:
        """Show `path` with `boxes`; `size` is the original (width, height) the boxes refer to."""
        scene = self.scene()
        self.loader.cancel()
        scene.clear()
        self._items, self._suggestion_items, self._handles = [], [], []
        self._picture = None
        self._sharp = False                 # the full resolution asked for (zoomed in past the decode)
        self.path = path
        full = image_size(path)
        if not full.isValid():
            self._cannot_read(path)
            return False
        width, height = size or (full.width(), full.height())
        self.image_size = (width, height)
        scene.setSceneRect(QRectF(0, 0, width, height))
        self.selected = -1
        self.suggestions = list(suggestions or [])
        self.set_boxes(boxes)
        self.fit()
        self.loader.request(path, screen_side())
        return True

    def _cannot_read(self, path: str) -> None:
        self.scene().addSimpleText(f"Cannot read {path}").setBrush(QColor("white"))
        self.image_size = (0, 0)

    def _picture_loaded(self, key, path: str, image: QImage, _full: QSize) -> None:
        if key == FULL:
            if self._picture is not None and not image.isNull():
                self._picture.setPixmap(QPixmap.fromImage(image))
                self._picture.setScale(self.image_size[0] / image.width())
            return
        if image.isNull():
            self._cannot_read(path)
            return
        self._picture = self.scene().addPixmap(QPixmap.fromImage(image))
        self._picture.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._picture.setScale(self.image_size[0] / image.width())    # decoded smaller or not: original pixels
        self._picture.setZValue(-1)

    def picture_shown(self) -> bool:
        """Whether the picture itself is on the scene (it arrives after `show_image` returns)."""
        return self._picture is not None

    def set_boxes(self, boxes: list[Box], selected: int | None = None) -> None:
        for item in self._items + self._suggestion_items:
            self.scene().removeItem(item)
        self.boxes = list(boxes)
        self._items = [self._rect_item(b, dashed=b.draft) for b in self.boxes]
        self._suggestion_items = [self._rect_item(s, dashed=True, suggestion=True) for s in self.suggestions
                                  if not any(_same(s, b) for b in self.boxes)]
        self._suggestion_index = [i for i, s in enumerate(self.suggestions) if not any(_same(s, b) for b in self.boxes)]
        self.select(self.selected if selected is None else selected)

    def set_suggestions(self, suggestions: list[Box]) -> None:
        self.suggestions = list(suggestions)
        self.set_boxes(self.boxes)

    def _colour(self, category_id: int) -> QColor:
        index = self.category_ids.index(category_id) if category_id in self.category_ids else 0
        return theme.color(index)

    def class_name(self, category_id: int) -> str:
        return self.class_names[self.category_ids.index(category_id)] if category_id in self.category_ids else str(category_id)

    def _rect_item(self, b: Box, dashed: bool, suggestion: bool = False) -> QGraphicsRectItem:
        x, y, w, h = b.bbox
        item = QGraphicsRectItem(x, y, w, h)
        colour = self._colour(b.category_id)
        pen = QPen(colour, 1.5 if suggestion else 2.5, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(1 if suggestion else 2)
        text = self.class_name(b.category_id) + (f" {b.score:.2f}" if b.score is not None else "")
        if suggestion:
            text = "model: " + text + " (click to accept)"
        elif b.draft:
            text = "draft: " + text
        label = QGraphicsSimpleTextItem(text, item)
        label.setBrush(QColor("white"))
        label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        bg = QGraphicsRectItem(label.boundingRect().adjusted(-2, -1, 2, 1), item)
        bg.setBrush(QBrush(colour.darker(150) if suggestion else colour))
        bg.setPen(QPen(Qt.PenStyle.NoPen))
        bg.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        bg.setPos(x, y)
        label.setParentItem(bg)
        item.setToolTip(f"{text}\nx {x:.0f}  y {y:.0f}  w {w:.0f}  h {h:.0f}")
        self.scene().addItem(item)
        return item

    # ---- selection and handles
    def select(self, index: int) -> None:
        for h in self._handles:
            self.scene().removeItem(h)
        self._handles = []
        self.selected = index if 0 <= index < len(self.boxes) else -1
        for i, item in enumerate(self._items):
            pen = item.pen()
            pen.setWidthF(4.0 if i == self.selected else 2.5)
            item.setPen(pen)
        if self.selected >= 0:
            for point in self._handle_points(self._items[self.selected].rect()):
                h = QGraphicsRectItem(-HANDLE_PX / 2, -HANDLE_PX / 2, HANDLE_PX, HANDLE_PX)
                h.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
                h.setBrush(QColor("white"))
                h.setPen(QPen(QColor("black"), 1))
                h.setPos(point)
                h.setZValue(5)
                self.scene().addItem(h)
                self._handles.append(h)
        self.selection_changed.emit(self.selected)

    @staticmethod
    def _handle_points(r: QRectF) -> list[QPointF]:
        xs = {0: r.left(), 1: r.right(), None: r.center().x()}
        ys = {0: r.top(), 1: r.bottom(), None: r.center().y()}
        return [QPointF(xs[hx], ys[hy]) for hx, hy in HANDLES]

    def _handle_at(self, view_pos) -> int:
        if self.selected < 0:
            return -1
        for i, p in enumerate(self._handle_points(self._items[self.selected].rect())):
            v = self.mapFromScene(p)
            if abs(v.x() - view_pos.x()) <= HANDLE_PX and abs(v.y() - view_pos.y()) <= HANDLE_PX:
                return i
        return -1

    def _box_at(self, scene_pos: QPointF) -> int:
        """The smallest box under the point (nested boxes stay reachable)."""
        hits = [(b.bbox[2] * b.bbox[3], i) for i, b in enumerate(self.boxes)
                if self._items[i].rect().contains(scene_pos)]
        return min(hits)[1] if hits else -1

    def _suggestion_at(self, scene_pos: QPointF) -> int:
        hits = [(self.suggestions[k].bbox[2] * self.suggestions[k].bbox[3], k)
                for item, k in zip(self._suggestion_items, self._suggestion_index) if item.rect().contains(scene_pos)]
        return min(hits)[1] if hits else -1

    # ---- mouse
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (event.button() == Qt.MouseButton.LeftButton and self._space):
            self._pan = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() != Qt.MouseButton.LeftButton or self.image_size == (0, 0):
            return super().mousePressEvent(event)
        self.setFocus()
        pos = self._clamp(self.mapToScene(event.position().toPoint()))
        handle = self._handle_at(event.position())
        if handle >= 0:
            self._drag = {"kind": "resize", "index": self.selected, "handle": handle, "start": pos,
                          "rect": QRectF(self._items[self.selected].rect())}
            return
        hit = self._box_at(pos)
        if hit >= 0:
            self.select(hit)
            self._drag = {"kind": "move", "index": hit, "start": pos, "rect": QRectF(self._items[hit].rect())}
            return
        suggestion = self._suggestion_at(pos)
        if suggestion >= 0:
            self.suggestion_clicked.emit(suggestion)
            return
        self.select(-1)
        item = QGraphicsRectItem(QRectF(pos, pos))
        pen = QPen(self._colour(self.current_category), 2.5)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(3)
        self.scene().addItem(item)
        self._drag = {"kind": "draw", "start": pos, "item": item}

    def mouseMoveEvent(self, event) -> None:
        if self._pan is not None:
            delta = event.position() - self._pan
            self._pan = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            return
        if self._drag is None:
            handle = self._handle_at(event.position())
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor if handle >= 0 else Qt.CursorShape.CrossCursor)
            return super().mouseMoveEvent(event)
        pos = self._clamp(self.mapToScene(event.position().toPoint()))
        rect = self._dragged_rect(pos)
        if self._drag["kind"] == "draw":
            self._drag["item"].setRect(rect)
        else:
            self._items[self._drag["index"]].setRect(rect)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan is not None:
            self._pan = None
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        drag, self._drag = self._drag, None
        if drag is None:
            return super().mouseReleaseEvent(event)
        pos = self._clamp(self.mapToScene(event.position().toPoint()))
        self._drag = drag
        rect = self._dragged_rect(pos)
        self._drag = None
        if drag["kind"] == "draw":
            self.scene().removeItem(drag["item"])
            if rect.width() >= MIN_SIDE and rect.height() >= MIN_SIDE:
                box = Box(self.current_category, _bbox(rect))
                self.selected = len(self.boxes)
                self.edited.emit(self.boxes + [box], f"Draw {self.class_name(self.current_category)} box")
            return
        index = drag["index"]
        if rect == drag["rect"] or rect.width() < MIN_SIDE or rect.height() < MIN_SIDE:
            self._items[index].setRect(drag["rect"])
            self.select(index)
            return
        boxes = list(self.boxes)
        boxes[index] = boxes[index].moved(_bbox(rect))
        self.edited.emit(boxes, "Move box" if drag["kind"] == "move" else "Resize box")

    def _dragged_rect(self, pos: QPointF) -> QRectF:
        d = self._drag
        if d["kind"] == "draw":
            return QRectF(d["start"], pos).normalized()
        r = QRectF(d["rect"])
        if d["kind"] == "move":
            w, h = self.image_size
            dx = min(max(pos.x() - d["start"].x(), -r.left()), w - r.right())
            dy = min(max(pos.y() - d["start"].y(), -r.top()), h - r.bottom())
            return r.translated(dx, dy)
        hx, hy = HANDLES[d["handle"]]
        if hx == 0:
            r.setLeft(pos.x())
        elif hx == 1:
            r.setRight(pos.x())
        if hy == 0:
            r.setTop(pos.y())
        elif hy == 1:
            r.setBottom(pos.y())
        return r.normalized()

    def _clamp(self, p: QPointF) -> QPointF:
        w, h = self.image_size
        return QPointF(min(max(p.x(), 0.0), w), min(max(p.y(), 0.0), h))

    # ---- keys used while dragging, zoom and pan
    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if event.key() == Qt.Key.Key_Escape and self._drag is not None:
            drag, self._drag = self._drag, None
            if drag["kind"] == "draw":
                self.scene().removeItem(drag["item"])
            else:
                self._items[drag["index"]].setRect(drag["rect"])
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        super().keyReleaseEvent(event)

    def wheelEvent(self, event) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self._fitted = False
        self.scale(factor, factor)
        if not self._sharp and zoomed_past(self, self._picture):
            self._sharp = True
            self.loader.request(self.path, None, FULL)

    def fit(self) -> None:
        """The whole picture in the view; kept so through resizes until the user zooms."""
        self._fitted = True
        if self.image_size != (0, 0):
            self.resetTransform()
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self) -> float:
        return self.transform().m11()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:        # not after a zoom: its scroll bars appearing resize the view too
            self.fit()


def _bbox(r: QRectF) -> tuple[float, float, float, float]:
    return (round(r.left(), 2), round(r.top(), 2), round(r.width(), 2), round(r.height(), 2))


def _same(a: Box, b: Box, tolerance: float = 0.5) -> bool:
    """A suggestion already accepted: the same class on (nearly) the same box."""
    return a.category_id == b.category_id and all(abs(p - q) <= tolerance for p, q in zip(a.bbox, b.bbox))
