"""The wheel installs and trains anywhere: built from this checkout, installed without `-e` into a
fresh virtual environment, its `frelon train` runs from a folder outside the checkout on the sample
that travels inside the package (package data), not on the checkout's files; its `frelon` without a
display says so in one line.

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
    assert {"frelon/cli.py", "frelon/common/samples.py", "frelon/engine/training/run.py", "frelon/gui/app.py"} <= names


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, Path]:
    """(the venv, the folder its `import frelon` comes from)."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    python = venv / "bin" / "python"
    # the host's pip (seen through the system site-packages) installs into the venv
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel])
    site = Path(_run([python, "-c", "import frelon, pathlib; print(pathlib.Path(frelon.__file__).parent)"],
                     cwd=venv).stdout.strip())
    assert site.is_relative_to(venv), f"frelon imported from {site}, not from the installed wheel"
    return venv, site


def _env(**extra) -> dict:
    drop = {"PYTHONPATH", "FRELON_GUI_ENGINE", "DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE",
            "QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH", "FRELON_NO_DISPLAY_CHECK"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def test_installed_wheel_trains_on_its_bundled_sample(installed, tmp_path):
    venv, site = installed
    p = _run([venv / "bin" / "frelon", "train", "--max-steps", "2", "--workers", "0", "--out", "runs"],
             cwd=tmp_path, env=_env(OMP_NUM_THREADS="1"))
    assert "run completed" in p.stderr, p.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert Path(config["data"]) == site / "assets" / "sample" / "classify"     # the package's own copy
    assert (run / "model.json").is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_installed_app_without_a_display_says_so_in_one_line(installed, tmp_path):
    venv, _ = installed
    p = subprocess.run([venv / "bin" / "frelon"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env=_env(FRELON_SETTINGS=str(tmp_path / "settings.ini")))
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    assert len(p.stderr.splitlines()) == 1 and p.stderr.startswith("frelon: error: no display"), p.stderr
