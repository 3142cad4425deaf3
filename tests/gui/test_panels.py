"""Each panel builds, and its widgets change what it produces (options, flags, filters, lists)."""
from __future__ import annotations

import json
import sys

import pytest
from PySide6.QtGui import QColor, QImage

from frelon.common import events as ev
from frelon.gui.panels.data_panel import DataPanel
from frelon.gui.panels.detection_results import DetectionResults
from frelon.gui.panels.results_panel import ResultsPanel
from frelon.gui.panels.runs_panel import RunsPanel
from frelon.gui.panels.training_panel import TrainingPanel
from frelon.gui.widgets.detection_view import Detection
from frelon.gui.options import train_flags

INFO = {"default_backbone": "efficientnet_lite0",
        "backbones": [{"name": "resnet18", "params": 11_689_512, "weights_available": False,
                       "weights_source": "needs a download (44 MB)"},
                      {"name": "efficientnet_lite0", "params": 4_652_008, "weights_available": True,
                       "weights_source": "bundled package"}],
        "devices": {"cuda": [], "cpu": {"name": "test cpu", "cores": 2, "ram": 1 << 33}}}


def test_training_panel_offers_exactly_the_engines_choices(qtbot):
    from frelon.common.choices import CHOICES
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    for option in ("task", "detector", "schedule", "optimizer", "augment", "flip", "checkpointing"):
        combo = getattr(panel, option)
        assert tuple(combo.itemData(i) for i in range(combo.count())) == CHOICES[option], option
    assert panel.optimizer.itemText(0) == "AdamW" and panel.augment.itemText(0) == "default"


def test_training_panel_widgets_change_the_options(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_info(INFO)
    assert panel.options().backbone == "efficientnet_lite0"          # the offline one is preselected
    assert "offline" in panel.weights_status.text()
    assert not panel.gpus.isEnabled() and "No CUDA GPU" in panel.gpu_reason.text()
    assert not panel.amp.isEnabled()                                   # AMP needs a GPU
    with qtbot.waitSignal(panel.options_changed) as blocker:
        panel.batch.setValue(64)
    assert blocker.args[0].batch_size == 64
    panel.backbone.setCurrentIndex(panel.backbone.findData("resnet18"))
    assert "download" in panel.weights_status.text()
    panel.lr.setValue(2e-3)
    panel.checkpointing.setCurrentIndex(panel.checkpointing.findData("stages"))
    panel.schedule.setCurrentIndex(panel.schedule.findData("step"))
    panel.freeze.setChecked(True)
    panel.epochs.setValue(3)
    o = panel.options()
    assert (o.backbone, o.lr, o.checkpointing, o.schedule, o.freeze_backbone, o.epochs) == \
        ("resnet18", 2e-3, "stages", "step", True, 3)
    flags = train_flags(o)
    assert flags[flags.index("--checkpointing") + 1] == "stages" and "--freeze-backbone" in flags
    assert "0.00283" in panel.effective.text()                          # 2e-3 × √(64 / 32), AdamW's rule
    assert "square-root rule" in panel.effective.text()
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("sgd"))
    panel.ref_batch.setValue(256)
    assert "0.0005" in panel.effective.text()                           # SGD: 2e-3 × 64 / 256, linear
    assert "third more compute" in panel.checkpointing.toolTip()


