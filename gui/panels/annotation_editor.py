"""Fix the data: a detection set's boxes edited image by image, with the model's review queue.

Opening a set runs `frelon annotations` (a VOC or YOLO set is saved as COCO; an existing reviewed
copy, with someone's earlier edits, is kept) and edits that reviewed copy: the original annotations
are never written. Every change is one undo command (gui/box_commands.py); the copy is saved, atomically,
on Save, on leaving an image and on closing, with the image the editor was on, so reopening the set
continues there.

A review (`frelon review`, run in the background) turns the image list into a queue, worst
disagreement first, each with its reasons (gui/widgets/review_queue.py); the model's boxes that the
review flagged (missing, conflicting or loose) are shown dashed, and one click accepts one as an
annotation. Pre-annotating a folder (`frelon predict --as-annotations`, run by the row of run
actions, gui/panels/annotation_actions.py) opens the model's boxes as drafts (dashed): edit or
delete them, Accept turns them into annotations and the image joins the set that was open (copied
into its `added/` folder). Retrain starts a new run on the saved copy, from the shown run's weights
or ImageNet.

Keys: ←/→ (PgUp/PgDn) previous / next image, Del delete the selected box, 1–9 class of the
selected box (and of the next one drawn), Enter accept, Ctrl+Z / Ctrl+Shift+Z undo / redo,
Ctrl+S save, F fit; drag draws, the wheel zooms, middle button or Space + drag pans.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QStyle, QVBoxLayout, QWidget

from frelon.gui.annotation_set import AnnotationSet, Box
from frelon.gui.box_commands import EditBoxes
from frelon.gui.engine_command import JsonCommand
from frelon.gui.panels.annotation_actions import AnnotationActions
from frelon.gui.widgets.box_editor import BoxEditor
from frelon.gui.widgets.labels import ElidedLabel, WrapLabel
from frelon.gui.widgets.review_queue import ReviewQueue, entries_by_path, review_order, review_scope, suggestions


class AnnotationEditor(QWidget):
    saved = Signal(str)                 # path of the reviewed copy
    status = Signal(str)
    review_requested = Signal()         # "with the run shown in Results" (the window knows it)
    preannotate_requested = Signal(str, float)       # folder, draft score threshold
    retrain_requested = Signal(str, bool)            # annotations file, start from the run's weights

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = BoxEditor()
        self.undo_stack = QUndoStack(self)
        self._make_edit_bar()
        self.actions = AnnotationActions()
        self.queue = ReviewQueue()
        self._lay_out()

        self.annotations: AnnotationSet | None = None
        self.order: list[int] = []                    # indices into annotations.images, queue order
        self.review: dict[str, dict] = {}             # normalised image path -> review entry
        self.pos = -1
        self._pending_review = ""
        self.join_target: AnnotationSet | None = None  # pre-annotating: the set accepted images join
        self._make_commands()
        self._connect()
        self._add_shortcuts()

    # ---- building
    def _make_edit_bar(self) -> None:
        """Previous / next, where the editor is, and the edits of the image shown."""
        style = self.style()
        self.prev = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_ArrowLeft), "")
        self.prev.setToolTip("Previous image (Left / Page Up)")
        self.next = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_ArrowRight), "")
        self.next.setToolTip("Next image (Right / Page Down)")
        self.where = ElidedLabel("No boxes open: File → Edit the data's boxes (Ctrl+E), or review them with a "
                                 "detection run (Ctrl+Shift+E)", mode=Qt.TextElideMode.ElideRight)
        self.class_box = QComboBox()
        self.class_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_box.setMinimumContentsLength(10)      # a long class name is elided, the bar stays narrow
        self.class_box.setToolTip("Class of the selected box, and of the next box drawn (keys 1–9)")
        self.delete = QPushButton("Delete")
        self.delete.setToolTip("Delete the selected box (Del)")
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("Accept this image's drafts as annotations, mark it reviewed and go on (Enter)")
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Save to the reviewed copy (Ctrl+S); the original file is never changed")
        self.note = WrapLabel()                          # it names files: long paths wrap too

    def _lay_out(self) -> None:
        bar = QHBoxLayout()               # two rows: one would make a laptop's window too wide
        for w in (self.prev, self.next):
            bar.addWidget(w)
        bar.addWidget(self.where, 1)
        bar.addWidget(self.save_button)
        edits = QHBoxLayout()
        for w in (QLabel("Class"), self.class_box, self.delete, self.accept_button):
            edits.addWidget(w)
        edits.addStretch(1)
        for w in (self.undo_button, self.redo_button):
            edits.addWidget(w)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(bar)
        col.addLayout(edits)
        col.addWidget(self.view, 1)
        col.addWidget(self.note)
        left = QWidget()                  # the image list, and under it what involves the shown run
        queue = QVBoxLayout(left)
        queue.setContentsMargins(0, 0, 0, 0)
        queue.addWidget(self.queue, 1)
        queue.addWidget(self.actions)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def _make_commands(self) -> None:
        """Opening a set and reviewing it (pre-annotating a folder: self.actions)."""
        self._open = JsonCommand(self)
        self._open.done.connect(self._opened)
        self._open.failed.connect(lambda why, _details: self._say(f"Cannot open the annotations: {why}"))
        self._review = JsonCommand(self)
        self._review.done.connect(self.set_review)
        self._review.failed.connect(lambda why, _details: self._say(f"Review failed: {why}"))

    def _connect(self) -> None:
        self.view.edited.connect(self._edited)
        self.view.suggestion_clicked.connect(self.accept_suggestion)
        self.view.selection_changed.connect(self._selection_changed)
        self.class_box.activated.connect(self._class_chosen)
        self.prev.clicked.connect(lambda: self.go(self.pos - 1))
        self.next.clicked.connect(lambda: self.go(self.pos + 1))
        self.delete.clicked.connect(self.delete_selected)
        self.accept_button.clicked.connect(self.accept_image)
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.save_button.clicked.connect(self.save)
        self.actions.review_requested.connect(self.review_requested)
        self.actions.preannotate_requested.connect(self.preannotate_requested)
        self.actions.retrain_requested.connect(self._retrain)
        self.actions.drafts_ready.connect(self._drafts_ready)
        self.actions.status.connect(self._say)
        self.queue.currentRowChanged.connect(lambda row: row != self.pos and self.go(row))
        self.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)

    def _add_shortcuts(self) -> None:
        keys = [("Left", lambda: self.go(self.pos - 1)), ("PgUp", lambda: self.go(self.pos - 1)),
                ("Right", lambda: self.go(self.pos + 1)), ("PgDown", lambda: self.go(self.pos + 1)),
                ("Delete", self.delete_selected), ("Backspace", self.delete_selected),
                ("Return", self.accept_image), ("Enter", self.accept_image),
                (QKeySequence.StandardKey.Undo, self.undo_stack.undo), (QKeySequence.StandardKey.Redo, self.undo_stack.redo),
                ("Ctrl+Shift+Z", self.undo_stack.redo), (QKeySequence.StandardKey.Save, self.save), ("F", self.view.fit)]
        keys += [(str(n), lambda n=n: self.choose_class(n - 1)) for n in range(1, 10)]
        for key, slot in keys:
            QShortcut(QKeySequence(key), self, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # ---- opening
    def open_data(self, data: str) -> None:
        """Open a set of any layout: `frelon annotations` makes (or finds) its reviewed copy."""
        self._say(f"Opening {data}…")
        self._open.start(["annotations", "--data", str(data), "--json"])

    def _opened(self, result: dict) -> None:
        layout = result.get("layout", "coco")
        self.open_file(result["path"])
        if layout in ("voc", "yolo"):
            self.note.setText(f"This {layout.upper()} set is saved as COCO in {result['path']}; "
                              "its own files are not changed. Train on that file to use the edits.")
        if self._pending_review:
            run, self._pending_review = self._pending_review, ""
            self.start_review(run)

    def review_with(self, run_dir: str, data: str) -> None:
        """Open `data` (the set the run was trained on) and queue its images by `run_dir`'s review."""
        self._pending_review = run_dir
        self.open_data(data)

    def open_file(self, path: str, original: str | None = None) -> None:
        self.save_if_dirty()
        self.join_target = None
        self.annotations = AnnotationSet.open(path, original)
        self.pos = -1
        self.undo_stack.clear()
        self.view.set_classes(self.annotations.class_names(), [c["id"] for c in self.annotations.categories])
        self.class_box.clear()
        for n, name in enumerate(self.annotations.class_names(), start=1):
            self.class_box.addItem(f"{n}  {name}" if n < 10 else name)
        self.order = list(range(len(self.annotations.images)))
        self.review = {}
        self.queue.fill(self.annotations, self.order, self.review)
        start = self.annotations.index_of(self.annotations.position())
        self.note.setText(f"Editing {path} (the original annotations are never written)")
        self.go(self.order.index(start) if start in self.order else 0)

    # ---- review queue
    def start_review(self, run_dir: str, data: str = "", splits: str = "") -> None:
        """`frelon review` in the background; without `data`, on the run's own data. Without
        `splits`, the engine's choice: the validation split of the run's own data, all of another set."""
        self._say("Reviewing: the model looks at the images…")
        self._review.start(["review", "--run", str(run_dir), "--json"] + (["--splits", splits] if splits else [])
                           + (["--data", str(data)] if data else []))

    def set_review(self, review: dict) -> None:
        """Order the images by the review's disagreement and show the model's unmatched boxes."""
        if self.annotations is None:
            return
        self.review = entries_by_path(review)
        self.order = review_order(self.annotations, review)
        self.queue.fill(self.annotations, self.order, self.review)
        flagged = sum(1 for e in review.get("images", []) if e["disagreement"] > 0)
        self._say(f"Review of {review_scope(review)}: {flagged} disagree with the model; worst first")
        self.go(0)

    # ---- navigation
    def current_image(self) -> dict | None:
        if self.annotations is None or not (0 <= self.pos < len(self.order)):
            return None
        return self.annotations.images[self.order[self.pos]]

    def go(self, pos: int) -> None:
        if self.annotations is None or not self.order:
            return
        pos = max(0, min(pos, len(self.order) - 1))
        if pos != self.pos and self.annotations.dirty and self.pos >= 0:
            self.save()                          # leaving an image: its edits are on disk
        self.pos = pos
        image = self.current_image()
        self.annotations.set_position(image["id"])
        self.view.show_image(self.annotations.image_path(image), self.annotations.image_size(image),
                             self.annotations.boxes(image["id"]), suggestions(self.annotations, self.review, image))
        self.queue.show_row(pos)
        self.prev.setEnabled(pos > 0)
        self.next.setEnabled(pos < len(self.order) - 1)
        self._update_where()

    def _update_where(self) -> None:
        image = self.current_image()
        if image is None:
            return
        dirty = " · unsaved" if self.annotations.dirty else ""
        self.where.setText(f"{self.pos + 1} / {len(self.order)} · {image.get('file_name')} · "
                           f"{len(self.view.boxes)} box(es){dirty}")

    # ---- edits: every one through the undo stack
    def _apply(self, image_id: Any, boxes: list[Box], selected: int) -> list[Box]:
        stored = self.annotations.set_boxes(image_id, boxes)
        image = self.current_image()
        if image is None or image["id"] != image_id:
            self.go(self.order.index(self.annotations.index_of(image_id)))
        self.view.set_boxes(stored, selected)
        self._update_where()
        return stored

    def _push(self, after: list[Box], text: str, selected: int = -1) -> None:
        image = self.current_image()
        if image is None:
            return
        self.undo_stack.push(EditBoxes(self._apply, image["id"], self.view.boxes, after, text, selected))

    def _edited(self, boxes: list[Box], text: str) -> None:
        self._push(boxes, text, self.view.selected)

    def delete_selected(self) -> None:
        i = self.view.selected
        if i >= 0:
            self._push(self.view.boxes[:i] + self.view.boxes[i + 1:], "Delete box")

    def choose_class(self, index: int) -> None:
        if self.annotations is None or not (0 <= index < len(self.annotations.categories)):
            return
        self.class_box.setCurrentIndex(index)
        self._class_chosen(index)

    def _class_chosen(self, index: int) -> None:
        category_id = self.annotations.categories[index]["id"]
        self.view.current_category = category_id
        i = self.view.selected
        if i >= 0 and self.view.boxes[i].category_id != category_id:
            boxes = list(self.view.boxes)
            boxes[i] = Box(category_id, boxes[i].bbox, boxes[i].id)
            self._push(boxes, f"Class {self.annotations.class_names()[index]}", i)

    def _selection_changed(self, index: int) -> None:
        if index >= 0 and self.annotations is not None:
            self.class_box.setCurrentIndex(self.annotations.class_index(self.view.boxes[index].category_id))

    def accept_suggestion(self, index: int) -> None:
        """One click: the model's box becomes an annotation."""
        box = self.view.suggestions[index]
        self._push(self.view.boxes + [Box(box.category_id, box.bbox)],
                   f"Accept model's {self.view.class_name(box.category_id)}", len(self.view.boxes))

    def accept_image(self) -> None:
        """Drafts become annotations, the image is marked reviewed, and the next one comes."""
        image = self.current_image()
        if image is None:
            return
        if any(b.draft for b in self.view.boxes):
            self._push([b.accepted() for b in self.view.boxes], "Accept drafts")
        self.annotations.mark_reviewed(image["id"])
        if self.join_target is not None:
            _, dropped = self.join_target.join(self.annotations, image, self.view.boxes)
            self.join_target.save()
            self._say(f"{Path(str(image.get('file_name'))).name} joined {self.join_target.path.name}"
                      + (f" ({dropped} box(es) of classes the set lacks left out)" if dropped else ""))
        self.queue.fill(self.annotations, self.order, self.review)
        self.go(self.pos + 1)

    # ---- pre-annotating a folder, retraining
    def preannotate(self, run_dir: str, folder: str, threshold: float) -> None:
        """`frelon predict --as-annotations` on `folder`; its drafts then open here, and each image
        accepted (Enter) joins the set that was open."""
        self.actions.preannotate(run_dir, folder, threshold, self.annotations)

    def _drafts_ready(self, drafts: str, target: AnnotationSet | None) -> None:
        if target is not None:
            target.save()
        self.open_file(drafts)
        self.join_target = target
        joins = f"Enter accepts an image: it joins {target.path} (copied into its added/ folder)" if target else \
            "open the data's boxes first (Ctrl+E) for accepted images to join a set"
        self.note.setText(f"Drafts from the model (dashed): edit them, Delete a wrong box, → skips an image; {joins}.")

    def _retrain(self, from_run: bool) -> None:
        if self.annotations is None or self.join_target is not None:
            self._say("Open the data's boxes (Ctrl+E) to retrain on them")
            return
        self.save()
        self.retrain_requested.emit(str(self.annotations.path), from_run)

    # ---- saving
    def save(self) -> None:
        if self.annotations is None:
            return
        path = self.annotations.save()
        self._update_where()
        self._say(f"Saved {path}")
        self.saved.emit(str(path))

    def save_if_dirty(self) -> None:
        """Edits, or only the image the editor is on (so that reopening continues there)."""
        if self.annotations is not None and (self.annotations.dirty or self.annotations.moved):
            self.save()

    def closeEvent(self, event) -> None:
        self.save_if_dirty()
        self._open.cancel()
        self._review.cancel()
        self.actions.cancel()
        super().closeEvent(event)

    def _say(self, text: str) -> None:
        self.note.setText(text)
        self.status.emit(text)
