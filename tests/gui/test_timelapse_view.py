"""The Time-lapse tab of Results: the engine's timelapse.json (written here by
engine/timelapse.record_epoch) replayed with a slider, top-3 classes or boxes per picture."""
from __future__ import annotations

import json
import os

import torch
from PIL import Image

from frelon.engine import timelapse
from frelon.gui.panels.results_panel import ResultsPanel


def _pictures(folder, n):
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.new("RGB", (100, 80), (30 * i, 120, 200)).save(path)
        paths.append(str(path))
    return paths


def test_classification_epochs_replayed(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    classes = ["cat", "coffee"]
    samples = [(p, i % 2) for i, p in enumerate(_pictures(tmp_path / "pics", 4))]
    (run / "model.json").write_text(json.dumps({"task": "classify", "classes": classes}))
    for epoch, p_cat in enumerate((0.4, 0.9)):           # epoch 0 unsure and wrong on cats, epoch 1 right
        details = [(i, [p_cat, 1 - p_cat] if label == 0 else [0.3, 0.7]) for i, (_, label) in enumerate(samples)]
        timelapse.record_epoch(run, "classify", details, samples, classes, epoch, seed=0)
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    view = panel.timelapse
    assert view.slider.maximum() == 1 and view.slider.value() == 1 and view.epoch_label.text() == "2 of 2"
    doc = json.loads((run / "timelapse.json").read_text())
    cat = next(k for k, im in enumerate(doc["images"]) if im["label"] == "cat")
    assert "cat 90% ✓" in view.captions[cat].text()
    view.slider.setValue(0)
    assert view.epoch_label.text() == "1 of 2" and view.captions[cat].text().index("coffee 60%") < \
        view.captions[cat].text().index("cat 40%")
    assert not view.images[cat].pixmap().isNull()
    if os.environ.get("FRELON_SHOTS"):
        panel.classify_page.setCurrentWidget(view)
        panel.grab().save(os.path.join(os.environ["FRELON_SHOTS"], "timelapse-test.png"))


def test_detection_boxes_per_epoch_and_no_file(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"task": "detect", "classes": ["circle", "square"]}))
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    assert panel.detect_timelapse.note.isVisibleTo(panel.detect_timelapse) and not panel.detect_timelapse.slider.isEnabled()

    class Rec:
        def __init__(self, path):
            self.path = path
    records = [Rec(p) for p in _pictures(tmp_path / "pics", 2)]
    box = torch.tensor([[10.0, 10, 60, 50]])
    for epoch, score in enumerate((0.1, 0.8)):
        details = [(i, box, torch.tensor([score]), torch.tensor([1])) for i in range(2)]
        timelapse.record_epoch(run, "detect", details, records, ["circle", "square"], epoch, seed=0)
    panel.load_run(str(run))
    view = panel.detect_timelapse
    assert view.captions[0].text() == "1 box(es) ≥ 0.30"
    edge = view.images[0].pixmap().toImage().pixelColor(int(35 * 1.8), int(10 * 1.8))   # the box's top edge, 180/100
    view.slider.setValue(0)                                                              # 0.1: not drawn
    assert view.captions[0].text() == "0 box(es) ≥ 0.30"
    assert view.images[0].pixmap().toImage().pixelColor(int(35 * 1.8), int(10 * 1.8)) != edge
