"""A plot's legend under its x axis, off the data (issue 32).

pyqtgraph draws a legend inside the view box, over the curves: on a laptop's screen, where each of
the live plots is a few hundred pixels wide, the loss plot's legend covered the first steps. Here
the legend is one more row of the plot's own layout, below the axis; its entries stand side by side
in as many columns as the plot's width holds (one when narrow), so it never makes the plot wider
than its place, and the view box gives up only the height the legend's rows need.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QSizeF, Qt

SPACING = 12           # px between two entries side by side


class LegendBelow(pg.LegendItem):
    """A LegendItem laid out by its plot (pyqtgraph's own places itself, anchored in the view box)."""

    def entry_width(self) -> float:
        """The widest entry: its line sample and its name."""
        preferred = Qt.SizeHint.PreferredSize
        return max((sample.effectiveSizeHint(preferred).width() + label.effectiveSizeHint(preferred).width() + SPACING
                    for sample, label in self.items), default=0.0)

    def updateSize(self) -> None:                 # noqa: N802 (pyqtgraph's name): the plot's layout sizes it
        self.updateGeometry()

    def sizeHint(self, which, constraint=QSizeF()) -> QSizeF:      # noqa: N802
        hint = super().sizeHint(which, constraint)
        if which == Qt.SizeHint.MinimumSize:        # one column is enough: it never widens the plot
            return QSizeF(min(hint.width(), self.entry_width()), hint.height())
        return hint

    def setGeometry(self, *rect) -> None:          # noqa: N802: as many columns as the width holds
        super().setGeometry(*rect)
        width = self.entry_width()
        if width > 0:
            columns = max(1, min(len(self.items), int(self.geometry().width() // width)))
            if columns != self.columnCount:
                self.setColumnCount(columns)

    def mouseDragEvent(self, ev) -> None:          # noqa: N802: not dragged back over the data
        ev.ignore()


def legend_below(plot: pg.PlotItem, **style) -> LegendBelow:
    """Put a legend under `plot`'s bottom axis (row 4 of pyqtgraph's PlotItem layout: title, top
    axis, view, bottom axis come first) and make it the plot's legend (`plot(name=…)` joins it)."""
    legend = LegendBelow(offset=None, **style)
    plot.layout.addItem(legend, 4, 0, 1, 3)
    plot.layout.setRowStretchFactor(4, 0)
    plot.legend = legend
    return legend
