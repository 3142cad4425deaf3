"""`frelon preview-augment` shows what trains: each picture equals the training dataset's sample
for that image, seed and epoch (built here as training/run.py builds it, drawn through the loader's
`Seeded`), boxes follow the image, and `--noise` adds the Gaussian noise it says."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from frelon.engine import backbones
from frelon.engine.classify import transforms
from frelon.engine.centernet import shapes
from frelon.common.train_config import resolve
from frelon.engine.sampling import Seeded, sample_seed
from frelon.engine.tasks import get_task
from runhelp import make_colour_folder, run_cli

ENV = {"OMP_NUM_THREADS": "1"}


def _training_set(options: dict):
    """The training dataset as engine/training/run.py makes it: task.scan, the size from the data, the
    backbone's own preprocessing (build_backbone), task.datasets."""
    cfg = resolve(options)
    task = get_task(cfg.task)
    scanned = task.scan(cfg, 0)
    size = cfg.resolved_image_size(cfg.task, scanned.report.get("median_size"))
    _, pre = backbones.build_backbone(cfg.backbone, "none")
    train, _, _ = task.datasets(scanned, cfg.replace(image_size=size), size, pre)
    return cfg, Seeded(train), pre


def _pixels(tensor, pre):
    m, s = torch.tensor(pre["mean"]).view(3, 1, 1), torch.tensor(pre["std"]).view(3, 1, 1)
    return ((tensor * s + m).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_classification_preview_is_the_training_sample(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=6)
    flags = ["--data", data, "--image-size", "32", "--seed", "3", "--noise", "8", "--backbone", "resnet18"]
    r = run_cli("preview-augment", *flags, "--out", tmp_path / "p", "--images", "2", "--count", "3",
                "--epoch", "5", "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result == json.loads((tmp_path / "p" / "preview.json").read_text())
    assert result["size"] == 32 and result["noise"] == 8 and len(result["images"]) == 2
    cfg, train, pre = _training_set({"data": str(data), "image_size": 32, "seed": 3, "noise": 8.0,
                                     "backbone": "resnet18", "task": "classify"})
    for shown in result["images"]:
        assert [v["epoch"] for v in shown["variants"]] == [5, 6, 7]
        pictures = []
        for v in shown["variants"]:
            expected, label = train[(shown["index"], sample_seed(3, v["epoch"], shown["index"]))]
            assert train.dataset.samples[shown["index"]][0] == shown["path"]
            pictures.append(_png(tmp_path / "p" / v["file"]))
            assert np.array_equal(pictures[-1], _pixels(expected, pre))
        assert not np.array_equal(pictures[0], pictures[1])          # each epoch draws anew


def test_detection_boxes_follow_the_image(tmp_path):
    data = shapes.make_dataset(tmp_path / "shapes", 4, 2, size=64, seed=1)
    base = ["--data", data, "--image-size", "32", "--backbone", "resnet18", "--images", "1", "--count", "2", "--json"]
    # no augmentation: the letterbox only, so every box is the annotation scaled to the square
    r = run_cli("preview-augment", *base, "--augment", "none", "--out", tmp_path / "none", env=ENV)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)["images"][0]
    doc = json.loads((data / "train" / "annotations.json").read_text())
    image = next(im for im in doc["images"] if shown["path"].endswith(im["file_name"]))
    scale = 32 / max(image["width"], image["height"])
    assert scale == 0.5
    names = {c["id"]: c["name"] for c in doc["categories"]}
    expected = sorted((names[a["category_id"]], [round(v * scale, 2) for v in
                                                 (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                  a["bbox"][1] + a["bbox"][3])])
                      for a in doc["annotations"] if a["image_id"] == image["id"])
    got = sorted((b["class"], b["box"]) for b in shown["variants"][0]["boxes"])
    assert [g[0] for g in got] == [e[0] for e in expected]
    for (_, g), (_, e) in zip(got, expected):
        assert g == pytest.approx(e, abs=0.02)
    # the default recipe: the picture is the training sample of that seed
    r = run_cli("preview-augment", *base, "--out", tmp_path / "default", env=ENV)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)["images"][0]
    cfg, train, pre = _training_set({"data": str(data), "image_size": 32, "backbone": "resnet18", "task": "detect"})
    for v in shown["variants"]:
        tensor, _, _ = train[(shown["index"], sample_seed(0, v["epoch"], shown["index"]))]
        assert np.array_equal(_png(tmp_path / "default" / v["file"]), _pixels(tensor, pre))
        for b in v["boxes"]:
            x1, y1, x2, y2 = b["box"]
            assert 0 <= x1 < x2 <= 32 and 0 <= y1 < y2 <= 32


def test_noise_is_gaussian_of_the_stated_levels():
    grey = torch.full((3, 64, 64), 0.5)
    torch.manual_seed(0)
    (op,) = transforms.noise(8.0)
    noisy = op(grey)
    assert (noisy - grey).std().item() == pytest.approx(8 / 255, rel=0.05)
    assert abs((noisy - grey).mean().item()) < 0.002
    assert transforms.noise(0.0) == []
    # in both training pipelines, on the pixels before normalisation
    from torchvision.transforms import v2
    from frelon.engine.centernet import transforms as detect_transforms
    for pipeline in (transforms.train_transform(32, [0.5] * 3, [0.2] * 3, "default", noise_std=8.0),
                     transforms.train_transform(32, [0.5] * 3, [0.2] * 3, "none", noise_std=8.0),
                     detect_transforms.train_transform(32, [0.5] * 3, [0.2] * 3, "default", noise_std=8.0)):
        kinds = [type(t) for t in pipeline.transforms]
        assert kinds.index(v2.GaussianNoise) == kinds.index(v2.Normalize) - 1
        assert kinds[kinds.index(v2.GaussianNoise) - 1] == v2.ToDtype
    r = run_cli("train", "--noise", "300", "--max-steps", "1")
    assert r.returncode == 2 and "noise" in r.stderr
