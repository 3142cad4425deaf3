"""The annotation editor's column of what involves a run: review, pre-annotate a folder, retrain.

Review and retrain only ask (the editor and the window know the run and the set); pre-annotating
runs `frelon predict --as-annotations` here, in the background, and hands back the drafts file
with the set that accepted images are to join.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from frelon.common.run_folder import SCORE_THRESHOLD, RunFolder
from frelon.gui.engine_command import JsonCommand


class AnnotationActions(QWidget):
    review_requested = Signal()                  # "with the run shown in Results"
    preannotate_requested = Signal(str, float)   # folder, draft score threshold
    retrain_requested = Signal(bool)             # start from the run's weights (else ImageNet)
    drafts_ready = Signal(str, object)           # drafts file, the AnnotationSet accepted images join (or None)
    status = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.review_button = QPushButton("Review with the shown run")
        self.review_button.setToolTip("Order the images by how much the run shown in Results disagrees with "
                                      "their boxes (frelon review); its unmatched boxes appear dashed")
        self.preannotate_button = QPushButton("Pre-annotate a folder…")
        self.preannotate_button.setToolTip("Let the shown run draw draft boxes on unlabelled photos; accepted "
                                           "images join this set (copied into its added/ folder)")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.05, 0.95)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(SCORE_THRESHOLD)
        self.threshold.setPrefix("drafts ≥ ")
        self.threshold.setToolTip("Boxes the model scores at least this become drafts")
        self.retrain_from = QComboBox()
        self.retrain_from.addItem("from the shown run's weights", True)
        self.retrain_from.addItem("from ImageNet", False)
        self.retrain_button = QPushButton("Retrain with these boxes")
        self.retrain_button.setToolTip("Save, then start a new run on the reviewed annotations; "
                                       "compare it with the previous one in Runs")
        column = QVBoxLayout(self)        # under the image list: a row of them would widen the window
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel("With the run shown in Results:"))
        for w in (self.review_button, self.preannotate_button, self.threshold, self.retrain_from, self.retrain_button):
            column.addWidget(w)

        self._job: tuple[str, object] = ("", None)
        self._drafts = JsonCommand(self)
        self._drafts.done.connect(lambda _none: self.drafts_ready.emit(*self._job))
        self._drafts.failed.connect(lambda why, _details: self.status.emit(f"Pre-annotation failed: {why}"))
        self.review_button.clicked.connect(self.review_requested)
        self.preannotate_button.clicked.connect(self._choose_folder)
        self.retrain_button.clicked.connect(lambda: self.retrain_requested.emit(bool(self.retrain_from.currentData())))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of unlabelled photos to pre-annotate")
        if folder:
            self.preannotate_requested.emit(folder, self.threshold.value())

    def preannotate(self, run_dir: str, folder: str, threshold: float, target) -> None:
        """`frelon predict --as-annotations` on `folder` into the run's predictions/; then ``drafts_ready``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        drafts = RunFolder(run_dir).predictions / f"drafts-{stamp}.json"
        self._job = (str(drafts), target)
        self.status.emit(f"Pre-annotating {folder} with {Path(run_dir).name}…")
        self._drafts.start(["predict", "--run", str(run_dir), "--input", str(folder),
                            "--out", str(drafts.with_name(drafts.stem + "-predictions.json")),
                            "--as-annotations", str(drafts), "--threshold", f"{threshold:g}"], parse_json=False)

    def cancel(self) -> None:
        self._drafts.cancel()
