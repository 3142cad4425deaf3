"""The box editor driven with real mouse and key events on a real picture, shown scaled down:
draw a box, move it, change its class, undo, save — the saved COCO checked with pycocotools in the
original image's pixels, the original file byte-identical, and the editor reopening where it was."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from pycocotools.coco import COCO

from frelon.gui.panels.annotation_editor import AnnotationEditor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import train_here  # noqa: E402

W, H = 1200, 800          # bigger than the view: the picture is shown at about half size


@pytest.fixture
def coco_set(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    pixels = (rng.random((H, W, 3)) * 60 + 90).astype(np.uint8)
    pixels[200:400, 300:600] = (200, 40, 40)
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(pixels).save(tmp_path / name, quality=85)
    doc = {"images": [{"id": 11, "file_name": "a.jpg", "width": W, "height": H},
                      {"id": 12, "file_name": "b.jpg", "width": W, "height": H}],
           "annotations": [{"id": 1, "image_id": 12, "category_id": 4, "bbox": [10, 20, 100, 50], "area": 5000,
                            "iscrowd": 0}],
           "categories": [{"id": 4, "name": "hornet"}, {"id": 6, "name": "wasp"}]}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def drag(qtbot, view, start: QPoint, end: QPoint) -> None:
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for t in (0.25, 0.5, 0.75, 1.0):
        qtbot.mouseMove(vp, QPoint(round(start.x() + (end.x() - start.x()) * t), round(start.y() + (end.y() - start.y()) * t)))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=end)


def scene(view, p: QPoint) -> QPointF:
    return view.mapToScene(p)


def open_editor(qtbot, coco_set: Path) -> AnnotationEditor:
    editor = AnnotationEditor()
    qtbot.addWidget(editor)
    editor.resize(900, 600)
    editor.show()
    qtbot.waitExposed(editor)
    editor.open_data(str(coco_set))                 # the real `frelon annotations` in the background
    qtbot.waitUntil(lambda: editor.annotations is not None, timeout=60_000)
    return editor


def test_draw_move_change_class_undo_save_in_original_pixels(qtbot, coco_set, tmp_path):
    original = coco_set.read_bytes()
    editor = open_editor(qtbot, coco_set)
    view = editor.view
    assert editor.current_image()["id"] == 11 and view.zoom() < 0.8     # scaled down to fit

    # draw a box with the mouse
    a, b = view.mapFromScene(QPointF(300, 200)), view.mapFromScene(QPointF(600, 400))
    drag(qtbot, view, a, b)
    assert len(view.boxes) == 1
    x1, y1 = scene(view, a).x(), scene(view, a).y()
    x2, y2 = scene(view, b).x(), scene(view, b).y()
    drawn = view.boxes[0]
    assert drawn.category_id == 4 and drawn.bbox == pytest.approx((x1, y1, x2 - x1, y2 - y1), abs=0.01)
    assert drawn.bbox == pytest.approx((300, 200, 300, 200), abs=3)      # original pixels, not view pixels

    # move it: drag from inside by 40 view pixels right and 20 down
    inside = view.mapFromScene(QPointF(450, 300))
    drag(qtbot, view, inside, inside + QPoint(40, 20))
    dx = scene(view, inside + QPoint(40, 20)).x() - scene(view, inside).x()
    dy = scene(view, inside + QPoint(40, 20)).y() - scene(view, inside).y()
    moved = view.boxes[0].bbox
    assert moved == pytest.approx((drawn.bbox[0] + dx, drawn.bbox[1] + dy, drawn.bbox[2], drawn.bbox[3]), abs=0.02)
    assert dx == pytest.approx(40 / view.zoom(), abs=1) and dx > 45          # view pixels became image pixels

    # resize with the bottom-right handle
    corner = view.mapFromScene(QPointF(moved[0] + moved[2], moved[1] + moved[3]))
    drag(qtbot, view, corner, corner + QPoint(-30, -10))
    resized = view.boxes[0].bbox
    assert resized[:2] == pytest.approx(moved[:2], abs=0.02) and resized[2] < moved[2] - 40

    # class by number key: 2 = wasp; then undo brings hornet back
    qtbot.keyClick(view, Qt.Key.Key_2)
    assert view.boxes[0].category_id == 6
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.boxes[0].category_id == 4 and view.boxes[0].bbox == resized
    assert editor.undo_stack.count() == 4 and editor.undo_stack.index() == 3
    qtbot.keyClick(view, Qt.Key.Key_2)                                      # wasp again (redo branch dropped)
    assert view.boxes[0].category_id == 6

    qtbot.keyClick(view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    saved = coco_set.with_name("annotations.reviewed.json")
    gt = COCO(str(saved))
    (ann,) = gt.loadAnns(gt.getAnnIds(imgIds=[11]))
    assert ann["category_id"] == 6 and ann["bbox"] == pytest.approx(list(resized), abs=0.01)
    assert ann["area"] == pytest.approx(resized[2] * resized[3], rel=1e-3)
    assert gt.loadAnns(gt.getAnnIds(imgIds=[12]))[0]["bbox"] == [10, 20, 100, 50]    # untouched image kept
    assert {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())} == {4: "hornet", 6: "wasp"}
    assert coco_set.read_bytes() == original

    # next image, delete its box; closing saves; reopening continues on that image
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert editor.current_image()["id"] == 12 and len(view.boxes) == 1
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(60, 45)))
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert view.boxes == []
    editor.close()
    assert COCO(str(saved)).getAnnIds(imgIds=[12]) == []
    again = open_editor(qtbot, coco_set)
    assert again.current_image()["id"] == 12
    assert [b.category_id for b in again.annotations.boxes(11)] == [6]
    assert coco_set.read_bytes() == original


def test_a_click_accepts_a_model_box_from_the_review_queue(qtbot, coco_set):
    editor = open_editor(qtbot, coco_set)
    folder = coco_set.parent
    editor.set_review({"confidence": 0.3, "images": [
        {"path": str(folder / "b.jpg"), "disagreement": 0.1, "reasons": ["low-IoU match"], "counts": {"low-IoU match": 1},
         "detections": []},
        {"path": str(folder / "a.jpg"), "disagreement": 0.9, "reasons": ["missing annotation"],
         "counts": {"missing annotation": 1},
         "issues": [{"reason": "missing annotation", "weight": 0.9, "detection": 0, "annotation": None}],
         "detections": [{"category_id": 6, "bbox": [300, 200, 300, 200], "score": 0.9},
                        {"category_id": 4, "bbox": [10, 10, 50, 50], "score": 0.1}]}][::-1]})
    assert editor.current_image()["id"] == 11                           # worst first
    assert "missing annotation" in editor.queue.item(0).text()
    view = editor.view
    assert len(view.suggestions) == 1 and view.boxes == []              # only the boxes the review flagged
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(450, 300)))
    assert [(b.category_id, b.bbox) for b in view.boxes] == [(6, (300, 200, 300, 200))]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.boxes == []


def test_the_window_opens_the_data_s_boxes_in_the_annotations_tab(qtbot, coco_set):
    from frelon.gui.main_window import MainWindow
    window = MainWindow(ask_engine=False)
    qtbot.addWidget(window)
    window.data_panel.set_path(str(coco_set), check=False)
    window.review_annotations()                                  # no run shown yet: says what to do
    assert "Pick a detection run" in window.statusBar().currentMessage()
    window.data_panel.set_report({"task": "detect", "splits": {}, "classes": ["hornet", "wasp"]})
    assert not window.data_panel.edit_boxes.isHidden()
    window.data_panel.edit_boxes.click()                          # the Data tab's "Edit boxes…"
    assert window.tabs.currentWidget() is window.annotation_editor
    qtbot.waitUntil(lambda: window.annotation_editor.annotations is not None, timeout=60_000)
    assert window.annotation_editor.annotations.path == coco_set.with_name("annotations.reviewed.json")
    editor = window.annotation_editor
    editor.choose_class(1)
    editor.view.edited.emit([*editor.view.boxes], "nothing")      # an edit, then closing the window saves it
    editor.annotations.set_position(12)
    window.close()
    from frelon.common import coco_doc
    assert coco_doc.position(coco_doc.load(coco_set.with_name("annotations.reviewed.json"))) == 12


def test_drafts_are_edited_accepted_and_join_the_set(qtbot, coco_set, tmp_path):
    from frelon.common import coco_doc
    editor = open_editor(qtbot, coco_set)
    target = editor.annotations
    photos = tmp_path / "unlabelled"
    photos.mkdir()
    Image.new("RGB", (320, 240), (30, 90, 160)).save(photos / "c.png")
    drafts = tmp_path / "drafts.json"            # what `frelon predict --as-annotations` writes
    coco_doc.save({"info": {"frelon_drafts": {"image_root": str(photos)}},
                   "images": [{"id": 1, "file_name": "c.png", "width": 320, "height": 240}],
                   "annotations": [coco_doc.annotation(1, 1, 2, [10, 10, 100, 80], score=0.9, draft=True),
                                   coco_doc.annotation(2, 1, 1, [200, 150, 50, 50], score=0.4, draft=True),
                                   coco_doc.annotation(3, 1, 3, [5, 5, 20, 20], score=0.5, draft=True)],
                   "categories": [{"id": 1, "name": "wasp"}, {"id": 2, "name": "hornet"}, {"id": 3, "name": "bee"}]},
                  drafts)
    editor._drafts_ready(str(drafts), target)
    view = editor.view
    assert [b.draft for b in view.boxes] == [True, True, True] and "joins" in editor.note.text()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(225, 175)))
    qtbot.keyClick(view, Qt.Key.Key_Delete)                        # reject the wasp draft
    qtbot.keyClick(view, Qt.Key.Key_Return)                        # accept the rest
    assert [(b.category_id, b.draft) for b in editor.annotations.boxes(1)] == [(2, False), (3, False)]
    saved = COCO(str(coco_set.with_name("annotations.reviewed.json")))
    (image,) = [im for im in saved.loadImgs(saved.getImgIds()) if im["file_name"] == "added/c.png"]
    (ann,) = saved.loadAnns(saved.getAnnIds(imgIds=[image["id"]]))
    assert ann["bbox"] == [10, 10, 100, 80] and ann["category_id"] == 4 and "frelon_draft" not in ann   # hornet here
    assert (coco_set.parent / "added" / "c.png").is_file() and "1 box(es)" in editor.note.text()   # bee: unknown here
    assert image["id"] not in (11, 12)


def test_retrain_starts_a_run_on_the_reviewed_copy_from_the_run_s_weights(qtbot, coco_set, tmp_path, monkeypatch):
    from frelon.gui.main_window import MainWindow
    window = MainWindow(ask_engine=False)
    qtbot.addWidget(window)
    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.safetensors").write_bytes(b"x")
    (run / "config.json").write_text(json.dumps({"backbone": "resnet18", "task": "detect", "data": str(coco_set)}))
    window.session.show_run(str(run), None)
    started = []
    monkeypatch.setattr(window.session, "start", lambda: started.append(window.session.config()))
    reviewed = str(coco_set.with_name("annotations.reviewed.json"))
    window.retrain(reviewed, True)
    o = started[-1]
    assert (o.data, o.task, o.backbone, o.weights) == (reviewed, "detect", "resnet18", str(run / "checkpoints" / "best.safetensors"))
    window.retrain(reviewed, False)
    assert started[-1].weights == "imagenet"


def test_the_review_queue_comes_from_the_real_engine(qtbot, tmp_path):
    """Review with a (barely trained) run: `frelon annotations`, then `frelon review`, in the
    background; the queue follows the engine's order and names each image's reasons."""
    from frelon.engine.centernet import shapes
    data = shapes.make_dataset(tmp_path / "shapes", 8, 4, size=64, seed=1)
    # the run under review, trained in this process (the review is what runs in the background)
    run = train_here("--data", data, "--backbone", "resnet18", "--weights", "none", "--image-size", "64",
                     "--epochs", "1", "--batch-size", "4", "--workers", "0", "--out", tmp_path / "runs")
    editor = AnnotationEditor()
    qtbot.addWidget(editor)
    editor.review_with(str(run), str(data))
    qtbot.waitUntil(lambda: bool(editor.review), timeout=120_000)
    ranked = sorted(editor.review.values(), key=lambda e: -e["disagreement"])
    assert len(ranked) == 4 and {e["split"] for e in ranked} == {"val"}
    first = editor.current_image()
    assert editor.annotations.image_path(first) == ranked[0]["path"] and editor.pos == 0
    if ranked[0]["disagreement"] > 0:
        assert ranked[0]["reasons"][0] in editor.queue.item(0).text()
    assert editor.annotations.path == data / "annotations.reviewed.json"
    assert "the 4 validation images of the run's own set" in editor.note.text()
    # another set (here its val/ folder alone, a path the run did not train on): all of it, and the app says so
    editor.review = {}
    editor.start_review(str(run), data=str(data / "val"))
    qtbot.waitUntil(lambda: bool(editor.review), timeout=120_000)
    assert "all 4 images (a set the run did not train on)" in editor.note.text(), editor.note.text()
