"""What `frelon export --int8` needs of a classifier: calibration pictures and an accuracy to compare.

Calibration: `n` pictures of the run's own training split (its data, split and seed as trained),
drawn with `seed`, through the evaluation transform — what the exported model will be fed.
Score: the accuracy on the run's validation split, through the same transform, of any `run`
(a float or an INT8 onnxruntime session's): the two figures `export --int8` puts side by side.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.classify import ImageDataset
from .transforms import eval_transform

BATCH = 16


class ClassifierQuantization:
    metric = "accuracy"

    def __init__(self, loaded, train: list, val: list, source: str):
        self.transform = eval_transform(loaded.size, loaded.mean, loaded.std)
        self.train, self.val, self.source = train, val, source

    def calibration(self, n: int, seed: int = 0) -> list[np.ndarray]:
        """Batches (at most BATCH pictures each) of `n` training pictures drawn with `seed`."""
        picks = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        return [images.numpy() for images, _ in self._batches([self.train[i] for i in sorted(picks)])]

    def score(self, run) -> dict:
        """{metric, value, images, predicted: [class index per validation picture]}."""
        predicted, right = [], 0
        for images, labels in self._batches(self.val):
            (logits, *_) = run(images.numpy())
            best = np.asarray(logits).argmax(1)
            predicted += best.tolist()
            right += int((best == labels.numpy()).sum())
        return {"metric": self.metric, "value": right / max(1, len(self.val)), "images": len(self.val),
                "predicted": predicted}

    def _batches(self, samples):
        return DataLoader(ImageDataset(samples, self.transform), batch_size=BATCH, shuffle=False)
