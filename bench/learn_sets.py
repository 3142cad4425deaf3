#!/usr/bin/env python
"""The data sets of bench/learn.py: three classification and two detection sets made offline from
real photographs and pictures, each with a held-out test split that training never sees.

Sources (nothing is downloaded): the photographs bundled with scikit-image (`skimage.data`) and
scikit-learn (`load_sample_image`), scikit-image's `lfw_subset` (100 faces and 100 non-faces of
Labeled Faces in the Wild, 25×25 grey) and scikit-learn's handwritten digits (1,797 of them, 8×8).

| set        | task     | classes | train / val / test | what it is                                                |
| faces      | classify | 2       | 130 / 20 / 50      | lfw_subset faces vs non-faces, upscaled to 96 px          |
| digits     | classify | 10      | ~1,400 / ~200 / ~200 | sklearn digits, dark ink on white, upscaled to 64 px    |
| photos     | classify | 13      | 1,040 / 130 / 260  | bench/real_images.py's crops, one photo per class          |
| digits-det | detect   | 10      | 320 / 80 / 80      | 1-5 digits (24-48 px) pasted on 192 px photo backgrounds  |
| cat-det    | detect   | 1       | 200 / 50 / 50      | Chelsea's head (48-110 px) among unannotated look-alikes |

What is held out:
  * faces, digits: every picture is in one split only (a seeded split per class; the pictures are
    checked to be distinct, so no two files of the set have the same bytes).
  * photos: train crops come from real_images.py's training region of each photo; its validation
    strip is cut in two (with a gap) into a val half and a test half, so test crops share no pixel
    with training crops, nor with val crops.
  * digits-det: backgrounds are crops of disjoint regions of each photo (train: the first 62 % of
    its long side; val and test: the last 34 % cut in two along the short side, gaps between), and
    the pasted digits are disjoint sets of sklearn digits per split.
  * cat-det: backgrounds as above (photos without a cat). The cat is the same photo in every split
    (there is one cat photo offline): its head is pasted at new places, scales, angles, crops and
    colours, among distractors (the astronaut's face, an LFW face, the coffee cup, wood, a
    horse's silhouette in fur-coloured texture) pasted the same way and not annotated. The set
    measures finding that head among look-alikes on unseen backgrounds, not generalising to cats.

Classification sets use Frelon's train_val layout plus a test folder: DIR/train/<class>/*.jpg,
DIR/val/<class>/*.jpg, DIR/test/<class>/*.jpg (`frelon train --data DIR` uses train/ and val/;
`frelon eval --data DIR/test` scores the test folder). Detection sets are COCO folders:
DIR/{train,val,test}/annotations.json with the JPEGs beside it. Each set folder has a SOURCES.md.
Everything is deterministic from the seed.

    python bench/learn_sets.py --out /tmp/frelon-learn [--only faces,cat-det] [--scale 0.1]

Not committed: rebuilt when needed (well under a minute for all five).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import real_images  # noqa: E402  (the photos set and the photo loader)

VERSION = 1                     # bump when a builder changes: cached sets are rebuilt
SPLITS = ("train", "val", "test")
STAMP = ".frelon-learn.json"
DET_SIZE = 192
JPEG_QUALITY = 92

CLASSIFY_SETS = ("faces", "digits", "photos")
DETECT_SETS = ("digits-det", "cat-det")
SET_NAMES = CLASSIFY_SETS + DETECT_SETS

# credits: real_images.CLASSES holds those of its 13 photos; the others are here
EXTRA_CREDITS = {
    "skimage:immunohistochemistry": "colonic glands, IHC staining, Center for Microscopy And Molecular Imaging; "
                                    "no known copyright restrictions",
    "skimage:page": "scanned page of printed text, scikit-image; no known copyright restrictions",
    "skimage:horse": "horse silhouette, Andreas Preuss (marauder), openclipart; CC0",
    "skimage:lfw_subset": "100 faces and 100 non-faces (25×25) from Labeled Faces in the Wild, Huang et al.; "
                          "http://vis-www.cs.umass.edu/lfw/",
    "sklearn:digits": "UCI Optical Recognition of Handwritten Digits (test set), E. Alpaydin, C. Kaynak; CC BY 4.0",
}

# backgrounds for the detection sets (no cat among cat-det's)
BACKGROUNDS = ("skimage:astronaut", "skimage:coffee", "skimage:rocket", "skimage:hubble_deep_field",
               "skimage:retina", "skimage:coins", "skimage:camera", "skimage:brick", "skimage:grass",
               "skimage:gravel", "skimage:immunohistochemistry", "skimage:page", "sklearn:china.jpg",
               "sklearn:flower.jpg")
DIGIT_BACKGROUNDS = BACKGROUNDS + ("skimage:chelsea",)

# regions of photos, (left, top, right, bottom) in the photo's pixels
CAT_HEAD = (40, 0, 410, 300)            # Chelsea's face fills most of skimage.data.chelsea()
ASTRONAUT_FACE = (160, 20, 305, 180)
COFFEE_CUP = (170, 15, 420, 250)
COFFEE_WOOD = (0, 270, 170, 400)


def credit(source: str) -> str:
    for _cls, (src, _side, text) in real_images.CLASSES.items():
        if src == source:
            return text
    return EXTRA_CREDITS.get(source, "")


def write_sources(out: Path, title: str, sources: list[str], note: str) -> None:
    lines = [f"# Sources: {title}", "", note, ""]
    lines += [f"- `{s}`: {credit(s)}" for s in sources]
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _count(n: int, scale: float, least: int) -> int:
    return max(least, round(n * scale))


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=JPEG_QUALITY)


def _grey_to_rgb(array: np.ndarray) -> Image.Image:
    """A float [0, 1] or uint8 grey picture as an RGB image."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def _distinct(arrays: np.ndarray) -> list[int]:
    """Indices of the first occurrence of each distinct picture."""
    seen, keep = set(), []
    for i, a in enumerate(arrays):
        key = np.ascontiguousarray(a).tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def _split_indices(indices: list[int], counts: dict[str, int], rng: random.Random) -> dict[str, list[int]]:
    """Shuffle and deal `indices` into splits of `counts` (train takes the rest when its count is -1)."""
    order = list(indices)
    rng.shuffle(order)
    out, at = {}, 0
    for split in ("test", "val", "train"):
        n = counts[split] if counts[split] >= 0 else len(order) - at
        out[split] = order[at:at + n]
        at += n
    return out


