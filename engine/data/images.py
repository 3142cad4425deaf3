"""Decoding one image file, robustly: the only place the engine opens user images with Pillow.

`load_rgb(path)` gives an RGB `PIL.Image` the right way up (EXIF orientation applied), whatever the
file holds (`load_rgb(path, min_short)` decodes only what a short side of `min_short` pixels needs: a
JPEG at the smallest draft scale that keeps it, other formats reduced by a whole factor after decoding): CMYK, 16-bit greyscale, palette with transparency, alpha, 1-bit, an animated GIF (first
frame)... `probe(path)` checks a file the same way, once, and gives its size and SHA-1 (the data doctor
uses it to find bad files and byte-identical duplicates).

Nothing Pillow raises escapes from here: every failure becomes `BadImage` with a short `reason` a
person can act on ("empty file", "truncated", "not an image", "too many pixels (...)"...). The file's
extension is never trusted: a PNG named .jpg or a .JPEG is decoded for what it is.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import warnings
from dataclasses import dataclass
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# Suffixes worth calling "an image" before decoding (used to tell stray images from other files).
# Which files are images is decided by decoding, not by this list.
IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".avif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".heic", ".heif",
})

# The decompression-bomb limit, in pixels (Pillow's default). A module attribute read at each call,
# so tests and callers can lower it. (Raising it above 2x Image.MAX_IMAGE_PIXELS also needs that
# raised: Pillow refuses such files itself, which we report the same way.)
MAX_PIXELS = 89_478_485

# We enforce MAX_PIXELS ourselves (as BadImage "too many pixels"); Pillow's own warning about the
# same thing would only be noise on stderr. Its hard error (beyond 2x its limit) is caught below.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the picture upright (the table of ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# File signatures of formats Pillow reads: such a file that Pillow cannot identify is damaged.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")


class BadImage(Exception):
    """A file that cannot be used as an image. `reason` is short and human ("truncated")."""

    def __init__(self, path: PathLike, reason: str):
        self.path = os.fsdecode(path)
        self.reason = reason
        super().__init__(f"{printable_path(self.path)}: {reason}")

    def __reduce__(self):  # survives pickling (process pools, DataLoader workers)
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class ImageInfo:
    width: int          # as the model sees it: after EXIF orientation
    height: int
    sha1: str           # of the file's bytes (byte-identical duplicates share it)
    format: str = ""    # what Pillow found inside ("JPEG", "PNG"...), whatever the extension says


def printable_path(path: PathLike) -> str:
    """A path that can always be printed and put in JSON: undecodable bytes of a non-UTF-8 file name
    (kept by Python as lone surrogates) become \\xNN escapes."""
    text = os.fsdecode(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from file-name bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------------------------------------
# Public API


def load_rgb(path: PathLike, min_short: int = 0) -> Image.Image:
    """The picture in `path` as an upright 8-bit RGB image. Raises BadImage.

    `min_short` 0: fully decoded. Otherwise a picture whose short side is larger comes with its short
    side exactly `min_short` (a smaller one as it is: never enlarged), the same pixels as the full
    decode resized, made quicker: a JPEG is decoded at the smallest of the 1/2, 1/4, 1/8 DCT scales
    that keeps `min_short` (Pillow's draft mode: the decoder skips the detail), another format first
    reduced by the largest whole factor that keeps it (`Image.reduce`, a box filter)."""
    path = os.fsdecode(path)
    _check_file(path)
    try:
        with Image.open(path) as im:
            _check_pixels(path, im)
            if min_short > 0 and im.format == "JPEG":  # before anything is decoded
                im.draft(im.mode, _draft_request(im.size, min_short))
            frame = _first_frame(im)       # decode first: PNG's getexif() would decode on its own,
            orientation = _orientation(im)  # and a decoding error there must not be swallowed
            rgb = to_rgb(frame)
    except BadImage:
        raise
    except Exception as e:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, struct.error...)
        raise _explain(path, e) from None
    if min_short > 0:
        rgb = at_short_side(rgb, min_short)
    if orientation in _UPRIGHT:
        rgb = rgb.transpose(_UPRIGHT[orientation])
    return rgb


def read_input(item: dict, skipped: list[dict], min_short: int = 0) -> Image.Image | None:
    """One input of predict / explain ({path, file_name}: path None when its name points outside
    the dataset folder) as `load_rgb` reads it, or None with the reason appended to `skipped`."""
    if item.get("path") is None:
        skipped.append({"path": str(item["file_name"]), "reason": "points outside the dataset folder, refused"})
        return None
    try:
        return load_rgb(item["path"], min_short)
    except BadImage as e:
        skipped.append({"path": str(item["file_name"]), "reason": e.reason})
        return None


def at_short_side(image: Image.Image, short: int) -> Image.Image:
    """`image` made smaller so that its short side is `short` (by a whole factor first, a box
    filter, then antialiased bilinear); as it is when it is not larger than that."""
    width, height = image.size
    if min(width, height) <= short:
        return image
    factor = min(width, height) // short
    if factor >= 2:
        image = image.reduce(factor)
    scale = short / min(width, height)
    size = (max(short, math.floor(width * scale + 0.5)), max(short, math.floor(height * scale + 0.5)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)


def _draft_request(size: tuple[int, int], min_short: int) -> tuple[int, int]:
    """The size to ask draft() for: the picture scaled so that its short side is `min_short` (draft
    picks the smallest DCT scale at least that large; no scale at all when it is larger already)."""
    width, height = size
    scale = min(1.0, min_short / max(1, min(width, height)))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def probe(path: PathLike) -> ImageInfo:
    """Check that `path` decodes completely (as load_rgb would), and return its size and SHA-1.

    JPEGs are decoded at reduced scale (Pillow's draft mode): the whole compressed stream is still
    read and checked, so truncation and corruption are still found, at a fraction of the cost."""
    path = os.fsdecode(path)
    _check_file(path)
    sha1 = _sha1(path)
    try:
        with Image.open(path) as im:
            _check_pixels(path, im)
            width, height = im.size
            fmt = im.format or ""
            if fmt == "JPEG":  # before anything is decoded: draft() picks the decoder's scale
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
            frame = _first_frame(im)
            orientation = _orientation(im)
            to_rgb(frame)
    except BadImage:
        raise
    except Exception as e:
        raise _explain(path, e) from None
    if orientation in (5, 6, 7, 8):  # these turn the picture by 90 degrees
        width, height = height, width
    return ImageInfo(width=width, height=height, sha1=sha1, format=fmt)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, keeping what the picture looks like.

    Transparency is composited onto white (what a viewer shows); high-bit-depth greyscale is scaled
    to 8 bits rather than clipped (Pillow's own convert() clips 16-bit values at 255: a white image)."""
    im.load()
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode.startswith("I") or mode.startswith("F"):
        return Image.fromarray(_scale_to_uint8(im), "L").convert("RGB")
    if mode == "P" and ("transparency" in im.info or (im.palette and im.palette.mode == "RGBA")):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("PA", "LA", "La", "RGBa", "RGBA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_file(path: str) -> None:
    """Problems we can name before Pillow sees the file (and which would make it hang: a FIFO)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        reason = "broken link (its target is missing)" if os.path.islink(path) else "missing (moved or deleted)"
        raise BadImage(path, reason) from None
    except PermissionError:
        raise BadImage(path, "unreadable (permission denied)") from None
    except OSError as e:
        raise BadImage(path, f"unreadable ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadImage(path, "a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise BadImage(path, "not a regular file")
    if st.st_size == 0:
        raise BadImage(path, "empty file")
    if not os.access(path, os.R_OK):
        raise BadImage(path, "unreadable (permission denied)")


def _sha1(path: str) -> str:
    h = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except PermissionError:
        raise BadImage(path, "unreadable (permission denied)") from None
    except OSError as e:
        raise BadImage(path, f"unreadable ({e.strerror or e})") from None
    return h.hexdigest()


def _check_pixels(path: str, im: Image.Image) -> None:
    width, height = im.size
    if width < 1 or height < 1:
        raise BadImage(path, f"broken data (size {width}x{height})")
    limit = MAX_PIXELS
    if limit and width * height > limit:
        raise BadImage(path, f"too many pixels ({width}x{height} = {width * height:,} > {limit:,})")


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = upright). Broken EXIF data must not cost a good picture: treat as 1."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if value in _UPRIGHT or value == 1 else 1
    except Exception:
        return 1


def _first_frame(im: Image.Image) -> Image.Image:
    """Animated GIF / WebP / multi-page TIFF: the first frame, fully decoded."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im.load()
    return im


def _scale_to_uint8(im: Image.Image) -> np.ndarray:
    """Greyscale of more than 8 bits to 0..255: 16-bit modes by their full range; 32-bit integer and
    float images (whose range the mode doesn't say) by the range the values actually use."""
    a = np.asarray(im)
    if a.ndim != 2:
        a = a.reshape(im.size[1], im.size[0])
    if im.mode.startswith("I;16"):
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    a = a.astype(np.float64)
    a[~np.isfinite(a)] = 0.0
    lo, hi = float(a.min()), float(a.max())
    if im.mode.startswith("F") and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0               # float images in [0, 1]
    elif lo >= 0 and hi <= 255:
        lo, hi = 0.0, 255.0             # "I" holding 8-bit values (some PNG / PGM readers)
    elif lo >= 0 and hi <= 65535:
        lo, hi = 0.0, 65535.0           # "I" holding 16-bit values
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _explain(path: str, error: BaseException) -> BadImage:
    """Pillow's exception as a reason a person can act on."""
    if isinstance(error, Image.DecompressionBombError):  # Pillow's hard limit, hit inside open()
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} > {MAX_PIXELS:,}" if found else str(error)
        return BadImage(path, f"too many pixels ({size})")
    if isinstance(error, UnidentifiedImageError):
        return BadImage(path, _not_an_image(path))
    if isinstance(error, PermissionError):
        return BadImage(path, "unreadable (permission denied)")
    if isinstance(error, MemoryError):
        return BadImage(path, "too many pixels (out of memory while decoding)")
    message = str(error).strip() or type(error).__name__
    lowered = message.lower()
    if isinstance(error, (OSError, EOFError)) and ("truncated" in lowered or isinstance(error, EOFError)):
        return BadImage(path, "truncated")
    if "broken data stream" in lowered:  # Pillow's words for a corrupt compressed stream
        return BadImage(path, "broken data (corrupt compressed data)")
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return BadImage(path, f"unreadable ({error.strerror})")
    return BadImage(path, f"broken data ({message[:120]})")


def _not_an_image(path: str) -> str:
    """'not an image', with a word on what the file seems to be when that is easy to tell."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "not an image"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "unsupported format (HEIC/HEIF photo: convert it to JPEG)"
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "not an image (a web page)"
    if _looks_like_text(head):
        return "not an image (a text file)"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):  # a format Pillow reads, refused at its header
            return f"broken data (damaged {name} header)"
    return "not an image"


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without control characters (the 512-byte cut may split the last character)."""
    if not head or any(c < 32 and c not in (9, 10, 13) for c in head):
        return False
    for cut in range(4):
        try:
            head[:len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def median_size(sizes: list[tuple[int, int]]) -> list[int] | None:
    """[width, height] medians of the training images (what `--image-size` 0 derives the size from)."""
    if not sizes:
        return None
    ws, hs = sorted(w for w, _ in sizes), sorted(h for _, h in sizes)
    return [ws[len(ws) // 2], hs[len(hs) // 2]]
