"""Decoding only what the transforms need (engine/data/images.py `load_rgb(path, min_short)`,
engine/classify/transforms.py `decode_short_side`): the pixels the model sees are those of the full
decode, wherever they did not depend on the resolution left out."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from frelon.engine.classify.transforms import decode_short_side, eval_pixels
from frelon.engine.data.images import load_rgb


def _photo(width: int, height: int) -> Image.Image:
    """Smooth gradients and a few soft discs: detail well under the draft scales' cut-off."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 100 * np.sin(x / 23.0) * np.cos(y / 31.0)
    g = 255 * x / width
    b = 255 * y / height
    for cx, cy, rad in ((0.3, 0.4, 0.15), (0.7, 0.6, 0.2)):
        d = np.hypot(x - cx * width, y - cy * height) / (rad * min(width, height))
        r = np.where(d < 1, 230 - 60 * d, r)
    return Image.fromarray(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))


def _save(tmp_path, image: Image.Image, name: str, **kw) -> str:
    path = str(tmp_path / name)
    image.save(path, **kw)
    return path


def test_draft_jpeg_is_the_full_decode_made_smaller(tmp_path):
    path = _save(tmp_path, _photo(512, 384), "p.jpg", quality=95)
    full = load_rgb(path)
    small = load_rgb(path, min_short=90)            # drafted at 1/4 (96 >= 90 > 384 / 8), then 90
    assert small.size == (120, 90)
    reference = np.asarray(full.resize(small.size, Image.Resampling.BILINEAR), np.float32)
    assert np.abs(np.asarray(small, np.float32) - reference).mean() < 2.0
    # what the model sees: evaluation at 64 px (short side 74 needed) from either decode
    size = 64
    need = decode_short_side(size)
    assert need == 74
    a = eval_pixels(size)(load_rgb(path, need))
    b = eval_pixels(size)(full)
    assert a.shape == b.shape == (3, size, size)
    assert (a - b).abs().mean().item() < 2.0 / 255


def test_other_formats_are_made_smaller_too(tmp_path):
    photo = _photo(300, 200)
    path = _save(tmp_path, photo, "p.png")
    small = load_rgb(path, min_short=60)             # reduced by 3 (a box filter), then to 60
    assert small.size == (90, 60)
    reference = np.asarray(photo.resize(small.size, Image.Resampling.BILINEAR), np.float32)
    assert np.abs(np.asarray(small, np.float32) - reference).mean() < 2.0


@pytest.mark.parametrize("name", ["p.jpg", "p.png"])
def test_a_picture_smaller_than_needed_is_left_as_it_is(tmp_path, name):
    path = _save(tmp_path, _photo(80, 60), name)
    assert np.array_equal(np.asarray(load_rgb(path, min_short=61)), np.asarray(load_rgb(path)))
    assert np.array_equal(np.asarray(load_rgb(path, min_short=500)), np.asarray(load_rgb(path)))


def test_exif_orientation_kept_by_the_draft(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                                    # turned 90 degrees: upright is 384 x 512
    path = _save(tmp_path, _photo(512, 384), "r.jpg", quality=95, exif=exif)
    full, small = load_rgb(path), load_rgb(path, min_short=90)
    assert full.size == (384, 512) and small.size == (90, 120)
    reference = np.asarray(full.resize(small.size, Image.Resampling.BILINEAR), np.float32)
    assert np.abs(np.asarray(small, np.float32) - reference).mean() < 2.0


def test_the_crop_never_needs_more_than_the_short_side_kept():
    """decode_short_side's bound: the smallest crop RandomResizedCrop may take from a picture whose
    short side is that bound is at least the training size on both sides."""
    from frelon.engine.classify.transforms import CROP_RATIO_RANGE, CROP_SCALE
    size = 224
    short = decode_short_side(size, "default")
    area = CROP_SCALE[0] * short * short                # the worst case: a square picture
    assert np.sqrt(area * CROP_RATIO_RANGE[0]) >= size
    assert decode_short_side(size, "light") == size
    assert decode_short_side(size) == decode_short_side(size, "none") == 256
