"""What the app remembers between launches (QSettings), and where its defaults come from.

First launch on a fresh machine: the bundled sample (`frelon/assets/sample/classify`, package data
found by common/samples.py) and the offline backbone are preselected, so Start just works. FRELON_SETTINGS
names an INI file to use instead of the user's settings (tests, benchmarks).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings

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
