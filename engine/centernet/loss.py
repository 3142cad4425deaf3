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