# ---------------------------------------------------------------- classification

def build_faces(out: Path, seed: int = 0, scale: float = 1.0, size: int = 96) -> dict:
    """lfw_subset: class `face` (the first 100) vs `not_face` (the last 100), upscaled to `size`."""
    import skimage.data
    pictures = np.asarray(skimage.data.lfw_subset())
    keep = set(_distinct(pictures))
    per_class = {"face": [i for i in range(100) if i in keep], "not_face": [i for i in range(100, 200) if i in keep]}
    counts = {"train": _count(65, scale, 2), "val": _count(10, scale, 1), "test": _count(25, scale, 1)}
    n = {s: 0 for s in SPLITS}
    for cls, indices in per_class.items():
        rng = random.Random(f"learn:{seed}:faces:{cls}")
        for split, chosen in _split_indices(indices, counts, rng).items():
            for i in chosen:
                image = _grey_to_rgb(pictures[i]).resize((size, size), Image.Resampling.BICUBIC)
                _save(image, out / split / cls / f"lfw{i:03d}.jpg")
                n[split] += 1
    write_sources(out, "faces", ["skimage:lfw_subset"],
                  "Faces vs non-faces (background patches of the same photos), grey, upscaled from 25 px. "
                  "Each picture is in one split only.")
    return {"images": n, "classes": list(per_class)}


def _digit_rgb(digit: np.ndarray, size: int) -> Image.Image:
    ink = np.clip(np.asarray(digit, dtype=np.float64) / 16.0, 0, 1)
    return _grey_to_rgb(1.0 - ink).resize((size, size), Image.Resampling.BICUBIC)


