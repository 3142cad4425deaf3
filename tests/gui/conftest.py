"""GUI test fixtures: the fake engine, a throw-away QSettings file, a runs folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own settings file, so nothing leaks between tests or into the user's."""
    monkeypatch.setenv("FRELON_SETTINGS", str(tmp_path / "settings.ini"))


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    """Point the app at tests/gui/fake_engine.py; returns a setter for its mode."""
    monkeypatch.setenv("FRELON_GUI_ENGINE", f'"{sys.executable}" "{FAKE_ENGINE}"')
    monkeypatch.setenv("FAKE_RUNS", str(tmp_path / "runs"))

    def set_mode(mode: str = "normal", steps: int = 20, delay: float = 0.005, epochs: int | None = None):
        monkeypatch.setenv("FAKE_ENGINE_MODE", mode)
        monkeypatch.setenv("FAKE_STEPS", str(steps))
        monkeypatch.setenv("FAKE_DELAY", str(delay))
        if epochs is None:          # as `frelon train`: --epochs, else its default
            monkeypatch.delenv("FAKE_EPOCHS", raising=False)
        else:
            monkeypatch.setenv("FAKE_EPOCHS", str(epochs))
    set_mode()
    return set_mode
