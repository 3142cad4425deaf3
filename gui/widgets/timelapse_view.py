"""Time-lapse in Results: the same validation images, epoch by epoch, as the model learned them.

Reads RUN_DIR/timelapse.json (engine/timelapse.py: a fixed handful of validation images and, for
each epoch, their predictions). A slider picks the epoch; each image shows its top-3 classes with
confidences (classification; the true class marked) or its boxes scoring at least SCORE_THRESHOLD in
class colours (detection). Runs trained before the engine kept a time-lapse have no file: the view
says so.
"""
from __future__ import annotations


from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QSlider, QVBoxLayout, QWidget

from frelon.common.run_folder import SCORE_THRESHOLD, RunFolder
from frelon.gui import theme
from frelon.gui.run_folders import read_json

SIDE = 180
COLUMNS = 4


def read_timelapse(run_dir: str) -> dict | None:
    doc = read_json(RunFolder(run_dir).timelapse)
    return doc if isinstance(doc, dict) and doc.get("epochs") else None


class TimelapseView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: dict | None = None
        self._pixmaps: list[QPixmap] = []
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Drag through the epochs: the same pictures as the model saw them at each epoch end")
        self.epoch_label = QLabel()
        self.epoch_label.setMinimumWidth(110)
        self.note = QLabel("No time-lapse in this run folder (runs trained before it existed have none).")
        self.note.setWordWrap(True)
        self.images: list[QLabel] = []
        self.captions: list[QLabel] = []
        grid = QGridLayout()
        grid.setSpacing(8)
        for i in range(8):
            image, caption = QLabel(), QLabel()
            image.setFixedSize(SIDE, SIDE)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setTextFormat(Qt.TextFormat.RichText)
            caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            caption.setFixedWidth(SIDE)
            caption.setWordWrap(True)     # a long class name wraps under its picture
            cell = QVBoxLayout()
            cell.addWidget(image)
            cell.addWidget(caption)
            grid.addLayout(cell, i // COLUMNS, i % COLUMNS)
            self.images.append(image)
            self.captions.append(caption)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Epoch"))
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.epoch_label)
        self.pictures = QWidget()
        self.pictures.setLayout(grid)
        scroll = QScrollArea()            # two rows of pictures are taller than a laptop's Results tab
        scroll.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.pictures)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.note)
        layout.addWidget(scroll, 1)
        self.slider.valueChanged.connect(self.show_epoch)

    def load_run(self, run_dir: str) -> None:
        self.doc = read_timelapse(run_dir) if run_dir else None
        images = (self.doc or {}).get("images") or []
        self._pixmaps = [QPixmap(im.get("path", "")) for im in images]
        self.note.setVisible(self.doc is None)
        self.slider.setEnabled(self.doc is not None)
        n = len((self.doc or {}).get("epochs") or [])
        self.slider.setRange(0, max(0, n - 1))
        self.slider.setValue(max(0, n - 1))
        self.show_epoch(self.slider.value())

    def show_epoch(self, position: int) -> None:
        epochs = (self.doc or {}).get("epochs") or []
        for image, caption in zip(self.images, self.captions):
            image.clear()
            caption.clear()
        if not epochs:
            self.epoch_label.setText("")
            return
        entry = epochs[min(position, len(epochs) - 1)]
        self.epoch_label.setText(f"{entry['epoch'] + 1} of {epochs[-1]['epoch'] + 1}")
        classes = self.doc.get("classes") or []
        for k, (meta, pred) in enumerate(zip(self.doc["images"], entry["predictions"])):
            if k >= len(self.images):
                break
            pixmap = self._pixmaps[k]
            self.images[k].setToolTip(meta.get("path", ""))
            if self.doc.get("task") == "detect":
                self.images[k].setPixmap(_with_boxes(pixmap, pred, classes))
                shown = sum(1 for b in pred if b[5] >= SCORE_THRESHOLD)
                self.captions[k].setText(f"{shown} box(es) ≥ {SCORE_THRESHOLD:.2f}")
            else:
                self.images[k].setPixmap(_scaled(pixmap))
                self.captions[k].setText("<br>".join(_line(name, p, name in meta.get("labels", [meta.get("label")]), i == 0)
                                                     for i, (name, p) in enumerate(pred)))
        self.pictures.adjustSize()        # the captions' lines decide the pictures' height


def _scaled(pixmap: QPixmap) -> QPixmap:
    if pixmap.isNull():
        return pixmap
    return pixmap.scaled(SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _line(name: str, p: float, true: bool, first: bool) -> str:
    colour = theme.OK if true else (theme.BAD if first else "#555555")
    text = f"{name} {p:.0%}" + (" ✓" if true else "")
    return f"<span style='color:{colour}'>{'<b>' + text + '</b>' if first else text}</span>"


def _with_boxes(pixmap: QPixmap, boxes: list, classes: list[str]) -> QPixmap:
    scaled = _scaled(pixmap)
    if scaled.isNull():
        return scaled
    k = scaled.width() / pixmap.width()
    p = QPainter(scaled)
    for x1, y1, x2, y2, name, score in boxes:
        if score < SCORE_THRESHOLD:
            continue
        i = classes.index(name) if name in classes else 0
        p.setPen(QPen(QColor(theme.PALETTE[i % len(theme.PALETTE)]), 2))
        p.drawRect(QRectF(x1 * k, y1 * k, (x2 - x1) * k, (y2 - y1) * k))
    p.end()
    return scaled