def build_digits(out: Path, seed: int = 0, scale: float = 1.0, size: int = 64) -> dict:
    """sklearn digits, 10 classes, dark ink on white, upscaled to `size`: 78 / 11 / 11 % per class."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    keep = set(_distinct(digits.images))
    n = {s: 0 for s in SPLITS}
    for label in range(10):
        indices = [i for i in np.flatnonzero(digits.target == label).tolist() if i in keep]
        rng = random.Random(f"learn:{seed}:digits:{label}")
        total = _count(len(indices), scale, 4)
        indices = rng.sample(indices, min(total, len(indices)))
        held = max(1, round(0.11 * len(indices)))
        counts = {"train": -1, "val": held, "test": held}
        for split, chosen in _split_indices(indices, counts, rng).items():
            for i in chosen:
                _save(_digit_rgb(digits.images[i], size), out / split / str(label) / f"d{i:04d}.jpg")
                n[split] += 1
    write_sources(out, "digits", ["sklearn:digits"],
                  "Handwritten digits (8×8, 16 grey levels) drawn dark on white and upscaled. "
                  "Each digit picture is in one split only.")
    return {"images": n, "classes": [str(c) for c in range(10)]}


def _halves(box: tuple, gap: float = 0.04) -> tuple[tuple, tuple]:
    """A box cut in two along its longer side, with a gap: (first half, second half)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if w >= h:
        a, b = left + round(w * (0.5 - gap / 2)), left + round(w * (0.5 + gap / 2))
        return (left, top, a, bottom), (b, top, right, bottom)
    a, b = top + round(h * (0.5 - gap / 2)), top + round(h * (0.5 + gap / 2))
    return (left, top, right, a), (left, b, right, bottom)


def _new_crop(photo: Image.Image, box: tuple, rng: random.Random, size: int, seen: set) -> bytes:
    """A JPEG of a real_images.random_crop that shows something (not a blank patch of overexposed
    sky) and whose bytes no earlier crop of the set has."""
    import hashlib
    import io
    for _ in range(100):
        crop = real_images.random_crop(photo, box, rng, size)
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
        digest = hashlib.sha1(data).digest()
        if np.asarray(crop, dtype=np.float32).std() >= 6.0 and digest not in seen:
            seen.add(digest)
            return data
    raise RuntimeError(f"no distinct, non-blank crop found in {box}")


def build_photos(out: Path, seed: int = 0, scale: float = 1.0, size: int = 160) -> dict:
    """bench/real_images.py's 13 classes: train crops from its training region; its validation strip
    cut in two halves, one for val and one for test."""
    counts = {"train": _count(80, scale, 2), "val": _count(10, scale, 1), "test": _count(20, scale, 1)}
    n = {s: 0 for s in SPLITS}
    seen: set[bytes] = set()
    for cls, (source, side, _) in real_images.CLASSES.items():
        photo = real_images.load(source)
        regions = real_images.regions(*photo.size, side)
        regions["val"], regions["test"] = _halves(regions["val"])
        for split in SPLITS:
            rng = random.Random(f"learn:{seed}:photos:{cls}:{split}")
            for i in range(counts[split]):
                (out / split / cls).mkdir(parents=True, exist_ok=True)
                (out / split / cls / f"{i:04d}.jpg").write_bytes(_new_crop(photo, regions[split], rng, size, seen))
                n[split] += 1
    write_sources(out, "photos", [s for s, _, _ in real_images.CLASSES.values()],
                  "One photograph per class (bench/real_images.py). Train crops come from one region of "
                  "each photo; the other region, after a gap, is cut in two (with a gap) for val and test.")
    return {"images": n, "classes": list(real_images.CLASSES)}


# ---------------------------------------------------------------- detection: backgrounds

_PHOTOS: dict[str, Image.Image] = {}
_PICTURES: dict[str, np.ndarray] = {}


def photo(source: str) -> Image.Image:
    if source not in _PHOTOS:
        _PHOTOS[source] = real_images.load(source)
    return _PHOTOS[source]


