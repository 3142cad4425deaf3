"""Detection precision–recall: per-class AP (IoU 0.5:0.95 and 0.5) and the curves, from pr_curves.json.

Plain data in (the engine's `pr_curves` — pycocotools' accumulated precision, see
engine/cocoeval.py — and the per-class APs of the last epoch); clicking a class draws its curve
bold over the others and emits `class_selected(name)` so the viewer can show only that class; the
"all classes" row (or a second click) clears the filter (`class_selected("")`).
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from frelon.gui import theme
from frelon.gui.widgets.plot_legend import legend_below

ALL = "all classes"
IOU_KEYS = {"IoU 0.5:0.95": "iou_50_95", "IoU 0.5": "iou_50"}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


class PrCurvesView(QWidget):
    class_selected = Signal(str)          # a class name, or "" for all classes

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.curves: dict | None = None
        self.classes: list[str] = []
        self.selected = ""
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "AP", "AP@50"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setToolTip("AP: COCO's mean over IoU 0.5:0.95 · AP@50: at IoU 0.5 · click a class to see "
                              "only its boxes in the viewer")
        self.iou = QComboBox()
        self.iou.addItems(list(IOU_KEYS))
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "recall")
        self.plot.setLabel("left", "precision")
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1.02, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.legend = legend_below(self.plot.getPlotItem())          # under the axis, off the curves
        self.note = QLabel("Precision–recall curves appear when a detection run has evaluated an epoch.")
        self.note.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Precision–recall"), 1)
        bar.addWidget(self.iou)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.note)
        self.iou.currentTextChanged.connect(lambda _t: self._draw())
        self.table.cellClicked.connect(self._clicked)

    def set_results(self, classes: list[str], curves: dict | None, val: dict) -> None:
        """curves: pr_curves.json; val: the epoch's `val` (map, map_50, per_class, per_class_50)."""
        self.classes = [str(c) for c in classes]
        self.curves = curves if isinstance(curves, dict) else None
        self.selected = ""
        per_class, per_class_50 = val.get("per_class") or {}, val.get("per_class_50") or {}
        rows = [(ALL, val.get("map"), val.get("map_50"))]
        rows += [(c, per_class.get(c), per_class_50.get(c)) for c in self.classes]
        self.table.setRowCount(len(rows))
        for r, (name, ap, ap50) in enumerate(rows):
            first = QTableWidgetItem(name)
            if r:
                first.setForeground(theme.color(r - 1))
            self.table.setItem(r, 0, first)
            for col, v in ((1, ap), (2, ap50)):
                item = QTableWidgetItem(_fmt(v))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, col, item)
        self.note.setVisible(self.curves is None)
        self._draw()

    def select(self, name: str) -> None:
        self.selected = "" if name in ("", ALL) or name == self.selected else name
        row = 0 if not self.selected else 1 + self.classes.index(self.selected)
        self.table.selectRow(row)
        self._draw()
        self.class_selected.emit(self.selected)

    def _clicked(self, row: int, _col: int) -> None:
        self.select(self.table.item(row, 0).text())

    def _draw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        if not self.curves:
            return
        curves = self.curves.get(IOU_KEYS[self.iou.currentText()]) or {}
        recall = self.curves.get("recall") or []
        for i, name in enumerate(self.classes):
            ys = curves.get(name)
            if ys is None:
                continue
            bold = name == self.selected
            faded = bool(self.selected) and not bold
            colour = theme.color(i)
            if faded:
                colour.setAlpha(70)
            self.plot.plot(recall, ys, pen=pg.mkPen(colour, width=3 if bold else 1.5), name=name)
        if curves.get("all") is not None:
            self.plot.plot(recall, curves["all"], pen=pg.mkPen("#333333", width=2.5, style=Qt.PenStyle.DashLine),
                           name=ALL)
