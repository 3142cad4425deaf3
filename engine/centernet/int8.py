"""What `frelon export --int8` needs of a detector: calibration pictures and an mAP to compare.

Calibration: `n` pictures of the run's own training split (its data, split and seed as trained),
drawn with `seed`, through the evaluation letterbox. Score: the mAP (COCO AP over IoU 0.5:0.95,
what picks a detection run's best epoch) on the run's validation split of any `run` (a float or an
INT8 onnxruntime session's): the exported heatmap is probabilities, turned back into logits for
the decoder that training's evaluation uses (the same peaks, the same scores), each image's boxes
mapped back through its letterbox and scored with pycocotools (`evaluate`: tasks/detect.py's).
"""
from __future__ import annotations

import numpy as np
import torch

from .decode import decode_to_original
from .predict import image_batches
from .transforms import eval_transform

EPS = 1e-6          # the heatmap's probabilities clamped off 0 and 1 before the logit


class DetectorQuantization:
    metric = "map"

    def __init__(self, loaded, train: list, val: list, source: str, evaluate):
        self.transform = eval_transform(loaded.size, loaded.mean, loaded.std)
        self.size, self.classes, self.evaluate = loaded.size, list(loaded.classes), evaluate
        self.train, self.val, self.source = train, val, source

    def calibration(self, n: int, seed: int = 0) -> list[np.ndarray]:
        picks = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        return [torch.stack([b[2] for b in batch]).numpy() for batch in self._batches([self.train[i] for i in sorted(picks)])]

    def score(self, run) -> dict:
        rows = []
        for batch in self._batches(self.val):
            heat, size, offset = (torch.from_numpy(np.asarray(o)) for o in run(torch.stack([b[2] for b in batch]).numpy()))
            outputs = {"heatmap": torch.logit(heat.float(), eps=EPS), "size": size, "offset": offset}
            for (item, *_), det in zip(batch, decode_to_original(outputs, [b[3] for b in batch])):
                rows.append((item["index"], det.boxes, det.scores, det.labels))
        metrics = self.evaluate(self.val, rows, self.classes)
        return {"metric": self.metric, "value": metrics["map"], "images": len(self.val)}

    def _batches(self, records):
        items = [{"path": r.path, "file_name": r.file_name, "index": i} for i, r in enumerate(records)]
        return image_batches(items, [], self.transform, self.size)
