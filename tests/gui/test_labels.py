"""The labels and the picture that keep the window on a small screen (gui/widgets/labels.py,
picture.py): a long path neither widens a wrapped label nor a one-line one, nothing is lost (the
text given back, the whole of it in a tooltip), and a wide picture fits its room in proportion."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QLabel

from frelon.gui.widgets.labels import ZWSP, ElidedLabel, WrapLabel, breakable
from frelon.gui.widgets.picture import Picture

PATH = "/home/someone/photos/2024/IMG_20240517_153012_hornet_nest_under_the_kitchen_window_frame_close_up.jpg"


def test_a_long_path_wraps_in_a_wrapped_label(qtbot):
    text = f"Checking <b>{PATH}</b> … (every picture is decoded once)"
    plain = QLabel(text)
    plain.setWordWrap(True)
    label = WrapLabel(text)
    qtbot.addWidget(label)
    assert plain.minimumSizeHint().width() > 500                  # Qt's own: as wide as the path
    assert label.minimumSizeHint().width() < 200 and label.text() == text
    label.resize(220, 400)
    assert label.heightForWidth(220) > 3 * label.fontMetrics().height()      # on several lines instead
    assert breakable("<span style='color:#a00'>x</span> short") == "<span style='color:#a00'>x</span> short"
    assert ZWSP not in breakable("a/b_c short words") and f"/{ZWSP}" in breakable(PATH)


def test_a_one_line_label_elides_and_keeps_the_whole_in_its_tooltip(qtbot):
    label = ElidedLabel(f"Runs folder: <b>{PATH}</b>")
    qtbot.addWidget(label)
    assert label.minimumSizeHint().width() < 150
    label.resize(300, 20)
    label.show()
    shown = QLabel.text(label)                          # what is drawn
    assert label.is_elided() and "…" in shown and label.text() == f"Runs folder: <b>{PATH}</b>"
    assert label.toolTip() == f"Runs folder: {PATH}"
    assert label.fontMetrics().horizontalAdvance(shown.replace("<span>", "").replace("</span>", "")) <= 300
    label.resize(2000, 20)
    assert not label.is_elided() and label.toolTip() == ""


def test_a_wide_picture_fits_its_room_in_proportion(qtbot):
    pixmap = QPixmap(744, 272)                           # a triptych, as engine/triptych.py draws it
    pixmap.fill(QColor("teal"))
    picture = Picture()
    qtbot.addWidget(picture)
    picture.set_picture(pixmap)
    assert picture.minimumSizeHint().width() <= 200 and picture.sizeHint().width() == 744
    picture.resize(372, 400)
    picture.show()
    shown = picture.pixmap()
    assert shown.deviceIndependentSize().toSize().width() == 372 and abs(shown.height() - 136) <= 1
    picture.resize(1500, 900)                            # never blown up past its own size
    assert picture.pixmap().width() == 744
    picture.setText("No image flipped")
    assert picture.picture().isNull() and picture.text() == "No image flipped"
