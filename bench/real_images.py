#!/usr/bin/env python
"""Build a small REAL-photo classification set offline, for measuring fine-tuning accuracy.

The photographs are the ones bundled with scikit-image (`skimage.data`) and scikit-learn
(`sklearn.datasets.load_sample_image`): nothing is downloaded. Each photo is one class. Training and
validation pictures are crops from DISJOINT regions of the photo (a strip at its bottom or right side
is kept for validation, with a gap before it), so validation never sees a pixel that training saw: a
model has to recognise the subject, not remember the crop. Crops are square, 20-45 % of the photo's
short side, resized to --size px, randomly mirrored and colour-shifted (both splits alike).

With one photo per class the set is still easy for an ImageNet-pretrained model: it measures that
fine-tuning works and how fast it gets there, not how well a model generalises.

    python bench/real_images.py --out /tmp/real [--per-class 80] [--val-per-class 20]

writes DIR/train/<class>/*.jpg, DIR/val/<class>/*.jpg (Frelon's train_val layout) and DIR/SOURCES.md
with each photo's source and licence. Not committed: rebuild it when needed (a few seconds).
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

# class -> (loader, which side of the photo is kept for validation, source and licence). The side is
# chosen so that both regions show the subject (the cat's nose and whiskers in val, its eyes in train).
CLASSES = {
    "astronaut": ("skimage:astronaut", "bottom", "Eileen Collins, NASA Great Images; public domain"),
    "cat": ("skimage:chelsea", "bottom", "Chelsea the cat, Stefan van der Walt; CC0"),
    "coffee": ("skimage:coffee", "bottom", "coffee cup, Rachel Michetti (Pikolo Espresso Bar); CC0"),
    "rocket": ("skimage:rocket", "bottom", "DSCOVR launch on Falcon 9, SpaceX; public domain"),
    "galaxies": ("skimage:hubble_deep_field", "right", "Hubble eXtreme Deep Field, NASA; public domain"),
    "retina": ("skimage:retina", "bottom", "fundus photograph, Mikael Häggström; CC0"),
    "coins": ("skimage:coins", "right", "Greek coins from Pompeii, Brooklyn Museum; no known copyright restrictions"),
    "cameraman": ("skimage:camera", "right", "man with a camera, Lav Varshney; CC0"),
    "bricks": ("skimage:brick", "right", "brick wall, CC0Textures; CC0"),
    "grass": ("skimage:grass", "right", "grass, linolafett (DeviantArt); CC0"),
    "gravel": ("skimage:gravel", "right", "gravel, CC0Textures; CC0"),
    "temple": ("sklearn:china.jpg", "bottom", "Chinese temple, danielbuechele (Flickr); CC BY 2.0"),
    "flower": ("sklearn:flower.jpg", "bottom", "flower, vultilion (Flickr); CC BY 2.0"),
}
VAL_FRACTION = 0.34   # of the photo, on its validation side
GAP = 0.04            # between the two regions, so that no crop of one touches the other


def load(source: str) -> Image.Image:
    lib, name = source.split(":")
    if lib == "skimage":
        import skimage.data
        array = getattr(skimage.data, name)()
    else:
        from sklearn.datasets import load_sample_image
        array = load_sample_image(name)
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


def regions(width: int, height: int, val_side: str) -> dict:
    """{"train": box, "val": box}: disjoint boxes, the val one a strip on `val_side` ("right" | "bottom")."""
    if val_side == "right":
        cut_train, cut_val = round(width * (1 - VAL_FRACTION - GAP)), round(width * (1 - VAL_FRACTION))
        return {"train": (0, 0, cut_train, height), "val": (cut_val, 0, width, height)}
    cut_train, cut_val = round(height * (1 - VAL_FRACTION - GAP)), round(height * (1 - VAL_FRACTION))
    return {"train": (0, 0, width, cut_train), "val": (0, cut_val, width, height)}


def random_crop(photo: Image.Image, box: tuple, rng: random.Random, size: int) -> Image.Image:
    short = min(photo.size)
    left, top, right, bottom = box
    side = min(right - left, bottom - top, max(16, round(short * rng.uniform(0.20, 0.45))))
    x = rng.randint(left, right - side)
    y = rng.randint(top, bottom - side)
    view = photo.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.8, 1.2))
    view = ImageEnhance.Contrast(view).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Color(view).enhance(rng.uniform(0.8, 1.2))


def build(out: Path, per_class: int, val_per_class: int, size: int, seed: int) -> None:
    for split in ("train", "val"):
        if (out / split).exists():
            shutil.rmtree(out / split)
    for cls, (source, val_side, _) in CLASSES.items():
        photo = load(source)
        boxes = regions(*photo.size, val_side)
        for split, n in (("train", per_class), ("val", val_per_class)):
            rng = random.Random(f"frelon-bench:{seed}:{cls}:{split}")
            folder = out / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                random_crop(photo, boxes[split], rng, size).save(folder / f"{i:04d}.jpg", quality=90)
    lines = ["# Sources", "", "One photograph per class; train and val crops come from disjoint regions.", ""]
    lines += [f"- `{cls}`: {source.replace(':', '.data.' if source.startswith('skimage') else ' ')} -- {credit}"
              for cls, (source, _, credit) in CLASSES.items()]
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=80, help="training images per class")
    parser.add_argument("--val-per-class", type=int, default=0, help="default: per-class / 4, at least 5")
    parser.add_argument("--size", type=int, default=160, help="side of the square crops, px")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    val_n = args.val_per_class or max(5, args.per_class // 4)
    build(args.out, args.per_class, val_n, args.size, args.seed)
    print(f"{len(CLASSES)} classes, {args.per_class} train + {val_n} val images each, in {args.out}")


if __name__ == "__main__":
    main()
