#!/usr/bin/env python
"""The GUI thread's longest stall while a 12-megapixel photo opens in each of the app's viewers
(goal: at most 100 ms).

    python bench/fig_gui_photo.py [--screen 2560] [--repeats 5]

A 4032 × 3024 JPEG is made here (quality 92, a real photograph of scikit-image upscaled, camera-like
noise: about the bytes of a phone photo). For each viewer — the detection view (results panel),
the box editor (annotations) and the thumbnail grid — a 1 ms timer ticks on the GUI thread while
the photo opens, and the longest gap between ticks (from the open call until the picture is on
screen, plus 100 ms) is the stall; one more row zooms the detection view in past its screen-sized
decode (six wheel turns), until the full resolution is on screen (the open before it counted too). The screen is taken as `--screen` px on its long side (the
viewers decode at the screen's size; the offscreen platform's own screen is 800 px). For
comparison, "before" is what the viewers did until now: the whole photo decoded on the GUI thread
(gui/images.read_image without a size) and turned into a pixmap. Median and worst of `--repeats`
opens are printed, with the machine's load average (a busy machine stretches every figure).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
W, H = 4032, 3024


def make_photo(path: Path) -> Path:
    import numpy as np
    from PIL import Image
    sys.path.insert(0, str(HERE))
    import real_images
    photo = real_images.load("skimage:astronaut").resize((W, H), Image.Resampling.BICUBIC)
    noisy = np.asarray(photo, dtype=np.float32) + np.random.default_rng(0).normal(0, 3, (H, W, 3)).astype(np.float32)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def stall_while(app, open_call, done, settle_s: float = 0.1, limit_s: float = 30.0) -> float:
    """The longest gap (ms) between 1 ms timer ticks from `open_call` until `done()` plus `settle_s`."""
    from PySide6.QtCore import QTimer
    ticks = [time.perf_counter()]
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    app.processEvents()
    ticks.append(time.perf_counter())
    open_call()
    start = time.perf_counter()
    finished = None
    while time.perf_counter() - start < limit_s:
        app.processEvents()
        ticks.append(time.perf_counter())
        if finished is None and done():
            finished = time.perf_counter()
        if finished is not None and time.perf_counter() - finished > settle_s:
            break
        time.sleep(0.0005)
    timer.stop()
    return max(b - a for a, b in zip(ticks, ticks[1:])) * 1000


def zoom_in(view) -> None:
    """The photo opened and shown whole, then six wheel turns in: the full resolution is asked for."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication
    from frelon.gui.widgets.detection_view import Detection
    view.show_image(view.path, [Detection("hornet", 0, (1500.0, 900.0, 240.0, 180.0), 0.9)])
    while not view.picture_shown():
        QApplication.processEvents()
    centre = QPointF(view.viewport().rect().center())
    for _ in range(6):
        QApplication.sendEvent(view.viewport(), QWheelEvent(
            centre, centre, QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase, False))


def full_shown(view) -> bool:
    return view.picture_shown() and view._image_item.pixmap().width() == W


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--screen", type=int, default=2560)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QApplication

    from frelon.gui.annotation_set import Box
    from frelon.gui.images import read_image
    from frelon.gui.widgets import box_editor, detection_view
    from frelon.gui.widgets.thumbnail_grid import Thumb, ThumbnailGrid
    app = QApplication.instance() or QApplication([])
    for module in (box_editor, detection_view):
        module.screen_side = lambda: args.screen
    photo = make_photo(Path(tempfile.mkdtemp(prefix="frelon-gui-photo-")) / "IMG_0001.jpg")
    box = (1500.0, 900.0, 240.0, 180.0)
    view, editor, grid = detection_view.DetectionView(), box_editor.BoxEditor(), ThumbnailGrid()
    for w in (view, editor, grid):
        w.resize(1200, 800)
        w.show()
    editor.set_classes(["hornet"], [1])
    viewers = {
        "before (full decode on the GUI thread)": (lambda: QPixmap.fromImage(read_image(photo)[0]), lambda: True),
        "detection view": (lambda: view.show_image(str(photo), [detection_view.Detection("hornet", 0, box, 0.9)]),
                           view.picture_shown),
        "box editor": (lambda: editor.show_image(str(photo), None, [Box(1, box)]), editor.picture_shown),
        "thumbnail grid (8 photos)": (lambda: grid.set_thumbs([Thumb(str(photo), f"{i}") for i in range(8)]),
                                      lambda: grid.pending() == 0),
        "detection view, zoomed in x4 (full resolution)": (lambda: zoom_in(view), lambda: full_shown(view)),
    }
    print(f"GUI thread's longest stall while a {W}x{H} JPEG ({photo.stat().st_size / 1e6:.1f} MB) opens; "
          f"screen {args.screen} px; {args.repeats} opens each; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    for name, (open_call, done) in viewers.items():
        stalls = [stall_while(app, open_call, done) for _ in range(args.repeats)]
        print(f"  {name:40s} median {statistics.median(stalls):6.0f} ms   worst {max(stalls):6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
