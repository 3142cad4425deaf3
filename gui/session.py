"""What the app is working on, without widgets: the data, the runs folder, the training options, the
run shown, the live run and the run Resume would continue — and the workflows over them (start,
resume, retrain on reviewed boxes, which run and data a review uses).

One place holds each of these; panels tell the session what the user did (`set_data`,
`set_options`, `show_run`, …) and show what its signals say. MainWindow only builds the panels and
wires them to it. The live run is the controller's (its history's `run_started`).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from frelon.common.run_folder import RunFolder, data_or_sample
from frelon.common.train_config import TrainConfig
from frelon.gui.engine_process import Outcome
from frelon.gui.options import LrPreview, lr_preview, train_flags
from frelon.gui.run_controller import RunController
from frelon.gui.run_folders import RunSummary, run_config
from frelon.gui.run_history import RunHistory


class Session(QObject):
    plan_changed = Signal(object)             # LrPreview of what Start would train
    resume_target_changed = Signal(str)       # the run Resume continues ("" = none)
    shown_changed = Signal(str, object)       # a past run to show: its folder, its RunHistory
    compare_changed = Signal(object)          # a RunHistory drawn over the plots, or None
    retrain_ready = Signal(object, str)       # the options and data a retrain runs with (panels show them)
    began = Signal(str)                       # a run was started ("" ) or resumed (its folder)
    finished = Signal(object, str)            # the Outcome, the run a retrain started from ("" if none)
    refused = Signal(str, str)                # title, text: Start could not go
    compared = Signal(str, str)               # two runs shown one over the other (after shown_changed)

    def __init__(self, controller: RunController, runs_dir: str, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.data_path = ""
        self.runs_dir = runs_dir
        self.options = TrainConfig()
        self.extra_flags: tuple[str, ...] = ()      # passed to `frelon train` as they are (tests, experts)
        self.train_images = 0                       # the data doctor's count of training pictures
        self.detected_task = ""                     # … and the task it found
        self.shown_run = ""
        self.resume_target = ""
        self.retrained_from = ""                    # the run a retrain on corrected boxes started from
        controller.finished.connect(self._on_finished)

    # ---- what the user chose (the panels tell) ----
    def set_data(self, path: str) -> None:
        self.data_path = path

    def set_runs_dir(self, path: str) -> None:
        self.runs_dir = path

    def set_options(self, options: TrainConfig) -> None:
        self.options = options
        self._plan_changed()

    def set_report(self, report: dict) -> None:
        """The data doctor's report: how many pictures train, and which task the data is."""
        train = (report.get("splits") or {}).get("train") or {}
        self.train_images = int(train.get("images", sum((train.get("counts") or {}).values())) or 0)
        self.detected_task = str(report.get("task") or "")
        self._plan_changed()

    # ---- what follows from it ----
    @property
    def live_run(self) -> str:
        return self.controller.run_dir

    def config(self) -> TrainConfig:
        """The options with the data and the runs folder: what Start trains."""
        return self.options.replace(data=self.data_path, out=self.runs_dir)

    def flags(self) -> list[str]:
        """The `frelon train` options of what Start trains (the extra flags last)."""
        return train_flags(self.config(), self.extra_flags)

    def lr_preview(self) -> LrPreview:
        return lr_preview(self.options, self.train_images, self.detected_task)

    def _plan_changed(self) -> None:
        if not self.controller.is_running():
            self.plan_changed.emit(self.lr_preview())

    # ---- runs ----
    def start(self) -> bool:
        """A new run of what is chosen; False (and `refused`) when it cannot start."""
        if self.controller.is_running():
            return False
        data = self.data_path
        if data and not Path(data).exists():
            self.refused.emit("No such data", f"{data} does not exist. Choose a folder in the Data tab (Ctrl+O).")
            return False
        self.compare_changed.emit(None)
        self.plan_changed.emit(self.lr_preview())
        self.controller.start(self.flags())
        self.began.emit("")
        return True

    def resume(self, ranks: int | None = None) -> bool:
        """Continue the resume target (on `ranks` ranks when given)."""
        if self.controller.is_running() or not self.resume_target:
            return False
        self.compare_changed.emit(None)
        self.controller.resume(self.resume_target, ranks=ranks or None)
        self.began.emit(self.resume_target)
        return True

    def set_resume_target(self, run_dir: str) -> None:
        self.resume_target = run_dir
        self.resume_target_changed.emit(run_dir)

    def show_run(self, run_dir: str, summary: RunSummary | None) -> None:
        """A past run selected: shown; the one Resume continues when it can be (and nothing runs)."""
        self.shown_run = run_dir
        history = RunHistory.of_run(run_dir)
        if not self.controller.is_running():
            self.set_resume_target(run_dir if summary is not None and summary.resumable else "")
        self.shown_changed.emit(run_dir, history)

    def compare(self, a: str, b: str) -> None:
        """Run `a` shown, run `b` drawn over it (Runs → Compare)."""
        self.shown_run = a
        self.shown_changed.emit(a, RunHistory.of_run(a))
        self.compare_changed.emit(RunHistory.of_run(b))
        self.compared.emit(a, b)

    def _on_finished(self, outcome: Outcome) -> None:
        previous, self.retrained_from = self.retrained_from, ""
        self.set_resume_target(outcome.run_dir if outcome.resumable else "")
        if outcome.run_dir:
            self.shown_run = outcome.run_dir
        self.finished.emit(outcome, previous)

    # ---- fixing the data ----
    def review_target(self) -> tuple[str, str] | None:
        """(run, data) of a review: the shown run and the data it trained on; None without a run."""
        run = self.shown_run
        if not run:
            return None
        config = run_config(run)
        return run, data_or_sample(config.get("data") or "", config.get("task") or "detect")

    def retrain(self, annotations: str, from_run: bool) -> bool:
        """A new run on the reviewed annotations, with the shown detection run's options, from its
        best weights (the whole detector: backbone, neck and heads) or from ImageNet; its curves
        drawn over the shown run's, and the two selected side by side when it ends."""
        if self.controller.is_running():
            return False
        run, options = self.shown_run, self.options
        config = run_config(run) if run else {}
        if config.get("task") == "detect":
            best = RunFolder(run).checkpoint("best")
            options = options.replace(task="detect", backbone=config.get("backbone") or options.backbone,
                                      weights=str(best) if from_run and best.is_file() else "imagenet")
        self.retrain_ready.emit(options, annotations)       # the panels show (and tell back) what runs
        self.options, self.data_path = options, annotations
        started = self.start()
        if started and run and RunFolder(run).events.is_file():
            self.retrained_from = run
            self.compare_changed.emit(RunHistory.of_run(run))
        return started
