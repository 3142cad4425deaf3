"""Precision–recall curves from pycocotools' accumulated array: hand-checked on a tiny case, and
their means equal to the APs Frelon reports (one evaluation, never two that could disagree)."""
from __future__ import annotations

import pytest
import torch

from frelon.engine.centernet.decode import Detections
from frelon.engine.cocoeval import coco_map
from frelon.engine.data.detection import DetectionRecord
from frelon.common.metrics import precision_recall


def _dets(rows):
    return Detections(torch.tensor([r[0] for r in rows], dtype=torch.float32).reshape(-1, 4),
                      torch.tensor([r[1] for r in rows]), torch.tensor([r[2] for r in rows], dtype=torch.long))


def test_curves_by_hand():
    # x: 3 boxes; ranked detections TP .9, FP .8, TP .7 → precision 1 up to recall 1/3, 2/3 up to 2/3, then 0
    # y: 1 box, found with IoU 100/140 = 0.71: a hit at IoU 0.5…0.7 (5 of the 10 thresholds), a miss above
    # z: no box at all → undefined
    recs = [DetectionRecord("a", "a", 100, 100, [[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0], [False, False], 1),
            DetectionRecord("b", "b", 100, 100, [[0, 0, 10, 10], [50, 50, 60, 64]], [0, 1], [False, False], 2)]
    dets = [_dets([([0, 0, 10, 10], 0.9, 0), ([40, 40, 50, 50], 0.8, 0), ([20, 20, 30, 30], 0.7, 0)]),
            _dets([([50, 50, 60, 60], 0.6, 1)])]
    m = coco_map(recs, dets, ["x", "y", "z"])
    c = m["pr_curves"]
    assert c["recall"][:3] == [0.0, 0.01, 0.02] and len(c["recall"]) == 101
    x = [1.0] * 34 + [pytest.approx(2 / 3, abs=1e-4)] * 33 + [0.0] * 34
    assert c["iou_50"]["x"] == x and c["iou_50_95"]["x"] == x        # exact boxes: every IoU threshold
    assert c["iou_50"]["y"] == [1.0] * 101
    assert c["iou_50_95"]["y"] == [0.5] * 101
    assert c["iou_50"]["z"] is None and c["iou_50_95"]["z"] is None
    assert c["iou_50"]["all"] == [pytest.approx((a + 1.0) / 2, abs=1e-4) for a in [1.0] * 34 + [2 / 3] * 33 + [0.0] * 34]
    assert m["per_class_50"] == {"x": pytest.approx(56 / 101), "y": pytest.approx(1.0), "z": None}
    assert m["per_class"] == {"x": pytest.approx(56 / 101), "y": pytest.approx(0.5), "z": None}


def _mean(curve):
    return sum(curve) / len(curve)


def test_each_curve_averages_to_its_ap():
    """On random detections: every curve's mean is the AP reported beside it (map, map_50, per class)."""
    g = torch.Generator().manual_seed(0)
    recs, dets = [], []
    for i in range(6):
        boxes = (torch.rand(4, 2, generator=g) * 60).repeat(1, 2) + torch.tensor([0, 0, 20, 25])
        labels = torch.randint(0, 3, (4,), generator=g)
        recs.append(DetectionRecord(str(i), str(i), 100, 100, boxes.tolist(), labels.tolist(), [False] * 4, i))
        noisy = boxes + torch.randn(4, 4, generator=g) * 4
        dets.append(Detections(torch.cat([noisy, torch.rand(3, 4, generator=g).cumsum(1) * 30]),
                               torch.rand(7, generator=g), torch.randint(0, 3, (7,), generator=g)))
    m = coco_map(recs, dets, ["a", "b", "c"])
    c = m["pr_curves"]
    assert 0 < m["map"] < m["map_50"] < 1
    assert _mean(c["iou_50_95"]["all"]) == pytest.approx(m["map"], abs=1e-4)
    assert _mean(c["iou_50"]["all"]) == pytest.approx(m["map_50"], abs=1e-4)
    for name in "abc":
        assert _mean(c["iou_50_95"][name]) == pytest.approx(m["per_class"][name], abs=1e-4)
        assert _mean(c["iou_50"][name]) == pytest.approx(m["per_class_50"][name], abs=1e-4)


def test_no_detection_gives_flat_zero_curves_and_no_ground_truth_none():
    recs = [DetectionRecord("a", "a", 50, 50, [[5, 5, 20, 20]], [0], [False], 1)]
    none = [_dets([])]
    m = coco_map(recs, none, ["x", "y"])
    assert m["pr_curves"]["iou_50"] == {"all": [0.0] * 101, "x": [0.0] * 101, "y": None}
    empty = [DetectionRecord("b", "b", 50, 50, [], [], [], 2)]
    assert coco_map(empty, none, ["x", "y"])["pr_curves"] is None


def test_precision_recall_from_a_confusion_matrix():
    # rows true, columns predicted: 8 cats (6 right, 2 called dog), 4 dogs (1 called cat), no bird
    pr = precision_recall([[6, 2, 0], [1, 3, 0], [0, 0, 0]], ["cat", "dog", "bird"])
    assert pr["cat"] == {"precision": 6 / 7, "recall": 6 / 8, "support": 8, "predicted": 7}
    assert pr["dog"] == {"precision": 3 / 5, "recall": 3 / 4, "support": 4, "predicted": 5}
    assert pr["bird"] == {"precision": None, "recall": None, "support": 0, "predicted": 0}


def test_a_detection_run_writes_its_curves_and_eval_gives_them(tmp_path):
    """Through the CLI: the best epoch's pr_curves.json in the run folder, the same figures in the
    epoch_end event (per-class AP at both IoUs) and the curves in `frelon eval --json`."""
    import json

    from frelon.engine.centernet import shapes
    from runhelp import events_of, only_run, run_cli
    data = shapes.make_dataset(tmp_path / "shapes", 8, 4, size=64, seed=2)
    r = run_cli("train", "--data", data, "--backbone", "resnet18", "--weights", "none", "--image-size", "64",
                "--epochs", "1", "--batch-size", "4", "--workers", "0", "--out", tmp_path / "runs",
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "runs")
    val = next(e for e in events_of(run) if e["type"] == "epoch_end")["val"]
    assert set(val["per_class_50"]) == set(shapes.CLASSES) and "pr_curves" not in val
    curves = json.loads((run / "pr_curves.json").read_text())
    assert set(curves["iou_50"]) == {"all", *shapes.CLASSES} and len(curves["recall"]) == 101
    if val["map"] is not None:
        assert _mean(curves["iou_50_95"]["all"]) == pytest.approx(val["map"], abs=1e-4)
    r = run_cli("eval", "--run", run, "--data", data / "val", "--json", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert set(ev["pr_curves"]["iou_50_95"]) == {"all", *shapes.CLASSES}
    for name, ap in ev["per_class_50"].items():
        if ap is not None:
            assert _mean(ev["pr_curves"]["iou_50"][name]) == pytest.approx(ap, abs=1e-4)
