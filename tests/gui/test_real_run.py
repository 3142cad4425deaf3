"""A real short CPU run started from the app: the engine trains on the bundled sample for two
steps, the plots fill, the run ends with run_finished, and its results load."""
from __future__ import annotations

import pytest

from frelon.gui.main_window import MainWindow
from frelon.common.samples import sample_dir

SAMPLE = sample_dir("classify")        # package data: part of every installation, so never skipped

pytestmark = [pytest.mark.slow]          # torch is a dependency of the package: no skip without it


def test_real_cpu_run_from_the_gui(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)        # the real `python -m frelon`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")                     # a tiny model: one thread, no spinning
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    w.show()
    w.data_panel.set_path(str(SAMPLE), check=False)
    p = w.training_panel
    p.epochs.setValue(1)
    p.image_size.setValue(32)
    p.batch.setValue(4)
    w.session.extra_flags = ("--max-steps", "2", "--workers", "0")
    seen = []
    w.controller.event.connect(lambda e: seen.append(e["type"]))
    with qtbot.waitSignal(w.controller.finished, timeout=180_000) as blocker:
        w.run_panel.start.click()
    outcome = blocker.args[0]
    assert outcome.finish_status == "completed", outcome.describe() + "\n" + outcome.details()
    assert seen[-1] == "run_finished" and "run_started" in seen and "step" in seen
    w.plots_panel.refresh()
    assert len(w.plots_panel.c_loss.xData) >= 1
    assert len(w.plots_panel.c_lr.xData) >= 1
    assert w.plots_panel.c_memory                                  # RSS per rank on CPU
    assert len(w.plots_panel.c_metric.xData) == 1                  # one validation point
    assert "accuracy" in w.results_panel.header.text()
    assert w.results_panel.classify.matrix.matrix                  # confusion_matrix.json was read


def test_first_launch_start_pressed_reaches_full_accuracy(qtbot, tmp_path, monkeypatch):
    """A new user: a fresh settings file, the window as it opens, Start pressed, nothing else
    touched. The real engine trains on the preselected bundled sample with the defaults and the
    validation accuracy reaches 100 % (cat vs coffee: ImageNet features tell them apart at sight)."""
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    w.show()
    accuracies = []
    w.controller.event.connect(lambda e: e["type"] == "epoch_end" and accuracies.append(e["val"]["accuracy"]))
    with qtbot.waitSignal(w.controller.finished, timeout=600_000) as blocker:
        w.run_panel.start.click()
    outcome = blocker.args[0]
    assert outcome.finish_status == "completed", outcome.describe() + "\n" + outcome.details()
    assert accuracies and max(accuracies) == 1.0, accuracies
    assert "100" in w.results_panel.header.text(), w.results_panel.header.text()
