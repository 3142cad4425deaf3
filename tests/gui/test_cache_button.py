"""The Data tab's cache button, through the real `frelon cache` command: it shows what the runs
folder's cache holds and clears it when asked (and only then)."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from frelon.gui.widgets.cache_button import CacheButton


def test_the_cache_button_shows_the_size_and_clears_it(qtbot, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FRELON_CACHE", str(cache))
    (cache / "resized" / "ab").mkdir(parents=True)
    (cache / "resized" / "ab" / "picture.npy").write_bytes(b"\0" * (3 * 2 ** 20))
    keep = tmp_path / "runs" / "a-run" / "config.json"          # a run beside the cache: never touched
    keep.parent.mkdir(parents=True)
    keep.write_text("{}")
    button = CacheButton(lambda: str(tmp_path / "runs"))
    qtbot.addWidget(button)
    button.refresh()
    qtbot.waitUntil(lambda: button.text() == "Cache: 3.0 MiB", timeout=20_000)
    assert "1 picture(s) kept at training resolution" in button.toolTip()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    button.click()                                               # asked, and the user says no
    qtbot.wait(300)
    assert (cache / "resized" / "ab" / "picture.npy").exists()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    button.click()
    qtbot.waitUntil(lambda: button.text() == "Cache: empty", timeout=20_000)
    assert not (cache / "resized").exists() and keep.exists()