def split_regions(width: int, height: int) -> dict[str, tuple]:
    """Disjoint regions of a photo: train the first 62 % of its long side; val and test the last
    34 %, cut in two along the short side; 4 % gaps between them."""
    along_x = width >= height
    long_, short = (width, height) if along_x else (height, width)
    a, b = round(long_ * 0.62), round(long_ * 0.66)
    s1, s2 = round(short * 0.48), round(short * 0.52)
    boxes = {"train": (0, 0, a, short), "val": (b, 0, long_, s1), "test": (b, s2, long_, short)}
    if along_x:
        return boxes
    return {k: (y1, x1, y2, x2) for k, (x1, y1, x2, y2) in boxes.items()}   # (long, short) → (x, y)


def background(source: str, split: str, rng: random.Random, size: int = DET_SIZE) -> Image.Image:
    """A square crop of `source`'s `split` region, resized to `size`. The crop side is drawn from
    the same range in every split (55-100 % of the smaller held-out region's short side), so the
    three splits see the photos at the same scales."""
    image = photo(source)
    regions = split_regions(*image.size)
    x1, y1, x2, y2 = regions[split]
    vx1, vy1, vx2, vy2 = regions["val"]
    most = min(vx2 - vx1, vy2 - vy1, x2 - x1, y2 - y1)
    side = max(16, round(most * rng.uniform(0.55, 1.0)))
    x = rng.randint(x1, x2 - side)
    y = rng.randint(y1, y2 - side)
    view = image.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.85, 1.15))
    return ImageEnhance.Color(view).enhance(rng.uniform(0.8, 1.2))


def _free(box: tuple, taken: list[tuple], margin: int = 3) -> bool:
    x1, y1, x2, y2 = box
    return not any(x1 < b[2] + margin and b[0] < x2 + margin and y1 < b[3] + margin and b[1] < y2 + margin
                   for b in taken)


def _place(w: int, h: int, size: int, taken: list[tuple], rng: random.Random) -> tuple[int, int] | None:
    for _ in range(60):
        x, y = rng.randint(0, size - w), rng.randint(0, size - h)
        if _free((x, y, x + w, y + h), taken):
            return x, y
    return None


def _blend(canvas: np.ndarray, layer: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """canvas[y:, x:] = layer over canvas with `alpha` (h, w) in [0, 1], in place (float arrays)."""
    h, w = alpha.shape
    region = canvas[y:y + h, x:x + w]
    region *= 1.0 - alpha[..., None]
    region += layer * alpha[..., None]


def _tight_box(alpha: np.ndarray, x: int, y: int, threshold: float) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(alpha > threshold)
    if not len(xs):
        return None
    return float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1), float(y + ys.max() + 1)


def _finish(canvas: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Camera-like noise over the whole picture, so the pastes carry the same grain as the photo."""
    canvas = canvas + rng.normal(0.0, 2.5, canvas.shape)
    return Image.fromarray(np.clip(np.round(canvas), 0, 255).astype(np.uint8))


class CocoWriter:
    """One split's images and annotations.json (COCO, category ids 1..C)."""

    def __init__(self, folder: Path, classes: list[str]):
        self.folder = folder
        self.classes = classes
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, image: Image.Image, boxes: list[tuple], labels: list[int]) -> None:
        image_id = len(self.images) + 1
        name = f"{image_id:05d}.jpg"
        image.save(self.folder / name, quality=JPEG_QUALITY)
        self.images.append({"id": image_id, "file_name": name, "width": image.width, "height": image.height})
        for (x1, y1, x2, y2), label in zip(boxes, labels):
            w, h = x2 - x1, y2 - y1
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                     "category_id": label + 1, "bbox": [x1, y1, w, h], "area": w * h,
                                     "iscrowd": 0})

    def close(self) -> None:
        doc = {"images": self.images, "annotations": self.annotations,
               "categories": [{"id": i + 1, "name": c} for i, c in enumerate(self.classes)]}
        (self.folder / "annotations.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")


# ---------------------------------------------------------------- detection: digits-det

