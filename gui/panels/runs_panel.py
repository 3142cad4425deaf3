"""Runs panel: the runs folder's past runs; select one to reload it, two to compare them.

A view over :mod:`frelon.gui.run_folders`. Emits ``run_selected(path)`` for one selected run and
``compare_requested(a, b)`` for two; shows the two configs' differences itself. The list refreshes
when the folder changes (a watcher) and on demand.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from frelon.gui import theme
from frelon.gui.run_folders import RunSummary, config_diff, list_runs
from frelon.gui.widgets.labels import ElidedLabel, WrapLabel

COLUMNS = ["Run", "Task", "Backbone", "Status", "Epochs", "Last validation", "Modified"]
STATUS_COLOURS = {"completed": theme.OK, "stopped": theme.WARN, "failed": theme.BAD}


class RunsPanel(QWidget):
    run_selected = Signal(str)
    compare_requested = Signal(str, str)
    runs_dir_changed = Signal(str)

    def __init__(self, runs_dir: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs_dir = runs_dir
        self.summaries: dict[str, RunSummary] = {}
        self.folder = ElidedLabel()      # a long runs folder is elided in the middle, whole in the tooltip
        self.change = QPushButton("Change…")
        self.change.clicked.connect(self.choose_folder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the runs folder again (F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.compare = QPushButton("Compare the two selected")
        self.compare.setToolTip("Select two runs (Ctrl+click) to overlay their curves and list what differs")
        self.compare.setEnabled(False)
        self.compare.clicked.connect(self._compare)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        for w in (self.change, self.refresh_button, self.compare):
            row.addWidget(w)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.diff_title = WrapLabel("Select two runs to see how their configurations differ.")
        self.diff = QTableWidget(0, 3)
        self.diff.setHorizontalHeaderLabels(["Option", "Run A", "Run B"])
        self.diff.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.diff.verticalHeader().setVisible(False)
        self.diff.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        bottom = QWidget()
        col = QVBoxLayout(bottom)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.diff_title)
        col.addWidget(self.diff)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(bottom)
        split.setSizes([400, 200])
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(split, 1)
        self.watcher = QFileSystemWatcher(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(500)
        self._debounce.timeout.connect(self.refresh)
        self.watcher.directoryChanged.connect(lambda _p: self._debounce.start())
        self.set_runs_dir(runs_dir)

    def set_runs_dir(self, runs_dir: str) -> None:
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self.runs_dir = runs_dir
        self.folder.setText(f"Runs folder: <b>{runs_dir}</b>")
        if Path(runs_dir).is_dir():
            self.watcher.addPath(runs_dir)
        self.refresh()

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_dir)
        if path:
            self.set_runs_dir(path)
            self.runs_dir_changed.emit(path)

    def refresh(self) -> None:
        if Path(self.runs_dir).is_dir() and not self.watcher.directories():
            self.watcher.addPath(self.runs_dir)
        selected = set(self.selected_paths())
        self.tree.blockSignals(True)
        self.tree.clear()
        runs = list_runs(self.runs_dir)
        self.summaries = {r.path: r for r in runs}
        for r in runs:
            item = QTreeWidgetItem([r.name, r.task, r.backbone, r.status or "running or crashed",
                                    str(r.epochs_done), r.metric,
                                    time.strftime("%Y-%m-%d %H:%M", time.localtime(r.mtime))])
            item.setData(0, Qt.ItemDataRole.UserRole, r.path)
            item.setToolTip(0, r.path)
            colour = STATUS_COLOURS.get(r.status)
            if colour:
                item.setForeground(3, QColor(colour))
            self.tree.addTopLevelItem(item)
            item.setSelected(r.path in selected)
        self.tree.blockSignals(False)
        if not runs:
            self.diff_title.setText("No runs in this folder yet: they appear here as soon as one starts.")
        elif len(selected) < 2:
            self.diff_title.setText("Select one run to reload its plots and results; two (Ctrl+click) to compare them.")

    def selected_paths(self) -> list[str]:
        return [i.data(0, Qt.ItemDataRole.UserRole) for i in self.tree.selectedItems()]

    def select(self, *paths: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) in paths)

    def _selection_changed(self) -> None:
        paths = self.selected_paths()
        self.compare.setEnabled(len(paths) == 2)
        if len(paths) == 1:
            self.run_selected.emit(paths[0])
        elif len(paths) == 2:
            self.show_diff(*paths)

    def _compare(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 2:
            self.show_diff(*paths)
            self.compare_requested.emit(*paths)

    def show_diff(self, a: str, b: str) -> None:
        sa, sb = self.summaries.get(a), self.summaries.get(b)
        rows = config_diff(sa.config if sa else {}, sb.config if sb else {})
        self.diff_title.setText(f"A = <b>{Path(a).name}</b> · B = <b>{Path(b).name}</b> · "
                                f"{len(rows)} option(s) differ" if rows else "The two configurations are the same.")
        self.diff.setRowCount(len(rows))
        for r, (key, va, vb) in enumerate(rows):
            for c, text in enumerate((key, "–" if va is None else str(va), "–" if vb is None else str(vb))):
                self.diff.setItem(r, c, QTableWidgetItem(text))