def test_training_panel_shows_the_automatic_lr_of_the_task_it_will_train(qtbot):
    """auto LR: AdamW's base is 3e-4 to 1e-3 to fine-tune a classifier (chosen at Start from the
    features' fit), 1e-3 to train a detector's new parts; the panel shows what the engine will use
    for the task the data doctor found, the classifier's range as two curves."""
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_info(INFO)
    panel.batch.setValue(32)                                           # AdamW's reference batch
    assert panel.lr.text() == "auto (0.0003–0.001)" and "<b>0.0003–0.001</b>" in panel.effective.text()
    assert "chosen at Start" in panel.effective.text() and "nearest-neighbour" in panel.effective.toolTip()
    assert max(panel.lr_preview()[1]) == pytest.approx(1e-3)
    assert max(panel.lr_curve_low.getData()[1]) == pytest.approx(3e-4)
    panel.set_detected_task("detect")
    assert panel.lr.text() == "auto (0.001)" and "<b>0.001</b>" in panel.effective.text()
    assert "chosen at Start" not in panel.effective.text() and panel.lr_curve_low.getData()[0] is None
    assert max(panel.lr_preview()[1]) == pytest.approx(1e-3)
    assert panel.options().task == ""                                  # still "from the data" on the command line
    panel.task.setCurrentIndex(panel.task.findData("classify"))        # the user's choice wins
    assert "<b>0.0003–0.001</b>" in panel.effective.text()
    panel.lr.setValue(5e-4)                                            # a given LR: one value, one curve
    assert "<b>0.0005</b>" in panel.effective.text() and "chosen at Start" not in panel.effective.text()


