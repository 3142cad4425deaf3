"""Robustness in Results: accuracy (classifier) or mAP@0.5 (detector) against ε, and for a
classifier the picture of one flipped image.

Reads RUN_DIR/robustness/<attack>.json (written by `frelon robustness`, engine/commands/robustness.py): one
curve per attack found, on the same axes (the file's `metric` names the curve); the flipped images
of the chosen attack in a list, and for the selected one its triptych (original + amplified
perturbation = adversarial, drawn by the engine). Another run's curves can be laid over them, dashed (`set_compare`: Runs → Compare).
"Run check" runs `frelon robustness --json` in the background (JsonCommand, like the
other short commands) and reloads when it is done.
"""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from frelon.common.choices import ATTACKS
from frelon.common.run_folder import RunFolder
from frelon.gui import theme
from frelon.gui.engine_command import JsonCommand
from frelon.gui.run_folders import read_json
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.picture import Picture
from frelon.gui.widgets.plot_legend import legend_below

SYMBOLS = {"fgsm": "o", "pgd": "s"}
METRICS = {"accuracy": "accuracy", "map_50": "mAP@0.5"}


def curve(result: dict) -> list:
    """The figures against ε of one result file (older files have only `accuracy`)."""
    return result.get(result.get("metric", "accuracy")) or []


def read_results(run_dir: str) -> dict[str, dict]:
    """{attack: its robustness JSON} for the attacks the run folder has results of."""
    out = {}
    for attack in ATTACKS:
        result = read_json(RunFolder(run_dir).robustness_result(attack))
        if result is not None:
            out[attack] = result
    return out


