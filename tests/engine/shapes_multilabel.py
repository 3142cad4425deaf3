"""A tiny multi-label set: a label is a coloured shape present in the picture (0, 1 or 2 of them),
written as class folders sharing pictures (the same bytes in each of its labels' folders) or as a
CSV `file,labels`. What is planted is the oracle the tests check the engine against."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

LABELS = ("red_square", "blue_disc", "green_bar")
SETS = [(), ("red_square",), ("blue_disc",), ("green_bar",), ("red_square", "blue_disc"),
        ("blue_disc", "green_bar"), ("red_square", "green_bar")]


def picture(labels, rng: random.Random, size: int = 40) -> Image.Image:
    image = Image.new("RGB", (size, size), tuple(rng.randint(90, 140) for _ in range(3)))
    d = ImageDraw.Draw(image)
    for label in labels:
        x, y = rng.randint(2, size // 2 - 2), rng.randint(2, size // 2 - 2)
        s = rng.randint(size // 3, size // 2)
        if label == "red_square":
            d.rectangle((x, y, x + s, y + s), fill=(220, 30, 30))
        elif label == "blue_disc":
            d.ellipse((x, y, x + s, y + s), fill=(30, 40, 220))
        else:
            d.rectangle((x, y, x + s, y + s // 4 + 2), fill=(30, 200, 40))
    return image


def planted(count: int, seed: int = 0) -> list[tuple[str, tuple]]:
    """[(file name, labels)] for `count` pictures, every label set in turn."""
    return [(f"p{i:03d}.png", SETS[i % len(SETS)]) for i in range(count)]


def write_csv_set(root: Path, count: int = 42, seed: int = 0) -> Path:
    """root/pics/*.png and root/labels.csv; returns the CSV's path."""
    rng = random.Random(seed)
    (root / "pics").mkdir(parents=True, exist_ok=True)
    lines = ["file,labels"]
    for name, labels in planted(count, seed):
        picture(labels, rng).save(root / "pics" / name)
        lines.append(f"pics/{name},{';'.join(labels)}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def write_folder_set(root: Path, count: int = 42, seed: int = 0) -> Path:
    """root/<label>/*.png: a picture with two labels is copied, byte for byte, in both folders (the
    pictures with no label cannot be written in this form and are left out)."""
    rng = random.Random(seed)
    for label in LABELS:
        (root / label).mkdir(parents=True, exist_ok=True)
    for name, labels in planted(count, seed):
        image = picture(labels, rng)
        if labels:
            image.save(root / labels[0] / name)
            for other in labels[1:]:
                shutil.copyfile(root / labels[0] / name, root / other / name)
    return root
