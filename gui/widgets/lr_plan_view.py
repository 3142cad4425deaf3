"""The LR plan before Start: the effective LR and its computation, the schedule's curve (two curves
where a classifier's base LR is chosen at Start: its highest and lowest), and the steps under it.
Shows a gui/options.LrPreview — the engine's own plan (common/schedule.py) — and computes nothing.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from frelon.common import lr_policy
from frelon.gui import theme
from frelon.gui.options import LrPreview
from frelon.gui.panels.training_tips import TIPS
from frelon.gui.widgets.labels import WrapLabel


class LrPlanView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.effective = WrapLabel()
        self.effective.setTextFormat(Qt.TextFormat.RichText)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(130)
        self.plot.setMaximumHeight(170)
        self.plot.setLabel("left", "LR")
        self.plot.setLabel("bottom", "step")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(theme.LOSS_SMOOTH, width=2))
        # an automatic classification LR is chosen at Start (lr_policy.fits_features): its lowest curve
        self.curve_low = self.plot.plot([], [], pen=pg.mkPen(theme.LOSS_SMOOTH, width=1, style=Qt.DashLine))
        self.steps = QLabel()
        self.steps.setWordWrap(True)
        self.preview: LrPreview | None = None

    def curve_widgets(self) -> tuple[QWidget, QWidget]:
        """The plot and the steps line, laid out by the panel under its schedule rows."""
        return self.plot, self.steps

    def show_preview(self, preview: LrPreview, train_images: int) -> None:
        self.preview = p = preview
        cfg = p.cfg
        rule = lr_policy.RULES[cfg.optimizer]
        value, formula = cfg.lr_formula().split(" = ", 1)
        self.effective.setText(
            f"<b>{value}</b> = {formula} <small>({rule.name})</small><br>"
            + ("<small>chosen at Start from your data</small><br>" if p.chosen_at_start else "")
            + f"<small>global batch {cfg.global_batch()} = {cfg.batch_size} per device × {cfg.world_size} "
            f"device{'s' if cfg.world_size > 1 else ''} × {cfg.accumulate} accumulation; new parts "
            f"at {cfg.effective_lr() * cfg.head_lr_mult:.3g}{' at most' if p.chosen_at_start else ''}</small>")
        self.effective.setToolTip(TIPS["effective_auto"] if p.chosen_at_start else "")
        self.curve.setData(*p.xy())
        self.curve_low.setData(*(p.xy(p.lowest) if p.lowest else ([], [])))
        images = f"{train_images} training images" if train_images else "training images unknown yet"
        size = f"{cfg.image_size}×{cfg.image_size}" if cfg.image_size else "sized from the data"
        self.steps.setText(f"<small>{images} → {_n(p.steps_per_epoch, 'step')} per epoch, "
                           f"{_n(p.plan.total_steps, 'step')}, warmup {_n(p.plan.warmup_steps, 'step')}; "
                           f"images {size}</small>")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
