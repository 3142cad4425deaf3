"""`frelon robustness` on a detection run: mAP@0.5 of the detector under attack, ε by ε.

The attack raises the heatmap's penalty-reduced focal loss (centernet/loss.py, summed over the
batch) against the ground-truth heatmaps the training recipe draws (centernet/targets.py), on
[0, 1] pixels of the letterboxed evaluation input (centernet/transforms.eval_pixels), before
normalisation — the classifier's rules (attacks.py). The detections of the attacked images are
decoded as always and scored with pycocotools (cocoeval.coco_map). mAP is a figure of the whole
set, not of an image, so each ε's value is that attack's own (no "fooled at a smaller ε" carry-over):
with FGSM a larger step can, rarely, score a little higher than a smaller one.

The images: the run's validation split (its data, split and seed) or a labelled set (`--data`,
classes matched by name as in `frelon eval`).
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .. import attacks
from .dataset import DetectionDataset, collate
from .decode import Detections, decode_to_original
from .loss import focal_loss
from .transforms import eval_pixels
from ..sampling import Seeded, ShardSampler

BATCH = 8


def heatmap_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """The focal loss on the class heatmaps, summed over the batch (one image's gradient is its own)."""
    return focal_loss(outputs["heatmap"], targets["heatmap"], torch.ones((), device=outputs["heatmap"].device))


def detection_sweep(loaded, records, source: str, recipe: str, sweep: attacks.Sweep) -> dict:
    """The sweep over `records` (what `source` says they are), targets drawn by the run's `recipe`."""
    from ..cocoeval import coco_map
    dataset = DetectionDataset(records, eval_pixels(loaded.size), len(loaded.classes), loaded.size, targets=recipe)
    loader = DataLoader(Seeded(dataset), batch_size=BATCH, sampler=ShardSampler(len(dataset), 1, 0),
                        collate_fn=collate)
    model, dev = loaded.model, loaded.device
    attacked = sweep.attacker(model, loss=heatmap_loss)
    eps, attack, normalize, emit = sweep.eps, sweep.attack, sweep.normalize, sweep.emit
    map_50, map_all = [], []
    for k, e in enumerate(eps):
        detections = [None] * len(dataset)
        for pixels, targets, metas in loader:
            pixels = pixels.to(dev)
            targets = {key: v.to(dev) for key, v in targets.items()}
            x = attacked(pixels, targets, e) if e > 0 else pixels
            with torch.no_grad():
                outputs = {key: v.float() for key, v in model(normalize(x)).items()}
            for meta, det in zip(metas, decode_to_original(outputs, [m["letterbox"] for m in metas])):
                detections[meta["index"]] = det
        empty = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
        metrics = coco_map(dataset.records, [d if d is not None else empty for d in detections], loaded.classes)
        map_50.append(metrics["map_50"])
        map_all.append(metrics["map"])
        emit("robustness_eps", attack=attack, eps=e, metric="map_50", value=map_50[-1], images=len(dataset),
             index=k, of=len(eps))
    return {"metric": "map_50", "map_50": map_50, "map": map_all, "images": len(dataset), "data": source,
            "flipped": []}
