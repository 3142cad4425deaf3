#!/usr/bin/env python
"""Grad-CAM's peak against pasted evidence, on a model Frelon trained (not built by hand).

A set made here: grey noisy pictures, half of them with a red square (3/8 of the side) pasted at a
random place ("red"), half without ("none"). A classifier is fine-tuned on it through the real
command line (efficientnet_lite0, its bundled ImageNet weights, `--augment light` so that no crop
cuts the square away); then `frelon explain --class red` runs on held-out probe pictures, each with
a square at a new random place, and we count the probes whose map peak (the strongest cell's centre,
in the picture's pixels) falls inside the square. Chance: the square's share of the picture's
cells. Prints the hit rate, the scale and the run's validation accuracy.

    OMP_NUM_THREADS=1 python bench/explain_oracle.py [--size 128] [--per-class 24] [--probes 20] [--epochs 5]
        [--lr 0.003] [--freeze-backbone]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def picture(rng, size: int, square: bool) -> tuple[Image.Image, tuple | None]:
    a = rng.normal(128, 30, (size, size, 3)).clip(0, 255).astype("uint8")
    box = None
    if square:
        side = size * 3 // 8
        x, y = rng.integers(0, size - side, 2)
        a[y:y + side, x:x + side] = (220, 30, 30)
        box = (int(x), int(y), int(x) + side, int(y) + side)
    return Image.fromarray(a), box


def frelon(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"frelon {args[0]} failed: {p.stderr[-2000:]}")
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--per-class", type=int, default=24)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", default="0.003")
    ap.add_argument("--freeze-backbone", action="store_true", help="train the head only (ImageNet features)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="frelon-explain-"))
    rng = np.random.default_rng(0)
    for cls in ("none", "red"):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(args.per_class):
            picture(rng, args.size, cls == "red")[0].save(root / "data" / cls / f"{i:03d}.png")
    boxes = {}
    (root / "probes").mkdir()
    for i in range(args.probes):
        image, boxes[f"{i:03d}.png"] = picture(np.random.default_rng(1000 + i), args.size, True)
        image.save(root / "probes" / f"{i:03d}.png")
    frelon("train", "--data", str(root / "data"), "--out", str(root / "runs"), "--image-size", str(args.size),
           "--epochs", str(args.epochs), "--augment", "light", "--lr", args.lr, "--batch-size", "8", "--workers", "0",
           *(["--freeze-backbone"] if args.freeze_backbone else []))
    run = next((root / "runs").iterdir())
    accuracy = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()
                if '"epoch_end"' in line][-1]["val"]["accuracy"]
    result = json.loads(frelon("explain", "--run", str(run), "--input", str(root / "probes"), "--class", "red",
                               "--json"))
    hits = 0
    for entry in result["images"]:
        x, y = entry["maps"][0]["peak"]
        x1, y1, x2, y2 = boxes[entry["file_name"]]
        hits += x1 <= x < x2 and y1 <= y < y2
    cells = (args.size // 32) ** 2
    how = "its head trained (backbone frozen)" if args.freeze_backbone else "fine-tuned"
    print(f"Grad-CAM oracle: efficientnet_lite0 {how}, --lr {args.lr}, {args.epochs} epochs on {2 * args.per_class} pictures of "
          f"{args.size} px (validation accuracy {accuracy:.2f}); {hits} of {args.probes} held-out probes have the "
          f"map's peak inside the pasted square ({cells} cells of 32 px; the square covers about "
          f"{(3 / 8) ** 2:.0%} of the picture)")


if __name__ == "__main__":
    main()
