#!/usr/bin/env python
"""P12: small objects in big pictures — detection mAP@0.5 with `--slicing on` against `--slicing off`,
the same training options and epochs (their wall-clock times printed side by side).

    python bench/fig_slicing.py [--train 16] [--test 4] [--epochs 10] [--size 256] [--cache DIR] [--json FILE]

The set (built once into --cache, default /tmp/frelon-bigpics; not committed): 4032 × 3024 JPEGs
(quality 92), each a crop of one of bench/learn_sets.py's real photographs upscaled to 12 MP, with
4-10 cat heads (Chelsea's, the one cat photo offline) 20-60 px long pasted on it among 3-8
unannotated distractors of the same sizes (faces, a cup, wood, fur-like blobs, a horse's
silhouette), pasted as learn_sets.py's cat-det pastes them (flipped, jittered, turned, feathered),
camera-like noise over the whole picture. Train and test backgrounds come from disjoint regions
of each photo (learn_sets.split_regions). One class, `cat`.

Both runs are the real command line: `frelon train --data SET/train --task detect --image-size S
--batch-size 4 --epochs E --val-split 0 --slicing on|off` (everything else Frelon's default:
efficientnet_lite0 with ImageNet weights, the TTF recipe), then `frelon eval --run RUN --data
SET/test --json` on the held-out pictures (the best checkpoint: without a validation split, the
epoch of the lowest training loss): the sliced run is scored on its tiles plus the whole
picture, the other on the letterboxed picture. At S = 256 a 40-px object is 2.5 px in the
letterboxed picture and 40 px in a tile.

Measured (2 busy CPU cores, load 5-9, defaults above): --slicing off mAP@0.5 0.000 (train 293 s),
--slicing on 0.704 (train 296 s); scoring 4 test pictures took 22 s whole, 387 s sliced (336 tiles
of 256 px a picture). About 12 minutes in all, the set's build (60 s) included.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import learn_sets as L  # noqa: E402  (the photos, pastes and COCO writer of the learning sets)

WIDTH, HEIGHT = 4032, 3024
VERSION = 1


def _big_background(source: str, split: str, rng: random.Random) -> np.ndarray:
    """A 4:3 crop of `source`'s `split` region (70-100 % of the largest that fits), upscaled to 12 MP."""
    image = L.photo(source)
    x1, y1, x2, y2 = L.split_regions(*image.size)[split]
    w, h = x2 - x1, y2 - y1
    cw = min(w, round(h * 4 / 3)) * rng.uniform(0.7, 1.0)
    cw, ch = max(8, round(cw)), max(6, round(cw * 3 / 4))
    x, y = rng.randint(x1, x2 - cw), rng.randint(y1, y2 - ch)
    view = image.crop((x, y, x + cw, y + ch)).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    return np.asarray(view, dtype=np.float32).copy()


def _paste(canvas: np.ndarray, thing: Image.Image, alpha: np.ndarray | None, longest: int,
           taken: list[tuple], rng: random.Random) -> tuple | None:
    """learn_sets._paste_thing on a rectangular canvas: `thing` `longest` px long, flipped,
    jittered, turned up to 12°, feathered, at a free place; its box (alpha > 0.5) or None."""
    if rng.random() < 0.5:
        thing = thing.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        alpha = None if alpha is None else alpha[:, ::-1]
    factor = longest / max(thing.size)
    w, h = max(6, round(thing.width * factor)), max(6, round(thing.height * factor))
    thing = L._jitter(thing.resize((w, h), Image.Resampling.BICUBIC), rng)
    if alpha is None:
        alpha = L._ellipse_alpha(w, h, max(1.0, min(w, h) / 14))
    else:
        alpha = np.asarray(Image.fromarray(np.uint8(alpha * 255)).resize((w, h), Image.Resampling.BILINEAR),
                           dtype=np.float64) / 255.0
    angle = rng.uniform(-12, 12)
    layer = np.asarray(thing.rotate(angle, Image.Resampling.BICUBIC, expand=True), dtype=np.float64)
    alpha = np.asarray(Image.fromarray(np.uint8(np.clip(alpha, 0, 1) * 255))
                       .rotate(angle, Image.Resampling.BICUBIC, expand=True), dtype=np.float64) / 255.0
    h, w = alpha.shape
    for _ in range(60):
        x, y = rng.randint(0, WIDTH - w), rng.randint(0, HEIGHT - h)
        if L._free((x, y, x + w, y + h), taken, margin=8):
            L._blend(canvas, layer, alpha, x, y)
            taken.append((x, y, x + w, y + h))
            return L._tight_box(alpha, x, y, 0.5)
    return None