def test_training_panel_gpus_and_preview(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    info = dict(INFO, devices={"cuda": [{"index": i, "name": "H100", "total_memory": 80 << 30} for i in range(4)],
                               "cpu": {}})
    panel.set_info(info)
    assert panel.gpus.isEnabled() and panel.gpus.maximum() == 4 and panel.gpus.value() == 1
    panel.set_train_images(1000)
    panel.batch.setValue(50)
    x1, y1 = panel.lr_preview()
    panel.gpus.setValue(4)
    assert panel.amp.isEnabled()
    x4, y4 = panel.lr_preview()
    assert max(y4) == __import__("pytest").approx(2 * max(y1))         # 4x the global batch, AdamW: 2x the LR
    assert len(x4) < len(x1)                                           # and 4x fewer steps
    assert "4 devices" in panel.effective.text()


def test_training_panel_restores_options(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    o = panel.options().replace(epochs=9, augment="randaugment", optimizer="sgd", warmup_epochs=2.5)
    panel.set_options(o)
    assert panel.options() == o


def make_images(folder, n=3, size=(64, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        im = QImage(*size, QImage.Format.Format_RGB32)
        im.fill(QColor("#3366aa"))
        p = folder / f"img{i}.png"
        im.save(str(p))
        paths.append(p)
    return paths


def test_data_panel_shows_the_report(qtbot, tmp_path, fake_engine):
    for cls in ("absent", "present"):
        make_images(tmp_path / "data" / cls)
    panel = DataPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.report_ready, timeout=10_000):
        panel.set_path(str(tmp_path / "data"))
    assert "2 classes" in panel.status.text() and "1 file(s) skipped" in panel.status.text()
    assert panel.skipped.rowCount() == 1 and "truncated" in panel.skipped.item(0, 1).text()
    assert panel.duplicates.rowCount() == 1 and "two classes" in panel.duplicates.item(0, 0).text()
    assert panel.thumbs.count() == 6
    qtbot.waitUntil(lambda: panel.thumbs.pending() == 0, timeout=5000)


def test_data_panel_reports_a_failure(qtbot, tmp_path, fake_engine):
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_path(str(tmp_path / "missing"))
    qtbot.waitUntil(lambda: "could not read" in panel.status.text(), timeout=10_000)
    assert "no such folder" in panel.status.text()


def test_detection_report_draws_boxes(qtbot, tmp_path):
    img = make_images(tmp_path, 1, (200, 100))[0]
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_report({"task": "detect", "root": str(tmp_path), "layout": "coco", "classes": ["hornet", "bee"],
                      "splits": {"train": {"counts": {"hornet": 1}, "boxes": {"hornet": 2, "bee": 1}, "images": 1}},
                      "images": [{"path": img.name, "boxes": [[10, 10, 50, 50], [100, 20, 30, 30]],
                                  "labels": ["hornet", "bee"]}]})
    assert panel.thumbs.count() == 1 and "2 boxes" in panel.thumbs.item(0).text()
    assert panel.bars.counts == {"train": {"hornet": 2, "bee": 1}}


def detections():
    return [Detection("hornet", 0, (10, 10, 40, 40), 0.95), Detection("bee", 1, (60, 10, 30, 30), 0.5),
            Detection("hornet", 0, (5, 50, 20, 20), 0.12), Detection("bee", 1, (80, 60, 10, 10), 0.02)]


def test_threshold_slider_filters_boxes(qtbot, tmp_path):
    imgs = make_images(tmp_path, 2, (160, 120))
    panel = DetectionResults()
    qtbot.addWidget(panel)
    panel.set_results([str(p) for p in imgs], {str(imgs[0]): detections()})
    assert panel.view.total_count() == 4
    panel.slider.setValue(30)
    assert panel.view.visible_count() == 2
    panel.slider.setValue(10)
    assert panel.view.visible_count() == 3
    panel.slider.setValue(1)
    assert panel.view.visible_count() == 4
    panel.slider.setValue(99)
    assert panel.view.visible_count() == 0 and "0 of 4" in panel.threshold_label.text()
    panel.next.click()
    assert panel.index == 1 and panel.view.total_count() == 0 and not panel.next.isEnabled()
    panel.prev.click()
    assert panel.index == 0 and panel.view.total_count() == 4


def test_heatmap_overlay(qtbot, tmp_path):
    img = make_images(tmp_path / "in", 1, (160, 120))[0]
    heat = make_images(tmp_path / "heat", 1, (40, 30))[0]
    heat.rename(tmp_path / "heat" / (img.stem + ".png"))
    panel = DetectionResults()
    qtbot.addWidget(panel)
    panel.set_results([str(img)], {str(img): detections()}, str(tmp_path / "heat"))
    assert panel.heatmap.isEnabled() and not panel.view.has_heatmap()
    panel.heatmap.setChecked(True)
    assert panel.view.has_heatmap()
    panel.heatmap.setChecked(False)
    assert not panel.view.has_heatmap()


def write_run(root, name, accuracy, lr=1e-3, status="completed", task="classify"):
    run = root / name
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"lr": lr, "epochs": 2, "backbone": "resnet18", "task": task}))
    (run / "model.json").write_text(json.dumps({"task": task, "classes": ["cat", "dog"]}))
    (run / "confusion_matrix.json").write_text(json.dumps({"classes": ["cat", "dog"], "matrix": [[5, 1], [2, 4]]}))
    (run / "predictions" / "val.json").write_text(json.dumps([
        {"path": str(run / "x.png"), "true": "cat", "predicted": "dog", "probabilities": [0.3, 0.7]},
        {"path": str(run / "y.png"), "true": "cat", "predicted": "cat", "probabilities": [0.9, 0.1]}]))
    events = [ev.make("run_started", run_dir=str(run), config={}, task=task, backbone="resnet18",
                      classes=["cat", "dog"], world_size=1, device="cpu", effective_lr=lr, global_batch=8,
                      steps_per_epoch=5, total_steps=10)]
    events += [ev.make("step", epoch=i // 5, step=i + 1, loss=1.0 / (i + 1), lr=lr, samples_per_s=10.0, eta_s=1.0,
                       memory=[{"rank": 0, "device": "cpu", "rss": 1e8}]) for i in range(10)]
    events.append(ev.make("epoch_end", epoch=1, train_loss=0.3, duration_s=1.0,
                          val={"loss": 0.4, "accuracy": accuracy, "per_class": {"cat": 0.8, "dog": 0.6}}))
    events.append(ev.make("run_finished", status=status, epochs_done=2, best=None, duration_s=5.0))
    (run / "events.jsonl").write_text("".join(ev.dumps(e) + "\n" for e in events))
    return run


