"""Pictures a person excluded from training (the app's misclassified gallery, "Exclude"): moved
into a hidden folder beside the class folders, `ROOT/.frelon-excluded/<class>/…`, never deleted.

Both sides import this (stdlib only): the app moves files there, the engine's data doctor lists
them in every run's `data_report` (`excluded`), so a run records what it was not trained on.
"""
from __future__ import annotations

from pathlib import Path

EXCLUDED = ".frelon-excluded"


def excluded_files(root: str | Path) -> list[Path]:
    """The files excluded from the set at `root`, sorted."""
    folder = Path(root) / EXCLUDED
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
