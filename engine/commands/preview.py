"""`frelon preview-augment`: training images as the training pipeline transforms them.

Nothing is re-implemented: the training dataset is built by the task exactly as `frelon train`
builds it (same data scan, split, image size, transforms, `--augment`, `--flip`, `--noise`,
`--random-erasing`), and each variant is the sample the training loader would yield for that image
at that epoch — `sampling.seeded` with `sample_seed(seed, epoch, index)`, the same seeding as
`Seeded` — so the preview is what trains, pixel for pixel. Variant j of an image is its sample at
epoch `epoch + j`; "re-draw" is a later epoch.

The images shown are `images` training images picked with the run seed. Each variant is written as
DIR/<image>-<variant>.png (the network input, normalisation undone, 8-bit), and DIR/preview.json
lists them with, for detection, the boxes after the transform (xyxy in the PNG's pixels, class
names; what SanitizeBoundingBoxes kept). Earlier previews' PNGs in DIR are removed.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .. import backbones
from frelon.common.train_config import TrainConfig
from ..rundir import atomic_write_json
from ..sampling import sample_seed
from ..tasks import get_task, infer_task

DEFAULT_IMAGES = 2
DEFAULT_COUNT = 6
_OURS = re.compile(r"^\d\d-\d\d\.png$")


def to_pixels(tensor: torch.Tensor, mean, std) -> torch.Tensor:
    """A normalised (3, H, W) network input → uint8 (3, H, W) pixels."""
    m = torch.tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return ((tensor * s + m).clamp(0, 1) * 255).round().to(torch.uint8)


def training_dataset(cfg: TrainConfig, workers: int = 0):
    """(task, scanned data, image size, preprocessing, training dataset) as training makes them."""
    from frelon.common.run_folder import data_or_sample
    cfg = cfg.replace(data=data_or_sample(cfg.data, cfg.task))
    task_name = cfg.task or infer_task(cfg.data)
    cfg = cfg.replace(task=task_name)
    task = get_task(task_name)
    scanned = task.scan(cfg, workers)
    size = cfg.resolved_image_size(task_name, scanned.report.get("median_size"))
    weights = backbones.get_spec(cfg.backbone).weights          # preprocessing = the weights' mean / std
    pre = {"mean": list(weights.mean), "std": list(weights.std)}
    slicing = cfg.resolved_slicing(scanned.report.get("objects"), size)      # as settle.py decides it
    train, _, _ = task.datasets(scanned, cfg.replace(image_size=size, slicing=slicing), size, pre)
    return task, scanned, size, pre, train


def preview_augment(cfg: TrainConfig, out: str | Path, images: int = DEFAULT_IMAGES, count: int = DEFAULT_COUNT,
                    epoch: int = 0, workers: int = 0) -> dict:
    from PIL import Image
    task, scanned, size, pre, train = training_dataset(cfg, workers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if _OURS.match(old.name):
            old.unlink()
    g = torch.Generator().manual_seed(cfg.seed)
    picks = sorted(torch.randperm(len(train), generator=g)[:max(1, images)].tolist())
    classes = list(scanned.classes)
    shown = []
    for k, index in enumerate(picks):
        entry: dict = {"index": index, "variants": [], **task.describe(scanned.train[index], classes)}
        for j in range(max(1, count)):
            e = epoch + j
            seed = sample_seed(cfg.seed, e, index)
            tensor, boxes, labels = task.sample(train, index, seed)   # (image, boxes (N, 4) | None, labels)
            name = f"{k:02d}-{j:02d}.png"
            Image.fromarray(to_pixels(tensor, pre["mean"], pre["std"]).permute(1, 2, 0).numpy(), "RGB").save(out / name)
            variant = {"file": name, "epoch": e, "seed": seed}
            if boxes is not None:
                variant["boxes"] = [{"box": [round(v, 2) for v in b], "class": classes[int(c)]}
                                    for b, c in zip(boxes.tolist(), labels.tolist())]
            entry["variants"].append(variant)
        shown.append(entry)
    result = {"task": task.name, "size": size, "seed": cfg.seed, "epoch": epoch, "augment": cfg.augment,
              "flip": cfg.flip, "noise": cfg.noise, "random_erasing": cfg.random_erasing, "classes": classes,
              "out": str(out), "images": shown}
    atomic_write_json(out / "preview.json", result)
    return result
