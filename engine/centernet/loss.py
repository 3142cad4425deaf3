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


def ttf_loss(outputs: dict[str, torch.Tensor],
             targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Focal loss on the heatmap (as CenterNet), plus at every regression cell (weight > 0) the GIoU
    loss of the cell's box (torchvision.ops) and L1 on its size and offset, each averaged with the
    cells' weights. Parts: heatmap, size (the GIoU loss), offset (the L1 terms)."""
    from torchvision.ops import generalized_box_iou_loss
    device_type = outputs["heatmap"].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        weight = targets["weight"].float()
        cells = weight > 0
        num_objects = targets["num_objects"].float().sum()
        heatmap = focal_loss(outputs["heatmap"], targets["heatmap"], num_objects)
        size, offset = outputs["size"].float(), outputs["offset"].float()
        pred = predicted_boxes(size, offset).permute(0, 2, 3, 1)[cells]          # (N, 4)
        target = targets["box"].float().permute(0, 2, 3, 1)[cells]
        w = weight[cells]
        norm = w.sum().clamp(min=1e-6)
        giou = (generalized_box_iou_loss(pred, target, reduction="none") * w).sum() / norm
        target_size = target[:, 2:] - target[:, :2]
        cell_xy = cells.nonzero()[:, [2, 1]].to(target.dtype)
        target_offset = (target[:, :2] + target[:, 2:]) / 2 - cell_xy
        pred_size = size.permute(0, 2, 3, 1)[cells]
        pred_offset = offset.permute(0, 2, 3, 1)[cells]
        l1 = (TTF_SIZE_WEIGHT * (pred_size - target_size).abs().sum(1)
              + TTF_OFFSET_WEIGHT * (pred_offset - target_offset).abs().sum(1)) / 2
        l1 = (l1 * w).sum() / norm
        total = heatmap + GIOU_WEIGHT * giou + l1
    return total, {"heatmap": heatmap.detach(), "size": giou.detach(), "offset": l1.detach()}


def detection_loss(outputs: dict[str, torch.Tensor],
                   targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss that goes with the targets: TTF's dense ones (`box`, `weight`) or CenterNet's."""
    return (ttf_loss if "weight" in targets else centernet_loss)(outputs, targets)
