"""Can this machine show the app? Asked before any QApplication exists.

When Qt cannot load its platform plugin or reach a display, it prints its own messages and aborts
(SIGABRT, exit 134): over SSH, in a container, or on a fresh server image without the system
libraries that Qt ≥ 6.5's xcb plugin needs (libxcb-cursor0 …). `frelon` asks `display_problem()`
first and, when there is one, prints one `frelon: error: …` line and exits 1 instead.

What is checked, Linux only (macOS and Windows have their platform built in), for the platforms Qt
would try (QT_QPA_PLATFORM, a `;`-separated list; unset: xcb, preceded by wayland in a Wayland
session; the first that passes is taken, as Qt does):
  - the display: xcb needs DISPLAY and an X server that accepts a connection (xcb_connect, as Qt
    does); wayland needs the compositor's socket; offscreen, minimal, vnc … need none;
  - the plugin's libraries: `ldd` on the plugin file (every missing library at once), or, without
    ldd, loading it (the first missing one). Missing system libraries are named with the Debian/Ubuntu
    and Fedora packages that provide them.
Imports only PySide6.QtCore (to find the plugins), never QtGui or QtWidgets: those need the very
libraries being checked. FRELON_NO_DISPLAY_CHECK=1 skips the check (Qt then decides).
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HEADLESS = "the command line works without a display: `frelon train …` (see `frelon --help`)"

# platforms that need no display server (and that this check does not second-guess)
NO_DISPLAY_NEEDED = {"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"}

# soname → (Debian/Ubuntu package, Fedora package): what the xcb and wayland plugins and QtGui load
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_CANNOT_OPEN = re.compile(r"(\S+?\.so[.\d]*): cannot open shared object file")


def display_problem(env=None) -> str | None:
    """None when Qt can show a window here; otherwise what is wrong and what to do, in one line."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or env.get("FRELON_NO_DISPLAY_CHECK"):
        return None
    problems = []
    try:
        for platform in platforms_to_try(env):
            problem = platform_problem(platform, env)
            if problem is None:
                return None
            problems.append(problem)
    except Exception:                  # a check that cannot tell must not stop the app: Qt decides
        return None
    return problems[0]


def platforms_to_try(env) -> list[str]:
    """Qt's order: QT_QPA_PLATFORM (names before any `:options`), else wayland in a Wayland session,
    then xcb."""
    given = [p.split(":", 1)[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";")]
    given = [p for p in given if p]
    if given:
        return given
    return ["wayland", "xcb"] if env.get("XDG_SESSION_TYPE") == "wayland" else ["xcb"]


def platform_problem(platform: str, env, plugin_dirs: list[Path] | None = None) -> str | None:
    if platform.startswith("wayland"):
        problem = _wayland_display_problem(env)
    elif platform == "xcb":
        problem = _x_display_problem(env, connect=False)
    else:
        problem = None
    if problem:
        return problem
    try:
        dirs = plugin_dirs if plugin_dirs is not None else platform_plugin_dirs(env)
    except ImportError as e:          # PySide6 itself cannot load
        return _missing_libraries_line("PySide6 (Qt)", _missing_from_error(str(e)), str(e))
    plugins = find_plugins(platform, dirs)
    if not plugins:
        if platform in NO_DISPLAY_NEEDED or not dirs:
            return None               # not a file name this check knows: Qt decides
        available = sorted({p.name[4:-3] for d in dirs for p in d.glob("libq*.so")})
        return (f"Qt has no platform plugin '{platform}' (QT_QPA_PLATFORM) — use one of "
                f"{', '.join(available) or 'none found'}, or unset QT_QPA_PLATFORM")
    problems = []
    for plugin in plugins:            # Qt falls back to the next folder's plugin, so does this
        missing, detail = missing_libraries(plugin)
        if not missing and not detail:
            break
        problems.append(_missing_libraries_line(f"Qt's {platform} platform plugin", missing, detail))
    else:
        return problems[0]
    if platform == "xcb":
        return _x_display_problem(env, connect=True)
    return None