def _paste_digit(canvas: np.ndarray, digit: np.ndarray, taken: list[tuple], rng: random.Random) -> tuple | None:
    """Paste one digit (24-48 px) at a free place: dark or light ink straight on the photo, or ink
    on a paper-like or coloured patch. Returns its tight box (ink alpha > 0.3) or None."""
    size = canvas.shape[0]
    side = rng.randint(24, 48)
    patch = rng.random() < 0.4
    margin = rng.randint(3, 7) if patch else 0
    full = side + 2 * margin
    at = _place(full, full, size, taken, rng)
    if at is None:
        return None
    x, y = at
    ink = Image.fromarray(np.uint8(np.clip(digit / 16.0, 0, 1) * 255)).resize((side, side), Image.Resampling.BICUBIC)
    ink = np.asarray(ink.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float64) / 255.0
    opacity = rng.uniform(0.75, 0.95)
    if patch:
        paper = rng.random() < 0.6
        colour = np.array([rng.uniform(215, 250)] * 3) if paper else np.array([rng.uniform(30, 230) for _ in range(3)])
        colour = colour * np.array([rng.uniform(0.92, 1.0) for _ in range(3)])
        mask = Image.new("L", (full, full), 0)
        ImageDraw.Draw(mask).rounded_rectangle([0, 0, full - 1, full - 1], radius=margin + 2, fill=255)
        mask = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float64) / 255.0
        _blend(canvas, np.broadcast_to(colour, (full, full, 3)), mask * rng.uniform(0.85, 1.0), x, y)
        ink_colour = np.array([rng.uniform(10, 60)] * 3) if colour.mean() > 128 else np.array([rng.uniform(200, 245)] * 3)
    else:
        under = canvas[y:y + full, x:x + full].mean()
        ink_colour = np.array([rng.uniform(5, 50)] * 3) if under > 110 else np.array([rng.uniform(205, 250)] * 3)
        if rng.random() < 0.3:  # coloured ink
            ink_colour = ink_colour * np.array([rng.uniform(0.5, 1.0) for _ in range(3)]) + \
                np.array([rng.uniform(0, 80) for _ in range(3)]) * (under <= 110)
    _blend(canvas, np.broadcast_to(ink_colour, (side, side, 3)), ink * opacity, x + margin, y + margin)
    taken.append((x, y, x + full, y + full))
    return _tight_box(ink, x + margin, y + margin, 0.3)


def build_digits_det(out: Path, seed: int = 0, scale: float = 1.0, size: int = DET_SIZE) -> dict:
    """10 classes, 1-5 small digits per picture, on crops of disjoint photo regions per split."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    keep = _distinct(digits.images)
    counts = {"train": _count(320, scale, 3), "val": _count(80, scale, 2), "test": _count(80, scale, 2)}
    pools = _split_indices(keep, {"train": -1, "val": 300, "test": 300}, random.Random(f"learn:{seed}:digits-det:pool"))
    classes = [str(c) for c in range(10)]
    n = {}
    for split in SPLITS:
        rng = random.Random(f"learn:{seed}:digits-det:{split}")
        nrng = np.random.default_rng([seed, 1, SPLITS.index(split)])
        writer = CocoWriter(out / split, classes)
        for i in range(counts[split]):
            canvas = np.asarray(background(DIGIT_BACKGROUNDS[i % len(DIGIT_BACKGROUNDS)], split, rng, size),
                                dtype=np.float64).copy()
            boxes, labels, taken = [], [], []
            for _ in range(rng.randint(1, 5)):
                index = rng.choice(pools[split])
                box = _paste_digit(canvas, digits.images[index], taken, rng)
                if box is not None:
                    boxes.append(box)
                    labels.append(int(digits.target[index]))
            writer.add(_finish(canvas, nrng), boxes, labels)
        writer.close()
        n[split] = counts[split]
    write_sources(out, "digits-det", ["sklearn:digits", *DIGIT_BACKGROUNDS],
                  "Handwritten digits pasted on crops of photographs. Backgrounds come from disjoint regions "
                  "of each photo per split, and each split pastes its own digits.")
    return {"images": n, "classes": classes}


# ---------------------------------------------------------------- detection: cat-det

def _ellipse_alpha(w: int, h: int, feather: float) -> np.ndarray:
    mask = Image.new("L", (w, h), 0)
    inset = max(1, round(feather))
    ImageDraw.Draw(mask).ellipse([inset, inset, w - 1 - inset, h - 1 - inset], fill=255)
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(feather)), dtype=np.float64) / 255.0


def _jitter(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.75, 1.25))
    return ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))


def _sub_crop(image: Image.Image, box: tuple, rng: random.Random, least: float = 0.8) -> Image.Image:
    """A random crop covering `least`-100 % of `box`'s width and height."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    cw, ch = round(w * rng.uniform(least, 1.0)), round(h * rng.uniform(least, 1.0))
    x, y = left + rng.randint(0, w - cw), top + rng.randint(0, h - ch)
    return image.crop((x, y, x + cw, y + ch))


