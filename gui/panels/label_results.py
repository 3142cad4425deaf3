"""Multi-label results: per label its AP, F1 and threshold, and the pictures with their label sets.

Fed plain data: the best epoch's `val` (its `per_label`: {label: {ap, f1, threshold, support}}) and
predictions/val.json ([{path, true: [labels], predicted: [labels], scores: {label: p}, wrong}]), or
`frelon predict` on the user's pictures ([{file_name, predicted, scores}]). Pictures whose predicted
set is not their true set come first; clicking a label shows only the pictures that carry it or
were given it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.thumbnail_grid import Thumb, ThumbnailGrid, class_colour


def holds_label_sets(rows) -> bool:
    """Whether predictions are label sets (a multi-label run's) rather than one class each."""
    return isinstance(rows, list) and bool(rows) and isinstance(rows[0], dict) and isinstance(rows[0].get("predicted"), list)


def label_caption(labels, scores: dict) -> str:
    return ", ".join(f"{c} {float(scores.get(c, 0)):.2f}" for c in labels) or "(no label)"


class LabelResults(QWidget):
    open_image_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Label", "AP", "F1", "Threshold", "Pictures"])
        self.table.setToolTip("AP: how well the scores rank the pictures with this label first · F1 at the "
                              "threshold tuned on validation (the best F1 there) · click a label to see only its pictures")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setMinimumWidth(460)
        self.table.cellClicked.connect(lambda row, _c: self.filter_label(self.table.item(row, 0).text()))
        self.title = WrapLabel("")
        self.thumbs = ThumbnailGrid(side=112)
        self.open_image = QPushButton("Predict on an image…")
        self.open_folder = QPushButton("Predict on a folder…")
        self.open_image.clicked.connect(self.open_image_requested)
        self.open_folder.clicked.connect(self.open_folder_requested)
        self.label_filter = ""
        self._predictions: list[dict] = []
        self._classes: list[str] = []
        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.open_image)
        bar.addWidget(self.open_folder)
        bottom = QWidget()
        col = QVBoxLayout(bottom)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(bar)
        col.addWidget(self.thumbs)
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.table)
        row.addStretch(1)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([160, 460])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def set_metrics(self, per_label: dict) -> None:
        self.table.setRowCount(len(per_label))
        for r, (name, m) in enumerate(sorted(per_label.items())):
            self.table.setItem(r, 0, QTableWidgetItem(str(name)))
            cells = [m.get("ap"), m.get("f1"), m.get("threshold"), m.get("support")]
            for c, v in enumerate(cells, 1):
                text = "–" if v is None else str(v) if c == 4 else f"{float(v):.3f}"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)

    def set_validation_predictions(self, predictions: list[dict], classes: list[str]) -> None:
        self._predictions, self._classes, self.label_filter = list(predictions), list(classes), ""
        self._show()

    def filter_label(self, name: str) -> None:
        """Only the pictures that carry `name` or were given it; the same name again shows all."""
        self.label_filter = "" if name == self.label_filter else name
        if not self.label_filter:
            self.table.clearSelection()
        self._show()

    def _show(self) -> None:
        name = self.label_filter
        shown = [p for p in self._predictions if not name or name in (p.get("true") or []) + (p.get("predicted") or [])]
        wrong = [p for p in shown if p.get("wrong")]
        ordered = wrong + [p for p in shown if not p.get("wrong")]
        thumbs = []
        for p in ordered[:300]:
            true, pred, scores = p.get("true") or [], p.get("predicted") or [], p.get("scores") or {}
            caption = f"{', '.join(true) or 'none'} → " if p.get("wrong") else "✓ "
            caption += label_caption(pred, scores)
            tip = f"{p.get('path')}\ntrue: {', '.join(true) or '(none)'}\npredicted: {label_caption(pred, scores)}"
            colour = class_colour(self._classes, (sorted(set(true) ^ set(pred)) or [""])[0]) if p.get("wrong") else ""
            thumbs.append(Thumb(str(p.get("path", "")), caption, tip, color=colour))
        self.title.setText(f"Validation pictures whose label set is wrong: {len(wrong)} of {len(shown)}, first"
                           + (f" · carrying or given <b>{name}</b> (click it again for all)" if name else "")
                           if shown else "No validation predictions in this run folder yet.")
        self.thumbs.set_thumbs(thumbs)

    def set_user_predictions(self, predictions: list[dict], classes: list[str], resolve) -> None:
        """`frelon predict` output on the user's pictures: [{file_name, predicted: [labels], scores}]."""
        thumbs = [Thumb(resolve(str(p.get("file_name", ""))), label_caption(p.get("predicted") or [], p.get("scores") or {}),
                        color=class_colour(classes, (p.get("predicted") or [""])[0])) for p in predictions]
        self.title.setText(f"Predictions on your pictures: {len(thumbs)}")
        self.thumbs.set_thumbs(thumbs)
