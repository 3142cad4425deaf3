"""From CenterNet's output maps to boxes in the original image's pixels.

Peaks kept where a cell equals its 3×3 max-pool (CenterNet's NMS), the top K peaks over all classes
(K capped by the number of candidate cells) and their sigmoid as scores, then each peak's offset and
size give a box in the network input's pixels, and `LetterboxParams.to_original` maps it back to
the image that was letterboxed. Scores down to `SCORE_FLOOR` are kept: the threshold belongs to whoever reads the
predictions (the app's slider, the mAP computation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .model import STRIDE
from .transforms import LetterboxParams

TOP_K = 100
SCORE_FLOOR = 0.01
DENSE_FRACTION = 8          # more than 1/8 of the cells are candidates: rank the whole map


@dataclass
class Detections:
    """One image's detections: boxes (N, 4) xyxy, scores (N,), labels (N,) class indices."""
    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)


def max_pool3x3(x: torch.Tensor) -> torch.Tensor:
    """F.max_pool2d(x, 3, stride=1, padding=1), exactly, as two separable passes of in-place
    shifted maxima: several times faster on the CPU, where max_pool2d alone costs more than all
    the rest of decoding."""
    rows = x.clone()
    rows[..., :-1].clamp_min_(x[..., 1:])
    rows[..., 1:].clamp_min_(x[..., :-1])
    out = rows.clone()
    out[..., :-1, :].clamp_min_(rows[..., 1:, :])
    out[..., 1:, :].clamp_min_(rows[..., :-1, :])
    return out


def _logit(p: float) -> float:
    if p <= 0:
        return float("-inf")
    if p >= 1:
        return float("inf")
    return math.log(p / (1 - p))


def top_peaks(logits: torch.Tensor, pooled: torch.Tensor, k: int,
              score_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, flat indices into C·H·W) of one image's K best peaks scoring ≥ score_floor.

    The sigmoid is monotonic: a peak of the logits is a peak of the probabilities, and a score
    ≥ floor is a logit ≥ logit(floor). Only the cells that pass both tests are ranked — in a
    trained model's maps a few hundred of C·H·W — and the sigmoid is taken of the K kept. Dense
    maps (an untrained model's plateaus) are ranked whole, which is then cheaper."""
    keep = (pooled == logits) & (logits >= _logit(score_floor))
    if int(keep.sum()) * DENSE_FRACTION > keep.numel():
        ranked = logits.masked_fill(~keep, float("-inf")).reshape(-1)
        top, flat = ranked.topk(min(k, ranked.numel()))
    else:
        candidates = keep.reshape(-1).nonzero().squeeze(1)
        top, order = logits.reshape(-1)[candidates].topk(min(k, candidates.numel()))
        flat = candidates[order]
    scores = top.sigmoid()
    good = (scores >= score_floor) & (top > float("-inf"))   # logit(floor) rounds: check once more
    return scores[good], flat[good]


def decode(outputs: dict[str, torch.Tensor], k: int = TOP_K, stride: int = STRIDE,
           score_floor: float = SCORE_FLOOR) -> list[Detections]:
    """Boxes in the network input's pixels, for each image of the batch, best first."""
    logits = outputs["heatmap"].float()
    pooled = max_pool3x3(logits)
    _, c, h, w = logits.shape
    out = []
    for i in range(logits.shape[0]):
        scores, flat = top_peaks(logits[i], pooled[i], k, score_floor)
        labels = torch.div(flat, h * w, rounding_mode="floor")
        cells = flat - labels * (h * w)
        ys = torch.div(cells, w, rounding_mode="floor")
        xs = cells - ys * w
        size = outputs["size"][i].float().reshape(2, -1)[:, cells].clamp(min=0) * stride
        offset = outputs["offset"][i].float().reshape(2, -1)[:, cells]
        cx, cy = (xs + offset[0]) * stride, (ys + offset[1]) * stride
        half_w, half_h = size[0] / 2, size[1] / 2
        boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)
        out.append(Detections(boxes, scores, labels))
    return out


def to_original(detections: Sequence[Detections], params: Sequence[LetterboxParams]) -> list[Detections]:
    """Each image's boxes mapped back through its letterbox to its own pixels."""
    return [Detections(p.to_original(d.boxes), d.scores, d.labels) for d, p in zip(detections, params)]


def decode_to_original(outputs: dict[str, torch.Tensor], params: Sequence[LetterboxParams],
                       k: int = TOP_K, stride: int = STRIDE,
                       score_floor: float = SCORE_FLOOR) -> list[Detections]:
    return to_original(decode(outputs, k, stride, score_floor), params)