class RobustnessView(QWidget):
    check_finished = Signal()          # results reloaded after a check (or its failure shown)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.run_dir = ""
        self.results: dict[str, dict] = {}
        self.compare_dir = ""
        self.compare_results: dict[str, dict] = {}
        bar = self._make_bar()
        split = self._make_results_view()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.command = JsonCommand(self)
        self.command.done.connect(self._done)
        self.command.failed.connect(self._failed)
        self.run_button.clicked.connect(self.run_check)
        self.attack.currentTextChanged.connect(lambda _a: self._fill_flips())
        self.flips.currentItemChanged.connect(lambda item, _old: self._show(item))

    def _make_bar(self) -> QHBoxLayout:
        """Which attack, which ε, Run check, and what the check is doing."""
        self.attack = QComboBox()
        self.attack.addItems(list(ATTACKS))
        self.attack.setToolTip("FGSM: one step along the gradient's sign (Goodfellow et al. 2015) · "
                               "PGD: 10 projected steps (Madry et al. 2018), the stronger attack")
        self.eps = QLineEdit()
        self.eps.setPlaceholderText("0,0.5,1,2,4,8")
        self.eps.setToolTip("ε in 8-bit pixel levels, applied to the pixels before normalisation "
                            "(empty: the engine's default sweep)")
        self.eps.setMaximumWidth(160)
        self.run_button = QPushButton("Run check")
        self.run_button.setToolTip("frelon robustness on this run's validation images, in the background")
        self.status = WrapLabel("How far does a small, invisible change of the pixels move this model? "
                                "Run a check to see its accuracy (or mAP) against ε.")
        bar = QHBoxLayout()
        for w in (QLabel("Attack"), self.attack, QLabel("ε"), self.eps, self.run_button):
            bar.addWidget(w)
        bar.addWidget(self.status, 1)
        return bar

    def _make_results_view(self) -> QSplitter:
        """The accuracy (or mAP) against ε and the flipped images on the left, a flip's triptych on the right."""
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "ε (8-bit pixel levels)")
        self.plot.setLabel("left", "accuracy")
        self.plot.setYRange(0, 1.02, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.legend = legend_below(self.plot.getPlotItem())      # off the curves
        self.flips = QListWidget()
        self.flips.setToolTip("Images whose right prediction the attack turned wrong, at the smallest ε "
                              "that did it; the most confident first")
        self.picture = Picture()          # the triptych fitted to its room: it sets no minimum width
        self.picture.setWordWrap(True)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.plot)
        left.addWidget(self.flips)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.picture)
        split.setSizes([420, 760])
        return split

    def load_run(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.results = read_results(run_dir) if run_dir else {}
        self.compare_dir, self.compare_results = "", {}
        if self.results and self.attack.currentText() not in self.results:
            self.attack.setCurrentText(next(iter(self.results)))
        self._draw()
        self._fill_flips()

    def set_compare(self, run_dir: str) -> None:
        """Lay `run_dir`'s robustness curves (dashed) over this run's; "" removes them."""
        self.compare_dir = run_dir
        self.compare_results = read_results(run_dir) if run_dir else {}
        self._draw()

    def run_check(self) -> list[str] | None:
        if not self.run_dir:
            self.status.setText("Train or pick a run first.")
            return None
        args = ["robustness", "--run", self.run_dir, "--attack", self.attack.currentText(), "--json"]
        if self.eps.text().strip():
            args += ["--eps", self.eps.text().strip().replace(" ", "")]
        self.run_button.setEnabled(False)
        self.status.setText(f"Attacking the validation images with {self.attack.currentText().upper()} …")
        self.command.start(args)
        return args

    def _done(self, result) -> None:
        self.run_button.setEnabled(True)
        self.load_run(self.run_dir)
        if isinstance(result, dict) and curve(result):
            values, name = curve(result), METRICS.get(result.get("metric"), "accuracy")
            self.attack.setCurrentText(result["attack"])
            self.status.setText(f"{result['attack'].upper()} on {result['images']} image(s): {name} "
                                f"{values[0]:.0%} → {values[-1]:.0%} at ε = {result['eps'][-1]:g}"
                                + (f"; {len(result['flipped'])} flipped" if result.get("metric", "accuracy")
                                   == "accuracy" else ""))
        self.check_finished.emit()

    def _failed(self, message: str, details: str) -> None:
        self.run_button.setEnabled(True)
        self.status.setText(f"<span style='color:{theme.BAD}'>Robustness check failed: {message}</span>")
        self.status.setToolTip(details)
        self.check_finished.emit()

    def _draw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        metrics = {r.get("metric", "accuracy") for r in (*self.results.values(), *self.compare_results.values())}
        self.plot.setLabel("left", " / ".join(METRICS.get(m, m) for m in sorted(metrics)) or "accuracy")
        for i, (attack, r) in enumerate(self.results.items()):
            colour = theme.color(i)
            steps = f", {r.get('steps')} steps" if attack == "pgd" else ""
            self.plot.plot(r.get("eps") or [], curve(r), pen=pg.mkPen(colour, width=2),
                           symbol=SYMBOLS.get(attack, "t"), symbolBrush=colour, symbolPen=None, symbolSize=8,
                           name=f"{attack.upper()}{steps} · {r.get('images')} images")
        other = Path(self.compare_dir).name
        for i, (attack, r) in enumerate(self.compare_results.items()):
            colour = theme.color(i)
            self.plot.plot(r.get("eps") or [], curve(r), pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                           symbol=SYMBOLS.get(attack, "t"), symbolBrush=None, symbolPen=colour, symbolSize=8,
                           name=f"{attack.upper()} · {other}")

    def _fill_flips(self) -> None:
        self.flips.clear()
        self.picture.clear()
        result = self.results.get(self.attack.currentText()) or {}
        self.flips.setVisible(result.get("metric", "accuracy") == "accuracy")
        drawn = [f for f in result.get("flipped") or [] if f.get("triptych")]
        for f in drawn:
            text = (f"ε {f['eps']:g}: {f['clean']['class']} {f['clean']['confidence']:.1%} → "
                    f"{f['adversarial']['class']} {f['adversarial']['confidence']:.1%} · {Path(f['path']).name}")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, str(RunFolder(self.run_dir).robustness / f["triptych"]))
            item.setToolTip(f["path"])
            self.flips.addItem(item)
        if drawn:
            self.flips.setCurrentRow(0)
        elif result.get("metric") == "map_50":
            self.picture.setText("Detection: the detector's mAP@0.5 on the attacked images, per ε\n"
                                 "(the attack raises the heatmap loss of the annotated objects).")
        elif result:
            self.picture.setText("No image flipped: the attack changed no right prediction at these ε."
                                 if not result.get("flipped") else "No picture was drawn (--examples 0).")

    def _show(self, item: QListWidgetItem | None) -> None:
        if item is None:
            self.picture.clear()
            return
        pixmap = QPixmap(item.data(Qt.ItemDataRole.UserRole))
        if pixmap.isNull():
            self.picture.setText("The picture is missing from the run folder.")
            return
        self.picture.set_picture(pixmap)
