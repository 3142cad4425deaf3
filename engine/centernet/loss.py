"""CenterNet's loss: penalty-reduced focal loss on the heatmap, L1 on size and offset at centres.

    L = L_heatmap + 0.1 · L_size + 1 · L_offset            (Zhou et al. 2019, eq. 1–3)

L_heatmap is the pixel-wise logistic regression of CornerNet with α = 2, β = 4: positives (cells
where the target is exactly 1) weigh (1 − p)^α log p, negatives (1 − y)^β p^α log(1 − p) — the
Gaussian around each centre reduces the penalty of near misses. It is divided by the number of
objects. It is computed in float32 with the sigmoid clamped to [1e-4, 1 − 1e-4] even under autocast:
in bfloat16 / float16 a sigmoid of a large logit rounds to exactly 1 and log(1 − p) is −inf.
L_size and L_offset are mean absolute errors over the objects' centre cells (official RegL1Loss).
"""
from __future__ import annotations

import torch

ALPHA = 2.0
BETA = 4.0
SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0
CLAMP = 1e-4


def focal_loss(logits: torch.Tensor, target: torch.Tensor, num_objects: torch.Tensor) -> torch.Tensor:
    """Penalty-reduced focal loss, summed and divided by max(1, num_objects). fp32 throughout."""
    pred = logits.float().sigmoid().clamp(CLAMP, 1.0 - CLAMP)
    target = target.float()
    pos = target.eq(1.0)
    pos_loss = torch.log(pred) * (1.0 - pred).pow(ALPHA)
    neg_loss = torch.log1p(-pred) * pred.pow(ALPHA) * (1.0 - target).pow(BETA)
    total = torch.where(pos, pos_loss, neg_loss).sum()
    return -total / num_objects.clamp(min=1.0)


def gather_at(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of (B, 2, H, W) maps at flat cell indices (B, K) → (B, K, 2)."""
    b, c = maps.shape[:2]
    flat = maps.reshape(b, c, -1)
    return flat.gather(2, index.unsqueeze(1).expand(b, c, index.shape[1])).permute(0, 2, 1)


def l1_at_centres(pred: torch.Tensor, target: torch.Tensor, index: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over the objects' centre cells (both coordinates)."""
    values = gather_at(pred.float(), index)
    m = mask.float().unsqueeze(-1)
    return ((values - target.float()).abs() * m).sum() / (2.0 * m.sum()).clamp(min=1.0)


def centernet_loss(outputs: dict[str, torch.Tensor],
                   targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total, {"heatmap", "size", "offset"}) for a batch; the parts are detached."""
    device_type = outputs["heatmap"].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        num_objects = targets["mask"].float().sum()
        heatmap = focal_loss(outputs["heatmap"], targets["heatmap"], num_objects)
        size = l1_at_centres(outputs["size"], targets["size"], targets["index"], targets["mask"])
        offset = l1_at_centres(outputs["offset"], targets["offset"], targets["index"], targets["mask"])
        total = heatmap + SIZE_WEIGHT * size + OFFSET_WEIGHT * offset
    return total, {"heatmap": heatmap.detach(), "size": size.detach(), "offset": offset.detach()}


# ---------------------------------------------------------------- the "ttf" recipe's loss

GIOU_WEIGHT = 5.0        # TTFNet's weight of the box loss
TTF_SIZE_WEIGHT = 0.1    # L1 on size and offset beside GIoU: a gradient even where a predicted
TTF_OFFSET_WEIGHT = 1.0  # size is still ≤ 0 (GIoU's box has no extent there)


def predicted_boxes(size: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) boxes xyxy in output cells from each cell's offset to the centre and size —
    the boxes CenterNet's decoding reads at a peak, here at every cell."""
    b, _, h, w = size.shape
    ys = torch.arange(h, device=size.device, dtype=size.dtype).view(1, h, 1).expand(b, h, w)
    xs = torch.arange(w, device=size.device, dtype=size.dtype).view(1, 1, w).expand(b, h, w)
    cx, cy = xs + offset[:, 0], ys + offset[:, 1]
    half_w, half_h = size[:, 0].clamp(min=0) / 2, size[:, 1].clamp(min=0) / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 − GIoU of boxes xyxy (..., 4), element-wise: torchvision.ops.generalized_box_iou_loss's
    formula with the intersection's sides clamped at 0 instead of its boolean mask
    (`intsctk[mask] = …`), which on CUDA makes the host wait for the GPU at every call."""
    x1, y1, x2, y2 = pred.unbind(-1)
    x1g, y1g, x2g, y2g = target.unbind(-1)
    inter = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0) * (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    enclosing = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    return 1 - (inter / (union + eps) - (enclosing - union) / (enclosing + eps))


def ttf_loss(outputs: dict[str, torch.Tensor],
             targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Focal loss on the heatmap (as CenterNet), plus at every regression cell (weight > 0) the GIoU
    loss of the cell's box (`giou_loss`) and L1 on its size and offset, each averaged with the
    cells' weights. Parts: heatmap, size (the GIoU loss), offset (the L1 terms).

    Dense: every cell is computed and weighted by the weight map (0 off the objects' cores), with
    no boolean indexing — a mask's selection needs the count of its cells on the host, a wait for
    the GPU at each micro-batch. The predictions off the cores are replaced by zeros first
    (torch.where), so a cell the loss ignores adds nothing, not even a NaN from an overflowed
    fp16 output, to the loss or its gradient."""
    device_type = outputs["heatmap"].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        weight = targets["weight"].float()                                   # (B, H, W)
        core = (weight > 0).unsqueeze(1)                                     # (B, 1, H, W)
        num_objects = targets["num_objects"].float().sum()
        heatmap = focal_loss(outputs["heatmap"], targets["heatmap"], num_objects)
        size = torch.where(core, outputs["size"].float(), 0.0)
        offset = torch.where(core, outputs["offset"].float(), 0.0)
        norm = weight.sum().clamp(min=1e-6)
        target = targets["box"].float()                                      # (B, 4, H, W)
        pred = predicted_boxes(size, offset)
        giou = giou_loss(pred.movedim(1, -1), target.movedim(1, -1))
        giou = (giou * weight).sum() / norm
        b, _, h, w = size.shape
        cell_xy = torch.stack([torch.arange(w, device=size.device, dtype=size.dtype).view(1, w).expand(h, w),
                               torch.arange(h, device=size.device, dtype=size.dtype).view(h, 1).expand(h, w)])
        target_size = target[:, 2:] - target[:, :2]
        target_offset = (target[:, :2] + target[:, 2:]) / 2 - cell_xy
        l1 = (TTF_SIZE_WEIGHT * (size - target_size).abs().sum(1)
              + TTF_OFFSET_WEIGHT * (offset - target_offset).abs().sum(1)) / 2     # (B, H, W)
        l1 = (l1 * weight).sum() / norm
        total = heatmap + GIOU_WEIGHT * giou + l1
    return total, {"heatmap": heatmap.detach(), "size": giou.detach(), "offset": l1.detach()}


def detection_loss(outputs: dict[str, torch.Tensor],
                   targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss that goes with the targets: TTF's dense ones (`box`, `weight`) or CenterNet's."""
    return (ttf_loss if "weight" in targets else centernet_loss)(outputs, targets)
