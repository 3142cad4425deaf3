"""Per-class views in Results: precision/recall beside the confusion matrix, detection AP and PR
curves (from the engine's own pr_curves), and a class click filtering the pictures to it."""
from __future__ import annotations

import json

from frelon.common import events as ev
from frelon.gui.panels.classification_results import ClassificationResults
from frelon.gui.panels.results_panel import ResultsPanel



def _grab(widget, name):
    import os
    folder = os.environ.get("FRELON_SHOTS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def test_classification_precision_recall_and_class_filter(qtbot, tmp_path):
    w = ClassificationResults()
    qtbot.addWidget(w)
    w.set_metrics({}, ["cat", "dog"], [[6, 2], [1, 3]])
    cells = [[w.per_class.item(r, c).text() for c in range(4)] for r in range(2)]
    assert cells == [["cat", "85.7%", "75.0%", "8"], ["dog", "60.0%", "75.0%", "4"]]
    preds = [{"path": str(tmp_path / f"{i}.png"), "true": t, "predicted": p, "score": 0.6}
             for i, (t, p) in enumerate([("cat", "dog"), ("dog", "cat"), ("dog", "dog"), ("cat", "cat")])]
    w.set_validation_predictions(preds, ["cat", "dog"])
    assert w.thumbs.count() == 4
    w.per_class.cellClicked.emit(0, 0)                  # "cat": true or predicted cat
    assert w.class_filter == "cat"
    assert sorted(w.thumbs.item(i).toolTip().split("\n")[0] for i in range(w.thumbs.count())) == \
        sorted(preds[i]["path"] for i in (0, 1, 3))
    w.per_class.cellClicked.emit(0, 0)                  # again: all
    assert w.class_filter == "" and w.thumbs.count() == 4


def _detect_run(tmp_path):
    """A detection run folder whose metrics and curves come from the engine's own evaluation."""
    import torch
    from PIL import Image
    from frelon.engine.centernet.decode import Detections
    from frelon.engine.cocoeval import coco_map
    from frelon.engine.data.detection import DetectionRecord
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    classes = ["circle", "square"]
    recs, dets, preds = [], [], []
    for i in range(3):
        path = tmp_path / f"im{i}.png"
        Image.new("RGB", (100, 80), (40 * i, 90, 160)).save(path)
        recs.append(DetectionRecord(str(path), path.name, 100, 80, [[10, 10, 40, 40], [50, 20, 90, 70]], [0, 1],
                                    [False, False], i + 1))
        boxes = torch.tensor([[11.0, 9, 41, 40], [52, 25, 88, 70], [0, 0, 20, 20]])
        labels = [0, 1, i % 2]
        dets.append(Detections(boxes, torch.tensor([0.9, 0.6 - 0.2 * i, 0.5]), torch.tensor(labels)))
        for b, s, lab in zip(boxes.tolist(), dets[-1].scores.tolist(), labels):
            if lab == 0 or i == 0:           # square only in the first picture
                preds.append({"image_id": i + 1, "file_name": path.name, "path": str(path), "category_id": lab + 1,
                              "category": classes[lab], "score": s, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    m = coco_map(recs, dets, classes)
    curves = m.pop("pr_curves")
    (run / "pr_curves.json").write_text(json.dumps(curves))
    (run / "predictions" / "val.json").write_text(json.dumps(preds))
    (run / "model.json").write_text(json.dumps({"task": "detect", "classes": classes}))
    evs = [ev.make("epoch_end", epoch=0, train_loss=1.0, duration_s=1.0, val={**m, "loss": 0.5}),
           ev.make("run_finished", status="completed", epochs_done=1, duration_s=1.0,
                   best={"epoch": 0, "metric": "map", "score": m["map"]})]
    (run / "events.jsonl").write_text("".join(ev.dumps(e) + "\n" for e in evs))
    return run, m


def test_detection_ap_table_curves_and_class_filter(qtbot, tmp_path):
    run, m = _detect_run(tmp_path)
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 640)
    panel.load_run(str(run))
    pr = panel.pr_curves
    table = [[pr.table.item(r, c).text() for c in range(3)] for r in range(3)]
    assert table[0] == ["all classes", f"{m['map']:.3f}", f"{m['map_50']:.3f}"]
    assert table[1] == ["circle", f"{m['per_class']['circle']:.3f}", f"{m['per_class_50']['circle']:.3f}"]
    assert len(pr.plot.getPlotItem().listDataItems()) == 3          # two classes and all
    assert len(panel.detect.images) == 3
    _grab(panel, "results-detection-pr.png")
    pr.table.cellClicked.emit(2, 0)                                 # square: only the first picture has one
    assert pr.selected == "square"
    assert len(panel.detect.images) == 1 and {d.label for d in panel.detect.detections[panel.detect.images[0]]} == {"square"}
    pr.iou.setCurrentText("IoU 0.5")
    items = pr.plot.getPlotItem().listDataItems()
    assert list(items[1].getData()[1]) == pr.curves["iou_50"]["square"]
    pr.table.cellClicked.emit(0, 0)                                 # all classes again
    assert pr.selected == "" and len(panel.detect.images) == 3
