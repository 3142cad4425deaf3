"""Classification preprocessing and augmentation with torchvision transforms v2.

Training (`--augment`): default = random resized crop (35–100 % of the area) + horizontal flip + colour jitter (the usual
fine-tuning recipe for a small labelled set); light = resize + flip; randaugment = crop + flip +
RandAugment; none = the evaluation pipeline. The flip is left out when `flip` is False (`--flip`,
data/mirror.py: off by itself for digits, letters, text and signs). `--random-erasing P` adds RandomErasing after
normalisation. `--noise STD` adds Gaussian noise (the course's "bruit") of STD 8-bit levels to the
pixels in [0, 1] before normalisation, clipped to [0, 1], with any `--augment` (engine/augment.py:
shared with detection). Evaluation: resize the short side to size/0.875, centre crop (ImageNet practice).
Normalisation is always the one the chosen weights were trained with (model.json's mean / std).
"""
from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

from ..augment import colour_jitter, noise

CROP_RATIO = 0.875
# RandomResizedCrop's area range. torchvision's (0.08, 1) is ImageNet pre-training's, over 90
# epochs; on a small set fine-tuned for a few epochs a crop of a quarter of the picture often cuts
# the subject in half (a digit, a face) and teaches the wrong label. Measured on bench/learn.py's
# held-out test splits, one seed each: digits (8 epochs, 64 px) 0.960 with 0.25, 0.995 with 0.35
# (twice), 0.980 with 0.5; faces (6 epochs, 96 px) 0.98, 0.98, 0.96; photos (6 epochs, 128 px)
# 0.869 with 0.25, 0.877 with 0.35. fastai's Imagenette training
# example (examples/train_imagenette.py) crops with min_scale 0.35 too.
CROP_SCALE = (0.35, 1.0)
CROP_RATIO_RANGE = (3 / 4, 4 / 3)   # RandomResizedCrop's aspect ratios (torchvision's default)


def decode_short_side(size: int, augment: str = "none") -> int:
    """The short side a picture must keep for the pipeline at `size` to see the same pixels as from
    the full-resolution file (what data/images.py's draft decoding may go down to): evaluation and
    `--augment none` resize the short side to size / 0.875; `light` to size; the random-resized crop
    takes at least CROP_SCALE[0] of the area at an aspect ratio down to 3/4, whose short side is
    sqrt(area x 3/4) — at least `size` when the picture's short side is size / sqrt(0.35 x 3/4)."""
    if augment == "none":
        return math.ceil(size / CROP_RATIO)
    if augment == "light":
        return size
    return math.ceil(size / math.sqrt(CROP_SCALE[0] * CROP_RATIO_RANGE[0]))


def _pixels() -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def _to_tensor(mean, std) -> list:
    return [*_pixels(), v2.Normalize(mean=list(mean), std=list(std))]


def _eval_geometry(size: int) -> list:
    return [v2.Resize(round(size / CROP_RATIO), antialias=True), v2.CenterCrop(size)]


def eval_transform(size: int, mean, std) -> v2.Compose:
    return v2.Compose([*_eval_geometry(size), *_to_tensor(mean, std)])


def eval_pixels(size: int) -> v2.Compose:
    """`eval_transform` without its normalisation: pixels in [0, 1] at the network's input size
    (what an attack perturbs); eval_transform(x) == v2.functional.normalize(eval_pixels(x), mean, std)."""
    return v2.Compose([*_eval_geometry(size), *_pixels()])


def train_transform(size: int, mean, std, augment: str = "default", random_erasing: float = 0.0,
                    flip: bool = True, noise_std: float = 0.0) -> v2.Compose:
    if augment == "none":
        return v2.Compose([*_eval_geometry(size), *_pixels(), *noise(noise_std),
                           v2.Normalize(mean=list(mean), std=list(std))])
    mirror = [v2.RandomHorizontalFlip()] if flip else []
    if augment == "light":
        ops = [v2.Resize(size, antialias=True), v2.CenterCrop(size), *mirror]
    else:
        ops = [v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True), *mirror]
        if augment == "randaugment":
            ops.append(v2.RandAugment())
        else:
            ops.append(colour_jitter())
    ops += [*_pixels(), *noise(noise_std), v2.Normalize(mean=list(mean), std=list(std))]
    if random_erasing > 0:
        ops.append(v2.RandomErasing(p=random_erasing))
    return v2.Compose(ops)
