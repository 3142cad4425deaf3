"""A trained classifier applied: `frelon predict` and `frelon eval` for a classification run.

Prediction writes, per image, `{file_name | image_id, predicted, score, probabilities: {class: p}}`
(with `draw`, a copy of the image with its label). Evaluation reads a labelled set like training
data (its val/ part when it has one), its classes matched by name to the run's, and scores it with
the task's own evaluation. `loaded` is an inference.LoadedRun.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data.images import BadImage, load_rgb
from ..distributed import Ranks
from ..errors import DataError
from ..sampling import Seeded, ShardSampler
from .transforms import decode_short_side, eval_transform

BATCH = 16


def _key(item: dict) -> dict:
    return {"image_id": item["image_id"]} if "image_id" in item else {"file_name": item["file_name"]}


@torch.no_grad()
def predict_classification(loaded, items: list[dict], draw: str | None) -> tuple[list, list]:
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    results, skipped = [], []
    batch_items, batch_images, originals = [], [], []

    def flush():
        if not batch_items:
            return
        probs = loaded.model(torch.stack(batch_images).to(loaded.device)).float().softmax(1).cpu()
        for item, p, image in zip(batch_items, probs, originals):
            best = int(p.argmax())
            results.append({**_key(item), "predicted": loaded.classes[best], "score": float(p[best]),
                            "probabilities": {c: float(v) for c, v in zip(loaded.classes, p)}})
            if draw:
                draw_label(image, f"{loaded.classes[best]} {float(p[best]):.2f}", Path(draw) / item["file_name"])
        batch_items.clear(), batch_images.clear(), originals.clear()

    for item in items:
        if item["path"] is None:
            skipped.append({"path": item["file_name"], "reason": "points outside the dataset folder"})
            continue
        try:
            image = load_rgb(item["path"], 0 if draw else decode_short_side(loaded.size))
        except BadImage as e:
            skipped.append({"path": item["file_name"], "reason": e.reason})
            continue
        batch_items.append(item)
        batch_images.append(transform(image))
        originals.append(image if draw else None)
        if len(batch_items) == BATCH:
            flush()
    flush()
    return results, skipped


def draw_label(image, text: str, out: Path) -> None:
    from PIL import ImageDraw
    image = image.copy()
    d = ImageDraw.Draw(image)
    box = d.textbbox((4, 4), text)
    d.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
    d.text((4, 4), text, fill=(255, 255, 255))
    out = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)


def labelled_samples(loaded, data: str) -> tuple[list[tuple[str, int]], list[dict]]:
    """(path, label in the run's classes) of a labelled classification set — its val/ part when it
    has one — and the files skipped; classes the run does not know are a DataError."""
    from ..data.classify import scan_classification
    scanned = scan_classification(data, val_split=0.0)
    unknown = [c for c in scanned.classes if c not in loaded.classes]
    if unknown:
        raise DataError(f"{data}: classes the model was not trained on: {', '.join(unknown)}",
                        hint=f"the run knows: {', '.join(loaded.classes)}")
    samples = scanned.val if scanned.val else scanned.train
    remap = [loaded.classes.index(c) for c in scanned.classes]
    return [(path, remap[label]) for path, label in samples], scanned.report["skipped"]


def evaluate_classification(loaded, data: str) -> dict:
    from ..data.classify import ImageDataset
    samples, skipped = labelled_samples(loaded, data)
    ds = ImageDataset(samples, eval_transform(loaded.size, loaded.mean, loaded.std), decode_short_side(loaded.size))
    loader = DataLoader(Seeded(ds), batch_size=32, sampler=ShardSampler(len(ds), 1, 0))
    ranks = Ranks(0, 1, 0, loaded.device)
    evaluation = loaded.task.evaluate(loaded.model, loader, loaded.device, ranks, loaded.classes)
    out = dict(evaluation.metrics)
    out["skipped"] = skipped
    out["data"] = str(data)
    out["run"] = str(loaded.run_dir)
    return out
