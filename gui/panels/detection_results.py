"""Detection results: browse images with their predicted boxes, filter by score, overlay heatmaps.

Fed plain data (image paths and detections, from `frelon predict` output or the run's validation
predictions); the threshold slider hides boxes below it at once, next / previous walk the images,
and the heatmap toggle overlays `<heatmaps>/<image stem>.png` when the engine wrote one.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle, QVBoxLayout,
                               QWidget)

from frelon.common.run_folder import SCORE_THRESHOLD
from frelon.gui.widgets.detection_view import Detection, DetectionView
from frelon.gui.widgets.labels import ElidedLabel


def group_detections(predictions: list[dict], classes: list[str], resolve) -> dict[str, list[Detection]]:
    """`frelon predict` output ({file_name, category, category_id, bbox, score}; the run's own
    validation predictions also carry `path`) grouped per image path."""
    out: dict[str, list[Detection]] = {}
    for p in predictions:
        path = str(p["path"]) if p.get("path") else resolve(str(p.get("file_name", "")))
        label = str(p.get("category", p.get("category_id", "?")))
        index = classes.index(label) if label in classes else int(p.get("category_id") or 0)
        box = tuple(float(v) for v in (p.get("bbox") or [0, 0, 0, 0])[:4])
        out.setdefault(path, []).append(Detection(label, index, box, float(p.get("score", 0.0))))
    return out


class DetectionResults(QWidget):
    open_image_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style = self.style()
        self.view = DetectionView()
        self.prev = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_ArrowLeft), "")
        self.prev.setToolTip("Previous image (Left / Page Up)")
        self.next = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_ArrowRight), "")
        self.next.setToolTip("Next image (Right / Page Down)")
        self.where = ElidedLabel("No predictions yet: open an image or a folder to run the detector on it.",
                                 mode=Qt.TextElideMode.ElideRight)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 99)
        self.slider.setValue(round(SCORE_THRESHOLD * 100))
        self.slider.setMaximumWidth(220)
        self.slider.setToolTip("Boxes scoring below this are hidden (instant: nothing is re-run)")
        self.threshold_label = QLabel()
        self.threshold_label.setMinimumWidth(150)
        self.heatmap = QCheckBox("Heatmap")
        self.heatmap.setToolTip("Overlay the detector's centre heatmap (where it thinks objects are)")
        self.heatmap.setEnabled(False)
        self.open_image = QPushButton("Open image…")
        self.open_folder = QPushButton("Open folder…")
        for b in (self.open_image, self.open_folder):
            b.setToolTip("Run this run's detector on your own pictures (frelon predict)")
        bar = QHBoxLayout()               # two rows: one would make a laptop's window too wide
        for w in (self.prev, self.next):
            bar.addWidget(w)
        bar.addWidget(self.where, 1)
        for w in (self.open_image, self.open_folder):
            bar.addWidget(w)
        filters = QHBoxLayout()
        for w in (QLabel("Score ≥"), self.slider, self.threshold_label, self.heatmap):
            filters.addWidget(w)
        filters.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)

        self.images: list[str] = []
        self.detections: dict[str, list[Detection]] = {}
        self.heatmap_dir = ""
        self.input_base = ""
        self.index = -1
        self.slider.valueChanged.connect(self._threshold_changed)
        self.prev.clicked.connect(lambda: self.go(self.index - 1))
        self.next.clicked.connect(lambda: self.go(self.index + 1))
        self.heatmap.toggled.connect(lambda _on: self.go(self.index))
        self.open_image.clicked.connect(self.open_image_requested)
        self.open_folder.clicked.connect(self.open_folder_requested)
        for keys, step in (("Left", -1), ("PgUp", -1), ("Right", 1), ("PgDown", 1)):
            QShortcut(QKeySequence(keys), self, lambda s=step: self.go(self.index + s),
                      context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._threshold_changed(self.slider.value())

    def set_results(self, images: list[str], detections: dict[str, list[Detection]], heatmap_dir: str = "",
                    input_base: str = "") -> None:
        self.images = list(images)
        self.detections = detections
        self.heatmap_dir = heatmap_dir
        self.input_base = input_base
        self.heatmap.setEnabled(bool(heatmap_dir) and Path(heatmap_dir).is_dir())
        self.go(0)

    def threshold(self) -> float:
        return self.slider.value() / 100.0

    def go(self, index: int) -> None:
        if not self.images:
            self.index = -1
            self.view.scene().clear()
            self.prev.setEnabled(False)
            self.next.setEnabled(False)
            return
        self.index = max(0, min(index, len(self.images) - 1))
        path = self.images[self.index]
        heat = ""
        if self.heatmap.isChecked() and self.heatmap_dir:
            heat = self._heatmap_for(path)
        self.view.threshold = self.threshold()
        self.view.show_image(path, self.detections.get(path, []), heat)
        self.prev.setEnabled(self.index > 0)
        self.next.setEnabled(self.index < len(self.images) - 1)
        self._update_label()

    def _heatmap_for(self, path: str) -> str:
        """The engine writes HEATMAPS/<file name relative to the input, as .png>."""
        candidates = [Path(self.heatmap_dir) / (Path(path).stem + ".png")]
        if self.input_base:
            try:
                rel = Path(path).relative_to(self.input_base)
                candidates.insert(0, (Path(self.heatmap_dir) / rel).with_suffix(".png"))
            except ValueError:
                pass
        return next((str(c) for c in candidates if c.is_file()), "")

    def _threshold_changed(self, value: int) -> None:
        self.view.apply_threshold(value / 100.0)
        self._update_label()

    def _update_label(self) -> None:
        self.threshold_label.setText(f"{self.threshold():.2f} · {self.view.visible_count()} of "
                                     f"{self.view.total_count()} boxes")
        if self.index >= 0:
            self.where.setText(f"{self.index + 1} / {len(self.images)} · {Path(self.images[self.index]).name}")
