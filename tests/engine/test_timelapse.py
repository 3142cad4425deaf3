"""Predictions across epochs (engine/timelapse.py): the fixed images, what is stored per epoch for
each task from the tasks' own evaluation, resumes replacing an epoch, and the training loop calling
it at each epoch end, cheaply."""
from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from frelon.engine import timelapse
from frelon.engine.classify.transforms import eval_transform
from runhelp import make_colour_folder, recording_writer

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def _classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _evaluate(task, model, dataset, classes):
    """The task's own evaluation of `dataset`, as the training loop runs it on one rank."""
    from torch.utils.data import DataLoader
    from frelon.engine.distributed import Ranks
    from frelon.engine.sampling import Seeded, ShardSampler
    from frelon.engine.centernet.dataset import collate
    loader = DataLoader(Seeded(dataset), batch_size=4, sampler=ShardSampler(len(dataset), 1, 0),
                        collate_fn=collate if task.name == "detect" else None)
    return task.evaluate(model.eval(), loader, torch.device("cpu"), Ranks(0, 1, 0, torch.device("cpu")), classes)


def test_classification_top3_of_the_fixed_images(tmp_path):
    from frelon.engine.data.classify import ImageDataset
    from frelon.engine.tasks.classify import ClassifyTask
    data = make_colour_folder(tmp_path / "data", per_class=5, classes=("blue", "green", "red"))
    classes = ["blue", "green", "red"]
    samples = [(str(p), classes.index(p.parent.name)) for p in sorted(data.glob("*/*.png"))]
    dataset = ImageDataset(samples, eval_transform(32, MEAN, STD))
    model = _classifier()
    details = _evaluate(ClassifyTask(), model, dataset, classes).details
    doc = timelapse.record_epoch(tmp_path, "classify", details, samples, classes, 0, seed=7)
    assert [im["index"] for im in doc["images"]] == timelapse.chosen(15, 7) and len(doc["images"]) == 8
    first = doc["images"][0]
    assert first["path"] == samples[first["index"]][0] and first["label"] == classes[samples[first["index"]][1]]
    (entry,) = doc["epochs"]
    with torch.no_grad():
        probs = model(dataset[first["index"]][0][None]).softmax(1)[0]
    top = entry["predictions"][0]
    assert [c for c, _ in top] == [classes[i] for i in probs.argsort(descending=True).tolist()]
    assert [p for _, p in top] == pytest.approx(sorted(probs.tolist(), reverse=True), abs=1e-4)
    with torch.no_grad():
        model[-1].bias += torch.tensor([0.0, 0.0, 5.0])                       # "learns" red
    details = _evaluate(ClassifyTask(), model, dataset, classes).details
    doc = timelapse.record_epoch(tmp_path, "classify", details, samples, classes, 1, seed=99)   # another seed:
    assert [im["index"] for im in doc["images"]] == timelapse.chosen(15, 7)                # the same images
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert all(p[0][0] == "red" for p in doc["epochs"][1]["predictions"])
    doc = timelapse.record_epoch(tmp_path, "classify", details, samples, classes, 1, seed=7)  # a resume redoes 1
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert json.loads((tmp_path / "timelapse.json").read_text()) == doc


def test_detection_boxes_in_the_images_own_pixels(tmp_path):
    from frelon.engine.centernet import shapes
    from frelon.engine.centernet.dataset import DetectionDataset
    from frelon.engine.centernet.decode import decode_to_original
    from frelon.engine.centernet.model import CenterNet
    from frelon.engine.centernet.transforms import eval_transform as detect_eval
    from frelon.engine.data.detection import scan_detection
    root = shapes.make_dataset(tmp_path / "shapes", 4, 3, size=96, seed=1)
    scanned = scan_detection(str(root), val_split=0.0)
    dataset = DetectionDataset(scanned.val, detect_eval(64, MEAN, STD), 3, 64, targets="ttf")
    torch.manual_seed(0)
    layers, c = [], 3
    for out in (16, 16, 32, 32, 32):
        layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    model = CenterNet(nn.Sequential(*layers), 32, 3, neck_channels=(32, 16, 16)).eval()
    from frelon.engine.tasks.detect import DetectTask
    details = _evaluate(DetectTask(), model, dataset, scanned.classes).details
    doc = timelapse.record_epoch(tmp_path, "detect", details, scanned.val, scanned.classes, 0, seed=0)
    assert len(doc["images"]) == 3 and "label" not in doc["images"][0]
    # the same batch as the evaluation's (one of all the pictures: a random model's heatmap is nearly
    # flat, so how many peaks it has depends on the convolution's batch)
    items = [dataset[i] for i in range(len(dataset))]
    with torch.no_grad():
        dets = decode_to_original(model(torch.stack([image for image, _, _ in items])),
                                  [meta["letterbox"] for _, _, meta in items])
    det = dets[doc["images"][0]["index"]]
    boxes = doc["epochs"][0]["predictions"][0]
    keep = det.scores >= timelapse.MIN_SCORE
    assert len(boxes) == min(int(keep.sum()), timelapse.MAX_BOXES) > 0
    x1, y1, x2, y2, name, score = boxes[0]
    assert [x1, y1, x2, y2] == pytest.approx(det.boxes[0].tolist(), abs=0.06) and score == pytest.approx(float(det.scores[0]), abs=1e-4)
    assert name in scanned.classes and 0 <= x1 <= x2 <= 96 and 0 <= y1 <= y2 <= 96


def test_the_loop_records_every_epoch_cheaply(tmp_path, monkeypatch):
    """The training loop calls record_epoch at each epoch end (rank 0, after the evaluation) with
    that evaluation's details; timed here by wrapping it."""
    from frelon.engine.training.run import run_training
    from frelon.common.train_config import resolve
    spent = []
    record = timelapse.record_epoch

    def timed(*args, **kwargs):
        start = time.perf_counter()
        doc = record(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return doc
    monkeypatch.setattr(timelapse, "record_epoch", timed)
    data = make_colour_folder(tmp_path / "data", per_class=10)
    cfg = resolve({"data": str(data), "out": str(tmp_path / "runs"), "epochs": 2, "image_size": 32,
                   "batch_size": 4, "weights": "none", "workers": 0, "backbone": "resnet18"})
    writer, emitted = recording_writer()
    fields = run_training(cfg, writer, lambda: False)
    assert fields["status"] == "completed"
    doc = json.loads((tmp_path / "runs" / next((tmp_path / "runs").iterdir()).name / "timelapse.json").read_text())
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1] and len(doc["images"]) == 4     # every val image (4 < 8)
    durations = [e["duration_s"] for e in emitted if e["type"] == "epoch_end"]
    print(f"time-lapse: {[round(s, 4) for s in spent]} s per epoch of {[round(d, 2) for d in durations]} s")
    assert len(spent) == 2 and all(s < 0.05 * d for s, d in zip(spent, durations))     # the samples: README
