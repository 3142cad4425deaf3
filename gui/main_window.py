"""The main window: assembles the panels around the session (gui/session.py), connects their
signals, holds menus, settings and where the window opens.

It owns no state of the work and no workflow — the session has the data, options, runs and what
Start, Resume and Retrain do — and draws nothing itself (STYLE.md: labelme's giant MainWindow is
what to avoid). Layout: a run bar on top, Model & training docked left, tabs for Data, Training
(live plots), Results, Runs and Annotations in the middle, the log docked below.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabWidget, QToolBar, QWidget

from frelon.gui import settings as app_settings
from frelon.gui.engine_command import JsonCommand
from frelon.gui.engine_process import Outcome
from frelon.gui.panels.annotation_editor import AnnotationEditor
from frelon.gui.panels.data_panel import DataPanel, dropped_path
from frelon.gui.panels.plots_panel import PlotsPanel
from frelon.gui.panels.results_panel import ResultsPanel
from frelon.gui.panels.run_panel import RunPanel
from frelon.gui.panels.runs_panel import RunsPanel
from frelon.gui.panels.training_panel import TrainingPanel
from frelon.gui.run_controller import RunController
from frelon.gui.session import Session
from frelon.gui.widgets.error_dialog import show_error
from frelon.gui.widgets.log_view import LogView


class MainWindow(QMainWindow):
    def __init__(self, runs_dir: str | None = None, parent: QWidget | None = None, ask_engine: bool = True):
        super().__init__(parent)
        self.setWindowTitle("Frelon")
        self.setObjectName("main_window")
        self.settings = app_settings.make_settings()
        runs_dir = runs_dir or str(self.settings.value("runs_dir", "") or "") or app_settings.default_runs_dir()
        self.last_error_box = None

        self.controller = RunController(self)
        self.session = Session(self.controller, runs_dir, self)
        self.info = JsonCommand(self)
        self.data_panel = DataPanel(sample=app_settings.sample_dataset(), runs=lambda: self.session.runs_dir)
        self.training_panel = TrainingPanel(flags=self.session.flags)    # its commands see the data too
        self.run_panel = RunPanel()
        self.plots_panel = PlotsPanel()
        self.results_panel = ResultsPanel()
        self.runs_panel = RunsPanel(runs_dir)
        self.annotation_editor = AnnotationEditor()
        self.log_view = LogView()

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for widget, title in ((self.data_panel, "Data"), (self.plots_panel, "Training"),
                              (self.results_panel, "Results"), (self.runs_panel, "Runs"),
                              (self.annotation_editor, "Annotations")):
            self.tabs.addTab(widget, title)
        self.setCentralWidget(self.tabs)
        self.run_bar = QToolBar("Run")
        self.run_bar.setObjectName("run_bar")
        self.run_bar.setMovable(False)
        self.run_bar.addWidget(self.run_panel)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.run_bar)
        self.training_dock = self._dock("Model and training", self.training_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.log_dock = self._dock("Log", self.log_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.training_dock.setMinimumWidth(340)
        self._menus()
        self._connect()
        self.setAcceptDrops(True)
        self._restore()
        if ask_engine:
            self.info.start(["info", "--json"])

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_"))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "&Open data folder…", QKeySequence.StandardKey.Open, self.data_panel.choose_folder)
        self._action(m, "Predict on an &image…", "Ctrl+I", self.results_panel.choose_image)
        self._action(m, "Predict on a &folder…", "Ctrl+Shift+I", self.results_panel.choose_folder)
        self._action(m, "Choose the &runs folder…", None, self.runs_panel.choose_folder)
        self._action(m, "&Edit the data's boxes", "Ctrl+E", self.edit_annotations)
        self._action(m, "Re&view the boxes with the shown run", "Ctrl+Shift+E", self.review_annotations)
        m.addSeparator()
        self._action(m, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        m = bar.addMenu("&Run")
        self.start_action = self._action(m, "&Start", "Ctrl+R", self.session.start)
        self.stop_action = self._action(m, "S&top", "Ctrl+.", self.controller.stop)
        self.resume_action = self._action(m, "&Resume", "Ctrl+Shift+R", self.session.resume)
        m = bar.addMenu("&View")
        for i in range(self.tabs.count()):
            self._action(m, self.tabs.tabText(i), f"Ctrl+{i + 1}", lambda _=False, i=i: self.tabs.setCurrentIndex(i))
        m.addSeparator()
        self._action(m, "Refresh runs", "F5", self.runs_panel.refresh)
        m.addAction(self.training_dock.toggleViewAction())
        m.addAction(self.log_dock.toggleViewAction())

    def _connect(self) -> None:
        c, session = self.controller, self.session
        self.run_panel.start_requested.connect(session.start)
        self.run_panel.stop_requested.connect(c.stop)
        self.run_panel.resume_requested.connect(session.resume)
        self.plots_panel.ranks.resume_with_fewer.connect(session.resume)
        c.history_reset.connect(self.plots_panel.set_history)
        c.event.connect(self.run_panel.on_event)
        c.event.connect(self._on_event)
        c.log.connect(self.log_view.add)
        c.running_changed.connect(self._update_actions)
        session.began.connect(self._began)
        session.finished.connect(self._on_finished)
        session.refused.connect(lambda title, text: setattr(self, "last_error_box", show_error(self, title, text)))
        session.plan_changed.connect(lambda preview: self.plots_panel.set_lr_preview(*preview.xy()))
        session.compare_changed.connect(self.plots_panel.set_compare)
        session.resume_target_changed.connect(lambda _: self._update_actions(c.is_running()))
        session.shown_changed.connect(self._show_run)
        session.retrain_ready.connect(self._show_retrain)
        self.info.done.connect(self.training_panel.set_info)
        self.info.failed.connect(self._on_info_failed)
        self.data_panel.path_changed.connect(session.set_data)
        self.data_panel.report_ready.connect(self._on_report)
        self.training_panel.options_changed.connect(session.set_options)
        self.runs_panel.run_selected.connect(lambda run: session.show_run(run, self.runs_panel.summaries.get(run)))
        self.runs_panel.compare_requested.connect(session.compare)
        session.compared.connect(self._show_comparison)
        self.runs_panel.runs_dir_changed.connect(session.set_runs_dir)
        self.runs_panel.runs_dir_changed.connect(lambda p: self.settings.setValue("runs_dir", p))
        self.annotation_editor.status.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.annotation_editor.review_requested.connect(self.review_annotations)
        self.data_panel.edit_boxes_requested.connect(self.edit_annotations)
        self.annotation_editor.preannotate_requested.connect(self.preannotate)
        self.annotation_editor.retrain_requested.connect(self.retrain)
        self._update_actions(False)

    # ---- settings ----
    def _restore(self) -> None:
        s = self.settings
        self.training_panel.set_options(app_settings.load_options(s))
        folder = str(s.value("data/folder", "") or "")
        if not folder or not Path(folder).exists():
            folder = self.data_panel.sample
        if folder:
            self.data_panel.set_path(folder)
        self._place()
        if s.value("window/state"):
            self.restoreState(s.value("window/state"))
        else:        # first launch: a slim log, a comfortable side panel (docks size once shown)
            QTimer.singleShot(0, lambda: (self.resizeDocks([self.log_dock], [110], Qt.Orientation.Vertical),
                                          self.resizeDocks([self.training_dock], [390], Qt.Orientation.Horizontal)))
        self.tabs.setCurrentIndex(int(s.value("window/tab", 0) or 0))

    def _place(self) -> None:
        """Where it was, if that still fits the screens there are now; else on the primary one, inside it."""
        screens = [screen.availableGeometry() for screen in QGuiApplication.screens()]
        primary = QGuiApplication.primaryScreen().availableGeometry()
        self.setGeometry(app_settings.window_rect(app_settings.saved_rect(self.settings), screens, primary))
        if str(self.settings.value("window/maximized", "false")).lower() == "true":
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    def save_settings(self) -> None:
        s = self.settings
        app_settings.save_options(s, self.session.options)
        s.setValue("data/folder", self.data_panel.current_path())
        app_settings.save_rect(s, self.normalGeometry() if self.isMaximized() else self.geometry(), self.isMaximized())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        s.sync()

    # ---- what the session says ----
    def _began(self, resumed: str) -> None:
        """A run started (or `resumed` that run folder): its plots, and the choices kept."""
        self.run_panel.begin(f"Resuming {Path(resumed).name}…" if resumed else None)
        self.tabs.setCurrentWidget(self.plots_panel)
        if not resumed:
            self.save_settings()

    def _update_actions(self, running: bool) -> None:
        target = self.session.resume_target
        self.run_panel.set_state(running, bool(target))
        self.start_action.setEnabled(not running)
        self.stop_action.setEnabled(running)
        self.resume_action.setEnabled(not running and bool(target))
        tip = f"Continue {Path(target).name} from its last checkpoint (Ctrl+Shift+R)" if target \
            else "Nothing to resume: a stopped or crashed run can be continued"
        self.run_panel.resume.setToolTip(tip)
        self.setWindowTitle("Frelon — training" if running else "Frelon")

    def _on_event(self, e: dict) -> None:
        if e.get("type") == "run_started":
            self.runs_panel.refresh()

    def _on_finished(self, outcome: Outcome, retrained_from: str) -> None:
        self.run_panel.on_finished(outcome)
        if outcome.run_dir:
            self.results_panel.load_run(outcome.run_dir, self.controller.history)
            self.runs_panel.refresh()
            if retrained_from:                 # a retrain: the two runs side by side in Runs
                self.runs_panel.select(retrained_from, outcome.run_dir)
        if outcome.finish_status == "completed":
            self.statusBar().showMessage("Training completed: see Results.", 10_000)
        elif not outcome.ok:
            self.last_error_box = show_error(self, outcome.title(), outcome.describe(), outcome.details(),
                                             resume=outcome.resumable)
            if self.last_error_box.resume_button is not None:
                self.last_error_box.resume_button.clicked.connect(self.session.resume)

    def _show_run(self, run_dir: str, history) -> None:
        """A past run shown: its plots (over the live run's, while one trains) and its results."""
        if self.controller.is_running():
            self.plots_panel.set_compare(history)
        else:
            self.plots_panel.set_history(history)
            self.plots_panel.set_compare(None)
        self.results_panel.load_run(run_dir, history)

    def _show_retrain(self, options, annotations: str) -> None:
        self.training_panel.set_options(options)
        self.data_panel.set_path(annotations)

    # ---- other panels ----
    def _on_info_failed(self, message: str, details: str) -> None:
        self.training_panel.set_info_failed(message)
        self.log_view.add("error", f"frelon info: {message}")

    def _on_report(self, report: dict) -> None:
        self.session.set_report(report)
        self.training_panel.set_train_images(self.session.train_images)
        self.training_panel.set_detected_task(self.session.detected_task)

    def _show_comparison(self, a: str, b: str) -> None:
        self.results_panel.compare_with(b)                 # robustness curves on the same axes
        self.tabs.setCurrentWidget(self.plots_panel)

    # ---- fixing the data (gui/panels/annotation_editor.py) ----
    def edit_annotations(self) -> None:
        self.annotation_editor.open_data(self.data_panel.current_path())
        self.tabs.setCurrentWidget(self.annotation_editor)

    def review_annotations(self) -> None:
        """The shown run's review queue on the data it was trained on."""
        target = self.session.review_target()
        if target is None:
            self.statusBar().showMessage("Pick a detection run in Runs (or train one) to review the boxes with.", 10_000)
            return
        self.annotation_editor.review_with(*target)
        self.tabs.setCurrentWidget(self.annotation_editor)

    def preannotate(self, folder: str, threshold: float) -> None:
        run = self.session.shown_run
        if not run or self.results_panel.task != "detect":
            self.statusBar().showMessage("Pick a detection run in Runs (or train one): its boxes become the drafts.", 10_000)
            return
        self.annotation_editor.preannotate(run, folder, threshold)

    def retrain(self, annotations: str, from_run: bool) -> None:
        if self.controller.is_running():
            self.statusBar().showMessage("A run is going: retrain when it has finished.", 10_000)
            return
        self.session.retrain(annotations, from_run)

    # ---- window events: a folder dropped anywhere on the window (data panel included) ----
    def dragEnterEvent(self, event) -> None:
        if dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = dropped_path(event.mimeData())
        if path:
            self.data_panel.set_path(path)
            self.tabs.setCurrentWidget(self.data_panel)
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        if self.controller.is_running():
            # the window goes away at once; the engine finishes its step and saves a checkpoint
            # (escalating to terminate / kill if it hangs), so nothing is lost and no orphan stays
            self.hide()
            self.controller.shutdown()
        for command in self.findChildren(JsonCommand):       # every short command still going
            command.cancel()
        self.annotation_editor.save_if_dirty()
        self.save_settings()
        super().closeEvent(event)
