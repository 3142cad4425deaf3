"""Where the window opens (issue 32): inside the screen it opens on, never wider than it, and where
it was last time only if that still fits the screens there are now."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QRect, QSettings

from frelon.gui.settings import FIRST_SIZE, MARGIN, save_rect, saved_rect, usable, window_rect

LAPTOP = QRect(0, 0, 1366, 740)                   # 1366 × 768 less a 28 px panel
MONITOR = QRect(1366, 0, 1920, 1080)              # a monitor to its right


def test_first_launch_fits_a_laptop_and_is_comfortable_on_a_monitor():
    r = window_rect(None, [LAPTOP], LAPTOP)
    assert usable(LAPTOP).contains(r) and r.width() == 1366 - 2 * MARGIN
    assert r.center() == usable(LAPTOP).center()
    big = QRect(0, 0, 2560, 1400)
    r = window_rect(None, [big], big)
    assert r.size() == FIRST_SIZE and big.contains(r)


def test_a_saved_place_is_kept_only_where_it_still_fits():
    on_monitor = QRect(1500, 60, 1700, 950)
    assert window_rect(on_monitor, [LAPTOP, MONITOR], LAPTOP) == on_monitor       # both screens: as it was
    alone = window_rect(on_monitor, [LAPTOP], LAPTOP)                             # the monitor is gone
    assert usable(LAPTOP).contains(alone)
    too_big = QRect(10, 40, 1800, 1000)                                           # saved on a larger screen
    assert usable(LAPTOP).contains(window_rect(too_big, [LAPTOP], LAPTOP))
    small = QRect(100, 80, 900, 600)
    assert window_rect(small, [LAPTOP], LAPTOP) == small


def test_a_window_across_two_screens_opens_on_the_one_that_held_most_of_it():
    across = QRect(1000, 100, 1500, 800)          # 366 px on the laptop, 1134 on the monitor
    r = window_rect(across, [LAPTOP, MONITOR], LAPTOP)
    assert usable(MONITOR).contains(r)


def test_the_place_survives_the_settings_file(tmp_path):
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert saved_rect(s) is None
    save_rect(s, QRect(12, 34, 900, 700), maximized=False)
    s.sync()
    again = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert saved_rect(again) == QRect(12, 34, 900, 700)
    again.setValue("window/rect", "junk")
    assert saved_rect(again) is None


APP = """
import json, os
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication
app = QApplication([])
from frelon.gui.main_window import MainWindow

def opened():
    w = MainWindow(ask_engine=False)
    w.show()
    app.processEvents()
    return w

out = {"screens": [s.availableGeometry().getRect() for s in app.screens()]}
w = opened()                                        # first launch
out["first"] = w.frameGeometry().getRect()
out["first_min"] = w.minimumSizeHint().toTuple()
w.setGeometry(QRect(1500, 80, 1600, 900))           # moved to the monitor, then closed
w.close()
w = opened()
out["reopened"] = w.geometry().getRect()
w.setGeometry(QRect(40, 40, 3000, 1000))            # dragged wide across both
w.close()
w = opened()
out["too_wide"] = w.frameGeometry().getRect()
w.close()
print(json.dumps(out))
"""


def run_app(tmp_path: Path, screens: list[dict]) -> dict:
    config = tmp_path / "screens.json"
    config.write_text(json.dumps({"screens": [{"name": f"s{i}", "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1, **s}
                                              for i, s in enumerate(screens)]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", FRELON_GUI_ENGINE="false",
               FRELON_SETTINGS=str(tmp_path / "settings.ini"))
    result = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=120, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_app_opens_inside_a_laptop_screen_and_back_where_it_was(tmp_path):
    """The real window on Qt's offscreen platform with a 1366 × 768 laptop screen and a 1920 × 1080
    monitor beside it: first launch inside the laptop's screen; a place on the monitor kept; a
    window dragged wider than both back inside one screen."""
    out = run_app(tmp_path, [{"x": 0, "y": 0, "width": 1366, "height": 768},
                             {"x": 1366, "y": 0, "width": 1920, "height": 1080}])
    laptop = QRect(*out["screens"][0])
    assert laptop.contains(QRect(*out["first"])), out
    assert out["first_min"][0] <= 1280 and out["first_min"][1] <= laptop.height() - 2 * MARGIN, out
    assert out["reopened"] == [1500, 80, 1600, 900]
    too_wide = QRect(*out["too_wide"])
    assert laptop.contains(too_wide) or QRect(*out["screens"][1]).contains(too_wide), out
