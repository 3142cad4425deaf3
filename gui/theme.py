"""Colours and pyqtgraph settings shared by every panel (one place, so the app looks of a piece)."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

from frelon.common.run_folder import CLASS_COLOURS

# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau) for classes and ranks: each
# class's colour is the one `frelon predict --draw` draws it in (common/run_folder.py)
PALETTE = list(CLASS_COLOURS)

LOSS_RAW = "#9bbbd8"
LOSS_SMOOTH = "#0072B2"
VALIDATION = "#D55E00"
PREVIEW = "#888888"
COMPARE = "#CC79A7"
OK = "#2e7d32"
WARN = "#b26a00"
BAD = "#c62828"


def color(i: int) -> QColor:
    return QColor(PALETTE[i % len(PALETTE)])


def configure_pyqtgraph() -> None:
    """Light plots that match a light Qt theme; antialiasing off keeps 100k-point curves cheap."""
    pg.setConfigOptions(background="w", foreground="#333333", antialias=False)


def human_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
