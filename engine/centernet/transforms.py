"""Image + box transforms for detection, with torchvision transforms v2 and `tv_tensors.BoundingBoxes`.

Training (augment "default"): scale jitter (the image resized to fit the training square times a
random factor in [0.6, 1.4], aspect kept) followed by a random crop to the square (padded where the
image is smaller), a horizontal flip (unless `flip` is False: `--flip`, data/mirror.py), colour jitter (brightness, contrast, saturation), then
`SanitizeBoundingBoxes` drops the boxes the crop cut away (their labels and crowd flags with them).
"light": flip and a mild colour jitter on the letterboxed image. "none": letterbox only.
`--noise STD` (any recipe): Gaussian noise on the pixels before normalisation (engine/transforms.noise).
"randaugment" (a classification option) gives the default recipe here.
Sliced training (`--slicing`, centernet/slicing.py): `SliceCrop` cuts a training-size window at
native resolution — around a random object (2 times in 3) or anywhere (between objects) — in
place of the scale jitter, 3 times in 4; the fourth sample is the whole picture as without
slicing, what prediction's whole view sees. Boxes the window cuts are clipped, as any crop's.

Evaluation and prediction: `Letterbox` — the longer side resized to the square's side, aspect kept,
padding on the right and bottom only — so that a box maps back to the original image by one
division (`LetterboxParams.to_original`). The only transform written here is Letterbox, as a v2
Transform built from v2's own resize and pad kernels, so it moves boxes like every v2 transform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..augment import colour_jitter

# Padding colour: ImageNet's mean in 8-bit, which normalises to about zero.
FILL = (124, 116, 104)


@dataclass(frozen=True)
class LetterboxParams:
    """How an image of `width` × `height` was put into the square: resized by `scale`, placed at
    (pad_x, pad_y)."""
    width: int
    height: int
    scale: float
    pad_x: int = 0
    pad_y: int = 0

    def to_original(self, boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) xyxy boxes in the square's pixels → the original image's pixels, clipped to it."""
        shift = torch.tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=boxes.dtype,
                             device=boxes.device)
        out = (boxes - shift) / self.scale
        out[:, 0::2] = out[:, 0::2].clamp(0, self.width)
        out[:, 1::2] = out[:, 1::2].clamp(0, self.height)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "scale": self.scale,
                "pad_x": self.pad_x, "pad_y": self.pad_y}


def letterbox_params(width: int, height: int, size: int) -> LetterboxParams:
    scale = size / max(width, height)
    return LetterboxParams(width, height, scale)


def _resized(width: int, height: int, size: int) -> tuple[int, int]:
    """(new_h, new_w): the longer side becomes `size`, the other one at least 1."""
    scale = size / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


class Letterbox(v2.Transform):
    """Resize so the longer side is `size` (aspect kept), then pad right and bottom to size × size."""

    def __init__(self, size: int, fill: Sequence[int] = FILL):
        super().__init__()
        self.size = size
        self.fill = list(fill)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        new_h, new_w = _resized(width, height, self.size)
        return {"size": [new_h, new_w], "padding": [0, 0, self.size - new_w, self.size - new_h]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        inpt = self._call_kernel(F.resize, inpt, params["size"], antialias=True)
        return self._call_kernel(F.pad, inpt, params["padding"], fill=self.fill)


class SliceCrop(v2.Transform):
    """A `size` × `size` window of the picture at native resolution (smaller where the picture is):
    with probability `around` it holds a random box whole (where the box fits), else it is anywhere."""

    def __init__(self, size: int, around: float = 2 / 3):
        super().__init__()
        self.size = size
        self.around = around

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        h, w = min(self.size, height), min(self.size, width)
        boxes = [x for x in flat_inputs if isinstance(x, tv_tensors.BoundingBoxes)]
        box = None
        if boxes and len(boxes[0]) and float(torch.rand(())) < self.around:
            box = boxes[0][int(torch.randint(len(boxes[0]), ()))].tolist()
        left = _window_start(width, w, None if box is None else (box[0], box[2]))
        top = _window_start(height, h, None if box is None else (box[1], box[3]))
        return {"top": top, "left": left, "height": h, "width": w}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.crop, inpt, **params)


