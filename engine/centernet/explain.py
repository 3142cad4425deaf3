"""`frelon explain` for a detector: its CenterNet heatmap laid over each picture.

A CenterNet's heatmap already says where it looks: one map per class whose peaks are the object
centres it finds. Each picture goes through the evaluation letterbox (what `predict` sees); the
heatmap (max over classes, or the class `--class` asks for) is brought back to the picture's own
pixels (predict.heatmap_image: the letterbox undone) and written as `<NNN>-<name>-<class>.png`
with a ring at its peak. `peak` is in the picture's pixels, `score` the heat there, `class` the
class whose map peaks there.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..overlay import peak_of, save_overlay
from ..rundir import safe_name
from .predict import heatmap_image, image_batches, run_model
from .transforms import eval_transform


def explain_pictures(loaded, items: list[dict], out: Path, class_index: int | None) -> tuple[list, list]:
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    entries, skipped = [], []
    numbered = [{**item, "number": n} for n, item in enumerate(items)]
    for batch in image_batches(numbered, skipped, transform, loaded.size):
        outputs = run_model(loaded.model, torch.stack([b[2] for b in batch]), loaded.device)
        for (item, image, _, params), logits in zip(batch, outputs["heatmap"]):
            entries.append(_explain_one(loaded, item, image, params, logits, class_index, out))
    return entries, skipped


def _explain_one(loaded, item, image, params, logits, class_index, out: Path) -> dict:
    per_class = [heatmap_image(logits[c:c + 1], params, loaded.size) for c in range(logits.shape[0])]
    stacked = torch.stack(per_class).float() / 255                  # (C, H, W) on the picture
    heat = stacked[class_index] if class_index is not None else stacked.amax(0)
    x, y = peak_of(heat)
    c = class_index if class_index is not None else int(stacked[:, y, x].argmax())
    name = loaded.classes[c]
    which = name if class_index is not None else "all"
    png = f"{item['number']:03d}-{safe_name(Path(str(item['file_name'])).stem)}-{safe_name(which)}.png"
    save_overlay(image, heat, out / png, (x, y))
    return {"file_name": str(item["file_name"]), "path": str(item["path"]),
            "maps": [{"class": name, "score": round(float(heat[y, x]), 5), "png": png, "peak": [x, y],
                      "classes": "all (max over classes)" if class_index is None else name,
                      "method": "centernet heatmap"}]}
