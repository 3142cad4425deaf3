"""A 12-megapixel phone photo in the app's viewers: the detection view and the box editor return
at once (the picture is decoded off the GUI thread, at the screen's size), then show it with the
boxes where the photo has them; the thumbnail grid shows it too. Oracle: a red rectangle painted
into the photo at known original pixels, and a box given at those same pixels."""
from __future__ import annotations

import time

import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication

from frelon.gui.annotation_set import Box
from frelon.gui.widgets.box_editor import BoxEditor
from frelon.gui.widgets.detection_view import Detection, DetectionView
from frelon.gui.widgets.thumbnail_grid import Thumb, ThumbnailGrid

W, H = 4032, 3024
RED = (1200, 700, 2000, 1500)         # x1, y1, x2, y2 in the photo's own pixels


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "IMG_0001.jpg"
    image = Image.new("RGB", (W, H), (60, 110, 70))
    draw = ImageDraw.Draw(image)
    for x in range(0, W, 300):            # stripes: a photo that is not one flat colour
        draw.rectangle((x, 0, x + 120, H), fill=(90, 90, 140))
    draw.rectangle((RED[0], RED[1], RED[2] - 1, RED[3] - 1), fill=(230, 20, 20))
    image.save(path, quality=85)
    return path


def _is_red(colour: QColor) -> bool:
    return colour.red() > 180 and colour.green() < 90 and colour.blue() < 90


def _check_red_under_box(view, rect: QRectF) -> None:
    """The grabbed viewport is red well inside the box and not red just outside it: the
    picture and the box are placed in the same original pixels."""
    shot = view.viewport().grab().toImage()
    top_left, bottom_right = view.mapFromScene(rect.topLeft()), view.mapFromScene(rect.bottomRight())
    assert bottom_right.x() - top_left.x() > 40, "the box is drawn at a visible size"
    cx, cy = (top_left.x() + bottom_right.x()) // 2, (top_left.y() + bottom_right.y()) // 2
    assert _is_red(shot.pixelColor(cx, cy))
    assert _is_red(shot.pixelColor(top_left.x() + 5, cy)) and _is_red(shot.pixelColor(bottom_right.x() - 5, cy))
    assert not _is_red(shot.pixelColor(top_left.x() - 6, cy)) and not _is_red(shot.pixelColor(bottom_right.x() + 6, cy))
    assert not _is_red(shot.pixelColor(cx, top_left.y() - 6)) and not _is_red(shot.pixelColor(cx, bottom_right.y() + 6))


def _opened(qtbot, view, open_call) -> float:
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    start = time.perf_counter()
    open_call()
    took = time.perf_counter() - start
    assert not view.picture_shown(), "the 12 MP decode is not done on the GUI thread"
    qtbot.waitUntil(view.picture_shown, timeout=15000)
    return took


def test_detection_view_opens_a_12mp_photo_at_once_with_boxes_in_place(qtbot, photo, tmp_path):
    view = DetectionView()
    qtbot.addWidget(view)
    box = (RED[0], RED[1], RED[2] - RED[0], RED[3] - RED[1])
    took = _opened(qtbot, view, lambda: view.show_image(str(photo), [Detection("hornet", 0, box, 0.9)]))
    assert took < 0.3, f"show_image took {took:.2f} s"
    assert view.total_count() == 1 and view.sceneRect() == QRectF(0, 0, W, H)
    view.fit()
    _check_red_under_box(view, QRectF(*box))
    view.grab().save(str(tmp_path / "detection_view.png"))


def test_box_editor_opens_a_12mp_photo_at_once_with_boxes_in_place(qtbot, photo, tmp_path):
    editor = BoxEditor()
    qtbot.addWidget(editor)
    editor.set_classes(["hornet"], [1])
    box = Box(1, (RED[0], RED[1], RED[2] - RED[0], RED[3] - RED[1]))
    took = _opened(qtbot, editor, lambda: editor.show_image(str(photo), None, [box]))
    assert took < 0.3, f"show_image took {took:.2f} s"
    assert editor.image_size == (W, H) and len(editor.boxes) == 1
    editor.fit()
    _check_red_under_box(editor, QRectF(*box.bbox))
    editor.grab().save(str(tmp_path / "box_editor.png"))


def _wheel_in(view, turns: int) -> None:
    centre = QPointF(view.viewport().rect().center())
    for _ in range(turns):
        event = QWheelEvent(centre, QPointF(view.viewport().mapToGlobal(centre.toPoint())), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view.viewport(), event)


@pytest.mark.parametrize("viewer", ["detection view", "box editor"])
def test_zooming_into_a_12mp_photo_stays_zoomed(qtbot, photo, viewer):
    """Six wheel turns in (1.25 each, ×3.8): the scroll bars that appear resize the viewport, which
    must not fit the whole picture back (a 40-px object in a 12 MP photo is seen only zoomed); zoomed
    past the screen-sized decode, the full resolution arrives under the same boxes."""
    if viewer == "detection view":
        view = DetectionView()
        open_call = lambda: view.show_image(str(photo), [])                 # noqa: E731
    else:
        view = BoxEditor()
        open_call = lambda: view.show_image(str(photo), None, [])           # noqa: E731
    qtbot.addWidget(view)
    _opened(qtbot, view, open_call)
    fitted = view.transform().m11()
    _wheel_in(view, 6)
    qtbot.wait(50)
    assert view.transform().m11() == pytest.approx(fitted * 1.25 ** 6)
    picture = view._image_item if viewer == "detection view" else view._picture
    qtbot.waitUntil(lambda: picture.pixmap().width() == W, timeout=15000)
    assert picture.scale() == 1.0 and picture.sceneBoundingRect() == QRectF(0, 0, W, H)
    view.resize(700, 500)                                                # a resize keeps the zoom too
    qtbot.wait(50)
    assert view.transform().m11() == pytest.approx(fitted * 1.25 ** 6)
    view.show_image(str(photo), []) if viewer == "detection view" else view.show_image(str(photo), None, [])
    assert view.transform().m11() < fitted * 1.25                        # a new picture is shown whole


def test_thumbnail_of_a_12mp_photo_arrives_without_blocking(qtbot, photo):
    grid = ThumbnailGrid(side=96)
    qtbot.addWidget(grid)
    grid.set_thumbs([Thumb(str(photo), "IMG_0001")])
    qtbot.waitUntil(lambda: grid.pending() == 0, timeout=15000)
    icon = grid.item(0).icon().pixmap(QSize(96, 96)).toImage()
    red = icon.pixelColor(int(icon.width() * 0.4), int(icon.height() * 0.36))   # inside RED, scaled down
    assert _is_red(red), red.name()