def _cat_head(rng: random.Random) -> Image.Image:
    return _sub_crop(photo("skimage:chelsea"), CAT_HEAD, rng)


def _astronaut_face(rng: random.Random) -> Image.Image:
    return _sub_crop(photo("skimage:astronaut"), ASTRONAUT_FACE, rng, 0.85)


def _lfw_face(rng: random.Random) -> Image.Image:
    import skimage.data
    if "lfw" not in _PICTURES:
        _PICTURES["lfw"] = np.asarray(skimage.data.lfw_subset())[:100]
    faces = _PICTURES["lfw"]
    face = _grey_to_rgb(faces[rng.randrange(len(faces))]).resize((100, 100), Image.Resampling.BICUBIC)
    tint = Image.new("RGB", face.size, (rng.randint(150, 230), rng.randint(110, 170), rng.randint(70, 130)))
    return Image.blend(face, tint, rng.uniform(0.2, 0.45))


def _coffee_cup(rng: random.Random) -> Image.Image:
    return _sub_crop(photo("skimage:coffee"), COFFEE_CUP, rng, 0.85)


def _wood(rng: random.Random) -> Image.Image:
    return _sub_crop(photo("skimage:coffee"), COFFEE_WOOD, rng, 0.6)


def _fur_texture(rng: random.Random, w: int, h: int) -> Image.Image:
    """Grass or gravel tinted tabby-brown: a furry-looking texture that is no cat."""
    source = photo(rng.choice(("skimage:grass", "skimage:gravel")))
    side = rng.randint(120, 300)
    x, y = rng.randint(0, source.width - side), rng.randint(0, source.height - side)
    grey = source.crop((x, y, x + side, y + side)).convert("L").resize((w, h), Image.Resampling.BICUBIC)
    brown = (rng.randint(150, 215), rng.randint(110, 160), rng.randint(60, 110))
    return Image.merge("RGB", [grey.point(lambda v, c=c: v * c / 255) for c in brown])


def _fur_blob(rng: random.Random) -> Image.Image:
    return _fur_texture(rng, 100, 90)


DISTRACTORS = (_astronaut_face, _lfw_face, _coffee_cup, _wood, _fur_blob, "horse")


def _paste_thing(canvas: np.ndarray, thing: Image.Image, alpha: np.ndarray | None, longest: int,
                 taken: list[tuple], rng: random.Random) -> tuple | None:
    """Paste `thing` with its longer side `longest` px (flipped, jittered, turned up to 12°) at a free
    place; alpha = a feathered ellipse unless given. Returns the box of alpha > 0.5, or None."""
    if rng.random() < 0.5:
        thing = thing.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if alpha is not None:
            alpha = alpha[:, ::-1]
    factor = longest / max(thing.size)
    w, h = max(8, round(thing.width * factor)), max(8, round(thing.height * factor))
    thing = _jitter(thing.resize((w, h), Image.Resampling.BICUBIC), rng)
    if alpha is None:
        alpha = _ellipse_alpha(w, h, max(1.5, min(w, h) / 14))
    else:
        alpha = np.asarray(Image.fromarray(np.uint8(alpha * 255)).resize((w, h), Image.Resampling.BILINEAR)
                           .filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float64) / 255.0
    angle = rng.uniform(-12, 12)
    layer = np.asarray(thing.rotate(angle, Image.Resampling.BICUBIC, expand=True), dtype=np.float64)
    alpha = np.asarray(Image.fromarray(np.uint8(np.clip(alpha, 0, 1) * 255))
                       .rotate(angle, Image.Resampling.BICUBIC, expand=True), dtype=np.float64) / 255.0
    h, w = alpha.shape
    size = canvas.shape[0]
    if w > size or h > size:
        return None
    at = _place(w, h, size, taken, rng)
    if at is None:
        return None
    x, y = at
    _blend(canvas, layer, alpha, x, y)
    taken.append((x, y, x + w, y + h))
    return _tight_box(alpha, x, y, 0.5)


