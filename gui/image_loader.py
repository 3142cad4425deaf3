"""Pictures decoded off the GUI thread: a 12-megapixel photo takes a few hundred milliseconds to
decode in full, longer than the window may stand still.

`ImageLoader.request(path, max_side, key)` answers through `loaded(key, path, image, full size)`
(gui/images.py's `read_image`: EXIF-rotated, JPEGs decoded at a reduced DCT scale when `max_side`
asks for fewer pixels). A picture of at most `sync_pixels` (its header says; SYNC_PIXELS unless
the owner asks fewer) is decoded at once,
before `request` returns — a few milliseconds, and what was shown before stays valid —; a larger
one in the loader's thread pool, its answer queued to the GUI thread. `cancel` forgets what was
asked (a newer picture replaces it): a stale answer is never emitted. QImage is safe to make in
any thread; QPixmap (the screen's copy) is made by the receiver, on the GUI thread. A viewer
zoomed in past its screen-sized decode (`zoomed_past`) asks for the full resolution (key FULL).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

from frelon.gui.images import read_image

SYNC_PIXELS = 2_000_000          # decoded on the spot up to this many pixels (a few ms)
THREADS = 2


def screen_side() -> int:
    """The longest side, in device pixels, of the largest screen: what a viewer needs decoded
    (zooming in further shows the reduced decode enlarged); 2560 when no screen is known."""
    from PySide6.QtGui import QGuiApplication
    sides = [max(s.size().width(), s.size().height()) * s.devicePixelRatio() for s in QGuiApplication.screens()]
    return int(max(sides, default=0)) or 2560


FULL = "full"                    # the key viewers ask a full-resolution decode with, once zoomed in


def zoomed_past(view, item) -> bool:
    """Whether `view` (a QGraphicsView) shows `item`'s reduced decode enlarged: one of its pixels
    wider than a screen pixel — time for the full resolution."""
    return item is not None and item.scale() > 1 and view.transform().m11() * item.scale() > 1


class _Answer(QObject):
    ready = Signal(int, object, str, QImage, QSize)


class _Decode(QRunnable):
    def __init__(self, answer: _Answer, generation: int, key, path: str, max_side: int | None):
        super().__init__()
        self.answer, self.generation, self.key, self.path, self.max_side = answer, generation, key, path, max_side

    def run(self) -> None:
        image, full = read_image(self.path, self.max_side)
        self.answer.ready.emit(self.generation, self.key, self.path, image, full)


class ImageLoader(QObject):
    loaded = Signal(object, str, QImage, QSize)   # the request's key, path, image (null if unreadable), full size

    def __init__(self, parent: QObject | None = None, threads: int = THREADS, sync_pixels: int = SYNC_PIXELS):
        super().__init__(parent)
        self.sync_pixels = sync_pixels
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._answer = _Answer(self)
        self._answer.ready.connect(self._deliver)
        self._generation = 0            # bumped by cancel: older answers are stale
        self._pending = 0

    def request(self, path: str, max_side: int | None = None, key=None) -> None:
        """Decode `path` (at most `max_side` px long); `loaded` answers with `key` — before this
        returns for a small picture."""
        size = QImageReader(str(path)).size()
        self._pending += 1
        if size.isValid() and size.width() * size.height() <= self.sync_pixels:
            image, full = read_image(path, max_side)
            self._deliver(self._generation, key, str(path), image, full)
        else:
            self._pool.start(_Decode(self._answer, self._generation, key, str(path), max_side))

    def cancel(self) -> None:
        """Forget every request: queued decodes are dropped, running ones answer no one."""
        self._pool.clear()
        self._generation += 1
        self._pending = 0

    def busy(self) -> bool:
        """Whether an answer is still to come."""
        return self._pending > 0

    def wait(self, msecs: int = -1) -> bool:
        """Block until the pool is idle (tests, shutdown); answers still arrive through the event loop."""
        return self._pool.waitForDone(msecs)

    def _deliver(self, generation: int, key, path: str, image: QImage, full: QSize) -> None:
        if generation == self._generation:
            self._pending -= 1
            self.loaded.emit(key, path, image, full)