def _picture(split: str, index: int, rng: random.Random, nrng: np.random.Generator) -> tuple:
    canvas = _big_background(L.BACKGROUNDS[index % len(L.BACKGROUNDS)], split, rng)
    taken: list[tuple] = []
    boxes = []
    for _ in range(rng.randint(4, 10)):
        box = _paste(canvas, L._cat_head(rng), None, rng.randint(20, 60), taken, rng)
        if box is not None:
            boxes.append(box)
    for _ in range(rng.randint(3, 8)):
        thing, alpha = L._distractor(rng.choice(L.DISTRACTORS), rng)
        _paste(canvas, thing, alpha, rng.randint(20, 60), taken, rng)
    canvas += nrng.standard_normal(canvas.shape, dtype=np.float32) * 2.5
    return Image.fromarray(np.clip(np.round(canvas), 0, 255).astype(np.uint8)), boxes


def build(out: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """The set (see the module docstring), rebuilt only when its stamp differs."""
    stamp = {"version": VERSION, "train": n_train, "test": n_test, "seed": seed}
    if (out / "stamp.json").is_file() and json.loads((out / "stamp.json").read_text()) == stamp:
        return out
    for split, count in (("train", n_train), ("test", n_test)):
        rng = random.Random(f"bigpics:{seed}:{split}")
        nrng = np.random.default_rng([seed, 12, len(split)])
        writer = L.CocoWriter(out / split, ["cat"])
        for i in range(count):
            image, boxes = _picture(split, i, rng, nrng)
            writer.add(image, boxes, [0] * len(boxes))
        writer.close()
    (out / "stamp.json").write_text(json.dumps(stamp))
    return out


def _frelon(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    r = subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"fig_slicing: frelon {args[0]} failed:\n{r.stderr[-3000:]}")
    return r


def arm(data: Path, runs: Path, slicing: str, args) -> dict:
    """One side: train (timed, start to exit), then eval on the test split (timed)."""
    start = time.perf_counter()
    _frelon("train", "--data", str(data / "train"), "--task", "detect", "--image-size", str(args.size),
            "--batch-size", "4", "--epochs", str(args.epochs), "--val-split", "0", "--slicing", slicing,
            "--seed", str(args.seed), "--out", str(runs), "--name", f"slicing-{slicing}")
    trained = time.perf_counter() - start
    run = max((d for d in runs.iterdir() if d.name.endswith(f"slicing-{slicing}")), key=lambda d: d.stat().st_mtime)
    start = time.perf_counter()
    metrics = json.loads(_frelon("eval", "--run", str(run), "--data", str(data / "test"), "--json").stdout)
    return {"slicing": slicing, "map_50": metrics["map_50"], "map": metrics["map"],
            "train_s": round(trained, 1), "eval_s": round(time.perf_counter() - start, 1), "run": str(run)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--train", type=int, default=16)
    p.add_argument("--test", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="/tmp/frelon-bigpics")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    cache = Path(args.cache)
    start = time.perf_counter()
    data = build(cache / "set", args.train, args.test)
    built = time.perf_counter() - start
    jpeg_mb = [f.stat().st_size / 1e6 for f in (data / "train").glob("*.jpg")]
    boxes = json.loads((data / "test" / "annotations.json").read_text())["annotations"]
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    results = [arm(data, runs, slicing, args) for slicing in ("off", "on")]
    print(f"P12 small objects in big pictures: {args.train} train / {args.test} test pictures of "
          f"{WIDTH}x{HEIGHT} (JPEG {np.median(jpeg_mb):.1f} MB median; set built in {built:.0f} s), "
          f"{len(boxes)} test objects 20-60 px, --image-size {args.size}, {args.epochs} epochs, batch 4, "
          f"seed {args.seed}, efficientnet_lite0 (ImageNet), {os.cpu_count()} CPU cores")
    for r in results:
        print(f"  --slicing {r['slicing']:3s}  mAP@0.5 {r['map_50']:.3f}  mAP {r['map']:.3f}  "
              f"train {r['train_s']:.0f} s  eval {r['eval_s']:.0f} s")
    off, on = results
    print(f"  sliced / letterboxed mAP@0.5: {on['map_50']:.3f} vs {off['map_50']:.3f}; "
          f"training time ratio {on['train_s'] / off['train_s']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
