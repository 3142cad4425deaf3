"""The misclassified gallery's "Where it looks" toggle: the pictures shown are sent to `frelon explain`
(the fake engine draws each one's "map" red), each thumbnail then shows its map, and unchecking
brings the pictures back; the gallery's fixes still act on the picture, never on its map."""
from __future__ import annotations

from PIL import Image
from PySide6.QtCore import Qt

from frelon.gui.panels.classification_results import ClassificationResults


def _centre_colour(grid, row: int):
    icon = grid.item(row).icon()
    image = icon.pixmap(grid.side, grid.side).toImage()
    c = image.pixelColor(image.width() // 2, image.height() // 2)
    return c.red(), c.green(), c.blue()


def _loaded(qtbot, grid) -> None:
    qtbot.waitUntil(lambda: grid.pending() == 0, timeout=5000)


def test_toggle_shows_each_pictures_map_and_back(qtbot, tmp_path, fake_engine):
    pictures = []
    for i in range(3):
        path = tmp_path / "data" / "cat" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (30, 60, 220)).save(path)                  # blue pictures
        pictures.append(str(path))
    run = tmp_path / "run"
    run.mkdir()
    preds = [{"path": p, "true": "cat", "predicted": "dog", "score": 0.7} for p in pictures]
    w = ClassificationResults()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.set_validation_predictions(preds, ["cat", "dog"], str(run))
    _loaded(qtbot, w.thumbs)
    assert _centre_colour(w.thumbs, 0)[2] > 150                               # the picture itself
    w.explain.setChecked(True)
    qtbot.waitUntil(lambda: len(w.explain.maps) == 3, timeout=20000)          # the engine answered
    assert sorted(w.explain.maps) == sorted(pictures)
    assert all(m.startswith(str(run / "explain")) for m in w.explain.maps.values())
    _loaded(qtbot, w.thumbs)
    for row in range(3):
        r, g, b = _centre_colour(w.thumbs, row)
        assert r > 150 and b < 80, (r, g, b)                                    # its map
        assert w.thumbs.item(row).data(Qt.ItemDataRole.UserRole) in pictures    # fixes act on the picture
    w.explain.setChecked(False)
    _loaded(qtbot, w.thumbs)
    assert _centre_colour(w.thumbs, 0)[2] > 150                               # the picture again
