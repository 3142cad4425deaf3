""""Find LR" beside the base LR: `frelon lr-find --json` for the current choices, in the background.

The engine sweeps the LR exponentially over about a hundred training steps from the start weights
(nothing is saved) and suggests one (fastai's "valley" rule). The curve is drawn — smoothed loss
against the effective LR, on a log axis — with the suggestion marked; "Use" (or a click on the
curve) puts the matching base LR into the Base LR field through `lr_chosen`.
"""
from __future__ import annotations

import math
from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from frelon.gui import theme
from frelon.gui.engine_command import JsonCommand
from frelon.gui.widgets.labels import WrapLabel


class LrFinder(QWidget):
    lr_chosen = Signal(float)          # a base LR (the value of --lr)
    result_ready = Signal(object)      # the lr-find JSON
    failed = Signal(str)

    def __init__(self, flags: Callable[[], list[str]], parent: QWidget | None = None):
        super().__init__(parent)
        self._flags = flags
        self._result: dict | None = None
        self.button = QPushButton("Find LR")
        self.button.setToolTip("LR range test: trains about 100 steps from the start weights while the LR grows "
                               "from 1e-7 to 10, and suggests the LR where the loss falls fastest for longest "
                               "(fastai's 'valley'). Nothing is saved; takes a minute or so on a CPU.")
        self.use = QPushButton("Use")
        self.use.setEnabled(False)
        self.label = WrapLabel("")            # an engine message may name a long path
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(120)
        self.plot.setMaximumHeight(160)
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "effective LR")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)    # a click picks an LR; the wheel scrolls the panel
        self.plot.setVisible(False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(theme.LOSS_SMOOTH, width=2))
        self.marker = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(theme.WARN), pen=pg.mkPen("k"))
        self.plot.addItem(self.marker)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.use)
        row.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.label)
        col.addWidget(self.plot)
        self._command = JsonCommand(self)
        self._command.done.connect(self._done)
        self._command.failed.connect(self._failed)
        self.button.clicked.connect(self.run)
        self.use.clicked.connect(self._use_suggestion)

    def set_flags(self, flags: Callable[[], list[str]]) -> None:
        self._flags = flags

    def is_running(self) -> bool:
        return self._command.is_running()

    def run(self) -> None:
        self.button.setEnabled(False)
        self.use.setEnabled(False)
        self.label.setText("Sweeping the LR… (about 100 training steps, nothing is saved)")
        self._command.start(["lr-find", *self._flags(), "--json"])

    def cancel(self) -> None:
        self._command.cancel()
        self.button.setEnabled(True)

    def _done(self, result) -> None:
        self.button.setEnabled(True)
        self._result = result
        lrs, losses = result["lrs"], result["losses"]
        s = result["suggestion"]
        self.curve.setData(lrs, losses)
        self.marker.setData([math.log10(s["effective_lr"])], [losses[s["index"]]])
        self.plot.setVisible(True)
        self.use.setText(f"Use {s['lr']:.2g}")
        self.use.setEnabled(True)
        self.label.setText(
            f"Suggested effective LR <b>{s['effective_lr']:.2g}</b> at global batch {result['global_batch']} "
            f"(base LR {s['lr']:.2g}, {result['rule']}); {result['steps']} steps swept. "
            "Click the curve to pick another.")
        self.result_ready.emit(result)

    def _failed(self, message: str, details: str) -> None:
        self.button.setEnabled(True)
        self.label.setText(f"LR sweep failed: {message}")
        self.failed.emit(message)

    def _use_suggestion(self) -> None:
        if self._result:
            self.lr_chosen.emit(float(self._result["suggestion"]["lr"]))

    def choose_effective(self, effective_lr: float) -> None:
        """Pick a point of the curve: the base LR that gives `effective_lr` at this sweep's batch."""
        if not self._result:
            return
        s = self._result["suggestion"]
        scale = s["effective_lr"] / s["lr"]            # the batch rule's factor for this sweep
        self.lr_chosen.emit(float(f"{effective_lr / scale:.3g}"))

    def _clicked(self, event) -> None:
        if not self._result or not self.plot.sceneBoundingRect().contains(event.scenePos()):
            return
        x = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos()).x()
        lrs = self._result["lrs"]
        effective = min(max(10 ** x, lrs[0]), lrs[-1])
        self.choose_effective(effective)
