"""Detection for `frelon predict`, `frelon eval` and `frelon export`: a loaded run applied to images.

`predict_detection` writes nothing itself: it returns COCO results ({image_id or file_name,
category_id, category, bbox [x, y, w, h], score}, in each image's own pixels, scores down to the
decoder's floor) and the skipped inputs; with `draw` it saves each image with its boxes
(class colours, labels and scores, boxes scoring at least common/run_folder.py's SCORE_THRESHOLD), with `heatmaps` each
image's heatmap (max over classes) as an 8-bit PNG of the image's own size, ready to overlay.
`evaluate_detection` scores a run on a labelled set of any layout, classes matched by name.
A run trained with slicing (config.json's `slicing` "on") predicts and is scored sliced: each
picture's overlapping tiles and its whole view merged (centernet/slicing.py); heatmaps stay the
whole view's.
`onnx_module` is the network with plain tensor outputs for the ONNX export.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F

from frelon.common.choices import DETECT
from frelon.common.run_folder import SCORE_THRESHOLD, class_rgb

from ..data.detection import relabel, safe_join
from ..data.images import read_input
from .decode import decode_to_original
from .model import CenterNetExport
from .slicing import sliced_detections
from .transforms import LetterboxParams, eval_transform, letterbox_params

BATCH = 8


def class_colours(n: int) -> list[tuple[int, int, int]]:
    """The n classes' colours: each class's colour in the app too (common/run_folder.py)."""
    return [class_rgb(i) for i in range(n)]


def _key(item: dict) -> dict:
    return {"image_id": item["image_id"]} if item.get("image_id") is not None else {"file_name": item["file_name"]}


def category_ids(loaded) -> list[int]:
    ids = (loaded.info.get("detector") or {}).get("category_ids") or []
    return ids if len(ids) == len(loaded.classes) else list(range(1, len(loaded.classes) + 1))


def image_batches(items: Iterable[dict], skipped: list[dict], transform, size: int):
    """Batches of (item, original image, tensor, letterbox params); unreadable inputs skipped."""
    batch: list[tuple] = []
    for item in items:
        image = read_input(item, skipped)
        if image is None:
            continue
        batch.append((item, image, transform(image), letterbox_params(image.width, image.height, size)))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def run_model(model, images: torch.Tensor, device) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in model(images.to(device)).items()}


@torch.no_grad()
def predict_detection(loaded, items: Sequence[dict], draw: str | None = None,
                      heatmaps: str | None = None) -> tuple[list[dict], list[dict]]:
    """(COCO results, skipped [{path, reason}]) for `items` [{path, file_name, image_id?}]."""
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    ids = category_ids(loaded)
    results: list[dict] = []
    skipped: list[dict] = []
    for batch in image_batches(items, skipped, transform, loaded.size):
        outputs = run_model(loaded.model, torch.stack([b[2] for b in batch]), loaded.device)
        dets = sliced_if_trained(loaded, batch, decode_to_original(outputs, [b[3] for b in batch]), transform)
        for i, ((item, image, _, params), det) in enumerate(zip(batch, dets)):
            results += detections_json(det, loaded.classes, ids, _key(item))
            if draw:
                save_drawing(image, det, loaded.classes, _out_path(draw, item["file_name"], ".jpg"))
            if heatmaps:
                save_heatmap(outputs["heatmap"][i], params, loaded.size, _out_path(heatmaps, item["file_name"], ".png"))
    return results, skipped


def sliced_if_trained(loaded, batch, whole: list, transform) -> list:
    """The batch's detections: the whole views' (`whole`), or for a run that sliced
    (config `slicing` on) each picture's tiles merged with its whole view (centernet/slicing.py)."""
    if loaded.config.slicing != "on":
        return whole
    return [sliced_detections(loaded.model, b[1], loaded.size, transform, loaded.device, det)
            for b, det in zip(batch, whole)]


def detections_json(det, classes: Sequence[str], category_ids: Sequence[int], key: dict) -> list[dict]:
    out = []
    for box, score, label in zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist()):
        x1, y1, x2, y2 = box
        out.append({**key, "category_id": category_ids[label], "category": classes[label],
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(score), 5)})
    return out


def _out_path(folder: str, file_name: str, suffix: str) -> Path:
    """folder/file_name with `suffix`, never outside `folder` (file names come from the input)."""
    target = safe_join(Path(folder), str(file_name)) or Path(folder) / Path(str(file_name)).name
    return target.with_suffix(suffix)


