"""Run bar: Start / Stop / Resume, progress with epoch and ETA, and a one-line status.

A view only: it emits what the user asked for and shows what the run controller reports. Step
events only record the latest one; a 5 Hz timer shows it (QProgressBar.setValue repaints at once,
so per-event updates would stall the window when events flood in).
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStyle, QWidget

from frelon.gui import theme
from frelon.gui.widgets.labels import ElidedLabel


class RunPanel(QWidget):
    start_requested = Signal()
    stop_requested = Signal()
    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style = self.style()
        self.start = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start")
        self.start.setToolTip("Start training with these choices (Ctrl+R)")
        self.stop = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
        self.stop.setToolTip("Finish the current step, save a checkpoint and stop (Ctrl+.). "
                             "Press again to force it.")
        self.resume = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Resume")
        self.resume.setToolTip("Continue the last stopped or crashed run exactly where it was saved (Ctrl+Shift+R)")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setMinimumWidth(220)
        self.eta = QLabel("")
        self.eta.setMinimumWidth(150)
        self.status = ElidedLabel("Ready", mode=Qt.TextElideMode.ElideRight)    # whole in its tooltip when cut
        self.status.setTextFormat(Qt.TextFormat.RichText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        for w in (self.start, self.stop, self.resume, self.progress, self.eta):
            layout.addWidget(w)
        layout.addWidget(self.status, 1)
        self.start.clicked.connect(self.start_requested)
        self.stop.clicked.connect(self.stop_requested)
        self.resume.clicked.connect(self.resume_requested)
        self._epochs = 0
        self._last_step: dict | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._show_step)
        self._timer.start()
        self.set_state(running=False, can_resume=False)

    def set_state(self, running: bool, can_resume: bool) -> None:
        self.start.setEnabled(not running)
        self.stop.setEnabled(running)
        self.resume.setEnabled(not running and can_resume)

    def begin(self, text: str = "Starting the engine…") -> None:
        self.progress.setRange(0, 0)           # busy until the plan is known
        self.progress.setFormat("starting")
        self.eta.setText("")
        self.status.setText(text)

    def on_event(self, e: dict) -> None:
        kind = e.get("type")
        if kind == "run_started":
            total = int(e.get("total_steps") or 0)
            self._epochs = int((e.get("config") or {}).get("epochs") or 0)
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(0)                  # not the scan's count (the first step sets it)
            self.progress.setFormat("%v / %m steps")
            self.status.setText(f"Training <b>{e.get('backbone', '')}</b> on {e.get('device', '?')}"
                                f"{' × ' + str(e['world_size']) if e.get('world_size', 1) > 1 else ''}")
        elif kind == "scan_progress":           # the data checked before the first step
            self.progress.setRange(0, max(1, int(e.get("total") or 0)))
            self.progress.setValue(int(e.get("done") or 0))
            self.progress.setFormat("%v / %m pictures checked")
            eta = e.get("eta_s")
            self.eta.setText(f"checking · ETA {theme.human_duration(eta)}" if eta else "checking the data")
            self.status.setText("Checking the data: each picture once (unchanged ones are remembered)")
        elif kind == "step":
            self._last_step = e
        elif kind == "epoch_end":
            val = e.get("val") or {}
            metric = ("mAP", val.get("map")) if "map" in val else ("accuracy", val.get("accuracy"))
            if metric[1] is not None:
                balanced = val.get("balanced_accuracy")       # the mean per-class recall (classification)
                self.status.setText(f"Epoch {int(e.get('epoch', 0)) + 1} done · val {metric[0]} {metric[1]:.3f}"
                                    + (f" · balanced {balanced:.3f}" if balanced is not None else ""))
        elif kind == "checkpoint":
            self.status.setText(f"Checkpoint saved (epoch {int(e.get('epoch', 0)) + 1})"
                                + (" · best so far" if e.get("best") else ""))

    def _show_step(self) -> None:
        e, self._last_step = self._last_step, None
        if e is None:
            return
        self.progress.setValue(min(self.progress.maximum(), int(e.get("step", 0))))   # steps done
        epoch = int(e.get("epoch", 0)) + 1
        of = f"/{self._epochs}" if self._epochs else ""
        self.eta.setText(f"epoch {epoch}{of} · ETA {theme.human_duration(e.get('eta_s'))}")

    def on_finished(self, outcome) -> None:
        self._show_step()
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        colour = theme.OK if outcome.ok else theme.BAD
        self.progress.setFormat(outcome.finish_status or "ended")
        self.status.setText(f"<span style='color:{colour}'>{outcome.title()}</span>"
                            + (f" · {html.escape(outcome.finish_reason)}" if outcome.finish_reason else ""))
        self.eta.setText("")