def test_runs_panel_lists_selects_and_compares(qtbot, tmp_path):
    write_run(tmp_path, "20240101-000000-a", 0.7, lr=1e-3)
    write_run(tmp_path, "20240102-000000-b", 0.8, lr=2e-3, status="stopped")
    (tmp_path / "not-a-run").mkdir()
    panel = RunsPanel(str(tmp_path))
    qtbot.addWidget(panel)
    assert panel.tree.topLevelItemCount() == 2
    texts = {panel.tree.topLevelItem(i).text(0): panel.tree.topLevelItem(i) for i in range(2)}
    assert texts["20240102-000000-b"].text(3) == "stopped"
    assert texts["20240101-000000-a"].text(5) == "accuracy 0.700"
    a, b = str(tmp_path / "20240101-000000-a"), str(tmp_path / "20240102-000000-b")
    with qtbot.waitSignal(panel.run_selected) as blocker:
        panel.select(a)
    assert blocker.args == [a]
    panel.select(a, b)
    assert panel.compare.isEnabled()
    assert panel.diff.rowCount() == 1 and panel.diff.item(0, 0).text() == "lr"
    with qtbot.waitSignal(panel.compare_requested) as blocker:
        panel.compare.click()
    assert sorted(blocker.args) == sorted([a, b])


def test_results_panel_classification(qtbot, tmp_path):
    run = write_run(tmp_path, "r", 0.75)
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    assert "75.0%" in panel.header.text()
    assert panel.classify.per_class.rowCount() == 2
    assert panel.classify.matrix.matrix == [[5, 1], [2, 4]]
    thumbs = panel.classify.thumbs
    assert thumbs.count() == 2 and thumbs.item(0).text() == "cat → dog 0.70"     # the wrong one first
    assert thumbs.item(1).text() == "✓ cat 0.90"                                 # then the least sure right one


def test_results_panel_runs_predict_and_shows_detections(qtbot, tmp_path, monkeypatch):
    run = write_run(tmp_path, "r", 0.5, task="detect")
    images = make_images(tmp_path / "photos", 2, (120, 90))
    preds = [{"file_name": images[0].name, "category_id": 0, "category": "cat", "bbox": [5, 5, 30, 30], "score": 0.9},
             {"file_name": images[0].name, "category_id": 1, "category": "dog", "bbox": [50, 5, 30, 30], "score": 0.05}]
    script = tmp_path / "fake_predict.py"
    script.write_text("import json, sys\nargs = sys.argv[1:]\nout = args[args.index('--out') + 1]\n"
                      f"open(out, 'w').write({json.dumps(json.dumps(preds))})\n"
                      "assert '--json' in args\n"          # the answer says what was written where, as the real one
                      "print(json.dumps({'out': out, 'input': args[args.index('--input') + 1], "
                      "'heatmaps': args[args.index('--heatmaps') + 1], 'images': 2, 'skipped': 0}))\n")
    monkeypatch.setenv("FRELON_GUI_ENGINE", f'"{sys.executable}" "{script}"')
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    with qtbot.waitSignal(panel.predict.done, timeout=10_000):
        args = panel.run_predict(str(tmp_path / "photos"))
    assert args[:2] == ["predict", "--run"] and "--heatmaps" in args
    assert panel.stack.currentWidget() is panel.detect_page
    assert len(panel.detect.images) == 2 and panel.detect.view.total_count() == 2
    assert panel.detect.view.visible_count() == 1                      # 0.05 is under the 0.30 threshold


def test_heat_overlay_is_transparent_where_nothing_is_seen(qtbot):
    from frelon.gui.widgets.detection_view import heat_overlay
    grey = QImage(3, 1, QImage.Format.Format_Grayscale8)
    for x, v in enumerate((0, 128, 255)):
        grey.setPixelColor(x, 0, QColor(v, v, v))
    out = heat_overlay(grey)
    alphas = [out.pixelColor(x, 0).alpha() for x in range(3)]
    assert alphas[0] == 0 and 0 < alphas[1] <= alphas[2] and alphas[2] > 200
