"""The run bar while the engine checks a big folder: its `scan_progress` events (issue 28) fill the
bar with the pictures checked and tell the time left."""
from __future__ import annotations

from frelon.gui.panels.run_panel import RunPanel


def test_scan_progress_fills_the_run_bar(qtbot):
    panel = RunPanel()
    qtbot.addWidget(panel)
    panel.begin()
    panel.on_event({"type": "scan_progress", "done": 12000, "total": 50000, "eta_s": 95.0})
    assert (panel.progress.value(), panel.progress.maximum()) == (12000, 50000)
    assert panel.progress.text() == "12000 / 50000 pictures checked"
    assert "ETA 1:35" in panel.eta.text() and "Checking the data" in panel.status.text()
    panel.on_event({"type": "run_started", "total_steps": 40, "config": {"epochs": 2}, "backbone": "b", "device": "cpu"})
    assert panel.progress.maximum() == 40 and panel.progress.text().endswith("steps")
