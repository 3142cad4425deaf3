#!/usr/bin/env python
"""Build a folder of phone-sized photos offline: 4032 x 3024 JPEGs of 2-5 MB, for issue 28's benchmarks.

The pictures are crops of the real photographs bench/real_images.py uses (scikit-image's and
scikit-learn's bundled photos: nothing is downloaded), one photo per class, training and validation
crops from disjoint regions of it (real_images.regions). Each crop (4:3, 45-90 % of its region) is
enlarged to 4032 x 3024 and given a phone sensor's grain (Gaussian noise, std NOISE levels) so that
it compresses like a photo (JPEG quality QUALITY: 2-5 MB); one picture in four is a portrait stored
on its side with EXIF orientation 6, as phones write them. Beside it, the same pictures with their
short side resized to 448 px (what "pre-resized" means in P10).

    python bench/big_photos.py --out /tmp/big [--classes 4] [--train 12] [--val 6]

writes OUT/full/{train,val}/<class>/*.jpg (12 MP) and OUT/small448/... Not committed; a few seconds
a picture on a busy CPU.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_images import CLASSES, load, regions  # noqa: E402

SIZE = (4032, 3024)
NOISE = 4.0
QUALITY = 92
SMALL = 448


def crop(photo: Image.Image, box: tuple, rng: random.Random, aspect: float) -> Image.Image:
    """A crop of width / height `aspect`, 45-90 % of what fits in `box`."""
    left, top, right, bottom = box
    width = min(right - left, (bottom - top) * aspect) * rng.uniform(0.45, 0.9)
    height = width / aspect
    x = rng.uniform(left, right - width)
    y = rng.uniform(top, bottom - height)
    return photo.crop((round(x), round(y), round(x + width), round(y + height)))


def big(view: Image.Image, size: tuple[int, int], seed: int) -> Image.Image:
    image = np.asarray(view.resize(size, Image.Resampling.BICUBIC), np.int16)
    grain = np.random.default_rng(seed).normal(0, NOISE, image.shape[:2] + (1,)).astype(np.int16)
    return Image.fromarray(np.clip(image + grain, 0, 255).astype(np.uint8))


def save(image: Image.Image, path: Path, portrait: bool) -> None:
    """A portrait is stored on its side, turned upright by EXIF orientation 6 (as a phone does)."""
    exif = Image.Exif()
    if portrait:
        exif[0x0112] = 6
    image.save(path, quality=QUALITY, exif=exif)


def small(path: Path, out: Path) -> None:
    from frelon.engine.data.images import load_rgb
    upright = load_rgb(path)
    scale = SMALL / min(upright.size)
    upright.resize((round(upright.width * scale), round(upright.height * scale)),
                   Image.Resampling.BICUBIC).save(out, quality=90)


def build(out: Path, classes: int, counts: dict[str, int], seed: int = 0) -> list[Path]:
    for part in ("full", "small448"):
        shutil.rmtree(out / part, ignore_errors=True)
    made = []
    for cls, (source, val_side, _) in list(CLASSES.items())[:classes]:
        photo = load(source)
        boxes = regions(*photo.size, val_side)
        for split, n in counts.items():
            rng = random.Random(f"frelon-big:{seed}:{cls}:{split}")
            for part in ("full", "small448"):
                (out / part / split / cls).mkdir(parents=True)
            for i in range(n):
                portrait = i % 4 == 3
                if portrait:     # upright 3024 x 4032, stored turned (4032 x 3024): EXIF 6 turns it back
                    view = crop(photo, boxes[split], rng, 3 / 4)
                    image = big(view, (SIZE[1], SIZE[0]), rng.randrange(2**32)).transpose(Image.Transpose.ROTATE_90)
                else:
                    image = big(crop(photo, boxes[split], rng, 4 / 3), SIZE, rng.randrange(2**32))
                path = out / "full" / split / cls / f"{i:04d}.jpg"
                save(image, path, portrait)
                small(path, out / "small448" / split / cls / path.name)
                made.append(path)
    return made


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--train", type=int, default=12, help="training photos per class")
    parser.add_argument("--val", type=int, default=6, help="validation photos per class")
    args = parser.parse_args(argv)
    made = build(args.out, args.classes, {"train": args.train, "val": args.val})
    sizes = [p.stat().st_size / 2**20 for p in made]
    print(f"{len(made)} photos of {SIZE[0]} x {SIZE[1]} in {args.out / 'full'}: "
          f"{min(sizes):.1f}-{max(sizes):.1f} MB (median {sorted(sizes)[len(sizes) // 2]:.1f}); "
          f"the same at {SMALL} px in {args.out / 'small448'}")


if __name__ == "__main__":
    main()
