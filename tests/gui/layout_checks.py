"""What "the window reads on this screen" means, as checks on a shown window (test_screens.py).

Each check returns the offending widgets in words (empty: fine), so a failing test says which
widget and by how much:

  * `sticking_out`: a visible widget that reaches past its parent's edge is cut off there (the
    widget of a scroll area excepted where a scroll bar reaches the rest);
  * `cut_labels`: a label narrower than its one line of text, or shorter than its wrapped lines;
  * `outside_window`: a key widget squeezed to nothing, or not inside the window's rect (nor, in a
    scroll area, reachable by scrolling it);
  * `overlapping`: sibling widgets of one layout drawn over each other;
  * `clipped_plots`: a plot (pyqtgraph) whose axes, titles and legend need more room than its view
    has: the view then shows only part of it;
  * `legends_over_data`: a plot's legend drawn over its curves' points, or cut off.
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QWidget


MIN_SIDE = 10            # px: a key widget narrower or lower than this is gone for the user


def _name(w: QWidget) -> str:
    text = w.text()[:60] if isinstance(w, QLabel) else ""
    chain, p = [], w
    while p is not None and not p.isWindow():
        chain.append(type(p).__name__ + (f"#{p.objectName()}" if p.objectName() else ""))
        p = p.parentWidget()
    return " < ".join(chain[:4]) + (f" {text!r}" if text else "")


def _scrolled(w: QWidget) -> bool:
    """Whether `w` is the widget of a scroll area (its viewport's child): it may be larger, and scrolls."""
    p = w.parentWidget()
    area = p.parentWidget() if p is not None else None
    return isinstance(area, QAbstractScrollArea) and area.viewport() is p


def _scrolls_to(w: QWidget) -> bool:
    """Whether the scroll area holding `w` has a scroll bar for each way `w` is larger than its viewport."""
    viewport = w.parentWidget()
    area = viewport.parentWidget()
    off = Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    return not (w.width() > viewport.width() and area.horizontalScrollBarPolicy() == off or
                w.height() > viewport.height() and area.verticalScrollBarPolicy() == off)


def shown(window: QWidget) -> list[QWidget]:
    """The window's widgets a user can see now (visible, in no hidden page, not a window of their own)."""
    return [w for w in window.findChildren(QWidget) if w.isVisible() and not w.isWindow()]


def sticking_out(window: QWidget, tolerance: int = 1) -> list[str]:
    bad = []
    for w in shown(window):
        parent = w.parentWidget()
        if parent is None or _scrolled(w) and _scrolls_to(w):
            continue
        inside = parent.rect().adjusted(-tolerance, -tolerance, tolerance, tolerance)
        if not inside.contains(w.geometry()):
            g = w.geometry()
            bad.append(f"{_name(w)}: {g.x()},{g.y()} {g.width()}×{g.height()} in a "
                       f"{parent.width()}×{parent.height()} {type(parent).__name__}")
    return bad


def cut_labels(window: QWidget, tolerance: int = 2) -> list[str]:
    bad = []
    for w in shown(window):
        if not isinstance(w, QLabel) or not w.text() or w.pixmap() is not None and not w.pixmap().isNull():
            continue
        if w.wordWrap():
            need = w.heightForWidth(w.width())
            if need > w.height() + tolerance:
                bad.append(f"{_name(w)}: {w.height()} px high, its lines need {need}")
        elif w.minimumSizeHint().width() > w.width() + tolerance:
            bad.append(f"{_name(w)}: {w.width()} px wide, its text needs {w.minimumSizeHint().width()}")
    return bad


def window_rect_of(window: QWidget, w: QWidget) -> QRect:
    """Where `w` is in the window; in a scroll area, where scrolling can bring it (its area's rect)."""
    area = w
    while area is not None and area is not window:
        if _scrolled(area):
            viewport = area.parentWidget()
            return QRect(viewport.mapTo(window, QPoint(0, 0)), viewport.size())
        area = area.parentWidget()
    return QRect(w.mapTo(window, QPoint(0, 0)), w.size())


def outside_window(window: QWidget, widgets) -> list[str]:
    bad = []
    for w in widgets:
        if not w.isVisible():
            bad.append(f"{_name(w)}: not visible")
            continue
        r = window_rect_of(window, w)
        if w.width() < MIN_SIDE or w.height() < MIN_SIDE:
            bad.append(f"{_name(w)}: squeezed to {w.width()}×{w.height()}")
        elif not window.rect().contains(r):
            bad.append(f"{_name(w)}: at {r.x()},{r.y()} {r.width()}×{r.height()}, "
                       f"outside the {window.width()}×{window.height()} window")
    return bad


def overlapping(window: QWidget, tolerance: int = 1) -> list[str]:
    """Visible siblings managed by the same layout that overlap (a layout never does that unless squeezed)."""
    bad = []
    for parent in [window, *shown(window)]:
        layout = parent.layout()
        if layout is None:
            continue
        kids = [k for k in parent.children() if _in_sublayout(layout, k)]
        for i, a in enumerate(kids):
            for b in kids[i + 1:]:
                overlap = a.geometry().intersected(b.geometry())
                if overlap.width() > tolerance and overlap.height() > tolerance:
                    bad.append(f"{_name(a)} and {_name(b)} overlap by {overlap.width()}×{overlap.height()}")
    return bad


def _in_sublayout(layout, w) -> bool:
    if not (isinstance(w, QWidget) and w.isVisible() and not w.isWindow()):
        return False
    for i in range(layout.count()):
        item = layout.itemAt(i)
        if item.widget() is w:
            return True
        if item.layout() is not None and _in_sublayout(item.layout(), w):
            return True
    return False


def clipped_plots(window: QWidget, tolerance: int = 1) -> list[str]:
    import pyqtgraph as pg
    bad = []
    for view in shown(window):
        if not isinstance(view, pg.GraphicsView) or view.centralWidget is None:
            continue
        need = view.centralWidget.effectiveSizeHint(Qt.SizeHint.MinimumSize)
        room = view.viewport().size()
        if need.width() > room.width() + tolerance or need.height() > room.height() + tolerance:
            bad.append(f"{_name(view)}: its plot needs {need.width():.0f}×{need.height():.0f}, "
                       f"the view is {room.width()}×{room.height()}")
    return bad


def legends_over_data(window: QWidget) -> list[str]:
    """Plot legends drawn over a curve's points, or cut off by their plot's edge."""
    import pyqtgraph as pg
    from PySide6.QtCore import QPointF, QRectF
    bad = []
    for view in shown(window):
        if not isinstance(view, pg.GraphicsView):
            continue
        visible = QRectF(view.mapToScene(view.viewport().rect()).boundingRect())
        items = view.scene().items()
        legends = [i for i in items if isinstance(i, pg.LegendItem) and i.isVisible() and i.items]
        curves = [i for i in items if isinstance(i, pg.PlotDataItem) and i.isVisible()]
        for legend in legends:
            box = legend.sceneBoundingRect()
            if not visible.adjusted(-1, -1, 1, 1).contains(box):
                bad.append(f"{_name(view)}: a legend at {box.x():.0f},{box.y():.0f} {box.width():.0f}×"
                           f"{box.height():.0f} is cut by its {visible.width():.0f}×{visible.height():.0f} view")
            for curve in curves:
                xs, ys = curve.getData()
                if xs is None:
                    continue
                covered = sum(1 for x, y in zip(xs, ys) if y == y and box.contains(curve.mapToScene(QPointF(x, y))))
                if covered:
                    bad.append(f"{_name(view)}: a legend covers {covered} point(s) of a curve")
    return bad
