"""The assembled window against the fake engine: start, live plots, results, crash + resume,
closing while training, drag and drop, settings remembered, and no torch in the GUI process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from frelon.gui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot, tmp_path, fake_engine):
    data = tmp_path / "data"
    for cls in ("absent", "present"):
        (data / cls).mkdir(parents=True)
    w = MainWindow(str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.data_panel.set_path(str(data), check=False)
    w.show()
    yield w
    if w.controller.is_running():
        w.controller.engine.kill()


def test_start_fills_plots_and_ends_in_results(qtbot, window, fake_engine):
    fake_engine("normal", steps=30, delay=0.002)
    assert window.windowTitle() == "Frelon"
    with qtbot.waitSignal(window.controller.finished, timeout=15_000) as blocker:
        window.run_panel.start.click()
    outcome = blocker.args[0]
    assert outcome.finish_status == "completed"
    window.plots_panel.refresh()
    assert len(window.plots_panel.c_loss.xData) == 30
    assert len(window.plots_panel.c_metric.xData) == window.training_panel.epochs.value()
    assert window.run_panel.progress.value() == 30
    assert window.results_panel.run_dir == outcome.run_dir and "accuracy" in window.results_panel.header.text()
    assert window.runs_panel.tree.topLevelItemCount() == 1
    args = window.controller.last_args
    assert args[0] == "train" and args[-4:] == ["--events", "-", "--control", "stdin"]
    assert args[args.index("--out") + 1] == window.runs_panel.runs_dir


def test_crash_shows_a_readable_error_and_offers_resume(qtbot, window, fake_engine):
    fake_engine("crash", steps=10)
    with qtbot.waitSignal(window.controller.finished, timeout=15_000):
        window.session.start()
    box = window.last_error_box
    assert box is not None and "exited with code 3" in box.informativeText()
    assert "Segmentation fault" in box.detailedText()
    assert box.resume_button is not None and window.run_panel.resume.isEnabled()
    fake_engine("normal", steps=4)
    run_dir = window.session.resume_target
    with qtbot.waitSignal(window.controller.finished, timeout=15_000) as blocker:
        box.resume_button.click()
    assert window.controller.last_args[:3] == ["train", "--resume", run_dir]
    assert blocker.args[0].finish_status == "completed"
    box.close()


def test_stop_button(qtbot, window, fake_engine):
    fake_engine("normal", steps=2000, delay=0.01)
    with qtbot.waitSignal(window.controller.event, timeout=15_000, check_params_cb=lambda e: e["type"] == "step"):
        window.session.start()
    assert window.run_panel.stop.isEnabled() and not window.run_panel.start.isEnabled()
    with qtbot.waitSignal(window.controller.finished, timeout=15_000) as blocker:
        window.run_panel.stop.click()
    assert blocker.args[0].finish_status == "stopped"
    assert window.run_panel.resume.isEnabled() and window.last_error_box is None


def test_closing_the_window_stops_the_engine(qtbot, window, fake_engine):
    fake_engine("normal", steps=100_000, delay=0.01)
    with qtbot.waitSignal(window.controller.event, timeout=15_000, check_params_cb=lambda e: e["type"] == "step"):
        window.session.start()
    pid = window.controller.engine.pid()
    window.close()
    assert not window.controller.is_running()
    with pytest.raises(OSError):
        os.kill(pid, 0)                                       # no orphan
    assert window.controller.last_outcome.finish_status == "stopped"


def test_selecting_a_past_run_reloads_its_plots(qtbot, window, fake_engine):
    fake_engine("normal", steps=12)
    with qtbot.waitSignal(window.controller.finished, timeout=15_000):
        window.session.start()
    run_dir = window.controller.run_dir
    window.plots_panel.set_history(__import__("frelon.gui.run_history", fromlist=["RunHistory"]).RunHistory())
    window.runs_panel.refresh()
    window.runs_panel.select(run_dir)
    window.plots_panel.refresh()
    assert len(window.plots_panel.c_loss.xData) == 12           # read back from events.jsonl


def test_drop_a_folder_on_the_window(qtbot, window, tmp_path):
    target = tmp_path / "dropped"
    target.mkdir()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(target))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.data_panel.current_path() == str(target)
    assert window.tabs.currentWidget() is window.data_panel


def test_choices_are_remembered(qtbot, tmp_path, fake_engine):
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    w.training_panel.epochs.setValue(17)
    w.data_panel.set_path(str(tmp_path), check=False)
    w.close()
    w2 = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w2)
    assert w2.training_panel.epochs.value() == 17
    assert w2.data_panel.current_path() == str(tmp_path)


def test_first_launch_preselects_the_sample(qtbot, tmp_path, fake_engine):
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    sample = REPO / "frelon" / "assets" / "sample" / "classify"     # package data in the checkout
    assert sample.is_dir()
    assert w.data_panel.current_path() == str(sample)
    assert w.training_panel.options().backbone == "efficientnet_lite0"


def test_the_app_never_imports_torch():
    code = ("import sys, os; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "import frelon.gui.app, frelon.gui.main_window\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\n"
            "w = frelon.gui.main_window.MainWindow(ask_engine=False)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
            "assert not bad, bad\n"
            "print('clean')\n")
    env = dict(os.environ, FRELON_GUI_ENGINE="false")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr[-2000:]


def test_qt_binding_does_not_lose_none():
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every void call: after some
    thousands of calls the app aborts ('deallocating None'). Guard against such a binding."""
    from PySide6.QtWidgets import QLabel
    label = QLabel()
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
    assert sys.getrefcount(None) >= before - 10, "this PySide6 build loses references to None: use another version"


def test_frelon_gui_command_opens_and_closes(tmp_path):
    """`frelon gui --runs DIR` goes through frelon.cli to frelon.gui.app:main and returns 0."""
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtCore import QTimer\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\n"
            "QTimer.singleShot(1500, app.closeAllWindows)\n"
            "from frelon.cli import main\n"
            f"raise SystemExit(main(['gui', '--runs', {str(tmp_path / 'runs')!r}]))\n")
    env = dict(os.environ, FRELON_GUI_ENGINE="false", FRELON_SETTINGS=str(tmp_path / "s.ini"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "s.ini").is_file()                        # settings were saved on close
