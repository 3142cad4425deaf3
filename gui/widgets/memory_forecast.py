"""The memory forecast in the model panel: `frelon plan --json` for the current choices.

A button runs the engine's forecast in the background (it trains two tiny steps to measure, so it
takes a few seconds) and shows the predicted peak per device and the largest batch that fits.
Any change of the options marks the shown forecast as out of date.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from frelon.gui.engine_command import JsonCommand
from frelon.gui.widgets.labels import WrapLabel


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def describe(plan: dict) -> str:
    """One readable paragraph from `frelon plan --json`."""
    text = (f"≈ <b>{_gib(plan['predicted_peak_bytes'])}</b> per device at batch {plan['batch_size']} "
            f"({plan.get('device', '')})")
    if plan.get("max_batch_size"):
        text += (f"<br>largest batch that fits {_gib(plan['budget_bytes'])} "
                 f"({plan.get('budget_source', 'budget')}): <b>{plan['max_batch_size']}</b>")
    return text


class MemoryForecast(QWidget):
    forecast_ready = Signal(object)       # the plan JSON
    forecast_failed = Signal(str)

    def __init__(self, flags: Callable[[], list[str]], parent: QWidget | None = None):
        super().__init__(parent)
        self._flags = flags
        self.button = QPushButton("Forecast memory")
        self.button.setToolTip("Measures two tiny training steps of this configuration (random weights) and "
                               "extrapolates the peak memory per device, and the largest batch that fits "
                               "(free GPU memory, or the available RAM on the CPU).")
        self.label = WrapLabel("Peak memory not forecast yet.")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.label)
        self._command = JsonCommand(self)
        self._command.done.connect(self._done)
        self._command.failed.connect(self._failed)
        self.button.clicked.connect(self.run)

    def set_flags(self, flags: Callable[[], list[str]]) -> None:
        self._flags = flags

    def run(self) -> None:
        self.label.setText("Forecasting… (two tiny training steps)")
        self.button.setEnabled(False)
        self._command.start(["plan", *self._flags(), "--json"])

    def mark_stale(self) -> None:
        if not self._command.is_running() and self.label.text().startswith("≈"):
            self.label.setText("Options changed: forecast again.")

    def _done(self, plan) -> None:
        self.button.setEnabled(True)
        self.label.setText(describe(plan))
        self.forecast_ready.emit(plan)

    def _failed(self, message: str, details: str) -> None:
        self.button.setEnabled(True)
        self.label.setText(f"Forecast failed: {message}")
        self.forecast_failed.emit(message)
