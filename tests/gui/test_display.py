"""Starting the app where it cannot be shown: one `frelon: error:` line and exit 1, never Qt's abort
(SIGABRT, exit 134). Checked before any QApplication exists (frelon/gui/display.py)."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frelon.gui import display

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is Linux's")

# what decides the platform and the display; each test says which of them it sets
DISPLAY_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "XDG_SESSION_TYPE", "QT_QPA_PLATFORM",
               "QT_QPA_PLATFORM_PLUGIN_PATH", "FRELON_NO_DISPLAY_CHECK")


def frelon_app(*args, env: dict, code: str | None = None) -> subprocess.CompletedProcess:
    """`python -m frelon ARGS` (or CODE, which runs the CLI its own way) with only `env` deciding
    the display."""
    base = {k: v for k, v in os.environ.items() if k not in DISPLAY_ENV}
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "frelon", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **env})


def plugin_loads(platform: str) -> bool:
    plugins = display.find_plugins(platform, display.platform_plugin_dirs({}))
    return bool(plugins) and display.missing_libraries(plugins[0]) == ([], "")


def assert_one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])         # Qt's abort would be -6 / 134
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("frelon: error: "), p.stderr
    assert p.stdout == ""
    return lines[0]


@pytest.mark.parametrize("args", [[], ["gui"]])
def test_no_display_is_one_line_and_exit_1(args):
    line = assert_one_error_line(frelon_app(*args, env={}))
    assert "no display" in line and "DISPLAY is not set" in line
    assert "`frelon train" in line                        # the way that works headless


def test_a_display_nobody_answers_is_one_line(tmp_path):
    if not plugin_loads("xcb"):
        pytest.skip("this machine lacks the xcb plugin's libraries (the next tests cover that)")
    line = assert_one_error_line(frelon_app(env={"DISPLAY": ":93", "QT_QPA_PLATFORM": "xcb"}))
    assert "cannot open the X display ':93'" in line


def test_missing_system_libraries_name_their_packages_and_the_app_exits_1():
    # the loader reports what a fresh server image lacks; the CLI prints the check's one line
    code = ("import sys; import frelon.gui.display as d\n"
            "d.missing_libraries = lambda plugin: (['libxcb-cursor.so.0', 'libxcb-icccm.so.4', "
            "'libxkbcommon-x11.so.0'], '')\n"
            "from frelon.cli import main; sys.exit(main([]))")
    line = assert_one_error_line(frelon_app(env={"DISPLAY": ":0"}, code=code))
    assert "xcb platform plugin" in line
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxkbcommon-x11.so.0" in line
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxkbcommon-x11-0" in line
    assert "sudo dnf install xcb-util-cursor xcb-util-wm libxkbcommon-x11" in line
    assert "`frelon train" in line


@pytest.fixture
def orphan_plugin(tmp_path) -> Path:
    """The real xcb plugin copied away from PySide6's Qt libraries: a real ELF file whose
    libQt6XcbQpa.so.6, libQt6Gui.so.6 … cannot be found (its RUNPATH is $ORIGIN/../../lib)."""
    real = display.find_plugins("xcb", display.platform_plugin_dirs({}))
    if not real:
        pytest.skip("this PySide6 has no xcb plugin")
    folder = tmp_path / "platforms"
    folder.mkdir()
    shutil.copy(real[0], folder / "libqxcb.so")
    return folder


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_a_plugin_whose_libraries_are_missing_is_named_with_all_of_them(orphan_plugin):
    line = display.platform_problem("xcb", {"DISPLAY": ":0"}, plugin_dirs=[orphan_plugin])
    assert line.startswith("Qt's xcb platform plugin needs libraries that are missing: ")
    for lib in ("libQt6XcbQpa.so.6", "libQt6Gui.so.6", "libQt6Core.so.6"):   # every one, not the first
        assert lib in line
    assert "pip install --force-reinstall PySide6-Essentials" in line


def test_without_ldd_loading_the_plugin_names_the_first_missing_library(orphan_plugin):
    # in a fresh process: this one has Qt's libraries loaded already, which would satisfy the plugin
    code = ("import shutil, sys; import frelon.gui.display as d\n"
            "shutil.which = lambda name: None\n"
            "missing, detail = d.missing_libraries(sys.argv[1]); print(missing); print(detail)")
    p = subprocess.run([sys.executable, "-c", code, str(orphan_plugin / "libqxcb.so")],
                       capture_output=True, text=True, timeout=60)
    missing, detail = p.stdout.splitlines()
    assert missing.startswith("['libQt6"), p.stdout + p.stderr
    assert "cannot open shared object file" in detail


def test_a_good_plugin_in_a_later_folder_is_what_qt_falls_back_to(orphan_plugin):
    good = display.platform_plugin_dirs({})
    assert display.platform_problem("offscreen", {}, plugin_dirs=[orphan_plugin, *good]) is None
    if plugin_loads("xcb"):           # the orphan fails, PySide6's own loads: on to the display
        assert "cannot open the X display" in display.platform_problem(
            "xcb", {"DISPLAY": ":93"}, plugin_dirs=[orphan_plugin, *good])


@pytest.mark.parametrize("env, expected", [
    ({}, ["xcb"]),
    ({"XDG_SESSION_TYPE": "wayland"}, ["wayland", "xcb"]),
    ({"QT_QPA_PLATFORM": "offscreen"}, ["offscreen"]),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, ["wayland", "xcb"]),
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, ["vnc"]),
])
def test_the_platforms_qt_would_try(env, expected):
    assert display.platforms_to_try(env) == expected


def test_platforms_that_need_no_display_pass_and_unknown_ones_are_named():
    assert display.display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display.display_problem({"QT_QPA_PLATFORM": "minimal"}) is None
    line = display.display_problem({"QT_QPA_PLATFORM": "nosuchplatform"})
    assert "no platform plugin 'nosuchplatform'" in line and "offscreen" in line
    assert display.display_problem({"FRELON_NO_DISPLAY_CHECK": "1"}) is None     # the way out


def test_wayland_needs_its_socket(tmp_path):
    env = {"QT_QPA_PLATFORM": "wayland", "XDG_RUNTIME_DIR": str(tmp_path), "WAYLAND_DISPLAY": "wayland-7"}
    assert "no Wayland display" in display.display_problem(env)
    (tmp_path / "wayland-7").touch()
    problem = display.display_problem(env)
    if plugin_loads("wayland"):
        assert problem is None
    else:
        assert "wayland platform plugin needs libraries" in problem


@pytest.fixture
def xvfb():
    """A real X server (Xvfb) on a free display number, or skip."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    try:
        ctypes.CDLL("libxcb.so.1")
    except OSError:
        pytest.skip("libxcb is missing")
    number = next(n for n in range(150, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30                  # a loaded machine starts it slowly
    while not display.x_display_opens(f":{number}") and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f":{number}"
    server.terminate()
    server.wait(10)


def test_an_x_server_that_answers_passes(xvfb):
    assert display.x_display_opens(xvfb)
    assert not display.x_display_opens(":249")
    if not plugin_loads("xcb"):
        pytest.skip("this machine lacks the xcb plugin's libraries")
    assert display.display_problem({"DISPLAY": xvfb}) is None


def test_a_check_that_breaks_lets_qt_decide(monkeypatch):
    def broken(platform, env):
        raise RuntimeError("unexpected")
    monkeypatch.setattr(display, "platform_problem", broken)
    assert display.display_problem({"DISPLAY": ":0"}) is None
