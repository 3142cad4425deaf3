"""The app on the screens people have (issue 32): every tab reads in a 1366 × 768 window, in a
1920 × 1080 one, and at a device pixel ratio of 2 — nothing sticks out of its parent, no label is
cut, no widgets overlap, the window's minimum size fits a small laptop's screen, and each tab's
key widgets are shown inside the window (tests/gui/screens_world.py fills every tab with long
names, a finished classifier and detector, a review).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication

from layout_checks import (clipped_plots, cut_labels, legends_over_data, outside_window, overlapping,
                           sticking_out)
from screens_world import TABS, everywhere, make_world, populate

HERE = Path(__file__).resolve().parent
SMALLEST = QSize(1280, 640)       # the window's minimum size must fit in this (a 1366 × 768 screen, its panel, a title bar)


def settle() -> None:
    """Let the layouts finish (a resize, a new tab, a loaded run each post layout requests)."""
    for _ in range(5):
        QApplication.sendPostedEvents()
        QApplication.processEvents()


def problems(window, world, tab: str, size: tuple[int, int]) -> list[str]:
    """Everything that does not read on `tab` in a window of `size`, in words (empty: all reads)."""
    keys = TABS[tab](window, world)
    window.resize(*size)
    settle()
    found = []
    hint = window.minimumSizeHint().expandedTo(window.minimumSize())
    if hint.width() > SMALLEST.width() or hint.height() > SMALLEST.height():
        found.append(f"the window needs at least {hint.width()}×{hint.height()}")
    if window.size() != QSize(*size):
        found.append(f"the window is {window.width()}×{window.height()}, not {size[0]}×{size[1]}")
    return found + sticking_out(window) + cut_labels(window) + overlapping(window) + clipped_plots(window) + \
        legends_over_data(window) + outside_window(window, keys + everywhere(window))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("screens"))


@pytest.fixture(scope="module")
def window(qapp, world):
    from frelon.gui.main_window import MainWindow
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRELON_SETTINGS", str(world["root"] / "settings.ini"))
        mp.setenv("FRELON_GUI_ENGINE", "false")                  # nothing runs: the answers are given
        w = MainWindow(str(world["runs"]), ask_engine=False)
        populate(w, world)
        w.show()
        yield w
        w.close()
        w.deleteLater()


@pytest.mark.parametrize("tab", list(TABS))
def test_every_tab_reads_on_a_1366_by_768_screen(window, world, tab):
    assert problems(window, world, tab, (1366, 768)) == []


@pytest.mark.parametrize("tab", list(TABS))
def test_every_tab_reads_on_a_1920_by_1080_screen(window, world, tab):
    assert problems(window, world, tab, (1920, 1080)) == []


def screen_config(tmp_path: Path, *screens: dict) -> str:
    """QT_QPA_PLATFORM for Qt's offscreen platform with these screens (qoffscreenintegration.cpp)."""
    path = tmp_path / "screens.json"
    path.write_text(json.dumps({"screens": [{"name": f"s{i}", "x": 0, "y": 0, "logicalDpi": 96,
                                             "logicalBaseDpi": 96, "dpr": 1, **s} for i, s in enumerate(screens)]}))
    return f"offscreen:configfile={path}"


def run_app(tmp_path: Path, platform: str, code: str, settings: Path | None = None) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM=platform, FRELON_GUI_ENGINE="false",
               FRELON_SETTINGS=str(settings or tmp_path / "settings.ini"), PYTHONPATH=str(HERE))
    env.pop("QT_SCALE_FACTOR", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


HIDPI = """
import json, os, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
import test_screens
from screens_world import TABS, make_world, populate
from frelon.gui.main_window import MainWindow
world = make_world(Path(os.environ["FRELON_SETTINGS"]).parent / "world")
w = MainWindow(str(world["runs"]), ask_engine=False)
populate(w, world)
w.show()
screen = w.screen()
found, shots = {}, os.environ.get("FRELON_SHOTS")          # FRELON_SHOTS=DIR: each tab as a PNG, to look at
for tab in TABS:
    found[tab] = test_screens.problems(w, world, tab, (1366, 768))
    if shots:
        w.grab().save(os.path.join(shots, f"hidpi-{tab}.png"))
print(json.dumps({"dpr": w.devicePixelRatio(), "screen": screen.geometry().getRect(),
                  "problems": {t: p for t, p in found.items() if p}}))
"""


def test_every_tab_reads_at_a_device_pixel_ratio_of_2(tmp_path):
    """A 2732 × 1536 screen at 192 dpi, as X11 reports a HiDPI laptop: Qt draws 2 device pixels per
    logical one, so the window is the same 1366 × 768, twice as sharp."""
    out = run_app(tmp_path, screen_config(tmp_path, {"width": 2732, "height": 1536, "logicalDpi": 192}), HIDPI)
    assert out["dpr"] == 2 and out["screen"][2:] == [1366, 768]
    assert out["problems"] == {}


def test_the_side_panel_reads_at_its_narrowest(window, world):
    """Model and training at the dock's minimum width: every label wraps or elides inside it
    (the effective-LR explanation was cut at its right edge), nothing needs a sideways scroll."""
    from PySide6.QtCore import Qt
    TABS["training"](window, world)
    window.resize(1366, 768)
    dock = window.training_dock
    window.resizeDocks([dock], [dock.minimumWidth()], Qt.Orientation.Horizontal)
    settle()
    assert dock.width() <= dock.minimumWidth() + 2
    panel = window.training_panel
    assert sticking_out(panel) + cut_labels(panel) == []
    assert outside_window(window, [panel.effective, panel.plan, panel.gpu_reason, panel.weights_status]) == []
    window.resizeDocks([dock], [390], Qt.Orientation.Horizontal)