def _distractor(kind, rng: random.Random) -> tuple[Image.Image, np.ndarray | None]:
    if kind == "horse":
        import skimage.data
        mask = np.asarray(skimage.data.horse(), dtype=bool)
        alpha = (~mask).astype(np.float64)          # the horse is False (black) on True (white)
        ys, xs = np.nonzero(alpha)
        alpha = alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        h, w = alpha.shape
        return _fur_texture(rng, w, h), alpha
    return kind(rng), None


def build_cat_det(out: Path, seed: int = 0, scale: float = 1.0, size: int = DET_SIZE) -> dict:
    """One class, `cat` (Chelsea's head, 48-110 px), 0-2 per picture, with 1-3 unannotated distractors."""
    counts = {"train": _count(200, scale, 3), "val": _count(50, scale, 2), "test": _count(50, scale, 2)}
    n = {}
    for split in SPLITS:
        rng = random.Random(f"learn:{seed}:cat-det:{split}")
        nrng = np.random.default_rng([seed, 2, SPLITS.index(split)])
        writer = CocoWriter(out / split, ["cat"])
        for i in range(counts[split]):
            canvas = np.asarray(background(BACKGROUNDS[i % len(BACKGROUNDS)], split, rng, size),
                                dtype=np.float64).copy()
            taken, boxes = [], []
            # the cats first, so that they get a place; then the distractors where there is room
            things = [("cat", None)] * rng.choice((0, 1, 1, 1, 2)) + \
                [("other", rng.choice(DISTRACTORS)) for _ in range(rng.randint(1, 3))]
            for what, kind in things:
                longest = rng.randint(48, 110)
                if what == "cat":
                    box = _paste_thing(canvas, _cat_head(rng), None, longest, taken, rng)
                    if box is not None:
                        boxes.append(box)
                else:
                    thing, alpha = _distractor(kind, rng)
                    _paste_thing(canvas, thing, alpha, longest, taken, rng)
            writer.add(_finish(canvas, nrng), boxes, [0] * len(boxes))
        writer.close()
        n[split] = counts[split]
    write_sources(out, "cat-det", ["skimage:chelsea", "skimage:astronaut", "skimage:coffee", "skimage:horse",
                                   "skimage:lfw_subset", *BACKGROUNDS],
                  "Chelsea's head pasted on crops of photographs (disjoint regions per split), among "
                  "distractors that are not annotated. The cat is the same photo in every split.")
    return {"images": n, "classes": ["cat"]}


BUILDERS = {"faces": build_faces, "digits": build_digits, "photos": build_photos,
            "digits-det": build_digits_det, "cat-det": build_cat_det}


def task_of(name: str) -> str:
    return "detect" if name in DETECT_SETS else "classify"


def ensure(name: str, cache: Path, seed: int = 0, scale: float = 1.0) -> Path:
    """The set `name` built in cache/<name>[-s<scale>] (reused when already built the same way)."""
    folder = Path(cache) / (name if scale == 1.0 else f"{name}-s{scale:g}")
    stamp = {"set": name, "version": VERSION, "seed": seed, "scale": scale}
    try:
        if json.loads((folder / STAMP).read_text())["build"] == stamp:
            return folder
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    summary = BUILDERS[name](folder, seed=seed, scale=scale)
    (folder / STAMP).write_text(json.dumps({"build": stamp, **summary}, indent=1), encoding="utf-8")
    return folder


def summary(folder: Path) -> dict:
    return json.loads((Path(folder) / STAMP).read_text())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/frelon-learn"))
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SET_NAMES)}")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the images (tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SET_NAMES)
    for name in names:
        if name not in BUILDERS:
            parser.error(f"unknown set {name!r}: choose from {', '.join(SET_NAMES)}")
        folder = ensure(name, args.out, args.seed, args.scale)
        print(f"{name}: {folder} {summary(folder)['images']}")


if __name__ == "__main__":
    main()
