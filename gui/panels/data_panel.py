"""Data panel: choose a folder (dialog or drag and drop), run the data doctor, show what it found.

`frelon check --data PATH --json` runs in a QProcess (the window never waits). Shown: the layout
and task detected, images per class (bars), warnings, every skipped file with its reason,
duplicates and train/val leaks, and a thumbnail grid with labels (or boxes for detection sets).
Emits ``path_changed`` and ``report_ready``; knows nothing of training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QHeaderView, QLineEdit, QPushButton, QScrollArea,
                               QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from frelon.gui import theme
from frelon.gui.engine_command import JsonCommand
from frelon.gui.images import sample_class_images
from frelon.gui.widgets.cache_button import CacheButton
from frelon.gui.widgets.class_bars import ClassBars
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.thumbnail_grid import Thumb, ThumbnailGrid, class_colour

DUPLICATE_KINDS = {"cross_class": "same picture in two classes", "train_val": "in both train and val (a leak)",
                   "same_class": "repeated in one class"}


def dropped_path(mime) -> str:
    """The first local file or folder in a drag's data, or ''."""
    for url in mime.urls() if mime.hasUrls() else ():
        if url.isLocalFile():
            return url.toLocalFile()
    return ""


class DataPanel(QWidget):
    path_changed = Signal(str)
    report_ready = Signal(dict)
    edit_boxes_requested = Signal()

    def __init__(self, parent: QWidget | None = None, sample: str = "", runs: Callable[[], str] | None = None):
        super().__init__(parent)
        self.sample = sample
        self.runs = runs            # the runs folder: its .cache/ remembers the check for training's start
        self.report: dict | None = None
        self.check = JsonCommand(self)
        self.check.done.connect(self._on_report)
        self.check.failed.connect(self._on_failed)

        row = self._make_path_row()
        split = self._make_report_view()
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    def _make_path_row(self) -> QHBoxLayout:
        """The data's path, and the buttons that choose or re-check it."""
        self.path = QLineEdit()
        self.path.setPlaceholderText("A folder of class sub-folders, a COCO JSON, a VOC or YOLO folder — or drop it here")
        self.path.returnPressed.connect(lambda: self.set_path(self.path.text()))
        self.path.textEdited.connect(lambda text: self.path_changed.emit(text.strip()))   # typed, not checked yet
        self.browse = QPushButton("Choose folder…")
        self.browse.clicked.connect(self.choose_folder)
        self.use_sample = QPushButton("Use the sample")
        self.use_sample.setEnabled(bool(self.sample))
        self.use_sample.setToolTip(self.sample or "The bundled sample was not found next to the app.")
        self.use_sample.clicked.connect(lambda: self.set_path(self.sample))
        self.recheck = QPushButton("Check again")
        self.recheck.clicked.connect(lambda: self.set_path(self.path.text()))
        self.edit_boxes = QPushButton("Edit boxes…")
        self.edit_boxes.setToolTip("Fix this detection set's boxes in the Annotations tab (Ctrl+E); "
                                   "edits go to a reviewed copy, the original files are never changed")
        self.edit_boxes.setVisible(False)
        self.edit_boxes.clicked.connect(self.edit_boxes_requested)
        self.cache = CacheButton(self.runs) if self.runs else None    # the remembered checks and copies
        row = QHBoxLayout()
        for w in (self.path, self.browse, self.use_sample, self.recheck, self.edit_boxes, self.cache):
            if w is None:
                continue
            row.addWidget(w)
        row.setStretch(0, 1)
        return row

    def _make_report_view(self) -> QSplitter:
        """The doctor's verdict: its status line (laid out above the rest), class bars and problems, thumbnails."""
        self.status = WrapLabel("Choose a folder to train on.")      # it names the folder: long paths wrap
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.bars = ClassBars()
        self.problems = QTabWidget()
        self.warnings = WrapLabel()
        self.warnings.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.skipped = self._table(["File", "Why it is skipped"])
        self.duplicates = self._table(["Kind", "Classes", "Files"])
        self.problems.addTab(_scrolling(self.warnings), "Warnings")
        self.problems.addTab(self.skipped, "Skipped files")
        self.problems.addTab(self.duplicates, "Duplicates / leaks")
        self.thumbs = ThumbnailGrid()
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(_scrolling(self.bars))      # many classes: the bars scroll, the window stays on the screen
        top.addWidget(self.problems)
        top.setSizes([500, 500])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.thumbs)
        split.setSizes([300, 400])
        return split

    @staticmethod
    def _table(headers: list[str]) -> QTableWidget:
        t = QTableWidget(0, len(headers))
        t.setHorizontalHeaderLabels(headers)
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        t.horizontalHeader().setStretchLastSection(True)
        t.verticalHeader().setVisible(False)
        t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        t.setWordWrap(False)
        return t

    # ---- choosing ----
    def current_path(self) -> str:
        return self.path.text().strip()

    def choose_folder(self) -> None:
        start = self.current_path() or str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Choose the image folder", start)
        if path:
            self.set_path(path)

    def set_path(self, path: str, check: bool = True) -> None:
        path = path.strip()
        self.path.setText(path)
        self.report = None
        self.path_changed.emit(path)
        if not path:
            self.status.setText("Choose a folder to train on.")
            return
        if check:
            self.status.setText(f"Checking <b>{path}</b> … (every picture is decoded once)")
            self.check.start(["check", "--data", path, "--json"] + (["--out", self.runs()] if self.runs else []))

    # ---- the report ----
    def _on_failed(self, message: str, details: str) -> None:
        self.status.setText(f"<span style='color:{theme.BAD}'>The data doctor could not read this: "
                            f"{_esc(message)}</span>")
        self.status.setToolTip(details)

    def _on_report(self, report: dict) -> None:
        self.set_report(report)
        if self.cache is not None:          # the check has just filled it
            self.cache.refresh()

    def set_report(self, report: dict) -> None:
        self.report = report
        splits = report.get("splits") or {}
        task = report.get("task", "classify")
        self.edit_boxes.setVisible(task == "detect")
        by_boxes = task == "detect" and all(isinstance(s.get("boxes"), dict) for s in splits.values()) and splits
        counts = {name: dict((s.get("boxes") if by_boxes else s.get("counts")) or {}) for name, s in splits.items()}
        classes = list(report.get("classes") or [])
        total = sum(int(s.get("images", sum((s.get("counts") or {}).values()))) for s in splits.values())
        per_split = ", ".join(f"{name} {s.get('images', sum((s.get('counts') or {}).values()))}"
                              for name, s in splits.items())
        skipped = report.get("skipped") or []
        dups = report.get("duplicates") or []
        issues = []
        if skipped:
            issues.append(f"<span style='color:{theme.WARN}'>{len(skipped)} file(s) skipped</span>")
        if dups:
            issues.append(f"<span style='color:{theme.WARN}'>{len(dups)} duplicate group(s)</span>")
        uneven = report.get("imbalance")
        if uneven and uneven.get("balance", "off") != "off":
            how = "by sampling" if uneven["balance"] == "sampler" else f"({_esc(uneven['balance'])})"
            issues.append(f"<span style='color:{theme.WARN}'>class imbalance {uneven['ratio']:.3g}:1, "
                          f"balanced {how}</span>")   # the Warnings tab says it in full
        if report.get("empty_classes"):
            issues.append(f"<span style='color:{theme.BAD}'>empty classes: "
                          f"{_esc(', '.join(report['empty_classes']))}</span>")
        self.status.setText(
            f"<b>{'Detection' if task == 'detect' else 'Classification'}</b> · {_esc(report.get('layout', '?'))} · "
            f"{len(classes)} classes · {total} images ({per_split})" + (" · " + " · ".join(issues) if issues else
                                                                          f" · <span style='color:{theme.OK}'>no problems found</span>"))
        self.bars.set_counts(counts, "boxes" if by_boxes else "images")
        warnings = list(report.get("warnings") or [])
        self.warnings.setText("\n".join(f"• {w}" for w in warnings) or "No warnings.")
        self._fill(self.skipped, [(s.get("path", ""), s.get("reason", "")) for s in skipped])
        self._fill(self.duplicates, [(DUPLICATE_KINDS.get(d.get("kind"), d.get("kind", "")),
                                      ", ".join(d.get("classes") or []), "  |  ".join(d.get("paths") or []))
                                     for d in dups])
        self.problems.setTabText(0, f"Warnings ({len(warnings)})")
        self.problems.setTabText(1, f"Skipped files ({len(skipped)})")
        self.problems.setTabText(2, f"Duplicates / leaks ({len(dups)})")
        self.thumbs.set_thumbs(self._thumbs(report, classes))
        self.report_ready.emit(report)

    @staticmethod
    def _fill(table: QTableWidget, rows: list[tuple]) -> None:
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                table.setItem(r, c, item)

    def _thumbs(self, report: dict, classes: list[str]) -> list[Thumb]:
        root = Path(report.get("root") or self.current_path())
        if report.get("task") == "detect":
            thumbs = []
            for im in (report.get("images") or [])[:200]:
                p = Path(im.get("path", ""))
                p = p if p.is_absolute() else root / p
                labels = [str(x) for x in im.get("labels") or []]
                boxes = [(*b[:4], lab, class_colour(classes, lab)) for b, lab in zip(im.get("boxes") or [], labels)]
                caption = f"{len(boxes)} box{'es' if len(boxes) != 1 else ''}"
                thumbs.append(Thumb(str(p), caption, f"{p}\n{', '.join(sorted(set(labels)))}", boxes=boxes))
            return thumbs
        if not root.is_dir():
            return []
        return [Thumb(path, cls, f"{path}\nclass: {cls}", color=class_colour(classes, cls))
                for path, cls in sample_class_images(root, classes)]


def _scrolling(widget: QWidget) -> QScrollArea:
    """`widget` in a frameless scroll area that follows its width (scrolls down when taller than its place)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
