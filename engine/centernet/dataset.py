"""Detection records → tensors: the image transformed, its CenterNet targets, and how to map back.

`DetectionDataset[i]` is (image (3, S, S), targets (see targets.encode), meta) where meta holds the
record's index and the `LetterboxParams` that map boxes in the network input back to the image's
own pixels (for evaluation: exact with the eval transform; training does not use it).
`collate` stacks a batch. A file that cannot be read any more (moved since the data check) does not
stop training: the next record is used in its place, as data/classify.py's ImageDataset does.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from ..data.images import BadImage, load_rgb, printable_path
from ..errors import DataError
from . import targets as T
from .transforms import letterbox_params, make_target

log = logging.getLogger(__name__)
MAX_SUBSTITUTES = 16


class DetectionDataset(Dataset):
    def __init__(self, records: Sequence[Any], transform: Callable, num_classes: int, size: int,
                 stride: int = T.STRIDE, max_objects: int = T.MAX_OBJECTS, targets: str = "centernet"):
        self.records = list(records)
        self.transform = transform
        self.num_classes = num_classes
        self.size = size
        self.stride = stride
        self.max_objects = max_objects
        self.targets = targets          # "centernet" (targets.encode) | "ttf" (targets.encode_ttf)
        self._failed: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, index: int):
        n = len(self.records)
        first = None
        for attempt in range(min(n, MAX_SUBSTITUTES)):
            rec = self.records[(index + attempt) % n]
            try:
                return rec, (index + attempt) % n, load_rgb(rec.path)
            except BadImage as e:
                first = first or e
                if rec.path not in self._failed:
                    self._failed.add(rec.path)
                    log.warning("%s: %s (since the data check); using another image in its place",
                                printable_path(rec.path), e.reason)
        raise DataError(f"{first}: and the images after it could not be read either",
                        "the data changed since it was checked: run `frelon check` on it")

    def transformed(self, index: int) -> tuple[torch.Tensor, dict[str, Any], int, tuple[int, int]]:
        """(image tensor, target with tv_tensors.BoundingBoxes, the record used, its (width, height))
        after the transform: what __getitem__ encodes, and what `frelon preview-augment` draws."""
        rec, used, image = self._load(index)
        width, height = image.size
        target = make_target(rec.boxes, rec.labels, rec.iscrowd, width, height)
        tensor, target = self.transform(image, target)
        return tensor, target, used, (width, height)

    def __getitem__(self, index: int):
        tensor, target, used, (width, height) = self.transformed(index)
        out_h, out_w = tensor.shape[-2] // self.stride, tensor.shape[-1] // self.stride
        boxes = target["boxes"].as_subclass(torch.Tensor)
        if self.targets == "ttf":
            encoded = T.encode_ttf(boxes, target["labels"], self.num_classes, (out_h, out_w),
                                   iscrowd=target["iscrowd"], stride=self.stride)
        else:
            encoded = T.encode(boxes, target["labels"], self.num_classes, (out_h, out_w),
                               iscrowd=target["iscrowd"], stride=self.stride, max_objects=self.max_objects)
        meta = {"index": used, "letterbox": letterbox_params(width, height, self.size)}
        return tensor, encoded, meta


def collate(batch: list[tuple]) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[dict]]:
    images = torch.stack([b[0] for b in batch])
    return images, T.collate_targets([b[1] for b in batch]), [b[2] for b in batch]
