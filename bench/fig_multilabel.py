#!/usr/bin/env python
"""Figure: multi-label mAP of `frelon train --task multilabel` against a plain BCE loop, on a
multi-label set built offline from real photographs.

The set: six photographs of bench/real_images.py (scikit-image / scikit-learn's bundled photos,
nothing downloaded), one label each. A picture is a crop of one photo (one label) or a crop of one
photo with a smaller crop of another pasted at a random place (both labels), half of each. Train,
validation and test pictures are cut from disjoint regions of the photos (real_images.regions), so
no test pixel was seen in training. Written as three `file,labels` CSVs: Frelon trains on train.csv,
picks its best epoch and tunes its thresholds on val.csv (--val-data); both sides are scored on
test.csv with the same AP (scikit-learn's average_precision_score, mean over the labels).

The plain loop: the same backbone and ImageNet weights (efficientnet_lite0 through
frelon.engine.backbones) with a new head, torch's BCEWithLogitsLoss, AdamW 1e-3 constant, batch 16,
RandomResizedCrop(scale 0.25-1) + flip, the same number of epochs, its last weights scored.

    OMP_NUM_THREADS=1 python bench/fig_multilabel.py [--epochs 4] [--train 240] [--size 96] [--seeds 1]

Small scale on purpose (a shared 2-core CPU): the printout says the scale; the data is rebuilt in a
temporary folder and never kept.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_images import CLASSES, load, random_crop, regions  # noqa: E402

LABELS = ("astronaut", "cat", "coffee", "rocket", "flower", "temple")
BACKBONE = "efficientnet_lite0"


def composite(photos: dict, split: str, rng: random.Random, size: int) -> tuple[Image.Image, list[str]]:
    first = rng.choice(LABELS)
    picture = random_crop(photos[first][0], photos[first][1][split], rng, size)
    if rng.random() < 0.5:
        return picture, [first]
    second = rng.choice([x for x in LABELS if x != first])
    side = rng.randint(size * 2 // 5, size * 3 // 5)
    inset = random_crop(photos[second][0], photos[second][1][split], rng, side)
    picture.paste(inset, (rng.randint(0, size - side), rng.randint(0, size - side)))
    return picture, sorted([first, second])


def build(out: Path, counts: dict, size: int, seed: int) -> None:
    photos = {}
    for label in LABELS:
        photo = load(CLASSES[label][0])
        photos[label] = (photo, regions(*photo.size, CLASSES[label][1]))
    for split, n in counts.items():
        rng = random.Random(f"frelon-multilabel:{seed}:{split}")
        (out / split).mkdir(parents=True)
        lines = ["file,labels"]
        for i in range(n):
            picture, labels = composite(photos, "train" if split == "train" else "val", rng, size)
            picture.save(out / split / f"{i:04d}.jpg", quality=90)
            lines.append(f"{split}/{i:04d}.jpg,{';'.join(labels)}")
        (out / f"{split}.csv").write_text("\n".join(lines) + "\n")


def read_csv(path: Path) -> list[tuple[Path, list[str]]]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return [(path.parent / f, labels.split(";")) for f, labels in rows]


def mean_ap(scores: np.ndarray, truths: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score
    return float(np.mean([average_precision_score(truths[:, j], scores[:, j]) for j in range(truths.shape[1])]))


def frelon_side(data: Path, epochs: int, size: int, seed: int) -> dict:
    runs = data / f"runs{seed}"
    start = time.perf_counter()
    train = subprocess.run([sys.executable, "-m", "frelon", "train", "--task", "multilabel",
                            "--data", data / "train.csv", "--val-data", data / "val.csv", "--out", runs,
                            "--epochs", str(epochs), "--image-size", str(size), "--seed", str(seed),
                            "--backbone", BACKBONE, "--workers", "0"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if train.returncode:
        raise SystemExit(train.stderr[-2000:])
    run = next(runs.iterdir())
    predicted = subprocess.run([sys.executable, "-m", "frelon", "predict", "--run", run, "--input", data / "test",
                                "--out", data / f"pred{seed}.json"], capture_output=True, text=True)
    if predicted.returncode:
        raise SystemExit(predicted.stderr[-2000:])
    by_name = {p["file_name"]: p["scores"] for p in json.loads((data / f"pred{seed}.json").read_text())}
    rows = read_csv(data / "test.csv")
    scores = np.array([[by_name[f.name][x] for x in LABELS] for f, _ in rows])
    truths = np.array([[int(x in labels) for x in LABELS] for _, labels in rows])
    return {"map": mean_ap(scores, truths), "seconds": seconds}


def plain_side(data: Path, epochs: int, size: int, seed: int) -> dict:
    import torch
    from torchvision.transforms import v2
    from frelon.engine.backbones import build_classifier
    torch.manual_seed(seed)
    model, pre = build_classifier(BACKBONE, len(LABELS))
    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre["mean"], pre["std"])]
    train_t = v2.Compose([v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True), v2.RandomHorizontalFlip(), *norm])
    test_t = v2.Compose([v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size), *norm])

    def target(labels):
        return torch.tensor([float(x in labels) for x in LABELS])

    train = [(Image.open(f).convert("RGB"), target(labels)) for f, labels in read_csv(data / "train.csv")]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    g = random.Random(seed)
    for _ in range(epochs):
        model.train()
        order = list(range(len(train)))
        g.shuffle(order)
        for b in range(0, len(order), 16):
            batch = [train[i] for i in order[b:b + 16]]
            x = torch.stack([train_t(im) for im, _ in batch])
            loss = loss_fn(model(x), torch.stack([t for _, t in batch]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    rows = read_csv(data / "test.csv")
    with torch.no_grad():
        scores = torch.cat([model(torch.stack([test_t(Image.open(f).convert("RGB")) for f, _ in rows[b:b + 64]])).sigmoid()
                            for b in range(0, len(rows), 64)]).numpy()
    truths = np.array([[int(x in labels) for x in LABELS] for _, labels in rows])
    return {"map": mean_ap(scores, truths), "seconds": seconds}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train", type=int, default=240, help="training pictures (val and test: a quarter and a half)")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--seeds", type=int, default=1)
    args = p.parse_args(argv)
    counts = {"train": args.train, "val": args.train // 4, "test": args.train // 2}
    rows = []
    with tempfile.TemporaryDirectory(prefix="frelon-multilabel-") as tmp:
        data = Path(tmp)
        build(data, counts, args.size, seed=0)
        for seed in range(args.seeds):
            rows.append((seed, frelon_side(data, args.epochs, args.size, seed), plain_side(data, args.epochs, args.size, seed)))
    print(f"multi-label mAP on test ({len(LABELS)} labels from real photos, half the pictures with two; "
          f"{counts['train']} train / {counts['val']} val / {counts['test']} test pictures at {args.size} px; "
          f"{BACKBONE} ImageNet weights; {args.epochs} epochs; CPU, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s))")
    print("seed  frelon mAP  (s)    plain BCE loop mAP  (s)")
    for seed, f, b in rows:
        print(f"{seed:>4}  {f['map']:.3f}      {f['seconds']:>5.0f}  {b['map']:.3f}               {b['seconds']:>5.0f}")
    if len(rows) > 1:
        print(f"mean  {np.mean([r[1]['map'] for r in rows]):.3f}              {np.mean([r[2]['map'] for r in rows]):.3f}")


if __name__ == "__main__":
    main()
