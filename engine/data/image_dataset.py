"""`ImageDataset`: classification samples read during training, robust to a file that has become
unreadable since the data check.

Its own module because it imports torch: classify.py hands it on when it is first asked for, so
`frelon check` (the rest of the data layer) starts without torch.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .images import BadImage, load_rgb, printable_path

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """`(path, label)` pairs -> `(image, label)`, the image passed through `transform`
    (default: a float CHW tensor in [0, 1]). Each picture is decoded with its short side kept at
    `min_short` at least (images.load_rgb's draft decoding; 0 = full resolution), through `cache`
    (resized_cache.ResizedCache) when given.

    A file that cannot be read any more (deleted, drive gone, rewritten) does not stop the run:
    the next sample in the list is used in its place (deterministically), the failure is logged
    once and recorded in `failures` as (path, reason). With DataLoader workers each worker
    records its own failures (in its copy of the dataset); the log line is what reaches the user.
    If many files in a row fail, the data is gone and DataError is raised."""

    MAX_SUBSTITUTES = 16

    def __init__(self, samples: Sequence[Tuple[str, int]],
                 transform: Optional[Callable[[Any], Any]] = None, min_short: int = 0, cache=None):
        self.samples = list(samples)
        self.min_short = min_short
        self.cache = cache
        self.targets = [label for _, label in self.samples]
        self.transform = transform
        self.failures: List[Tuple[str, str]] = []
        self._failed = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        first_error = None
        for attempt in range(min(n, self.MAX_SUBSTITUTES)):
            path, label = self.samples[(index + attempt) % n]
            try:
                image = self.decode(path)
            except BadImage as e:
                first_error = first_error or e
                self._record(path, e.reason)
                continue
            return self._convert(image), label
        raise DataError(f"{first_error}: and the {min(n, self.MAX_SUBSTITUTES) - 1} images after it "
                        "could not be read either",
                        "the data changed since it was checked: is the drive still connected? "
                        "Run `frelon check` on it")

    def decode(self, path: str):
        """The picture at `path` at the resolution the transform needs. Raises BadImage."""
        if self.cache is not None:
            return self.cache.load(path, self.min_short)
        return load_rgb(path, self.min_short)

    def _convert(self, image):
        if self.transform is not None:
            return self.transform(image)
        array = np.asarray(image, dtype=np.uint8).copy()
        return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)

    def _record(self, path: str, reason: str) -> None:
        self.failures.append((path, reason))
        if path not in self._failed:
            self._failed.add(path)
            log.warning("%s: %s (since the data check); using another image in its place",
                        printable_path(path), reason)
