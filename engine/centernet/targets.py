"""CenterNet training targets: what the network should output for one image's boxes.

For each object of class c with centre p (in input pixels) and stride R = 4:
  * heatmap[c]: a Gaussian exp(-((x - p̃x)² + (y - p̃y)²) / 2σ²) around p̃ = ⌊p / R⌋, with the radius
    of `gaussian_radius` and σ = (2r + 1) / 6; where two objects' Gaussians overlap the element-wise
    maximum is kept (Zhou et al. 2019, §3);
  * size: the box's (w, h) in output cells, at p̃;
  * offset: p / R - p̃, the part of the centre lost by the down-sampling, at p̃;
  * index (p̃y · W + p̃x) and mask (1 for a real object) for up to `max_objects` objects.

Crowd boxes (COCO `iscrowd`, VOC `difficult`) are left out: they are neither positives nor
centres to regress, only regions that evaluation ignores.

Which gaussian_radius. The official code (CenterNet/src/lib/utils/image.py, copied from CornerNet)
solves three quadratics for the largest corner shift r that keeps IoU ≥ min_overlap with the box,
but divides by 2 instead of 2a and takes the larger root in the first two. Its r1 and r2 then come
out near w + h and 2(w + h) and never win the min: the radius is always its r3, which is
4·min_overlap = 2.8 times the correct r3. Official radii are about 27 % of the box side, corrected
ones about 8 %: for a 32 px box at stride 4 (8 cells), 2.19 → 2 against 0.65 → 0, a one-cell peak
with no Gaussian around it, where the "penalty-reduced" focal loss reduces no penalty at all and
the cells next to a centre, which the stride-4 grid can hardly tell from it, are full negatives.
We use the official rule by default (`official=True`): the published results and the
hyper-parameters that go with them (focal β = 4, the loss weights, the LR) were obtained with it,
and on small user datasets the wider Gaussians are the softer, more forgiving targets.
`official=False` gives the geometrically correct radius (tested against a direct IoU check).
"""
from __future__ import annotations

import math

import torch

STRIDE = 4
MAX_OBJECTS = 128
MIN_OVERLAP = 0.7


def gaussian_radius(height: float, width: float, min_overlap: float = MIN_OVERLAP,
                    official: bool = True) -> float:
    """CenterNet's radius for a box of `height` × `width` output cells (see the module docstring)."""
    h, w, o = float(height), float(width), float(min_overlap)
    # case 1: both corners shifted the same way (the box translated by r, r)
    a1, b1, c1 = 1.0, h + w, w * h * (1 - o) / (1 + o)
    # case 2: both corners shifted inwards (the box shrunk by 2r)
    a2, b2, c2 = 4.0, 2 * (h + w), (1 - o) * w * h
    # case 3: both corners shifted outwards (the box grown by 2r)
    a3, b3, c3 = 4 * o, -2 * o * (h + w), (o - 1) * w * h
    sq1 = math.sqrt(max(0.0, b1 ** 2 - 4 * a1 * c1))
    sq2 = math.sqrt(max(0.0, b2 ** 2 - 4 * a2 * c2))
    sq3 = math.sqrt(max(0.0, b3 ** 2 - 4 * a3 * c3))
    if official:
        return min((b1 + sq1) / 2, (b2 + sq2) / 2, (b3 + sq3) / 2)
    return min((b1 - sq1) / (2 * a1), (b2 - sq2) / (2 * a2), (b3 + sq3) / (2 * a3))


def draw_gaussian(heatmap: torch.Tensor, cx: int, cy: int, radius: int) -> None:
    """Max a (2r + 1)² Gaussian with σ = (2r + 1) / 6 into `heatmap` (H, W) at (cx, cy), in place."""
    height, width = heatmap.shape
    sigma = (2 * radius + 1) / 6
    left, right = min(cx, radius), min(width - cx, radius + 1)
    top, bottom = min(cy, radius), min(height - cy, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return
    ys = torch.arange(-top, bottom, dtype=heatmap.dtype).view(-1, 1)
    xs = torch.arange(-left, right, dtype=heatmap.dtype).view(1, -1)
    gaussian = torch.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    region = heatmap[cy - top:cy + bottom, cx - left:cx + right]
    torch.maximum(region, gaussian, out=region)


def objects(boxes, labels, iscrowd, stride: int, output_size: tuple[int, int]):
    """The objects a target encodes, largest first (so smaller ones are drawn over them): for each
    non-crowd box of positive size, (label, box xyxy in output cells, w, h, centre, cx, cy) with
    (cx, cy) the centre's cell, clamped to the map."""
    out_h, out_w = output_size
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if iscrowd is not None and len(boxes):
        keep = ~torch.as_tensor(iscrowd, dtype=torch.bool).reshape(-1)
        boxes, labels = boxes[keep], labels[keep]
    scaled = boxes / stride
    wh = scaled[:, 2:] - scaled[:, :2]
    for i in torch.argsort(wh[:, 0] * wh[:, 1], descending=True).tolist():
        w, h = float(wh[i, 0]), float(wh[i, 1])
        if w <= 0 or h <= 0:
            continue
        centre = (scaled[i, :2] + scaled[i, 2:]) / 2
        cx = min(max(int(centre[0]), 0), out_w - 1)
        cy = min(max(int(centre[1]), 0), out_h - 1)
        yield int(labels[i]), scaled[i], w, h, centre, cx, cy


def encode(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, output_size: tuple[int, int],
           iscrowd: torch.Tensor | None = None, stride: int = STRIDE, max_objects: int = MAX_OBJECTS,
           official_radius: bool = True) -> dict[str, torch.Tensor]:
    """Targets for one image: `boxes` (N, 4) xyxy in input pixels, `labels` (N,) class indices.

    Returns heatmap (C, H, W), size (K, 2), offset (K, 2), index (K,) int64, mask (K,) float with
    K = max_objects. Objects beyond K still get their heatmap peak (largest boxes regressed first)."""
    out_h, out_w = output_size
    heatmap = torch.zeros(num_classes, out_h, out_w)
    size = torch.zeros(max_objects, 2)
    offset = torch.zeros(max_objects, 2)
    index = torch.zeros(max_objects, dtype=torch.long)
    mask = torch.zeros(max_objects)
    k = 0
    for label, box, w, h, centre, cx, cy in objects(boxes, labels, iscrowd, stride, output_size):
        radius = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w), official=official_radius)))
        draw_gaussian(heatmap[label], cx, cy, radius)
        if k < max_objects:
            size[k] = torch.tensor([w, h])
            offset[k] = centre - torch.tensor([cx, cy], dtype=torch.float32)
            index[k] = cy * out_w + cx
            mask[k] = 1.0
            k += 1
    return {"heatmap": heatmap, "size": size, "offset": offset, "index": index, "mask": mask}


