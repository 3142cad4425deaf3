"""The copies at training's resolution (engine/data/resized_cache.py, `--cache disk`): read back on
the next use, never stale (mtime changed, file replaced, another resolution), never of a bad file;
and a training run that writes them, says how long it waits for data and what a picture costs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frelon.engine.data import probe_cache
from frelon.engine.data.images import BadImage, load_rgb
from frelon.engine.data.resized_cache import ResizedCache

sys.path.insert(0, str(Path(__file__).parent))
from runhelp import make_colour_folder, recording_writer  # noqa: E402


@pytest.fixture(autouse=True)
def at_once(monkeypatch):
    monkeypatch.setattr(probe_cache, "RACY_S", 0.0)     # files made now may be copied at once


def _picture(path: Path, seed: int, size=(120, 90)) -> Path:
    y, x = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([x * 2 + seed * 40, y * 2, (x + y + seed * 17) % 256], -1)
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(path, quality=95)
    return path


def test_a_copy_is_written_then_read(tmp_path):
    photo = _picture(tmp_path / "a.jpg", 0)
    cache = ResizedCache(tmp_path / "cache")
    first = cache.load(str(photo), 45)
    assert first.size == (60, 45) and cache.writes == 1 and cache.hits == 0
    again = cache.load(str(photo), 45)
    assert cache.hits == 1
    assert np.array_equal(np.asarray(again), np.asarray(load_rgb(photo, 45)))     # the cache changes no pixel
    assert np.array_equal(np.asarray(first), np.asarray(again))


@pytest.mark.parametrize("change", ["mtime", "replaced", "resolution"])
def test_a_stale_copy_is_never_read(tmp_path, change):
    photo = _picture(tmp_path / "a.jpg", 0)
    cache = ResizedCache(tmp_path / "cache")
    cache.load(str(photo), 45)
    size = 45
    if change == "mtime":
        st = os.stat(photo)
        _picture(photo, 5)                                   # other pixels, same name
        os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    elif change == "replaced":
        _picture(tmp_path / "b.jpg", 5)
        os.replace(tmp_path / "b.jpg", photo)
    else:
        size = 60
    image = cache.load(str(photo), size)
    assert cache.hits == 0 and cache.writes == 2
    assert np.array_equal(np.asarray(image), np.asarray(load_rgb(photo, size)))


def test_a_bad_file_is_never_copied(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(_picture(tmp_path / "a.jpg", 0).read_bytes()[:300])
    cache = ResizedCache(tmp_path / "cache")
    with pytest.raises(BadImage, match="truncated|broken"):
        cache.load(str(bad), 45)
    assert cache.writes == 0 and not list((tmp_path / "cache").rglob("*.npy"))


def test_the_size_limit_stops_the_copies(tmp_path):
    cache = ResizedCache(tmp_path / "cache", limit=1)
    cache.load(str(_picture(tmp_path / "a.jpg", 0)), 45)
    cache.load(str(_picture(tmp_path / "b.jpg", 1)), 45)
    assert cache.writes == 1                                # the first went over the limit: no more


def test_a_run_writes_copies_says_its_data_wait_and_reads_them_next_time(tmp_path, monkeypatch):
    from frelon.common.train_config import from_dict
    from frelon.engine.data.probing import Pace
    from frelon.engine.training.run import run_training
    monkeypatch.setattr(Pace, "AFTER_S", 0.0)
    monkeypatch.setenv("FRELON_CACHE", str(tmp_path / "cache"))
    data = make_colour_folder(tmp_path / "data", per_class=6)
    cfg = from_dict({"image_size": 32, "batch_size": 4, "weights": "none", "workers": 0, "data": str(data),
                     "out": str(tmp_path / "runs"), "epochs": 1, "cache": "disk"})
    writer, emitted = recording_writer()
    run_training(cfg, writer, lambda: False)
    def copies():
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "cache" / "resized").rglob("*.npy")}
    first = copies()
    assert len(first) >= 8          # val's pictures and the training ones the epoch read (drop_last)
    types = [e["type"] for e in emitted]
    assert "scan_progress" in types and types.index("scan_progress") < types.index("data_report")
    steps = [e for e in emitted if e["type"] == "step"]
    assert steps and all(0.0 <= e["data_wait"] <= 1.0 for e in steps)
    started = next(e for e in emitted if e["type"] == "run_started")
    assert started["data_pipeline"]["ms_per_picture"] > 0
    run_training(cfg, *recording_writer()[:1], lambda: False)
    assert copies() == first                                  # read, not written again
