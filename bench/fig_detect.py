"""P6: CenterNet decoding (peaks → boxes) ÷ the network's forward pass, at 512 px, batch 1.

Decoding runs after every forward in prediction and evaluation: it must stay a small fraction of
it. The forward is the detector the detect task trains (engine.tasks.detect.build_detector) on
the default backbone, in eval mode without gradients; decoding is engine.centernet.decode.decode.
80 classes (COCO): the heatmap, and so the decoding, at its largest.

What is decoded. Decoding's cost depends on the heatmap: how many cells are local maxima above the
score floor. An untrained network (random weights) outputs a constant heatmap — every cell a
"peak" — which no trained model does. The figure decodes the forward's size and offset maps with a
heatmap shaped like a trained detector's: background logits ~ N(−7, 1) (probability ≈ 0.001),
ten objects as Gaussian bumps peaking at logit 3 (σ = 2 cells). The untrained network's own
outputs are timed too and reported in the detail (`untrained_ratio`).
"""
from __future__ import annotations

import time

import torch

from harness import Figure, interleaved, median


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trained_like_heatmap(shape, objects: int = 10, seed: int = 0) -> torch.Tensor:
    """A (1, C, H, W) logit map like a trained CenterNet's (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    _, c, h, w = shape
    heat = torch.randn(shape, generator=g) - 7.0
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    for _ in range(objects):
        k = int(torch.randint(0, c, (1,), generator=g))
        cy, cx = (float(torch.randint(4, max(5, h - 4), (1,), generator=g)) for _ in range(2))
        heat[0, k] = torch.maximum(heat[0, k], 3.0 - ((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 2.0 ** 2))
    return heat


def p6_decode(quick: bool, device: str = "cpu", size: int = 512, classes: int = 80,
              backbone: str = "efficientnet_lite0", repeats=None) -> Figure:
    goal = "≤ 0.05"
    try:
        from frelon.engine.centernet.decode import decode
        from frelon.engine.tasks.detect import build_detector
    except ImportError as e:
        return Figure("P6", "CenterNet decode ÷ forward", f"not measured: {e}", goal, {}, None)
    repeats = repeats or (5 if quick else 11)
    dev = torch.device(device)
    torch.manual_seed(0)
    model, _ = build_detector(backbone, classes, weights="none")
    model = model.to(dev).eval()
    images = torch.randn(1, 3, size, size, device=dev)
    with torch.no_grad():
        untrained = model(images)            # warm-up, and the size / offset maps decoded
        trained = dict(untrained, heatmap=trained_like_heatmap(untrained["heatmap"].shape).to(dev))

        def forward() -> float:
            return _timed(dev, lambda: model(images))

        def decoding() -> float:
            return _timed(dev, lambda: decode(trained))

        def decoding_untrained() -> float:
            return _timed(dev, lambda: decode(untrained))
        decoding(), decoding_untrained()
        r = interleaved({"forward": forward, "decode": decoding, "untrained": decoding_untrained}, repeats)
    ratio = median([d / f for d, f in zip(r["decode"], r["forward"])])
    detail = {"backbone": backbone, "image_size": size, "classes": classes, "batch": 1, "device": device,
              "repeats": repeats, "forward_ms": 1000 * median(r["forward"]),
              "decode_ms": 1000 * median(r["decode"]), "heatmap": list(untrained["heatmap"].shape),
              "decoded": "a trained-like heatmap (background logit ~ N(-7, 1), 10 Gaussian objects)",
              "untrained_decode_ms": 1000 * median(r["untrained"]),
              "untrained_ratio": median([d / f for d, f in zip(r["untrained"], r["forward"])])}
    return Figure("P6", "CenterNet decode ÷ forward (512 px)", ratio, goal, detail, ratio <= 0.05)


def _timed(device: torch.device, fn) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t
