"""What the app remembers between launches (QSettings), and where its defaults come from.

First launch on a fresh machine: the bundled sample (`frelon/assets/sample/classify`, package data
found by common/samples.py) and the offline backbone are preselected, so Start just works. FRELON_SETTINGS
names an INI file to use instead of the user's settings (tests, benchmarks).

The window opens where it was only if that still fits the screens there are now (a laptop taken
away from its large monitor opens it on its own screen); otherwise at FIRST_SIZE, cut to the
screen's available part less MARGIN, centred (`window_rect`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSettings, QSize

from frelon.common.samples import sample_dir
from frelon.common.train_config import TrainConfig
from frelon.gui.options import from_settings, to_settings


def make_settings() -> QSettings:
    path = os.environ.get("FRELON_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Frelon", "Frelon")


def sample_dataset() -> str:
    """The bundled classification sample, or '' when this installation left the package data out."""
    folder = sample_dir("classify")
    return str(folder) if folder.is_dir() else ""


def default_runs_dir() -> str:
    """`./runs`, as for `frelon train` (so the app and the command line see the same runs)."""
    return str(Path.cwd() / "runs")


# v2: the LR follows each optimizer's own rule (0 = its own base LR and reference batch). Options
# saved by earlier versions pinned the old linear rule's 1e-3 at 256, which now means another LR:
# they are not read back.
OPTIONS_KEY = "options-v2"


def load_options(settings: QSettings) -> TrainConfig:
    raw = settings.value(OPTIONS_KEY, "")
    try:
        values = json.loads(raw) if raw else {}      # first launch: the defaults, as `frelon train`
    except (TypeError, ValueError):
        values = {}
    return from_settings(values if isinstance(values, dict) else {})


def save_options(settings: QSettings, options: TrainConfig) -> None:
    settings.setValue(OPTIONS_KEY, json.dumps(to_settings(options)))


FIRST_SIZE = QSize(1480, 920)      # the window's first size, where the screen has room for it
MARGIN = 24                        # px left around it on a smaller screen (frame, shadow)
TITLE_BAR = 32                     # above its client area, the window manager's title bar


def usable(available: QRect) -> QRect:
    """The part of a screen's available geometry the window's client area may take."""
    return available.adjusted(MARGIN, MARGIN + TITLE_BAR, -MARGIN, -MARGIN)


def window_rect(saved: QRect | None, screens: list[QRect], primary: QRect) -> QRect:
    """Where the window opens (its client area, global coordinates). `saved`: where it was (None
    the first time); `screens`: each screen's available geometry now; `primary`: the primary's.
    The saved rect where it lies inside one of the screens; else FIRST_SIZE cut to the usable part
    of the screen that held most of it (the primary when none did), centred on it."""
    if saved is not None and saved.isValid() and any(screen.contains(saved) for screen in screens):
        return QRect(saved)
    target = primary
    if saved is not None and saved.isValid():
        overlaps = [(_area(screen.intersected(saved)), i) for i, screen in enumerate(screens)]
        best, i = max(overlaps, default=(0, -1))
        target = screens[i] if best > 0 else primary
    room = usable(target)
    rect = QRect(QPoint(0, 0), FIRST_SIZE.boundedTo(room.size()))
    rect.moveCenter(room.center())
    return rect


def _area(rect: QRect) -> int:
    return max(0, rect.width()) * max(0, rect.height()) if rect.isValid() else 0


def saved_rect(settings: QSettings) -> QRect | None:
    """The window's last client rect ("window/rect": x, y, width, height), or None."""
    value = settings.value("window/rect")
    try:
        x, y, w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    return QRect(x, y, w, h)


def save_rect(settings: QSettings, rect: QRect, maximized: bool) -> None:
    settings.setValue("window/rect", [rect.x(), rect.y(), rect.width(), rect.height()])
    settings.setValue("window/maximized", maximized)
    settings.remove("window/geometry")             # earlier versions' QWidget.saveGeometry(): not read
