"""The model panel's memory forecast runs the real `frelon plan` and shows its answer."""
from __future__ import annotations

from frelon.gui.widgets.memory_forecast import MemoryForecast, describe


def test_describe_reads_the_plan():
    text = describe({"predicted_peak_bytes": 3 * 2**30, "batch_size": 32, "device": "cuda:0",
                     "max_batch_size": 96, "budget_bytes": 10 * 2**30, "budget_source": "free GPU memory"})
    assert "3.00 GiB" in text and "32" in text and "<b>96</b>" in text and "free GPU memory" in text


def test_forecast_through_the_real_engine(qtbot):
    flags = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "4",
             "--device", "cpu", "--budget", "1GiB"]
    w = MemoryForecast(lambda: flags)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.forecast_ready, timeout=180_000) as got:
        w.button.click()
    plan = got.args[0]
    assert plan["batch_size"] == 4 and plan["predicted_peak_bytes"] > 0
    assert "per device at batch 4" in w.label.text() and w.button.isEnabled()
    w.mark_stale()
    assert "forecast again" in w.label.text()


def test_a_failing_forecast_says_why(qtbot):
    w = MemoryForecast(lambda: ["--backbone", "nope"])
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.forecast_failed, timeout=120_000) as got:
        w.run()
    assert "unknown backbone 'nope'" in got.args[0] and "Forecast failed" in w.label.text()
