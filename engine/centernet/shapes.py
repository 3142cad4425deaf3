"""Synthetic shapes: coloured circles, squares and triangles on noisy backgrounds, with their boxes.

A detection dataset that can be made anywhere in a second, with a known answer: used by the tests,
by the benchmark and to make the bundled sample (frelon/assets/make_detect_sample.py). Written as COCO
(an annotations JSON beside the images), the layout every Frelon detection command reads.
Only numpy and Pillow: no torch needed to make data.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


@dataclass
class Shape:
    label: int                                  # index into CLASSES
    box: tuple[float, float, float, float]      # x1, y1, x2, y2 in pixels (pixel edges)


def _background(rng: np.random.Generator, size: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """A base colour with a gentle gradient and Gaussian noise; returns (pixels, base colour)."""
    base = rng.uniform(40, 215, size=3)
    ramp = np.linspace(-1.0, 1.0, size)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    img = base[None, None, :] + 25.0 * gradient[..., None] + rng.normal(0, noise, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8), base


def _contrasting_colour(rng: np.random.Generator, base: np.ndarray) -> tuple[int, int, int]:
    """A saturated colour far enough from the background to be seen."""
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - base).sum() > 180:
            return tuple(int(c) for c in colour)
    return tuple(int(255 - c) for c in base)


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[float, ...]], margin: int) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < b[2] + margin and b[0] < x2 + margin and y1 < b[3] + margin and b[1] < y2 + margin
               for b in boxes)


def _draw(draw: ImageDraw.ImageDraw, label: int, x: int, y: int, side: int, colour, rng) -> tuple:
    """Draw one shape in the square [x, x + side) × [y, y + side); return its tight box."""
    last = side - 1
    if CLASSES[label] == "circle":
        draw.ellipse([x, y, x + last, y + last], fill=colour)
        return (x, y, x + side, y + side)
    if CLASSES[label] == "square":
        draw.rectangle([x, y, x + last, y + last], fill=colour)
        return (x, y, x + side, y + side)
    # triangle: apex on one side of the square, base on the opposite one
    apex = int(rng.integers(0, side))
    points = [(x + apex, y), (x, y + last), (x + last, y + last)]
    if rng.random() < 0.5:      # upside down
        points = [(x + apex, y + last), (x, y), (x + last, y)]
    draw.polygon(points, fill=colour)
    return (x, y, x + side, y + side)


def render(rng: np.random.Generator, size: int = 128, max_objects: int = 3, min_side: float = 0.15,
           max_side: float = 0.45, noise: float = 12.0) -> tuple[Image.Image, list[Shape]]:
    """One RGB image of `size`×`size` with 0 to `max_objects` non-overlapping shapes."""
    pixels, base = _background(rng, size, noise)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    shapes: list[Shape] = []
    wanted = int(rng.integers(1, max_objects + 1)) if max_objects else 0
    lo, hi = max(4, int(min_side * size)), max(5, int(max_side * size))
    for _ in range(wanted * 20):
        if len(shapes) == wanted:
            break
        side = int(rng.integers(lo, hi + 1))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        if _overlaps((x, y, x + side, y + side), [s.box for s in shapes], margin=2):
            continue
        label = int(rng.integers(0, len(CLASSES)))
        box = _draw(draw, label, x, y, side, _contrasting_colour(rng, base), rng)
        shapes.append(Shape(label, tuple(float(v) for v in box)))
    return image, shapes


def write_coco(folder: str | os.PathLike, n_images: int, size: int = 128, seed: int = 0,
               max_objects: int = 3, json_name: str = "annotations.json", image_format: str = "png",
               quality: int = 90, empty_every: int = 0, noise: float = 12.0) -> Path:
    """Write `n_images` shapes images and a COCO JSON (categories 1..3) into `folder`.

    `empty_every` = k > 0 makes every k-th image a negative (no shapes). Returns the JSON's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(n_images):
        negative = empty_every > 0 and i % empty_every == empty_every - 1
        image, shapes = render(rng, size, 0 if negative else max_objects, noise=noise)
        name = f"{i:05d}.{image_format}"
        save = {"quality": quality} if image_format in ("jpg", "jpeg", "webp") else {}
        image.save(folder / name, **save)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for s in shapes:
            x1, y1, x2, y2 = s.box
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": s.label + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": 0})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]}
    path = folder / json_name
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def make_dataset(root: str | os.PathLike, n_train: int, n_val: int, size: int = 128, seed: int = 0,
                 **kwargs) -> Path:
    """`root/train/` and `root/val/`, each a COCO folder (Frelon's split COCO layout)."""
    root = Path(root)
    write_coco(root / "train", n_train, size, seed=seed, **kwargs)
    write_coco(root / "val", n_val, size, seed=seed + 10_000, **kwargs)
    return root
