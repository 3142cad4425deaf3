"""A corpus of awkward and broken image files, for the data tests and the robustness suite.

`make_awkward_corpus(root)` writes a classification folder (`alpha/`, `beta/`, an empty class
folder, hidden clutter...) full of the files real users have: zero-byte and truncated files, text and
web pages saved as .jpg, a damaged PNG, a decompression bomb, CMYK / 16-bit / palette / alpha /
greyscale / 1-bit pictures, an EXIF-rotated photo, 1x1 and 1000x4 images, unicode and non-UTF-8 file
names, animated GIF, WebP, BMP, TIFF, a PNG named .jpg, an upper-case .JPG, a folder named dir.jpg,
a symlink loop, and one picture in two classes.

It returns what each file should become, so tests assert on it instead of repeating the list:

    {"root": str, "classes": ["alpha", "beta"], "empty_classes": ["empty"],
     "files": {kind: {"path": str, "expect": "valid" | "skipped" | "ignored" | "problem",
                      "reason": str (start of the expected reason), "size": (w, h) after EXIF}},
     "valid": [paths], "skipped": {path: reason}, "ignored": [paths], "problems": {path: reason},
     "cross_class": [path, path]}

Kinds the platform cannot make (symlinks, non-UTF-8 names, WebP without libwebp, an unreadable file
when running as root) are simply left out. All images are tiny: the whole corpus takes milliseconds.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Any, Callable, Dict

import numpy as np
from PIL import Image, features


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes(im: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int) -> Image.Image:
    """A small picture that compresses badly (so truncating it cuts real image data)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 60-byte PNG whose header claims width x height pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) \
        + _chunk(b"IEND", b"")


