"""`frelon explain` for a classifier: a Grad-CAM map (gradcam.py) per explained class of each picture.

Which classes a picture's maps are for is the task's word (`pick`: the predicted class for a
single-label classifier; a multi-label task names each label it predicts), or the one `--class`
asks for. Each picture goes through the evaluation transform (resize, centre crop: what `predict`
and `eval` see); its map is laid back on the picture's own pixels (outside the centre crop the
model saw nothing: no heat there) and written as `<NNN>-<name>-<class>.png` in `out`, with a ring
at the peak. The peak is the strongest cell's centre, in the picture's pixels (`peak`) and the
network input's (`peak_input`); `cell` is the map's resolution in input pixels.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.images import read_input
from ..overlay import save_overlay
from ..rundir import safe_name
from .gradcam import class_maps, strongest_cell, upsampled
from .transforms import CROP_RATIO, eval_transform


def crop_geometry(width: int, height: int, size: int) -> tuple[float, float, int, int, int, int]:
    """(scale x, scale y, left, top, resized width, resized height) of the evaluation transform:
    the short side resized to round(size / CROP_RATIO) (torchvision's rule for the long side),
    then a centred size × size crop."""
    short = round(size / CROP_RATIO)
    if width <= height:
        new_w, new_h = short, int(short * height / width)
    else:
        new_w, new_h = int(short * width / height), short
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    return new_w / width, new_h / height, left, top, new_w, new_h


def on_picture(heat: torch.Tensor, width: int, height: int, size: int) -> torch.Tensor:
    """A (size, size) map of the network input → (height, width), the picture's own pixels."""
    import torch.nn.functional as F
    _, _, left, top, new_w, new_h = crop_geometry(width, height, size)
    canvas = torch.zeros(new_h, new_w)                  # the resized picture holds the crop whole
    canvas[top:top + size, left:left + size] = heat
    return F.interpolate(canvas[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def explain_pictures(loaded, items: list[dict], out: Path, pick, class_scores) -> tuple[list, list]:
    """(entries, skipped) for `items` [{path, file_name}]: `pick(logits)` → the class indices to map,
    `class_scores(logits)` → each class's score (softmax, or a multi-label task's sigmoid)."""
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    layer = loaded.model.backbone.last_block()
    entries, skipped = [], []
    for number, item in enumerate(items):
        image = read_input(item, skipped)
        if image is None:
            continue
        logits, maps = class_maps(loaded.model, layer, transform(image)[None].to(loaded.device), pick)
        scores = class_scores(logits)
        entry = {"file_name": str(item["file_name"]), "path": str(item["path"]), "maps": []}
        for m in maps:
            entry["maps"].append(_draw(loaded, image, m, float(scores[m.index]), out, number, item))
        entries.append(entry)
    return entries, skipped


def _draw(loaded, image, m, score: float, out: Path, number: int, item: dict) -> dict:
    size, name = loaded.size, loaded.classes[m.index]
    cells = m.cells.cpu()
    x, y = strongest_cell(cells, size)
    sx, sy, left, top, _, _ = crop_geometry(image.width, image.height, size)
    peak = ((x + left) / sx, (y + top) / sy)
    png = f"{number:03d}-{safe_name(Path(str(item['file_name'])).stem)}-{safe_name(name)}.png"
    save_overlay(image, on_picture(upsampled(cells, size), image.width, image.height, size), out / png, peak)
    return {"class": name, "score": round(score, 5), "png": png,
            "peak": [round(peak[0], 1), round(peak[1], 1)], "peak_input": [round(x, 1), round(y, 1)],
            "cell": round(size / cells.shape[1], 2), "method": "grad-cam"}
