"""What the dense TTF loss costs on the CPU, against the boolean-indexed one it replaced.

The dense loss (engine/centernet/loss.ttf_loss) computes the box terms at every output cell and
weights them with the weight map, so that on CUDA the host never waits for the GPU to count the
cells of a mask (the masked form waited ~6 times per micro-batch, and torchvision's GIoU loss once
more). On the CPU nothing waits, and computing every cell costs more than computing the few core
cells: this measures how much, for the loss alone and for a whole detection micro-step (resnet18
forward + loss + backward), the two losses interleaved and repeated, medians reported.

    python bench/ttf_loss_cost.py [--repeats 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from frelon.engine.centernet import loss as L
from frelon.engine.centernet import targets as T


def masked_ttf_loss(outputs, targets):
    """The TTF loss as it was before the dense one (2026-12-07): boolean-mask selection of the
    core cells, torchvision's generalized_box_iou_loss."""
    from torchvision.ops import generalized_box_iou_loss
    weight = targets["weight"].float()
    cells = weight > 0
    heatmap = L.focal_loss(outputs["heatmap"], targets["heatmap"], targets["num_objects"].float().sum())
    size, offset = outputs["size"].float(), outputs["offset"].float()
    pred = L.predicted_boxes(size, offset).permute(0, 2, 3, 1)[cells]
    target = targets["box"].float().permute(0, 2, 3, 1)[cells]
    w = weight[cells]
    norm = w.sum().clamp(min=1e-6)
    giou = (generalized_box_iou_loss(pred, target, reduction="none") * w).sum() / norm
    cell_xy = cells.nonzero()[:, [2, 1]].to(target.dtype)
    target_offset = (target[:, :2] + target[:, 2:]) / 2 - cell_xy
    l1 = (L.TTF_SIZE_WEIGHT * (size.permute(0, 2, 3, 1)[cells] - (target[:, 2:] - target[:, :2])).abs().sum(1)
          + L.TTF_OFFSET_WEIGHT * (offset.permute(0, 2, 3, 1)[cells] - target_offset).abs().sum(1)) / 2
    return heatmap + L.GIOU_WEIGHT * giou + (l1 * w).sum() / norm


def batch(b: int, size: int, objects: int, classes: int = 3):
    g = torch.Generator().manual_seed(0)
    out = size // 4
    ts = []
    for _ in range(b):
        xy = torch.rand(objects, 2, generator=g) * size * 0.7
        boxes = torch.cat([xy, xy + torch.rand(objects, 2, generator=g) * size * 0.25 + 12], 1)
        ts.append(T.encode_ttf(boxes, torch.randint(0, classes, (objects,), generator=g), classes, (out, out)))
    targets = {k: torch.stack([t[k] for t in ts]) for k in ts[0]}
    outputs = {"heatmap": torch.randn(b, classes, out, out, generator=g),
               "size": torch.rand(b, 2, out, out, generator=g) * 20, "offset": torch.randn(b, 2, out, out, generator=g)}
    return outputs, targets


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def loss_only(b: int, size: int, objects: int, repeats: int) -> dict:
    outputs, targets = batch(b, size, objects)

    def run(loss):
        def once():
            leaves = {k: v.clone().requires_grad_() for k, v in outputs.items()}
            total = loss(leaves, targets)
            (total[0] if isinstance(total, tuple) else total).backward()
        return once
    return compare(run(masked_ttf_loss), run(L.ttf_loss), repeats)


def micro_step(b: int, size: int, objects: int, repeats: int) -> dict:
    from frelon.engine.tasks.detect import build_detector
    model, _ = build_detector("resnet18", 3, "none")
    images = torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(1))
    _, targets = batch(b, size, objects)

    def run(loss):
        def once():
            total = loss(model(images), targets)
            (total[0] if isinstance(total, tuple) else total).backward()
            model.zero_grad(set_to_none=True)
        return once
    return compare(run(masked_ttf_loss), run(L.ttf_loss), repeats)


def compare(masked, dense, repeats: int) -> dict:
    masked(), dense()                                  # warm-up
    times = {"masked": [], "dense": []}
    for r in range(repeats):
        for name, fn in ((("masked", masked), ("dense", dense)) if r % 2 == 0 else (("dense", dense), ("masked", masked))):
            times[name].append(timed(fn))
    ratio = statistics.median(d / m for d, m in zip(times["dense"], times["masked"]))
    return {"masked_ms": 1000 * statistics.median(times["masked"]), "dense_ms": 1000 * statistics.median(times["dense"]),
            "dense_over_masked": ratio}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), medians of {args.repeats} interleaved repeats")
    for b, size, objects in ((16, 256, 5), (16, 512, 5), (32, 512, 20)):
        r = loss_only(b, size, objects, args.repeats)
        print(f"loss alone, batch {b}, {size} px ({size // 4}² cells), {objects} objects/image: masked "
              f"{r['masked_ms']:.1f} ms, dense {r['dense_ms']:.1f} ms, dense/masked {r['dense_over_masked']:.2f}")
    r = micro_step(8, 256, 5, args.repeats)
    print(f"micro-step (resnet18 TTF detector, batch 8, 256 px: forward, loss, backward): masked "
          f"{r['masked_ms']:.0f} ms, dense {r['dense_ms']:.0f} ms, dense/masked {r['dense_over_masked']:.3f}")


if __name__ == "__main__":
    main()
