"""Results panel: what a finished (or selected) run learned, read from its run folder.

Classification: accuracy, per-class precision and recall, confusion matrix, misclassified pictures.
Multi-label (a run whose `val` holds `per_label`, whose predictions are label sets): per label AP,
F1 and threshold, the pictures with their label sets, wrong ones first (label_results.py).
Detection: mAP, the image viewer, per-class AP and the precision–recall curves of the best epoch
(pr_curves.json); a class clicked in either table filters the pictures to it. Both have a
Time-lapse tab (widgets/timelapse_view.py: timelapse.json) and a Robustness tab
(widgets/robustness_view.py: `frelon robustness` results).
Either way, "open an image / folder" runs `frelon predict --run RUN --input PATH --out
RUN/predictions/app-<time>.json` (plus heatmaps for detection) in the background and shows what
came back.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QSplitter, QStackedWidget, QTabWidget, QVBoxLayout, QWidget

from frelon.common.run_folder import RunFolder
from frelon.gui import theme
from frelon.gui.engine_command import JsonCommand
from frelon.gui.images import IMAGE_SUFFIXES
from frelon.gui.panels.classification_results import ClassificationResults
from frelon.gui.panels.detection_results import DetectionResults, group_detections
from frelon.gui.panels.label_results import LabelResults, holds_label_sets
from frelon.gui.run_folders import read_json
from frelon.gui.run_history import RunHistory
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.pr_curves import PrCurvesView
from frelon.gui.widgets.robustness_view import RobustnessView
from frelon.gui.widgets.timelapse_view import TimelapseView


def resolver(input_path: str):
    """Turns a prediction's file_name into a path: absolute as is, else against the input folder."""
    base = Path(input_path)
    folder = base if base.is_dir() else base.parent

    def resolve(name: str) -> str:
        p = Path(name)
        if p.is_absolute() and p.exists():
            return str(p)
        if (folder / p).exists():
            return str(folder / p)
        if base.is_file() and p.name == base.name:
            return str(base)
        return str(p if p.is_absolute() else folder / p)
    return resolve


def _best_val(history: RunHistory) -> dict:
    """The best epoch's `val` (the epoch pr_curves.json and predictions/val.json were written for)."""
    best = (history.finished or {}).get("best") or {}
    for ep in reversed(history.epochs):
        if ep.get("epoch") == best.get("epoch"):
            return ep.get("val") or {}
    scored = [ep for ep in history.epochs if (ep.get("val") or {}).get("map") is not None]
    return max(scored, key=lambda ep: ep["val"]["map"])["val"] if scored else {}


class ResultsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.run_dir = ""
        self.task = ""
        self.classes: list[str] = []
        self.header = WrapLabel("Results appear here when a run has finished an epoch — or pick a past run in Runs.")
        self.header.setTextFormat(Qt.TextFormat.RichText)          # it names runs and folders: long ones wrap
        self.classify = ClassificationResults()
        self.detect = DetectionResults()
        self.pr_curves = PrCurvesView()
        viewer = QSplitter(Qt.Orientation.Horizontal)
        viewer.addWidget(self.detect)
        viewer.addWidget(self.pr_curves)
        viewer.setSizes([700, 340])
        self.detect_robustness = RobustnessView()
        self.detect_page = QTabWidget()
        self.detect_timelapse = TimelapseView()
        self.detect_page.addTab(viewer, "Validation")
        self.detect_page.addTab(self.detect_timelapse, "Time-lapse")
        self.detect_page.addTab(self.detect_robustness, "Robustness")
        self.pr_curves.class_selected.connect(self._filter_detections)
        self._val_detections: tuple[list[str], dict] = ([], {})
        self.stack = QStackedWidget()
        self.robustness = RobustnessView()
        self.classify_page = QTabWidget()
        self.timelapse = TimelapseView()
        self.classify_page.addTab(self.classify, "Validation")
        self.classify_page.addTab(self.timelapse, "Time-lapse")
        self.classify_page.addTab(self.robustness, "Robustness")
        self.labels = LabelResults()
        self.labels_timelapse = TimelapseView()
        self.labels_page = QTabWidget()
        self.labels_page.addTab(self.labels, "Validation")
        self.labels_page.addTab(self.labels_timelapse, "Time-lapse")
        self.stack.addWidget(self.classify_page)
        self.stack.addWidget(self.detect_page)
        self.stack.addWidget(self.labels_page)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.stack, 1)
        self.predict = JsonCommand(self)
        self.predict.done.connect(self._on_predicted)
        self.predict.failed.connect(self._on_predict_failed)
        for page in (self.classify, self.detect, self.labels):
            page.open_image_requested.connect(self.choose_image)
            page.open_folder_requested.connect(self.choose_folder)

    # ---- loading a run ----
    def load_run(self, run_dir: str, history: RunHistory | None = None) -> None:
        run, folder = Path(run_dir), RunFolder(run_dir)
        self.run_dir = str(run)
        history = history or RunHistory.of_run(run)
        model = read_json(folder.model) or {}
        started = history.started or {}
        self.task = model.get("task") or started.get("task") or "classify"
        self.classes = [str(c) for c in (model.get("classes") or model.get("class_names") or started.get("classes") or [])]
        last = history.epochs[-1] if history.epochs else {}
        val = last.get("val") or {}
        self.header.setText(self._header_text(run, history, val))
        if self.task == "detect":
            self.stack.setCurrentWidget(self.detect_page)
            self.detect_robustness.load_run(str(run))
            self.detect_timelapse.load_run(str(run))
            self.pr_curves.set_results(self.classes, read_json(folder.pr_curves), _best_val(history) or val)
            preds = read_json(folder.validation_predictions)
            if isinstance(preds, list) and preds and "bbox" in preds[0]:
                dets = group_detections(preds, self.classes, resolver(str(run)))
                self._val_detections = (sorted(dets), dets)
                self.detect.set_results(sorted(dets), dets)
        elif "per_label" in val:
            self.stack.setCurrentWidget(self.labels_page)
            self.labels_timelapse.load_run(str(run))
            self.labels.set_metrics((_best_val(history) or val).get("per_label") or {})
            preds = read_json(folder.validation_predictions)
            self.labels.set_validation_predictions(preds if holds_label_sets(preds) else [], self.classes)
        else:
            self.stack.setCurrentWidget(self.classify_page)
            self.robustness.load_run(str(run))
            self.timelapse.load_run(str(run))
            cm = read_json(run / "confusion_matrix.json") or {}
            matrix = cm.get("matrix") or val.get("confusion_matrix")
            self.classify.set_metrics(val.get("per_class") or {}, cm.get("classes") or self.classes, matrix)
            preds = read_json(folder.validation_predictions)
            self.classify.set_validation_predictions(preds if isinstance(preds, list) else [], self.classes, str(run))

    def compare_with(self, run_dir: str) -> None:
        """Another run's robustness curves over the shown run's (Runs → Compare)."""
        for view in (self.robustness, self.detect_robustness):
            view.set_compare(run_dir)

    def _filter_detections(self, name: str) -> None:
        """The validation pictures holding `name` with only its boxes; "" for every picture and box."""
        images, dets = self._val_detections
        if name:
            dets = {path: [d for d in ds if d.label == name] for path, ds in dets.items()}
            dets = {path: ds for path, ds in dets.items() if ds}
            images = sorted(dets)
        self.detect.set_results(images, dets)

    def _header_text(self, run: Path, history: RunHistory, val: dict) -> str:
        parts = [f"<b>{run.name}</b>", f"{history.started.get('backbone', '') if history.started else ''}"]
        if "map" in val:
            parts.append(f"mAP <b>{val['map']:.3f}</b>" + (f" · mAP@50 {val['map_50']:.3f}" if val.get("map_50") is not None else ""))
        elif val.get("accuracy") is not None:
            parts.append(f"validation accuracy <b>{val['accuracy']:.1%}</b>")
            if val.get("balanced_accuracy") is not None:     # the mean per-class recall
                parts.append(f"balanced accuracy <b>{val['balanced_accuracy']:.1%}</b>")
        if val.get("loss") is not None:
            parts.append(f"val loss {val['loss']:.4g}")
        if history.finished:
            status = history.finished.get("status")
            colour = theme.OK if status == "completed" else theme.WARN
            parts.append(f"<span style='color:{colour}'>{status}</span> after {history.finished.get('epochs_done')} epoch(s)")
            if history.finished.get("reason"):
                parts.append(html.escape(str(history.finished["reason"])))
        elif not history.epochs:
            parts.append("no finished epoch yet")
        return " · ".join(p for p in parts if p)

    # ---- predicting on the user's pictures ----
    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image to predict on", "",
                                              "Images (" + " ".join("*" + s for s in sorted(IMAGE_SUFFIXES)) + ")")
        if path:
            self.run_predict(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images to predict on")
        if path:
            self.run_predict(path)

    def run_predict(self, input_path: str) -> list[str] | None:
        if not self.run_dir:
            self.header.setText(f"<span style='color:{theme.WARN}'>Train or pick a run first: "
                                "predictions need a trained model.</span>")
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = RunFolder(self.run_dir).predictions / f"app-{stamp}.json"
        args = ["predict", "--run", self.run_dir, "--input", input_path, "--out", str(out)]
        heat = ""
        if self.task == "detect":
            heat = str(RunFolder(self.run_dir).predictions / f"app-{stamp}-heatmaps")
            args += ["--heatmaps", heat]
        self.header.setText(f"Predicting on <b>{input_path}</b> …")
        self.predict.start(args + ["--json"])
        return args

    def _on_predict_failed(self, message: str, details: str) -> None:
        self.header.setText(f"<span style='color:{theme.BAD}'>Prediction failed: {message}</span>")
        self.header.setToolTip(details)

    def _on_predicted(self, summary: dict) -> None:
        """`frelon predict --json`'s answer: where it wrote the predictions, what it skipped."""
        preds = read_json(Path(summary.get("out") or ""))
        if not isinstance(preds, list):
            self._on_predict_failed("the engine wrote no predictions", str(summary.get("out")))
            return
        self.show_predictions(preds, summary["input"], summary.get("heatmaps") or "")
        if summary.get("skipped"):
            self.header.setText(self.header.text() + f" ({summary['skipped']} file(s) could not be read)")
            self.header.setToolTip("\n".join(f"{s['path']}: {s['reason']}" for s in summary.get("skipped_files") or []))

    def show_predictions(self, preds: list[dict], input_path: str, heatmap_dir: str = "") -> None:
        resolve = resolver(input_path)
        self.header.setText(f"Predictions on <b>{input_path}</b>: {len(preds)}")
        if self.task == "detect":
            dets = group_detections(preds, self.classes, resolve)
            images = set(dets)
            base = Path(input_path)
            if base.is_dir():
                images |= {str(p) for p in base.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
            elif base.is_file():
                images.add(str(base))
            self.stack.setCurrentWidget(self.detect_page)
            self.detect_page.setCurrentIndex(0)
            self.detect.set_results(sorted(images), dets, heatmap_dir,
                                    str(base if base.is_dir() else base.parent))
        elif holds_label_sets(preds):
            self.stack.setCurrentWidget(self.labels_page)
            self.labels_page.setCurrentWidget(self.labels)
            self.labels.set_user_predictions(preds, self.classes, resolve)
        else:
            self.stack.setCurrentWidget(self.classify_page)
            self.classify_page.setCurrentWidget(self.classify)
            self.classify.set_user_predictions(preds, self.classes, resolve)
