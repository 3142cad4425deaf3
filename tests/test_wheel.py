"""The wheel installs and trains anywhere: built from this checkout, installed without `-e` into a
fresh virtual environment, its `frelon train` runs from a folder outside the checkout on the sample
that travels inside the package (package data), not on the checkout's files.

The venv sees the host's site-packages (torch, PySide6 … are not installed again) and gets frelon
itself with --no-deps; the build uses the host's setuptools (--no-build-isolation), so nothing is
downloaded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "frelon" / "assets" / "sample"

pytestmark = pytest.mark.slow

# what a fresh clone would not have: build outputs, caches, runs
NOT_IN_A_CLEAN_CHECKOUT = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "*.egg-info", "build",
                                                 "dist", "runs", ".pytest_cache", "out")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=NOT_IN_A_CLEAN_CHECKOUT)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", src,
          "-w", tmp / "dist"])
    (whl,) = (tmp / "dist").glob("frelon-*.whl")
    return whl


def test_the_wheel_carries_the_samples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    in_checkout = {f"frelon/{p.relative_to(REPO / 'frelon').as_posix()}"
                   for p in SAMPLE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert len([n for n in in_checkout if n.endswith(".jpg")]) >= 48
    assert in_checkout <= names, sorted(in_checkout - names)[:5]
    assert {n for n in names if n.startswith("frelon/assets/")} == in_checkout   # the samples only
    assert {"frelon/cli.py", "frelon/samples.py", "frelon/engine/train.py", "frelon/gui/app.py"} <= names


def test_installed_wheel_trains_on_its_bundled_sample(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    python = venv / "bin" / "python"
    # the host's pip (seen through the system site-packages) installs into the venv
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel])
    site = Path(_run([python, "-c", "import frelon, pathlib; print(pathlib.Path(frelon.__file__).parent)"],
                     cwd=tmp_path).stdout.strip())
    assert site.is_relative_to(venv), f"frelon imported from {site}, not from the installed wheel"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FRELON_GUI_ENGINE")}
    env["OMP_NUM_THREADS"] = "1"
    p = _run([venv / "bin" / "frelon", "train", "--max-steps", "2", "--workers", "0", "--out", "runs"],
             cwd=elsewhere, env=env)
    assert "run completed" in p.stderr, p.stderr[-2000:]
    (run,) = (elsewhere / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert Path(config["data"]) == site / "assets" / "sample" / "classify"     # the package's own copy
    assert (run / "model.json").is_file()
