"""The augmentation preview beside the augmentation choice, with the real engine: the app's
current choices (noise included) go to `frelon preview-augment`, the grid shows its pictures
(boxes drawn for detection), and Re-draw asks for the next epochs."""
from __future__ import annotations

import json
import os

import pytest
from PySide6.QtGui import QImage

from frelon.gui.main_window import MainWindow
from frelon.common.train_config import TrainConfig
from frelon.gui.options import train_flags
from frelon.gui.widgets.augment_preview import COUNT, IMAGES, AugmentPreview, drawn
from frelon.common.samples import sample_dir

pytestmark = [pytest.mark.slow]


def test_preview_from_the_window_with_the_current_choices(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)        # the real `python -m frelon`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    w.data_panel.set_path(str(sample_dir("classify")), check=False)
    p = w.training_panel
    p.image_size.setValue(64)
    p.noise.setValue(12)
    preview = p.augment_preview
    with qtbot.waitSignal(preview.shown, timeout=120_000) as blocker:
        preview.button.click()
    result = blocker.args[0]
    assert result["noise"] == 12 and result["size"] == 64 and result["task"] == "classify"
    assert result["images"][0]["path"].startswith(str(sample_dir("classify")))
    assert preview.grid.count() == IMAGES * COUNT
    first = preview.grid.itemAtPosition(0, 0).widget().pixmap().toImage()
    engine = QImage(os.path.join(result["out"], result["images"][0]["variants"][0]["file"]))
    assert engine.width() == 64 and first.width() == 112            # the engine's picture, scaled up
    if os.environ.get("FRELON_SHOTS"):
        p.grab().save(os.path.join(os.environ["FRELON_SHOTS"], "augment-preview.png"))
    with qtbot.waitSignal(preview.shown, timeout=120_000) as blocker:
        preview.redraw.click()
    assert [v["epoch"] for v in blocker.args[0]["images"][0]["variants"]] == list(range(COUNT, 2 * COUNT))
    assert "Preview failed" not in preview.label.text()


def test_detection_boxes_drawn_over_the_pictures(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    flags = train_flags(TrainConfig(data=str(sample_dir("detect")), image_size=64, augment="none"))
    preview = AugmentPreview(lambda: flags)
    qtbot.addWidget(preview)
    with qtbot.waitSignal(preview.shown, timeout=120_000) as blocker:
        args = preview.start()
    assert "--augment" in args and args[args.index("--augment") + 1] == "none"
    result = blocker.args[0]
    variant = result["images"][0]["variants"][0]
    assert variant["boxes"]
    plain = drawn(os.path.join(result["out"], variant["file"]), [], result["classes"]).toImage()   # no box
    shown = preview.grid.itemAtPosition(0, 0).widget().pixmap().toImage()
    x1, y1, x2, y2 = (v * 112 / 64 for v in variant["boxes"][0]["box"])
    x, y = int((x1 + x2) / 2), int(y1)                                 # on the box's top edge
    assert shown.pixelColor(x, y) != plain.pixelColor(x, y)
    assert json.loads(open(os.path.join(result["out"], "preview.json")).read()) == result


def test_noise_travels_as_a_flag():
    assert train_flags(TrainConfig()).count("--noise") == 0
    flags = train_flags(TrainConfig(noise=8.0))
    assert flags[flags.index("--noise") + 1] == "8.0"