def collate_targets(targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-image targets into a batch."""
    return {key: torch.stack([t[key] for t in targets]) for key in targets[0]}


# ---------------------------------------------------------------- the "ttf" recipe's targets

TTF_ALPHA = 0.54     # heatmap Gaussian: σ = α · side / 6 per axis (TTFNet, Liu et al. 2020, §3.2)
TTF_BETA = 0.54      # box regression samples: the cells of the β-Gaussian around the centre


def draw_elliptic_gaussian(heatmap: torch.Tensor, cx: int, cy: int, radius_x: int, radius_y: int) -> torch.Tensor:
    """Max a (2ry + 1) × (2rx + 1) Gaussian with σ = (2r + 1) / 6 per axis into `heatmap` (H, W) at
    (cx, cy), in place; returns the Gaussian as drawn on the map (zero elsewhere), for weights."""
    height, width = heatmap.shape
    sx, sy = (2 * radius_x + 1) / 6, (2 * radius_y + 1) / 6
    left, right = min(cx, radius_x), min(width - cx, radius_x + 1)
    top, bottom = min(cy, radius_y), min(height - cy, radius_y + 1)
    drawn = torch.zeros_like(heatmap)
    if left + right <= 0 or top + bottom <= 0:
        return drawn
    ys = torch.arange(-top, bottom, dtype=heatmap.dtype).view(-1, 1)
    xs = torch.arange(-left, right, dtype=heatmap.dtype).view(1, -1)
    gaussian = torch.exp(-xs * xs / (2 * sx * sx) - ys * ys / (2 * sy * sy))
    region = heatmap[cy - top:cy + bottom, cx - left:cx + right]
    torch.maximum(region, gaussian, out=region)
    drawn[cy - top:cy + bottom, cx - left:cx + right] = gaussian
    return drawn


def encode_ttf(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, output_size: tuple[int, int],
               iscrowd: torch.Tensor | None = None, stride: int = STRIDE) -> dict[str, torch.Tensor]:
    """Training-time-friendly targets (TTFNet): every object's box is regressed from all the cells
    of a Gaussian core around its centre, not from the centre cell alone — many more samples per
    object, which is what lets a detector converge on a few hundred images.

    Returns heatmap (C, H, W): elliptic Gaussians (σ = α·w/6, α·h/6 cells) peaking at 1 on the
    centre cell; box (4, H, W): the object's box xyxy in output cells at each of its core cells;
    num_objects: the
    focal loss's normaliser; weight (H, W): per object the core's Gaussian, normalised to sum to log(area in input pixels) (larger
    objects weigh more, though less than in proportion). Overlaps: the smaller object wins its cells.
    The network regresses the offset to the centre and the size at every core cell, so
    CenterNet's decoding (the peak cell + its offset and size) is unchanged."""
    out_h, out_w = output_size
    heatmap = torch.zeros(num_classes, out_h, out_w)
    box_map = torch.zeros(4, out_h, out_w)
    weight = torch.zeros(out_h, out_w)
    count = 0
    for label, box, w, h, centre, cx, cy in objects(boxes, labels, iscrowd, stride, output_size):
        draw_elliptic_gaussian(heatmap[label], cx, cy, int(TTF_ALPHA * w / 2), int(TTF_ALPHA * h / 2))
        core = draw_elliptic_gaussian(torch.zeros(out_h, out_w), cx, cy,
                                      int(TTF_BETA * w / 2), int(TTF_BETA * h / 2))
        cells = core > 0
        box_map[:, cells] = box.view(4, 1)
        weight[cells] = core[cells] / core[cells].sum() * math.log(max(w * h * stride * stride, 2.0))
        count += 1
    return {"heatmap": heatmap, "box": box_map, "weight": weight, "num_objects": torch.tensor(float(count))}
