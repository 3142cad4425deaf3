"""`frelon predict`: a trained run applied to an image, a folder or a COCO JSON.

Classification writes, per image, `{file_name | image_id, predicted, score, probabilities: {class: p}}`;
detection writes the COCO results format (centernet/predict.py). A file that cannot be read is
skipped and listed with its reason in the summary (and on stderr); the others are still predicted.
With `as_annotations`, a detection run also writes the boxes scoring at least `threshold` as draft
COCO annotations of the inputs (engine/coco_writer.py), for a person to accept, edit or reject.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from .data.images import BadImage, load_rgb
from .inference import list_inputs, load_run
from .rundir import atomic_write_json
from .transforms import eval_transform

BATCH = 16


def predict(run: str, input_path: str, out: str, draw: str | None = None, heatmaps: str | None = None,
            checkpoint: str = "best", device: str = "auto", as_annotations: str | None = None,
            threshold: float = 0.3) -> dict:
    loaded = load_run(run, checkpoint, device)
    items, root = list_inputs(input_path)
    if as_annotations and loaded.task_name != "detect":
        from .errors import ConfigurationError
        raise ConfigurationError("--as-annotations writes boxes: it needs a detection run",
                                 hint="for a classifier, --out holds each image's predicted class")
    if loaded.task_name == "detect":
        from .centernet.predict import category_ids, predict_detection
        results, skipped = predict_detection(loaded, items, draw=draw, heatmaps=heatmaps)
        if as_annotations:
            from frelon.common import coco_doc
            from .coco_writer import drafts_document
            coco_doc.save(drafts_document(results, items, loaded.classes, category_ids(loaded), threshold,
                                          root, str(loaded.run_dir)), as_annotations)
    else:
        results, skipped = _predict_classification(loaded, items, draw)
    atomic_write_json(Path(out), results)
    for s in skipped:
        print(f"frelon: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    return {"images": len(items) - len(skipped), "skipped": len(skipped), "predictions": len(results),
            "skipped_files": skipped}


def _key(item: dict) -> dict:
    return {"image_id": item["image_id"]} if "image_id" in item else {"file_name": item["file_name"]}


@torch.no_grad()
def _predict_classification(loaded, items: list[dict], draw: str | None) -> tuple[list, list]:
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
                _draw_label(image, f"{loaded.classes[best]} {float(p[best]):.2f}", Path(draw) / item["file_name"])
        batch_items.clear(), batch_images.clear(), originals.clear()

    for item in items:
        if item["path"] is None:
            skipped.append({"path": item["file_name"], "reason": "points outside the dataset folder"})
            continue
        try:
            image = load_rgb(item["path"])
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


def _draw_label(image, text: str, out: Path) -> None:
    from PIL import ImageDraw
    image = image.copy()
    d = ImageDraw.Draw(image)
    box = d.textbbox((4, 4), text)
    d.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
    d.text((4, 4), text, fill=(255, 255, 255))
    out = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
