"""Classification results: per-class precision and recall, confusion matrix, misclassified pictures.

Fed plain data from the run folder (the last `epoch_end`, confusion_matrix.json,
predictions/val.json) or from `frelon predict` on the user's own pictures. Precision and recall
come from the confusion matrix through common/metrics.py (the engine's definition); recall is what
was called per-class accuracy. Clicking a class shows only the pictures that are it or were taken
for it; clicking it again shows all. A validation picture's context menu moves it to another class
or excludes it from training (gui/class_fixes.py: confirmed first, undone with Undo / Ctrl+Z,
recorded in the run).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QMenu, QMessageBox, QPushButton, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from frelon.gui.class_fixes import FixRecord, MoveFile, excluded_path, moved_path

from frelon.gui.widgets.confusion_matrix import ConfusionMatrixView
from frelon.gui.widgets.explain_toggle import ExplainToggle
from frelon.gui.widgets.labels import WrapLabel
from frelon.common.metrics import precision_recall
from frelon.gui.widgets.thumbnail_grid import Thumb, ThumbnailGrid, class_colour


def per_class_rows(per_class: dict) -> list[tuple[str, float | None]]:
    """per_class may map a class to a number or to a dict holding 'accuracy' (or 'recall')."""
    rows = []
    for name, value in (per_class or {}).items():
        if isinstance(value, dict):
            value = value.get("accuracy", value.get("recall", value.get("ap")))
        rows.append((str(name), None if value is None else float(value)))
    return rows


class ClassificationResults(QWidget):
    open_image_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.per_class = self._make_per_class_table()
        self.class_filter = ""
        self._predictions: list[dict] = []
        self._classes: list[str] = []
        self.matrix = ConfusionMatrixView()
        self.thumbs_title = WrapLabel("Misclassified validation pictures")      # long with a class clicked
        self.thumbs = ThumbnailGrid(side=112)
        self.open_image = QPushButton("Predict on an image…")
        self.open_folder = QPushButton("Predict on a folder…")
        self.open_image.clicked.connect(self.open_image_requested)
        self.open_folder.clicked.connect(self.open_folder_requested)
        self.run_dir = ""
        self.fixes = QUndoStack(self)
        self.undo = QPushButton("Undo")
        self.undo.setToolTip("Put the last moved or excluded picture back (Ctrl+Z)")
        self.undo.setEnabled(False)
        self.undo.clicked.connect(self.fixes.undo)
        self.fixes.canUndoChanged.connect(self.undo.setEnabled)
        self.explain = ExplainToggle()              # each picture's Grad-CAM map, on a toggle
        self.explain.changed.connect(self._show_validation)
        self.explain.status.connect(lambda text: self.thumbs_title.setText(text) if text else None)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.fixes.undo, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.thumbs.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.thumbs.customContextMenuRequested.connect(self._thumb_menu)
        self._validation = False
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.per_class)
        top.addWidget(self.matrix)
        top.setSizes([260, 600])
        bar = QHBoxLayout()
        bar.addWidget(self.thumbs_title, 1)
        bar.addWidget(self.explain)
        bar.addWidget(self.undo)
        bar.addWidget(self.open_image)
        bar.addWidget(self.open_folder)
        bottom = QWidget()
        col = QVBoxLayout(bottom)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(bar)
        col.addWidget(self.thumbs)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([420, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def _make_per_class_table(self) -> QTableWidget:
        """Precision, recall and images per class; a click shows only that class's pictures."""
        table = QTableWidget(0, 4)
        table.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "Images"])
        table.setToolTip("Precision: of the pictures taken for this class, the share that are it · "
                         "Recall: of the pictures of this class, the share found · click a class "
                         "to see only its pictures below")
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)   # the figures stay in view
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setMaximumWidth(380)
        table.cellClicked.connect(lambda row, _c: self.filter_class(table.item(row, 0).text()))
        return table

    def set_metrics(self, per_class: dict, classes: list[str], matrix: list[list[int]] | None) -> None:
        """Precision, recall and images per class from the matrix; without one (an old event), the
        per-class accuracy as recall."""
        if matrix:
            rows = [(name, v["precision"], v["recall"], v["support"])
                    for name, v in precision_recall(matrix, classes).items()]
        else:
            rows = [(name, None, acc, None) for name, acc in per_class_rows(per_class)]
        self.per_class.setRowCount(len(rows))
        for r, (name, *values) in enumerate(rows):
            self.per_class.setItem(r, 0, QTableWidgetItem(name))
            for col, v in enumerate(values, 1):
                text = "–" if v is None else (str(v) if col == 3 else f"{v:.1%}")
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(r, col, item)
        self.matrix.set_matrix(classes, matrix or [])

    def filter_class(self, name: str) -> None:
        """Show only the validation pictures of `name` (true or predicted); the same name again, or
        "", shows all."""
        self.class_filter = "" if name == self.class_filter else name
        if not self.class_filter:
            self.per_class.clearSelection()
        self._show_validation()

    def set_validation_predictions(self, predictions: list[dict], classes: list[str], run_dir: str = "") -> None:
        """predictions/val.json: [{path, true, predicted, score, probabilities}]. Shows the wrong
        ones, then (when they are few) the least confident right ones: where the model hesitates."""
        self._predictions, self._classes = list(predictions), list(classes)
        self.run_dir, self._validation = run_dir, True
        self.explain.set_run(run_dir)
        self.explain.setEnabled(bool(run_dir))
        self.fixes.clear()
        self.class_filter = ""
        self._show_validation()

    def _show_validation(self) -> None:
        classes, cls = self._classes, self.class_filter
        predictions = [p for p in self._predictions if not p.get("excluded")
                       and (not cls or cls in (str(p.get("true")), str(p.get("predicted"))))]
        wrong = [p for p in predictions if str(p.get("true")) != str(p.get("predicted"))]
        right = sorted((p for p in predictions if p not in wrong), key=lambda p: _score(p, classes))
        shown = wrong[:300] + right[:max(0, 12 - len(wrong))]
        thumbs = []
        for p in shown:
            pred, ok = str(p.get("predicted")), p not in wrong
            score = _score(p, classes)
            caption = (f"✓ {pred}" if ok else f"{p.get('true')} → {pred}") + (f" {score:.2f}" if score == score else "")
            thumbs.append(Thumb(str(p.get("path", "")), caption, f"{p.get('path')}\ntrue: {p.get('true')}\n"
                                f"predicted: {pred}", color="" if ok else class_colour(classes, pred),
                                display=self.explain.overlay(str(p.get("path", "")))))
        if not predictions:
            title = "No validation predictions in this run folder yet." if not cls else f"No picture of {cls}."
        else:
            title = (f"Misclassified validation pictures: {len(wrong)} of {len(predictions)}" +
                     (f" that are or were taken for <b>{cls}</b> (click it again for all)" if cls else ""))
            if len(shown) > len(wrong):
                title += " · then the least confident right ones"
        self.thumbs_title.setText(title)
        self.thumbs.set_thumbs(thumbs)
        if self._validation:
            self.explain.want([t.path for t in thumbs])

    # ---- fixing the set from the gallery
    def _thumb_menu(self, pos) -> None:
        item = self.thumbs.itemAt(pos)
        if item is None or not self._validation:
            return
        path = str(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        move = menu.addMenu("Move to class")
        for name in self._classes:
            if name != Path(path).parent.name:
                move.addAction(name, lambda n=name: self.move_to_class(path, n))
        menu.addAction("Exclude from training", lambda: self.exclude(path))
        menu.exec(self.thumbs.viewport().mapToGlobal(pos))

    def move_to_class(self, path: str, name: str) -> bool:
        target = moved_path(path, name)
        return self._fix(path, target, name, f"Move {Path(path).name} from {Path(path).parent.name}/ to {name}/?")

    def exclude(self, path: str) -> bool:
        target = excluded_path(path)
        return self._fix(path, target, None, f"Exclude {Path(path).name} from training? It moves to "
                                             f"{target.parent.parent.name}/{target.parent.name}/, a hidden folder every "
                                             "reader skips; nothing is deleted.")

    def _fix(self, path: str, target: Path, label: str | None, question: str) -> bool:
        if not Path(path).is_file():
            QMessageBox.warning(self, "Fix the data", f"{path} is not there any more.")
            return False
        answer = QMessageBox.question(self, "Fix the data", question + "\n\nThe file moves on disk; Undo (Ctrl+Z) "
                                      "moves it back. The next run trains on the fixed folders.")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        record = FixRecord(self.run_dir) if self.run_dir and Path(self.run_dir).is_dir() else None
        text = f"Move to {label}" if label is not None else "Exclude"
        self.fixes.push(MoveFile(path, target, label, record, self._moved, text))
        return True

    def _moved(self, old: str, new: str, label: str | None) -> None:
        """A picture moved (label None: excluded; back from exclusion: its class again)."""
        for p in self._predictions:
            if str(p.get("path")) == old:
                p["path"] = new
                if label is None:
                    p["excluded"] = True
                else:
                    p.pop("excluded", None)
                    p["true"] = label
        self._show_validation()

    def set_user_predictions(self, predictions: list[dict], classes: list[str], resolve) -> None:
        """`frelon predict` output on the user's pictures: [{file_name, predicted, score}]."""
        self._validation = False
        self.explain.setChecked(False)
        self.explain.setEnabled(False)
        thumbs = [Thumb(resolve(str(p.get("file_name", ""))), f"{p.get('predicted')} {float(p.get('score', 0)):.2f}",
                        color=class_colour(classes, str(p.get("predicted")))) for p in predictions]
        self.thumbs_title.setText(f"Predictions on your pictures: {len(thumbs)}")
        self.thumbs.set_thumbs(thumbs)


def _score(p: dict, classes: list[str]) -> float:
    """The predicted class's probability (NaN when unknown)."""
    if p.get("score") is not None:
        return float(p["score"])
    probs, name = p.get("probabilities") or [], str(p.get("predicted"))
    if isinstance(probs, dict):
        return float(probs.get(name, float("nan")))
    if name in classes and len(probs) == len(classes):
        return float(probs[classes.index(name)])
    return float("nan")
