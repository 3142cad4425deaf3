"""What the app remembers between launches (QSettings), and where its defaults come from.

First launch on a fresh machine: the bundled sample (`assets/sample/classify`, found next to the
package's source) and the offline backbone are preselected, so Start just works. FRELON_SETTINGS
names an INI file to use instead of the user's settings (tests, benchmarks).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QSettings

from frelon.gui.options import TrainOptions

SAMPLE_PARTS = ("assets", "sample", "classify")


def make_settings() -> QSettings:
    path = os.environ.get("FRELON_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Frelon", "Frelon")


def sample_dataset() -> str:
    """The bundled sample folder, or '' when this installation has none (the engine then uses its own)."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent.joinpath(*SAMPLE_PARTS),                     # source checkout / editable install
                  here.joinpath(*SAMPLE_PARTS),                            # shipped inside the package
                  Path(sys.prefix, "share", "frelon", *SAMPLE_PARTS[1:])]
    for c in candidates:
        if c.is_dir():
            return str(c)
    return ""


def default_runs_dir() -> str:
    """`./runs`, as for `frelon train` (so the app and the command line see the same runs)."""
    return str(Path.cwd() / "runs")


# First launch trains on the small bundled sample: smaller batches and more epochs than the
# defaults (made for a real folder) let it visibly learn in about a minute on a CPU. The engine
# applies the same preset to `frelon train` without --data (engine/commands.py, SAMPLE_PRESET).
FIRST_LAUNCH = {"batch_size": 8, "epochs": 10, "image_size": 128}


def load_options(settings: QSettings) -> TrainOptions:
    raw = settings.value("options", "")
    try:
        values = json.loads(raw) if raw else dict(FIRST_LAUNCH)
    except (TypeError, ValueError):
        values = dict(FIRST_LAUNCH)
    return TrainOptions.from_settings(values if isinstance(values, dict) else {})


def save_options(settings: QSettings, options: TrainOptions) -> None:
    settings.setValue("options", json.dumps(options.to_settings()))
