"""Horizontal bar chart of images (or boxes) per class, train and validation stacked.

Horizontal so that class names stay readable however many classes there are.
"""
from __future__ import annotations

import pyqtgraph as pg

from frelon.gui import theme


class ClassBars(pg.PlotWidget):
    def __init__(self, parent=None):
        theme.configure_pyqtgraph()
        super().__init__(parent, background="w")
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("bottom", "images")
        self.getPlotItem().invertY(True)
        self.counts: dict[str, dict[str, int]] = {}

    def set_counts(self, splits: dict[str, dict[str, int]], unit: str = "images") -> None:
        """`splits`: {"train": {class: n}, "val": {class: n}}."""
        self.clear()
        self.counts = splits
        classes: list[str] = []
        for counts in splits.values():
            classes += [c for c in counts if c not in classes]
        left = [0.0] * len(classes)
        colours = {"train": theme.LOSS_SMOOTH, "val": theme.VALIDATION}
        for i, (split, counts) in enumerate(splits.items()):
            widths = [float(counts.get(c, 0)) for c in classes]
            if not classes:
                break
            bars = pg.BarGraphItem(x0=left, y=list(range(len(classes))), height=0.7, width=widths,
                                   brush=colours.get(split, theme.PALETTE[i]), pen=None)
            self.addItem(bars)
            left = [a + b for a, b in zip(left, widths)]
        self.getAxis("left").setTicks([[(i, c) for i, c in enumerate(classes)]])
        key = "  ".join(f"<span style='color:{colours.get(split, theme.PALETTE[i])}'>■</span> {split}"
                        for i, split in enumerate(splits))
        self.setLabel("bottom", f"{unit} per class   {key}")
        self.setYRange(-0.6, max(0, len(classes) - 1) + 0.6, padding=0)
        self.setXRange(0, max(left or [1]) * 1.08, padding=0)
        self.setMinimumHeight(min(400, 60 + 22 * len(classes)))
