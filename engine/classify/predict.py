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

from ..data.images import read_input
from ..distributed import Ranks
from ..errors import DataError
from ..sampling import Seeded, ShardSampler
from .transforms import decode_short_side, eval_transform

BATCH = 16


def key(item: dict) -> dict:
    return {"image_id": item["image_id"]} if "image_id" in item else {"file_name": item["file_name"]}


@torch.no_grad()
def predict_classification(loaded, items: list[dict], draw: str | None) -> tuple[list, list]:
    results, skipped = [], []
    for batch, originals, logits in image_batches(loaded, items, skipped, draw):
        for item, p, image in zip(batch, logits.softmax(1), originals):
            best = int(p.argmax())
            results.append({**key(item), "predicted": loaded.classes[best], "score": float(p[best]),
                            "probabilities": {c: float(v) for c, v in zip(loaded.classes, p)}})
            if draw:
                draw_label(image, f"{loaded.classes[best]} {float(p[best]):.2f}", Path(draw) / item["file_name"])
    return results, skipped


def image_batches(loaded, items: list[dict], skipped: list, keep_originals):
    """(items, their pictures (with `keep_originals`, else None), the model's float logits on the
    CPU) in batches of BATCH; what cannot be read goes to `skipped` with its reason."""
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    batch, tensors, originals = [], [], []
    for k, item in enumerate(items):
        image = read_input(item, skipped, 0 if keep_originals else decode_short_side(loaded.size))
        if image is not None:
            batch.append(item), tensors.append(transform(image))
            originals.append(image if keep_originals else None)
        if batch and (len(batch) == BATCH or k + 1 == len(items)):
            yield batch, originals, loaded.model(torch.stack(tensors).to(loaded.device)).float().cpu()
            batch, tensors, originals = [], [], []


def top_scores(scores, classes, top: int) -> list:
    """The `top` highest of one picture's scores, [[class, score]] (the time-lapse's summary)."""
    best = sorted(range(len(scores)), key=lambda c: -scores[c])[:top]
    return [[classes[c], round(float(scores[c]), 4)] for c in best]


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