def _window_start(length: int, window: int, span: tuple[float, float] | None) -> int:
    """A random start of a `window` along a side of `length`, holding `span` (lo, hi) whole when given
    and it fits (else centred on it)."""
    low, high = 0, length - window
    if span is not None:
        lo, hi = span
        if hi - lo <= window:
            low, high = max(low, math.ceil(hi - window)), min(high, math.floor(lo))
        else:
            low = high = min(max(0, round((lo + hi - window) / 2)), length - window)
    if high <= low:
        return max(0, min(low, length - window))
    return low + int(torch.randint(high - low + 1, ()))


def labels_and_crowd(inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """What SanitizeBoundingBoxes filters with the boxes: the labels and the crowd flags."""
    target = inputs[1]
    return target["labels"], target["iscrowd"]


def _finish(mean: Sequence[float], std: Sequence[float], noise_std: float = 0.0) -> list[v2.Transform]:
    from ..augment import noise
    return [v2.SanitizeBoundingBoxes(min_size=1.0, labels_getter=labels_and_crowd),
            v2.ToDtype(torch.float32, scale=True), *noise(noise_std), v2.Normalize(list(mean), list(std))]


def train_transform(size: int, mean: Sequence[float], std: Sequence[float], augment: str = "default",
                    flip: bool = True, noise_std: float = 0.0, sliced: bool = False) -> v2.Compose:
    """Augmentation for training (see the module docstring); ends in SanitizeBoundingBoxes.

    The geometric and colour steps run on the PIL image (Pillow's kernels are several times faster
    than tensor ones on the CPU, where data loading happens), and colour comes after the resize, on
    size × size pixels rather than on a full-size photo. No hue jitter: it costs more than all the
    rest together and CenterNet's recipe has none."""
    if augment in ("default", "randaugment"):
        ops = [*_whole_or_slice(v2.ScaleJitter((size, size), scale_range=(0.6, 1.4), antialias=True), size, sliced),
               v2.RandomCrop(size, pad_if_needed=True, fill=FILL),
               *([v2.RandomHorizontalFlip()] if flip else []),
               colour_jitter()]
    elif augment == "light":
        ops = [*_whole_or_slice(Letterbox(size), size, sliced, pad=True),
               *([v2.RandomHorizontalFlip()] if flip else []),
               v2.ColorJitter(brightness=0.15, contrast=0.15)]
    else:
        ops = _whole_or_slice(Letterbox(size), size, sliced, pad=True)
    return v2.Compose(ops + [v2.ToImage()] + _finish(mean, std, noise_std))


def _whole_or_slice(whole: v2.Transform, size: int, sliced: bool, pad: bool = False) -> list[v2.Transform]:
    """`whole`, or with slicing `SliceCrop` 3 times in 4 and `whole` the fourth (see the module
    docstring); `pad`: a window smaller than size × size (a small picture's) padded to it."""
    if not sliced:
        return [whole]
    chosen = v2.RandomChoice([whole, SliceCrop(size)], p=[0.25, 0.75])
    return [chosen, v2.RandomCrop(size, pad_if_needed=True, fill=FILL)] if pad else [chosen]


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Deterministic letterbox for evaluation and prediction (params: `letterbox_params`)."""
    return v2.Compose([*eval_pixels(size).transforms, v2.Normalize(list(mean), list(std))])


def eval_pixels(size: int) -> v2.Compose:
    """`eval_transform` without its normalisation: [0, 1] pixels, what an attack perturbs."""
    return v2.Compose([v2.ToImage(), Letterbox(size), v2.ToDtype(torch.float32, scale=True)])


def make_target(boxes: Sequence[Sequence[float]], labels: Sequence[int], iscrowd: Sequence[bool],
                width: int, height: int) -> dict[str, Any]:
    """A record's annotations in the form v2 transforms move: boxes as tv_tensors.BoundingBoxes."""
    box_tensor = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": tv_tensors.BoundingBoxes(box_tensor, format="XYXY", canvas_size=(height, width)),
            "labels": torch.as_tensor(labels, dtype=torch.long).reshape(-1),
            "iscrowd": torch.as_tensor(iscrowd, dtype=torch.bool).reshape(-1)}
