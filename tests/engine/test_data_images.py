"""engine/data/images.py and files.py: decoding awkward files, walking awkward folders."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # so that `tests.awkward` imports however pytest was started
    sys.path.insert(0, ROOT)

from frelon.engine.data import images  # noqa: E402
from frelon.engine.data.files import is_ignored, list_subdirs, walk_files  # noqa: E402
from frelon.engine.data.images import BadImage, load_rgb, printable_path, probe, to_rgb  # noqa: E402
from tests.awkward import bomb_png, make_awkward_corpus  # noqa: E402

VALID_KINDS = [
    "rgb_jpeg", "cmyk_jpeg", "grey16_png", "palette_transparent_png", "rgba_png", "grey_png", "la_png",
    "bilevel_png", "exif_rotated_jpeg", "one_pixel_png", "extreme_aspect_png", "unicode_name",
    "non_utf8_name", "animated_gif", "webp", "bmp", "tiff", "png_named_jpg", "upper_case_suffix",
    "inside_dir_named_jpg",
]
BAD_KINDS = ["zero_bytes", "truncated_jpeg", "text_as_jpg", "html_as_jpg", "png_bad_crc",
             "png_broken_stream", "decompression_bomb", "unreadable"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_awkward_corpus(tmp_path_factory.mktemp("awkward"))


def _entry(corpus, kind):
    if kind not in corpus["files"]:
        pytest.skip(f"{kind} cannot be made on this platform")
    return corpus["files"][kind]


# ---------------------------------------------------------------------------------------------
# load_rgb / probe on every kind of the corpus


@pytest.mark.parametrize("kind", VALID_KINDS)
def test_valid_kinds_load_as_rgb_of_the_right_size(corpus, kind):
    entry = _entry(corpus, kind)
    im = load_rgb(entry["path"])
    assert im.mode == "RGB"
    assert im.size == entry["size"]
    info = probe(entry["path"])
    assert (info.width, info.height) == entry["size"]
    with open(entry["path"], "rb") as f:
        assert info.sha1 == hashlib.sha1(f.read()).hexdigest()


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_kinds_raise_bad_image_with_reason(corpus, kind):
    entry = _entry(corpus, kind)
    for fn in (load_rgb, probe):
        with pytest.raises(BadImage) as caught:
            fn(entry["path"])
        assert caught.value.reason.startswith(entry["reason"]), caught.value.reason
        assert printable_path(entry["path"]) in str(caught.value)  # the message names the file


def test_bad_image_pickles(corpus):
    import pickle
    e = BadImage(corpus["files"]["zero_bytes"]["path"], "empty file")
    back = pickle.loads(pickle.dumps(e))
    assert (back.path, back.reason, str(back)) == (e.path, e.reason, str(e))


def test_extension_is_not_trusted(corpus):
    assert probe(corpus["files"]["png_named_jpg"]["path"]).format == "PNG"


def _px(kind, corpus, x, y):
    return tuple(int(v) for v in np.asarray(load_rgb(corpus["files"][kind]["path"]))[y, x])


def test_colours_survive_mode_conversion(corpus):
    assert _px("cmyk_jpeg", corpus, 0, 0) == pytest.approx((255, 0, 0), abs=3)
    # transparent parts are composited onto white, opaque parts keep their colour
    assert _px("palette_transparent_png", corpus, 0, 0) == (255, 255, 255)
    assert _px("palette_transparent_png", corpus, 19, 0) == (255, 0, 0)
    assert _px("rgba_png", corpus, 0, 0) == (255, 255, 255)
    assert _px("rgba_png", corpus, 15, 0) == (0, 0, 255)
    assert _px("animated_gif", corpus, 0, 0) == (255, 0, 0)  # the first frame
    assert _px("bilevel_png", corpus, 0, 0) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped(corpus):
    row = np.asarray(load_rgb(corpus["files"]["grey16_png"]["path"]))[0, :, 0]
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row.astype(int)) >= 0) and 100 < row[len(row) // 2] < 160


def test_exif_orientation_is_applied(corpus):
    # stored 60x40 with red on the left; orientation 6 = turn 90 degrees clockwise: red on top
    a = np.asarray(load_rgb(corpus["files"]["exif_rotated_jpeg"]["path"]))
    assert a.shape == (60, 40, 3)
    assert a[5, 20, 0] > 150 and a[5, 20, 2] < 100
    assert a[55, 20, 2] > 150 and a[55, 20, 0] < 100


@pytest.mark.parametrize("orientation,size", [(1, (60, 40)), (3, (60, 40)), (5, (40, 60)), (8, (40, 60))])
def test_every_exif_orientation(tmp_path, orientation, size):
    from tests.awkward import exif_rotated_jpeg
    p = tmp_path / "o.jpg"
    p.write_bytes(exif_rotated_jpeg(60, 40, orientation))
    assert load_rgb(p).size == size
    assert (probe(p).width, probe(p).height) == size


def test_high_bit_depth_modes():
    i32 = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32), "I")
    assert list(np.asarray(to_rgb(i32))[0, :, 0]) == [0, 128, 255]
    i8 = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), "I")  # 8-bit values held in "I"
    assert list(np.asarray(to_rgb(i8))[0, :, 0]) == [0, 100, 255]
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert list(np.asarray(to_rgb(f))[0, :, 0]) == [0, 128, 255]
    flat = Image.fromarray(np.full((2, 2), -7, dtype=np.int32), "I")
    assert to_rgb(flat).mode == "RGB"


def test_pixel_limit_is_enforced(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 5000)
    with pytest.raises(BadImage, match=r"too many pixels \(100x100 = 10,000 > 5,000\)"):
        load_rgb(p)
    with pytest.raises(BadImage, match="too many pixels"):
        probe(p)


def test_bomb_header_is_refused_without_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png(20_000, 20_000))  # 400 M pixels: above our limit, below Pillow's hard one
    with pytest.raises(BadImage, match="too many pixels"):
        load_rgb(p)


def test_files_that_are_not_files(tmp_path):
    with pytest.raises(BadImage, match="missing"):
        load_rgb(tmp_path / "nope.jpg")
    (tmp_path / "d.jpg").mkdir()
    with pytest.raises(BadImage, match="a folder"):
        probe(tmp_path / "d.jpg")
    if hasattr(os, "symlink"):
        os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
        with pytest.raises(BadImage, match="broken link"):
            load_rgb(tmp_path / "dangling.jpg")
    if hasattr(os, "mkfifo"):  # opening a FIFO would block forever
        os.mkfifo(tmp_path / "pipe.jpg")
        with pytest.raises(BadImage, match="not a regular file"):
            probe(tmp_path / "pipe.jpg")


def test_heic_is_named(tmp_path):
    p = tmp_path / "IMG_0001.HEIC"
    p.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(BadImage, match="HEIC"):
        load_rgb(p)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF it skips
def test_no_pillow_exception_escapes_on_corrupted_files(tmp_path):
    """Flip random bytes of real files of every format: only a picture or BadImage may come back."""
    rng = random.Random(0)
    sources = {}
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        base.save(buf, fmt)
        sources[fmt] = buf.getvalue()
    p = tmp_path / "fuzz.img"
    for i in range(240):
        fmt = list(sources)[i % len(sources)]
        data = bytearray(sources[fmt])
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 5 == 0:
            data = data[: rng.randrange(1, len(data))]
        p.write_bytes(bytes(data))
        for fn in (load_rgb, probe):
            try:
                out = fn(p)
            except BadImage as e:
                assert e.reason
            else:
                if fn is load_rgb:
                    assert out.mode == "RGB"


# ---------------------------------------------------------------------------------------------
# printable paths


def test_printable_path_of_non_utf8_name(corpus):
    entry = _entry(corpus, "non_utf8_name")
    shown = printable_path(entry["path"])
    assert shown.endswith("caf\\xe9.png")
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # no lone surrogates left
    assert printable_path(os.fsencode(entry["path"])) == shown
    assert printable_path("odd\ud800name") == "odd\\ud800name"  # a surrogate not from file-name bytes


# ---------------------------------------------------------------------------------------------
# walk_files


def test_walk_finds_candidates_and_ignores_clutter(corpus):
    problems = []
    found = list(walk_files(os.path.join(corpus["root"], "alpha"), problems))
    expected = {v["path"] for v in corpus["files"].values()
                if v["expect"] in ("valid", "skipped") and os.sep + "alpha" + os.sep in v["path"]}
    assert set(found) == expected
    assert len(found) == len(set(found))
    assert not set(found) & set(corpus["ignored"])
    assert [p for p, _ in problems] == list(corpus["problems"])  # the loop, reported once (and, as root, the FIFO)
    assert all(r.startswith(corpus["problems"][p]) for p, r in problems)


def test_walk_is_sorted_and_repeatable(corpus):
    a = list(walk_files(corpus["root"]))
    assert a == list(walk_files(corpus["root"]))
    top = [p for p in a if os.path.dirname(p) == os.path.join(corpus["root"], "alpha")]
    assert top == sorted(top)


def test_folder_named_like_an_image_is_a_folder(corpus):
    found = list(walk_files(os.path.join(corpus["root"], "alpha")))
    assert os.path.join(corpus["root"], "alpha", "dir.jpg") not in found
    assert corpus["files"]["inside_dir_named_jpg"]["path"] in found


def test_links_are_followed_once(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.png").write_bytes(b"x")
    top = tmp_path / "top"
    top.mkdir()
    try:
        os.symlink(real, top / "link1", target_is_directory=True)
        os.symlink(real, top / "link2", target_is_directory=True)
        os.symlink(top / "link1", top / "deeper", target_is_directory=True)
        os.symlink(real / "x.png", top / "file_link.png")
    except OSError:
        pytest.skip("no symlinks here")
    found = list(walk_files(top))  # "deeper" sorts first and reaches real/ first; then no more
    assert found == [str(top / "deeper" / "x.png"), str(top / "file_link.png")]


def test_subdirs_and_ignored_names(corpus):
    assert list_subdirs(corpus["root"]) == ["alpha", "beta", "empty"]
    for name in (".git", "._x.jpg", "Thumbs.db", "DESKTOP.INI", "__MACOSX", "@eaDir", ".DS_Store"):
        assert is_ignored(name), name
    for name in ("cat", "x.jpg", "_x.jpg", "thumbs.jpg"):
        assert not is_ignored(name), name


def _unprivileged(fn):
    """fn()'s result, computed by a user without root's power to read every file: in this process
    when it is not root, else in a forked child that first drops to `nobody` (CI runs as root, and
    a permission test that skips there tests nothing)."""
    if os.geteuid() != 0:
        return fn()
    import pickle
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: drop root, run, report, leave
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = ("ok", fn())
        except BaseException as e:                 # noqa: BLE001 - everything goes back to the parent
            out = ("error", repr(e))
        with os.fdopen(w, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        kind, value = pickle.load(f)
    os.waitpid(pid, 0)
    assert kind == "ok", value
    return value


def test_unreadable_file_and_folder_are_reported(tmp_path):
    """Real permission denials (chmod 0), read by a user they apply to: the file is a BadImage
    naming the reason, the folder a walking problem; the readable file beside them is used."""
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="frelon-perm-"))        # not under pytest's 0700 tmp folder
    base.chmod(0o755)
    try:
        for name in ("ok.png", "locked.png"):
            Image.new("RGB", (4, 4)).save(base / name)
            (base / name).chmod(0o644)
        (base / "locked.png").chmod(0)
        (base / "locked").mkdir()
        Image.new("RGB", (4, 4)).save(base / "locked" / "x.png")
        (base / "locked").chmod(0)

        def look():
            problems = []
            found = list(walk_files(base, problems))
            outcome = {}
            for f in found:
                for fn in (probe, load_rgb):
                    try:
                        fn(f)
                        outcome[os.path.basename(f), fn.__name__] = "ok"
                    except BadImage as e:
                        outcome[os.path.basename(f), fn.__name__] = e.reason
            return [os.path.basename(p) for p in found], problems, outcome

        found, problems, outcome = _unprivileged(look)
        assert found == ["locked.png", "ok.png"]
        assert problems == [(str(base / "locked"), "unreadable folder (permission denied)")]
        assert outcome == {("locked.png", "probe"): "unreadable (permission denied)",
                           ("locked.png", "load_rgb"): "unreadable (permission denied)",
                           ("ok.png", "probe"): "ok", ("ok.png", "load_rgb"): "ok"}
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_a_file_removed_between_scan_and_load_is_replaced_and_named(tmp_path):
    """The data changed after `frelon check`: the training dataset uses the next image in its place
    and records the reason, instead of stopping the run."""
    from frelon.engine.data.classify import ImageDataset
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (4, 4), colour).save(paths[-1])
    dataset = ImageDataset([(str(p), i) for i, p in enumerate(paths)])
    paths[1].unlink()                                          # gone since the scan
    image, label = dataset[1]
    assert label == 2 and image[2].mean() == 1.0                # the blue one stood in for it
    assert dataset.failures == [(str(paths[1]), "missing (moved or deleted)")]


def test_permission_problem_is_named(tmp_path, monkeypatch):
    p = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(p)
    monkeypatch.setattr(images.os, "access", lambda *a, **k: False)  # as if not running as root
    with pytest.raises(BadImage, match=r"unreadable \(permission denied\)"):
        load_rgb(p)
