"""The scan remembered (engine/data/probe_cache.py, probing.scanning): a second check of unchanged
files probes none of them again and says the same; a file that changed, however it changed, is
probed again and reported."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from frelon.engine.data import probe_cache
from frelon.engine.data.doctor import check_classification
from frelon.engine.data.probing import Pace, scanning


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_cache, "RACY_S", 0.0)     # files made now may be remembered at once
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f"{i}.jpg")
    return tmp_path


def _check(folder):
    """(report, how many files the cache answered, the progress calls)"""
    calls = []
    with scanning(folder / "cache" / "probes.sqlite", lambda d, t: calls.append((d, t))) as cache:
        report, _ = check_classification(folder / "data", workers=1)
    return report, cache.hits, calls


def test_second_scan_probes_nothing_and_says_the_same(folder):
    first, hits, calls = _check(folder)
    assert hits == 0 and calls[-1] == (8, 8) and len(calls) == 8
    second, hits, calls = _check(folder)
    assert hits == 8 and calls == [(8, 8)]
    assert second == first


@pytest.mark.parametrize("how", ["rewritten", "rewritten_old_mtime", "replaced"])
def test_a_file_that_became_bad_is_probed_again_and_reported(folder, how):
    _check(folder)
    victim = folder / "data" / "dogs" / "2.jpg"
    st = os.stat(victim)
    broken = victim.read_bytes()[:st.st_size // 2].ljust(st.st_size, b"\0")   # same size, truncated data
    if how == "replaced":
        other = victim.with_name("new.tmp")
        other.write_bytes(broken)
        os.replace(other, victim)
    else:
        victim.write_bytes(broken)
    if how != "rewritten":
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))    # its old mtime given back
    report, hits, _ = _check(folder)
    assert hits == 7
    assert [s["path"] for s in report["skipped"]] == [str(victim)]
    assert report["splits"]["train"]["images"] + report["splits"]["val"]["images"] == 7


def test_a_file_changed_just_now_is_not_remembered(folder, monkeypatch):
    monkeypatch.setattr(probe_cache, "RACY_S", 3600.0)
    _check(folder)
    _, hits, _ = _check(folder)
    assert hits == 0


def test_pace_tells_an_eta():
    said = []
    pace = Pace(lambda d, t, eta: said.append((d, t, eta)), every=0.0, after=0.0)
    pace(100, 1000)            # remembered ones: no pace yet
    pace(110, 1000)
    pace(1000, 1000)
    assert said[0] == (100, 1000, None) and said[1][2] is not None and said[-1] == (1000, 1000, 0.0)
    quiet = Pace(lambda d, t, eta: said.append((d, t, eta)), after=60.0)
    quiet(1, 2), quiet(2, 2)   # a short scan says nothing
    assert len(said) == 3
