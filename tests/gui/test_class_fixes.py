"""The misclassified gallery fixes a classification set: "move to class" moves the picture into the
other class's folder, "exclude" into a hidden folder the readers skip — each only after a yes,
each undone by Ctrl+Z, and both recorded in the run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from frelon.gui.panels.classification_results import ClassificationResults


@pytest.fixture
def data(tmp_path) -> Path:
    for cls, colour in (("cat", (200, 100, 50)), ("coffee", (60, 40, 20))):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 32), colour).save(tmp_path / "data" / cls / f"{i}.png")
    (tmp_path / "run").mkdir()
    return tmp_path


def captions(panel) -> list[str]:
    return [panel.thumbs.item(i).text() for i in range(panel.thumbs.count())]


def answer(monkeypatch, button):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or button)
    return asked


def test_move_exclude_and_undo_from_the_gallery(qtbot, data, monkeypatch):
    root, run = data / "data", data / "run"
    panel = ClassificationResults()
    qtbot.addWidget(panel)
    preds = [{"path": str(root / "cat" / "0.png"), "true": "cat", "predicted": "coffee", "score": 0.9},
             {"path": str(root / "coffee" / "1.png"), "true": "coffee", "predicted": "cat", "score": 0.8}]
    panel.set_validation_predictions(preds, ["cat", "coffee"], str(run))
    assert panel.thumbs.count() == 2

    answer(monkeypatch, QMessageBox.StandardButton.No)                # no: nothing moves
    assert not panel.move_to_class(str(root / "cat" / "0.png"), "coffee")
    assert (root / "cat" / "0.png").is_file() and not (run / "data_fixes.json").exists()

    asked = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert panel.move_to_class(str(root / "cat" / "0.png"), "coffee")
    assert "from cat/ to coffee/" in asked[0]
    moved = root / "coffee" / "0-1.png"                                # coffee/0.png exists: a free name
    assert moved.is_file() and not (root / "cat" / "0.png").exists()
    assert any(t.startswith("✓ coffee") for t in captions(panel))      # now right: the caption says so
    assert panel.exclude(str(root / "coffee" / "1.png"))
    assert (root / ".frelon-excluded" / "coffee" / "1.png").is_file() and panel.thumbs.count() == 1
    fixes = json.loads((run / "data_fixes.json").read_text())["fixes"]
    assert [(f["action"], f["class"], Path(f["to"]).relative_to(root).as_posix()) for f in fixes] == \
        [("move", "coffee", "coffee/0-1.png"), ("exclude", None, ".frelon-excluded/coffee/1.png")]

    # the readers see the fixed set: 3 cats - 1, 3 coffees + 1 - 1; the hidden folder is skipped
    from frelon.engine.data.classify import scan_classification
    scanned = scan_classification(str(root), val_split=0.0)
    counts = {c: sum(1 for _, label in scanned.train + scanned.val if scanned.classes[label] == c) for c in scanned.classes}
    assert scanned.classes == ["cat", "coffee"] and counts == {"cat": 2, "coffee": 3}
    # … and every run records what it was not trained on
    assert [Path(p).relative_to(root).as_posix() for p in scanned.report["excluded"]] == [".frelon-excluded/coffee/1.png"]
    assert any("1 picture(s) you excluded" in w for w in scanned.report["warnings"])

    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    panel.thumbs.setFocus()
    qtbot.waitUntil(panel.thumbs.hasFocus)
    qtbot.keyClick(panel.thumbs, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # the exclusion back
    assert (root / "coffee" / "1.png").is_file() and panel.thumbs.count() == 2
    panel.undo.click()                                                                  # the move back
    assert (root / "cat" / "0.png").is_file() and not moved.exists()
    assert json.loads((run / "data_fixes.json").read_text())["fixes"] == []
    assert any(t.startswith("cat → coffee") for t in captions(panel))
