#!/usr/bin/env python
"""Build the bundled sample dataset (frelon/assets/sample/classify/) used by the default run.

Two classes of real photos, `cat` and `coffee`, made from two public-domain (CC0) photographs that
ship with scikit-image: `skimage.data.chelsea()` and `skimage.data.coffee()`. Each class gets
`--per-class` small JPEGs (96-128 px a side): random crops of the photo's subject at random scales,
flips and colour changes, so a model has something to learn in a minute on a CPU. Everything is
seeded: running it again gives the same pictures (with the same Pillow / libjpeg).

scikit-image is only needed to run this script (a test dependency); the pictures it writes are
committed and are what ships. Usage:

    python frelon/assets/make_sample.py     # writes frelon/assets/sample/classify/<class>/NNN.jpg + README.md
"""
from __future__ import annotations

import argparse
import math
import random
import shutil
from pathlib import Path

from PIL import Image, ImageEnhance

HERE = Path(__file__).resolve().parent

# class -> (skimage.data function, subject box (left, top, right, bottom) in the photo, credit)
SOURCES = {
    "cat": ("chelsea", (0, 0, 451, 300),
            "Chelsea the cat; photograph by Stefan van der Walt, CC0 (public domain)"),
    "coffee": ("coffee", (70, 10, 490, 390),
               "a coffee cup at Pikolo Espresso Bar; photograph by Rachel Michetti, CC0 (public domain)"),
}


def load_photo(name: str) -> Image.Image:
    import skimage.data  # imported here: only this script needs scikit-image
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def random_view(photo: Image.Image, box: tuple, rng: random.Random,
                min_area: float = 0.3, sizes: tuple = (96, 128)) -> Image.Image:
    """One training-style view of `photo`: a crop inside `box` covering min_area..1 of its area,
    resized to a random size within `sizes`, maybe mirrored, with brightness / contrast / colour
    changed by up to about a quarter."""
    out_w, out_h = rng.randint(*sizes), rng.randint(*sizes)
    left, top, right, bottom = box
    bw, bh = right - left, bottom - top
    area = rng.uniform(min_area, 1.0) * bw * bh
    aspect = out_w / out_h
    cw = min(bw, max(8, round(math.sqrt(area * aspect))))
    ch = min(bh, max(8, round(math.sqrt(area / aspect))))
    x = left + rng.randint(0, bw - cw)
    y = top + rng.randint(0, bh - ch)
    view = photo.crop((x, y, x + cw, y + ch)).resize((out_w, out_h), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.75, 1.25))
    view = ImageEnhance.Contrast(view).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Color(view).enhance(rng.uniform(0.7, 1.3))


def build(out: Path, per_class: int, seed: int) -> int:
    target = out / "classify"
    if target.exists():
        shutil.rmtree(target)
    total = 0
    for cls, (name, box, _) in SOURCES.items():
        photo = load_photo(name)
        rng = random.Random(f"frelon-sample:{seed}:{cls}")
        folder = target / cls
        folder.mkdir(parents=True)
        for i in range(per_class):
            path = folder / f"{i:03d}.jpg"
            random_view(photo, box, rng).save(path, "JPEG", quality=85, optimize=True)
            total += path.stat().st_size
    write_readme(out, per_class, seed)
    return total


def write_readme(out: Path, per_class: int, seed: int) -> None:
    lines = [
        "# The bundled sample",
        "",
        "`classify/` is the small dataset Frelon trains on when no `--data` is given: "
        f"{len(SOURCES)} classes ({', '.join(f'`{c}`' for c in SOURCES)}), {per_class} JPEGs each, "
        "96-128 px a side.",
        "",
        f"Made by `python frelon/assets/make_sample.py` (seed {seed}): random crops, scales, mirror images and "
        "colour changes of one photograph per class. The photographs come with scikit-image "
        "(`skimage.data`), where they are published without copyright restrictions:",
        "",
    ]
    lines += [f"- `{cls}`: `skimage.data.{name}()`: {credit}." for cls, (name, _, credit) in SOURCES.items()]
    lines += [
        "",
        "The derived pictures here are likewise dedicated to the public domain (CC0). Since every "
        "picture of a class comes from one photograph, the sample shows that training works; it says "
        "little about accuracy on real data (see `bench/real_images.py` for that).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "sample")
    parser.add_argument("--per-class", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    total = build(args.out, args.per_class, args.seed)
    print(f"wrote {args.per_class * len(SOURCES)} images ({total / 1024:.0f} KiB) to {args.out / 'classify'}")


if __name__ == "__main__":
    main()
