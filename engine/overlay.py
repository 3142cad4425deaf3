"""A map of where a model looks, laid over the picture: `frelon explain`'s drawings, for every task.

`heat` is a (H, W) float tensor in [0, 1] at the picture's own size. The colours are a small
blue → cyan → yellow → red ramp (no matplotlib: Frelon does not depend on it); the picture shows
through where the map is cold (alpha grows with the heat), so the evidence stays readable.
"""
from __future__ import annotations

from pathlib import Path

import torch

# (heat, RGB) anchors of the ramp, interpolated linearly
RAMP = ((0.0, (0, 0, 160)), (0.35, (0, 200, 255)), (0.65, (255, 230, 0)), (1.0, (220, 0, 0)))
ALPHA = (0.15, 0.65)          # the map's opacity from cold to hot


def colour(heat: torch.Tensor) -> torch.Tensor:
    """(H, W) in [0, 1] → (3, H, W) float RGB in [0, 255] along RAMP."""
    h = heat.clamp(0, 1)
    out = torch.zeros(3, *h.shape)
    for (a, ca), (b, cb) in zip(RAMP, RAMP[1:]):
        inside = (h >= a) & (h <= b)
        t = ((h - a) / (b - a))[inside]
        for c in range(3):
            out[c][inside] = ca[c] + t * (cb[c] - ca[c])
    return out


def blend(image, heat: torch.Tensor):
    """The PIL picture with `heat` (its size) laid over it, as a new RGB PIL picture."""
    from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image
    pixels = pil_to_tensor(image.convert("RGB")).float()
    alpha = ALPHA[0] + (ALPHA[1] - ALPHA[0]) * heat.clamp(0, 1)
    mixed = pixels * (1 - alpha) + colour(heat) * alpha
    return to_pil_image(mixed.round().clamp(0, 255).to(torch.uint8))


def save_overlay(image, heat: torch.Tensor, out: Path, peak: tuple[float, float] | None = None) -> None:
    """`blend` saved as PNG at `out`, with a small ring around `peak` (x, y in the picture's pixels)."""
    from PIL import ImageDraw
    drawn = blend(image, heat)
    if peak is not None:
        r = max(3, round(max(drawn.size) / 40))
        x, y = peak
        ImageDraw.Draw(drawn).ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255), width=max(1, r // 3))
    out.parent.mkdir(parents=True, exist_ok=True)
    drawn.save(out)


def peak_of(heat: torch.Tensor) -> tuple[int, int]:
    """(x, y) of the map's largest value (the first one on a tie, in reading order)."""
    index = int(heat.flatten().argmax())
    return index % heat.shape[1], index // heat.shape[1]