def platform_plugin_dirs(env) -> list[Path]:
    """Where Qt looks for platform plugins: QT_QPA_PLATFORM_PLUGIN_PATH, then PySide6's own."""
    dirs = [Path(p) for p in env.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if p]
    from PySide6.QtCore import QLibraryInfo
    dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
    return [d for d in dirs if d.is_dir()]


def find_plugins(platform: str, dirs: list[Path]) -> list[Path]:
    """libq<platform>.so in each folder, in Qt's order; wayland-egl and the like live in libqwayland.so."""
    names = [f"libq{platform}.so"] + ([f"libq{platform.split('-')[0]}.so"] if "-" in platform else [])
    return [d / name for d in dirs for name in names if (d / name).is_file()]


def missing_libraries(plugin: Path) -> tuple[list[str], str]:
    """(the libraries the plugin needs that cannot be found, any other loading error)."""
    ldd = shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None:
            missing = list(dict.fromkeys(_NOT_FOUND.findall(out)))
            if missing:
                return missing, ""
    try:                               # what ldd cannot see (or no ldd): load it as Qt would
        ctypes.CDLL(str(plugin))
    except OSError as e:
        return _missing_from_error(str(e)), str(e)
    return [], ""


def _missing_from_error(message: str) -> list[str]:
    return list(dict.fromkeys(_CANNOT_OPEN.findall(message)))


def _missing_libraries_line(what: str, missing: list[str], detail: str) -> str:
    if not missing:
        return f"{what} cannot be loaded: {detail} — {HEADLESS}"
    known = [m for m in missing if m in PACKAGES]
    qt_own = [m for m in missing if m.startswith(("libQt6", "libpyside6", "libshiboken6"))]
    others = [m for m in missing if m not in known and m not in qt_own]
    todo = []
    if known:
        debian = " ".join(dict.fromkeys(PACKAGES[m][0] for m in known))
        fedora = " ".join(dict.fromkeys(PACKAGES[m][1] for m in known))
        todo.append(f"install them: Debian/Ubuntu `sudo apt-get install {debian}`, "
                    f"Fedora `sudo dnf install {fedora}`")
    if qt_own:
        todo.append(f"{', '.join(qt_own)} belong{'s' if len(qt_own) == 1 else ''} to PySide6: "
                    "`pip install --force-reinstall PySide6-Essentials`")
    if others:
        todo.append(f"install what provides {', '.join(others)} (Debian/Ubuntu `apt-file search NAME`, "
                    "Fedora `dnf provides '*/NAME'`)")
    return (f"{what} needs libraries that are missing: {', '.join(missing)} — "
            + "; ".join(todo) + f"; {HEADLESS}")


def _wayland_display_problem(env) -> str | None:
    if env.get("WAYLAND_SOCKET"):
        return None
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    runtime = env.get("XDG_RUNTIME_DIR", "")
    socket = Path(name) if os.path.isabs(name) else (Path(runtime) / name if runtime else None)
    if socket is not None and socket.exists():
        return None
    return f"no Wayland display to open the app on ({name} not found) — {HEADLESS}"


def _x_display_problem(env, connect: bool) -> str | None:
    display = env.get("DISPLAY", "")
    if not display:
        return ("no display to open the app on (DISPLAY is not set: no desktop session, or SSH "
                f"without -X) — {HEADLESS}")
    if connect and not x_display_opens(display):
        return (f"cannot open the X display '{display}' (DISPLAY): no X server there accepts the "
                f"connection (none running, or XAUTHORITY does not match) — {HEADLESS}")
    return None


def x_display_opens(display: str) -> bool:
    """Connect and disconnect, as Qt's xcb plugin would (libxcb; its absence was checked before)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True                    # not ours to say: the plugin check names missing libraries
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return bool(conn) and xcb.xcb_connection_has_error(conn) == 0
    finally:
        if conn:
            xcb.xcb_disconnect(conn)
