"""Sliced ("SAHI") prediction: small objects in big pictures seen at native resolution.

A picture is cut into tiles of the training size that overlap by a quarter of a tile (`tile_grid`:
the last tile of a row or column is moved back to end on the picture's edge, so every pixel is in
a tile); the network sees each tile letterboxed as in training (a tile is at native resolution,
scale 1) and the whole picture letterboxed, as without slicing, for the objects too big for a
tile. A box a tile cuts (one touching a tile border that is not the picture's) is dropped: the
overlap gives an object smaller than it whole to a neighbouring tile, and a larger one to the
whole picture. The rest are merged by class with torchvision's batched NMS (`merge`), best first,
at most TOP_K. `--slicing` (common/train_config.py) decides whether a run slices; the training
side is centernet/transforms.py's `SliceCrop`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .decode import TOP_K, Detections, decode_to_original
from .transforms import LetterboxParams, letterbox_params

OVERLAP = 0.25          # of a tile's side
MERGE_IOU = 0.5         # NMS between tiles and the whole picture
CUT_MARGIN = 2.0        # px: a box this close to an inner tile border is cut by it
TILE_BATCH = 8


def tile_starts(length: int, tile: int, overlap: float = OVERLAP) -> list[int]:
    """Where the tiles along one side start: every tile·(1 − overlap) px, the last one ending on
    the edge; one tile at 0 when the side fits in a tile."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return sorted({min(i * step, length - tile) for i in range(count)})


def tile_grid(width: int, height: int, tile: int, overlap: float = OVERLAP) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of the tiles covering a width × height picture, rows first."""
    return [(x, y, min(x + tile, width), min(y + tile, height))
            for y in tile_starts(height, tile, overlap) for x in tile_starts(width, tile, overlap)]


def uncut(boxes: torch.Tensor, tile: tuple[int, int, int, int], width: int, height: int,
          margin: float = CUT_MARGIN) -> torch.Tensor:
    """(N,) bool: the boxes (in the picture's pixels) that no inner border of `tile` cuts."""
    x1, y1, x2, y2 = tile
    keep = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    if x1 > 0:
        keep &= boxes[:, 0] > x1 + margin
    if y1 > 0:
        keep &= boxes[:, 1] > y1 + margin
    if x2 < width:
        keep &= boxes[:, 2] < x2 - margin
    if y2 < height:
        keep &= boxes[:, 3] < y2 - margin
    return keep


def merge(parts: Sequence[Detections], iou: float = MERGE_IOU, k: int = TOP_K) -> Detections:
    """One picture's detections from its tiles' and its whole view's: NMS within each class,
    best first, at most k."""
    from torchvision.ops import batched_nms
    boxes = torch.cat([p.boxes.float() for p in parts]).reshape(-1, 4)
    scores = torch.cat([p.scores.float() for p in parts]).reshape(-1)
    labels = torch.cat([p.labels.long() for p in parts]).reshape(-1)
    keep = batched_nms(boxes, scores, labels, iou)[:k]       # sorted by score, best first
    return Detections(boxes[keep], scores[keep], labels[keep])


def _view(image, tile: tuple[int, int, int, int] | None, size: int, transform) -> tuple[torch.Tensor, LetterboxParams]:
    """One view's network input and letterbox: the tile's crop, or the whole picture for None."""
    view = image if tile is None else image.crop(tile)
    return transform(view), letterbox_params(view.width, view.height, size)


@torch.no_grad()
def sliced_detections(model, image, size: int, transform, device, whole: Detections | None = None) -> Detections:
    """`image`'s (PIL, RGB) detections in its own pixels: its tiles and its whole view merged.
    `whole`: the whole view's detections when the caller has them already (else computed here).
    The views are made a batch at a time: a 12 MP photo's 88 tiles would hold 280 MB at once."""
    tiles: list = [] if max(image.width, image.height) <= size else tile_grid(image.width, image.height, size)
    views = ([None] if whole is None else []) + tiles         # a tile that is the picture: none
    parts: list[Detections] = [] if whole is None else [whole]
    for start in range(0, len(views), TILE_BATCH):
        chunk = views[start:start + TILE_BATCH]
        tensors, params = zip(*(_view(image, tile, size, transform) for tile in chunk))
        outputs = model(torch.stack(tensors).to(device))
        outputs = {name: value.float() for name, value in outputs.items()}
        for det, tile in zip(decode_to_original(outputs, list(params)), chunk):
            if tile is not None:
                shift = torch.tensor([tile[0], tile[1], tile[0], tile[1]], dtype=det.boxes.dtype,
                                     device=det.boxes.device)
                boxes = det.boxes + shift
                keep = uncut(boxes, tile, image.width, image.height)
                det = Detections(boxes[keep], det.scores[keep], det.labels[keep])
            parts.append(det)
    return merge(parts)
