"""Starts, stops and resumes training runs; keeps the live run's history. No widgets here.

Owns one :class:`EngineProcess` and the :class:`RunHistory` it feeds. Panels listen to its signals
(MainWindow connects them); the command line it builds is the one in docs/DESIGN.md:
`frelon train <options> --events - --control stdin`, or `frelon train --resume RUN_DIR ...`.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from frelon.gui.engine_process import EngineProcess, Outcome
from frelon.gui.run_folders import run_config
from frelon.gui.run_history import RunHistory

STREAM_FLAGS = ["--events", "-", "--control", "stdin"]


class RunController(QObject):
    history_reset = Signal(object)        # a new RunHistory (a new or resumed run)
    event = Signal(dict)
    log = Signal(str, str)                # level ("info" | "warning" | "error" | "stderr" | "stdout"), text
    running_changed = Signal(bool)
    finished = Signal(object)             # Outcome

    def __init__(self, parent: QObject | None = None, **process_options):
        super().__init__(parent)
        self.engine = EngineProcess(self, **process_options)
        self.engine.event.connect(self._on_event)
        self.engine.log_line.connect(lambda stream, text: self.log.emit(stream, text))
        self.engine.started.connect(lambda: self.running_changed.emit(True))
        self.engine.finished.connect(self._on_finished)
        self.history = RunHistory()
        self.last_outcome: Outcome | None = None
        self.last_args: list[str] = []

    @property
    def run_dir(self) -> str:
        """The live (or last) run's folder: its history's `run_started` (a resumed run's history
        starts with its past events, so it is known before the engine answers)."""
        return self.history.run_dir or ""

    def is_running(self) -> bool:
        return self.engine.is_running()

    def start(self, flags: list[str]) -> list[str]:
        """A new run of `frelon train` with these options (gui/options.py's train_flags)."""
        args = ["train", *flags, *STREAM_FLAGS]
        self._launch(args, RunHistory())
        return args

    def resume(self, run_dir: str, epochs: int | None = None, ranks: int | None = None) -> list[str]:
        """Continue a stopped or crashed run; its past events are reloaded so the plots continue.
        `ranks`: continue on that many ranks (GPUs if the run used --gpus, else CPU processes)."""
        args = ["train", "--resume", run_dir] + (["--epochs", str(epochs)] if epochs else [])
        if ranks:
            args += [_ranks_flag(run_dir), str(ranks)]
        args += STREAM_FLAGS
        self._launch(args, RunHistory.of_run(run_dir))
        return args

    def stop(self) -> None:
        self.engine.stop()

    def shutdown(self) -> None:
        """The app is closing: stop the engine and wait for it (escalating), so no orphan remains."""
        self.engine.shutdown(stop_ms=60_000, term_ms=5_000)

    def _launch(self, args: list[str], history: RunHistory) -> None:
        self.history = history
        self.last_args = args
        self.history_reset.emit(history)
        self.log.emit("info", "$ frelon " + " ".join(_quote(a) for a in args))
        self.engine.start(args)

    def _on_event(self, event: dict) -> None:
        self.history.add(event)
        kind = event.get("type")
        if kind == "log":
            self.log.emit(str(event.get("level", "info")), str(event.get("message", "")))
        elif kind == "error":
            self.log.emit("error", f"{event.get('kind', 'error')}: {event.get('message', '')}")
        self.event.emit(event)

    def _on_finished(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        outcome.run_dir = self.run_dir or outcome.run_dir     # a resume that failed early: still its run
        self.log.emit("info" if outcome.ok else "error", outcome.describe().split("\n")[0])
        self.running_changed.emit(False)
        self.finished.emit(outcome)


def _ranks_flag(run_dir: str) -> str:
    """--gpus for a run on GPU ranks, --processes for CPU ranks (from its config.json)."""
    return "--gpus" if int(run_config(run_dir).get("gpus") or 0) > 0 else "--processes"


def _quote(arg: str) -> str:
    return f"'{arg}'" if (" " in arg or not arg) else arg