def save_drawing(image, det, classes: Sequence[str], out: Path, threshold: float = SCORE_THRESHOLD) -> None:
    """The image with its detections scoring ≥ threshold: class-coloured boxes, label and score."""
    from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image
    from torchvision.utils import draw_bounding_boxes
    keep = det.scores >= threshold
    colours = class_colours(len(classes))
    labels = [f"{classes[c]} {s:.2f}" for c, s in zip(det.labels[keep].tolist(), det.scores[keep].tolist())]
    width = max(1, round(max(image.width, image.height) / 250))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not labels:
        image.save(out, quality=92)
        return
    drawn = draw_bounding_boxes(pil_to_tensor(image), det.boxes[keep].cpu(), labels=labels,
                                colors=[colours[c] for c in det.labels[keep].tolist()], width=width)
    to_pil_image(drawn).save(out, quality=92)


def heatmap_image(logits: torch.Tensor, params: LetterboxParams, size: int) -> torch.Tensor:
    """(C, h, w) heatmap logits → (H, W) uint8, the max over classes at the original image's size."""
    heat = logits.float().sigmoid().amax(0, keepdim=True)[None]            # (1, 1, h, w)
    heat = F.interpolate(heat, size=(size, size), mode="bilinear", align_corners=False)
    new_w = max(1, round(params.width * params.scale))
    new_h = max(1, round(params.height * params.scale))
    heat = heat[..., params.pad_y:params.pad_y + new_h, params.pad_x:params.pad_x + new_w]
    heat = F.interpolate(heat, size=(params.height, params.width), mode="bilinear", align_corners=False)
    return (heat[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def save_heatmap(logits: torch.Tensor, params: LetterboxParams, size: int, out: Path) -> None:
    from PIL import Image
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(heatmap_image(logits, params, size).numpy(), "L").save(out)


# ---------------------------------------------------------------- evaluation on a labelled set

@torch.no_grad()
def evaluate_detection(loaded, data: str, val_data: str = "") -> dict[str, Any]:
    """mAP, mAP@0.5 and per-class AP of a run on a labelled dataset (COCO / VOC / YOLO).

    Every image of `data` counts, except when its layout has its own train / val split: then the
    val part. Classes are matched by name; boxes of classes the model does not know are reported
    and left out, and a class of the model absent from the data has AP None."""
    from ..cocoeval import coco_map
    records, dropped, scanned = labelled_records(loaded, data, val_data)
    transform = eval_transform(loaded.size, loaded.mean, loaded.std)
    detections, skipped = [], list(scanned.report["skipped"])
    kept = []
    items = [{"path": r.path, "file_name": r.file_name, "record": r} for r in records]
    for batch in image_batches(items, skipped, transform, loaded.size):
        outputs = run_model(loaded.model, torch.stack([b[2] for b in batch]), loaded.device)
        detections += sliced_if_trained(loaded, batch, decode_to_original(outputs, [b[3] for b in batch]), transform)
        kept += [b[0]["record"] for b in batch]
    metrics = coco_map(kept, detections, loaded.classes)
    warnings = list(scanned.report["warnings"])
    if dropped:
        warnings.append(f"{sum(dropped.values())} box(es) of classes the model does not know were left out: "
                        + ", ".join(f"{c} ({n})" for c, n in sorted(dropped.items())))
    return {"task": DETECT, **metrics, "images": len(kept), "classes": list(loaded.classes),
            "layout": scanned.layout, "skipped": skipped, "warnings": warnings}


def labelled_records(loaded, data: str, val_data: str = ""):
    """(records of a labelled set — its val part when its layout has one — with labels in the
    model's classes, {class the model does not know: boxes dropped}, the scan)."""
    from ..data.detection import scan_detection
    scanned = scan_detection(data, val_data=val_data, val_split=0.0)
    records, dropped = relabel_to_model(scanned.val or scanned.train, scanned.classes, loaded.classes)
    return records, dropped, scanned


def relabel_to_model(records, data_classes: Sequence[str], model_classes: Sequence[str]):
    """Records with labels re-indexed into the model's classes, and {class: boxes dropped}."""
    index = {name: i for i, name in enumerate(model_classes)}
    dropped: Counter[str] = Counter()
    for rec in records:
        dropped.update(relabel(rec, data_classes, index))
    return records, dict(dropped)


def onnx_module(model) -> tuple[torch.nn.Module, tuple[str, ...]]:
    """(module with outputs (heatmap probabilities, size, offset), their names) for torch.onnx.export."""
    wrapper = CenterNetExport(model)
    return wrapper, wrapper.output_names