def exif_rotated_jpeg(w: int = 60, h: int = 40, orientation: int = 6) -> bytes:
    """A w x h JPEG (left half red, right half blue) whose EXIF says 'rotate for display'."""
    im = Image.new("RGB", (w, h), (220, 20, 20))
    im.paste((20, 20, 220), (w // 2, 0, w, h))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _jpeg_bytes(im, exif=exif.tobytes())


def make_awkward_corpus(root: str | os.PathLike) -> Dict[str, Any]:
    """Write the corpus into `root` (an empty or new folder) and say what each file should become."""
    root = os.fspath(root)
    alpha, beta = os.path.join(root, "alpha"), os.path.join(root, "beta")
    for d in (alpha, beta, os.path.join(root, "empty")):
        os.makedirs(d, exist_ok=True)
    files: Dict[str, Dict[str, Any]] = {}

    def put(kind: str, path: str, data: bytes | Callable[[str], None], expect: str,
            reason: str = "", size: tuple | None = None) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if callable(data):
            data(path)
        else:
            with open(path, "wb") as f:
                f.write(data)
        files[kind] = {"path": path, "expect": expect, "reason": reason, "size": size}

    def valid(kind: str, name: str, data: bytes, size: tuple, folder: str = alpha) -> None:
        put(kind, os.path.join(folder, name), data, "valid", size=size)

    def skipped(kind: str, name: str, data: bytes, reason: str) -> None:
        put(kind, os.path.join(alpha, name), data, "skipped", reason)

    def ignored(kind: str, path: str, data: bytes) -> None:
        put(kind, path, data, "ignored")

    # ---- ordinary and unusual-but-valid pictures ----
    valid("rgb_jpeg", "ok_rgb.jpg", _jpeg_bytes(_noise(64, 48, 1)), (64, 48))
    valid("cmyk_jpeg", "cmyk.jpg", _jpeg_bytes(Image.new("CMYK", (40, 30), (0, 255, 255, 0))), (40, 30))
    grad16 = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (8, 1))
    valid("grey16_png", "grey16.png", _png_bytes(Image.fromarray(grad16)), (32, 8))
    pal = Image.new("P", (20, 10), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.paste(1, (10, 0, 20, 10))
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)  # left half transparent (black underneath), right half red
    valid("palette_transparent_png", "palette_alpha.png", buf.getvalue(), (20, 10))
    rgba = Image.new("RGBA", (16, 16), (0, 0, 255, 0))
    rgba.paste((0, 0, 255, 255), (8, 0, 16, 16))  # left half fully transparent
    valid("rgba_png", "rgba.png", _png_bytes(rgba), (16, 16))
    valid("grey_png", "grey.png", _png_bytes(Image.new("L", (24, 12), 128)), (24, 12))
    valid("la_png", "grey_alpha.png", _png_bytes(Image.new("LA", (12, 12), (0, 0))), (12, 12))
    valid("bilevel_png", "bilevel.png", _png_bytes(Image.new("1", (16, 8), 1)), (16, 8))
    valid("exif_rotated_jpeg", "exif_rot6.jpg", exif_rotated_jpeg(60, 40, 6), (40, 60))
    valid("one_pixel_png", "one_pixel.png", _png_bytes(Image.new("RGB", (1, 1), (9, 9, 9))), (1, 1))
    valid("extreme_aspect_png", "wide.png", _png_bytes(_noise(1000, 4, 2)), (1000, 4))
    valid("unicode_name", "été_猫 photo.png", _png_bytes(_noise(10, 10, 3)), (10, 10))
    frames = [Image.new("P", (20, 10), i) for i in (1, 2)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    valid("animated_gif", "animated.gif", buf.getvalue(), (20, 10))  # first frame red
    if features.check("webp"):
        buf = io.BytesIO()
        _noise(18, 14, 4).save(buf, "WEBP")
        valid("webp", "pic.webp", buf.getvalue(), (18, 14))
    for kind, name, fmt in (("bmp", "pic.bmp", "BMP"), ("tiff", "pic.tiff", "TIFF")):
        buf = io.BytesIO()
        _noise(14, 18, 5).save(buf, fmt)
        valid(kind, name, buf.getvalue(), (14, 18))
    valid("png_named_jpg", "really_a_png.jpg", _png_bytes(_noise(12, 9, 6)), (12, 9))
    valid("upper_case_suffix", "SHOUTING.JPG", _jpeg_bytes(_noise(21, 13, 7)), (21, 13))
    valid("inside_dir_named_jpg", os.path.join("dir.jpg", "inside.png"), _png_bytes(_noise(8, 8, 8)), (8, 8))
    _non_utf8(alpha, files)

    # ---- files that must be skipped, with their reason ----
    skipped("zero_bytes", "zero.jpg", b"", "empty file")
    good = _jpeg_bytes(_noise(64, 64, 9))
    skipped("truncated_jpeg", "truncated.jpg", good[: len(good) // 2], "truncated")
    skipped("text_as_jpg", "notes.jpg", b"These are my notes, not a picture.\n" * 3, "not an image")
    skipped("html_as_jpg", "saved_page.jpg", b"<!DOCTYPE html><html><body>404</body></html>", "not an image")
    png = bytearray(_png_bytes(_noise(8, 8, 10)))
    png[29] ^= 0xFF  # the IHDR chunk's CRC
    skipped("png_bad_crc", "bad_crc.png", bytes(png), "broken data")
    ramp = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
    png = bytearray(_png_bytes(Image.fromarray(np.dstack([ramp] * 3))))
    start = png.find(b"IDAT") + 4
    png[start + 2: start + 6] = b"\xff" * 4  # an invalid deflate block (Pillow doesn't check IDAT CRCs)
    skipped("png_broken_stream", "broken_stream.png", bytes(png), "broken data")
    skipped("decompression_bomb", "bomb.png", bomb_png(), "too many pixels")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        def unreadable(path: str) -> None:
            with open(path, "wb") as f:
                f.write(_png_bytes(_noise(4, 4, 12)))
            os.chmod(path, 0)
        put("unreadable", os.path.join(alpha, "locked.png"), unreadable, "skipped", "unreadable")
    else:
        # root reads every file whatever its mode (CI runs as root): a file no one can read as a
        # picture is then a FIFO named like one (opening it would block forever). The real
        # permission denial as root is tested with dropped privileges (test_data_images.py).
        put("unreadable", os.path.join(alpha, "locked.png"), os.mkfifo, "problem", "not a regular file")

    # ---- clutter that is ignored silently ----
    ignored("hidden_file", os.path.join(alpha, ".foo.jpg"), _jpeg_bytes(_noise(8, 8, 13)))
    ignored("apple_double", os.path.join(alpha, "._ok_rgb.jpg"), b"\x00\x05\x16\x07AppleDouble junk")
    ignored("thumbs_db", os.path.join(alpha, "Thumbs.db"), b"\xd0\xcf\x11\xe0 junk")
    ignored("desktop_ini", os.path.join(beta, "desktop.ini"), b"[.ShellClassInfo]\r\n")
    ignored("macosx_folder", os.path.join(root, "__MACOSX", "alpha", "._x.jpg"), b"junk")
    ignored("hidden_folder", os.path.join(alpha, ".cache", "thumb.jpg"), _jpeg_bytes(_noise(8, 8, 14)))
    ignored("synology_folder", os.path.join(beta, "@eaDir", "b1.png", "SYNOFILE_THUMB_S.jpg"), b"junk")

    # ---- a symlink loop: alpha/loop -> the corpus root (which contains alpha) ----
    loop = os.path.join(alpha, "loop")
    try:
        os.symlink(root, loop, target_is_directory=True)
        files["symlink_loop"] = {"path": loop, "expect": "problem", "reason": "symlink loop", "size": None}
    except (OSError, NotImplementedError):
        pass

    # ---- beta: a few plain pictures, and one picture that is also in alpha ----
    for i in range(5):
        valid(f"beta_{i}", f"b{i}.png", _png_bytes(_noise(16, 16, 100 + i)), (16, 16), folder=beta)
    same = _png_bytes(_noise(16, 16, 200))
    valid("same_in_alpha", "same.png", same, (16, 16), folder=alpha)
    valid("same_in_beta", "same.png", same, (16, 16), folder=beta)

    by = lambda e: {k: v for k, v in files.items() if v["expect"] == e}  # noqa: E731
    return {
        "root": root,
        "classes": ["alpha", "beta"],
        "empty_classes": ["empty"],
        "files": files,
        "valid": sorted(v["path"] for v in by("valid").values()),
        "skipped": {v["path"]: v["reason"] for v in by("skipped").values()},
        "ignored": sorted(v["path"] for v in by("ignored").values()),
        "problems": {v["path"]: v["reason"] for v in by("problem").values()},
        "cross_class": [files["same_in_alpha"]["path"], files["same_in_beta"]["path"]],
    }


def _non_utf8(folder: str, files: Dict[str, Dict[str, Any]]) -> None:
    """A file whose name is not valid UTF-8 (Latin-1 'café.png'), made through a bytes path."""
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    try:
        fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except (OSError, ValueError):  # e.g. macOS refuses names that are not UTF-8
        return
    with os.fdopen(fd, "wb") as f:
        f.write(_png_bytes(_noise(11, 7, 15)))
    files["non_utf8_name"] = {"path": os.fsdecode(raw), "expect": "valid", "reason": "", "size": (11, 7)}
