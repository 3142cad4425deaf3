"""Every engine child process of the app: a training run (events in, `stop` out) or a short
command (`info`, `check`, `predict`, `plan`, `lr-find`, …, its answer on stdout), and how it
ended in words.

:class:`EngineProcess` owns one QProcess (qutebrowser's GUIProcess pattern). For a run, stdout
carries JSON event lines only; they are split across reads (partial lines wait for their end),
parsed with ``frelon.common.events.parse_line``, and emitted one by one as ``event``. A stdout line that
is not JSON and every stderr line are ``log_line``. Parsing runs in slices of a few milliseconds,
so a flood of events never freezes the window. Stop writes ``stop`` on stdin, then escalates to
terminate() and kill() only if the engine does not end in time. A short command
(``start(args, events=False)``) gets no stdin and its stdout is kept whole for its answer. When
either ends, ``finished`` carries an :class:`Outcome`: what happened, in words, with the last
lines of stderr. ``engine_command()`` is the prefix of every engine command line: `python -m
frelon`, or the program named by FRELON_GUI_ENGINE (tests and benchmarks point it at a fake).
"""
from __future__ import annotations

import collections
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from frelon.common import events as ev

ENV_VAR = "FRELON_GUI_ENGINE"
STDERR_TAIL = 40
SLICE_S = 0.008          # parse events for at most this long before letting the window breathe
CANCEL_WAIT_MS = 2_000


def engine_command() -> list[str]:
    custom = os.environ.get(ENV_VAR)
    if custom:
        return shlex.split(custom)
    return [sys.executable, "-m", "frelon"]


def child_environment() -> QProcessEnvironment:
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    env.insert("PYTHONIOENCODING", "utf-8")
    return env


@dataclass
class Outcome:
    """How an engine process ended: a training run (`command` "train") or a short command."""
    command: str = "train"             # the subcommand: train, info, check, predict, lr-find, …
    exit_code: int | None = None
    crashed: bool = False              # ended by a signal (or Qt could not read its exit code)
    stop_requested: bool = False
    terminated: bool = False           # we sent SIGTERM because `stop` was not enough
    killed: bool = False               # we sent SIGKILL
    start_error: str = ""              # it never started
    finish_status: str = ""            # from the run_finished event: completed | stopped | failed
    finish_reason: str = ""            # its `reason`: why a completed run ended before its epochs (--patience)
    error_event: dict[str, Any] | None = None
    run_dir: str = ""
    stderr_tail: list[str] = field(default_factory=list)
    stdout: str = ""                   # a short command's whole stdout (its answer); a run's is events

    @property
    def is_run(self) -> bool:
        return self.command == "train"

    @property
    def ok(self) -> bool:
        if not self.is_run:
            return self.exit_code == 0 and not (self.killed or self.start_error)
        return self.finish_status in ("completed", "stopped") and not self.killed

    @property
    def resumable(self) -> bool:
        """A run folder exists and the run did not complete: Resume can continue it."""
        return bool(self.run_dir) and self.finish_status != "completed" and not self.start_error

    def last_message(self) -> str:
        """The engine's last line on stderr (for a failure, usually `frelon: error: …`)."""
        return next((ln.strip() for ln in reversed(self.stderr_tail) if ln.strip()), "")

    def title(self) -> str:
        if self.start_error:
            return "The engine could not start"
        if not self.is_run:
            how = "finished" if self.ok else "stopped" if self.stop_requested and not self.killed else "failed"
            return f"frelon {self.command} {how}"
        if self.finish_status == "completed":
            return "Training completed"
        if self.finish_status == "stopped" and not self.killed:
            return "Training stopped"
        if self.killed:
            return "The engine was killed"
        if self.error_event:
            return "Training failed"
        return "The engine ended unexpectedly"

    def describe(self) -> str:
        """One or two sentences a user can act on."""
        if self.start_error:
            return f"The engine could not start: {self.start_error}"
        if not self.is_run:
            return self._describe_command()
        if self.finish_status == "completed":
            return "Training completed" + (f": {self.finish_reason}." if self.finish_reason else ".")
        if self.finish_status == "stopped" and not self.killed:
            return "Training stopped; a checkpoint was saved and Resume continues from it."
        if self.killed:
            why = "it did not stop when asked, so it was killed" if self.stop_requested else "it was killed"
            return f"The engine ended abruptly: {why}. Resume continues from the last saved checkpoint."
        if self.error_event:
            msg = str(self.error_event.get("message", "")).strip()
            hint = str(self.error_event.get("hint") or "").strip()
            return msg + (f"\n\n{hint}" if hint else "")
        last = self.last_message()
        if self.crashed:
            how = "The engine crashed (killed by a signal: out of memory, or stopped from outside)"
        elif self.exit_code:
            how = f"The engine exited with code {self.exit_code} without reporting an error"
        else:
            how = "The engine ended without finishing the run"
        how += "." if not last else f". Its last message: {last}"
        if self.run_dir:
            how += " Resume continues from the last saved checkpoint."
        return how

    def _describe_command(self) -> str:
        """A short command's why, short enough to follow "… failed: " in a panel's status line."""
        if self.ok:
            return f"frelon {self.command} finished."
        if self.stop_requested:
            return "it did not stop when asked, so it was killed" if self.killed else "it was stopped"
        if self.killed:
            return "it was killed"
        if self.last_message():
            return self.last_message()
        return "the engine crashed" if self.crashed else f"exit code {self.exit_code}"

    def details(self) -> str:
        parts = []
        if self.error_event and self.error_event.get("traceback"):
            parts.append(str(self.error_event["traceback"]).rstrip())
        if self.stderr_tail:
            parts.append("Last lines of the engine's log:\n" + "\n".join(self.stderr_tail))
        code = "none (crashed)" if self.crashed else self.exit_code
        parts.append(f"exit code: {code}; stop requested: {self.stop_requested}; "
                     f"terminated: {self.terminated}; killed: {self.killed}")
        return "\n\n".join(parts)


class EngineProcess(QObject):
    """Runs `frelon <args>` in a child process: a run (`train ... --events - --control stdin`),
    or with ``events=False`` a short command whose stdout is its answer (``outcome.stdout``)."""

    started = Signal()
    event = Signal(dict)
    log_line = Signal(str, str)        # stream ("stdout" | "stderr"), text
    finished = Signal(object)          # Outcome

    def __init__(self, parent: QObject | None = None, stop_timeout_ms: int = 60_000,
                 kill_timeout_ms: int = 5_000):
        super().__init__(parent)
        self.stop_timeout_ms = stop_timeout_ms
        self.kill_timeout_ms = kill_timeout_ms
        self._proc: QProcess | None = None
        self._outcome = Outcome()
        self._events = True
        self._stdout: list[bytes] = []
        self._out_rest = b""
        self._err_rest = b""
        self._pending: collections.deque[bytes] = collections.deque()
        self._drain_scheduled = False
        self._escalate = QTimer(self)
        self._escalate.setSingleShot(True)
        self._escalate.timeout.connect(self._on_escalate)

    # ---- state ----
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self._proc.processId()) if self._proc is not None else 0

    @property
    def outcome(self) -> Outcome:
        return self._outcome

    # ---- control ----
    def start(self, args: list[str], events: bool = True) -> None:
        """`events`: stdout is an event stream and stdin takes `stop`; else stdin is closed at once
        and stdout is kept whole for ``outcome.stdout``."""
        if self.is_running():
            raise RuntimeError("the engine is already running")
        self._outcome = Outcome(command=str(args[0]) if args else "")
        self._events = events
        self._stdout = []
        self._out_rest = self._err_rest = b""
        self._pending.clear()
        program, *prefix = engine_command()
        proc = QProcess(self)
        proc.setProcessEnvironment(child_environment())
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.started.connect(self.started)
        proc.errorOccurred.connect(self._on_error)
        proc.finished.connect(self._on_finished)
        self._proc = proc
        proc.start(program, prefix + list(args))
        if not events:
            proc.closeWriteChannel()

    def stop(self) -> None:
        """Ask for a graceful stop; a second call (or a timeout) escalates. A short command has
        no stdin to read `stop` from: it is terminated, then killed if it does not end in time."""
        if not self.is_running():
            return
        if self._outcome.stop_requested or not self._events:
            self._outcome.stop_requested = True
            self.terminate()
            return
        self._outcome.stop_requested = True
        self._proc.write(b"stop\n")
        self._escalate.start(self.stop_timeout_ms)

    def terminate(self) -> None:
        if self.is_running():
            self._outcome.terminated = True
            self._proc.terminate()
            self._escalate.start(self.kill_timeout_ms)

    def kill(self) -> None:
        if self.is_running():
            self._outcome.killed = True
            self._proc.kill()

    def shutdown(self, stop_ms: int = 10_000, term_ms: int = 3_000) -> None:
        """Blocking stop for when the app closes: stop, end of stdin, terminate, kill. No orphan."""
        if not self.is_running():
            return
        proc = self._proc
        self._outcome.stop_requested = True
        if self._events:
            proc.write(b"stop\n")
            proc.closeWriteChannel()
        if not self._events or not proc.waitForFinished(stop_ms):
            self._outcome.terminated = True
            proc.terminate()
            if not proc.waitForFinished(term_ms):
                self._outcome.killed = True
                proc.kill()
                proc.waitForFinished(2_000)

    def cancel(self, wait_ms: int = CANCEL_WAIT_MS) -> None:
        """End it now and say nothing (no ``finished``): a newer command replaces it, or its
        window goes away. Killed and waited for, so no orphan remains."""
        self._escalate.stop()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.blockSignals(True)
        if proc.state() != QProcess.ProcessState.NotRunning:
            proc.kill()
            proc.waitForFinished(wait_ms)
        proc.deleteLater()

    def _on_escalate(self) -> None:
        if not self.is_running():
            return
        if self._outcome.terminated:
            self.kill()
        else:
            self.terminate()

    # ---- reading ----
    def _on_stdout(self) -> None:
        if self._proc is None:
            return
        if not self._events:
            self._stdout.append(bytes(self._proc.readAllStandardOutput()))
            return
        data = self._out_rest + bytes(self._proc.readAllStandardOutput())
        *lines, self._out_rest = data.split(b"\n")
        self._pending.extend(lines)
        self._drain(SLICE_S)

    def _drain(self, budget_s: float | None) -> None:
        """Handle pending stdout lines for at most `budget_s` seconds; the rest on the next turn."""
        self._drain_scheduled = False
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        pending = self._pending
        while pending:
            self._handle_line(pending.popleft())
            if deadline is not None and time.perf_counter() > deadline:
                break
        if pending and not self._drain_scheduled:
            self._drain_scheduled = True
            QTimer.singleShot(0, lambda: self._drain(SLICE_S) if self._drain_scheduled else None)

    def _handle_line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        event = ev.parse_line(raw)
        if event is None:
            self.log_line.emit("stdout", raw.decode("utf-8", "replace").rstrip())
            return
        kind = event.get("type")
        if kind == "run_started" and event.get("run_dir"):
            self._outcome.run_dir = str(event["run_dir"])
        elif kind == "error":
            self._outcome.error_event = event
        elif kind == "run_finished":
            self._outcome.finish_status = str(event.get("status", ""))
            self._outcome.finish_reason = str(event.get("reason") or "")
        self.event.emit(event)

    def _on_stderr(self) -> None:
        if self._proc is None:
            return
        data = self._err_rest + bytes(self._proc.readAllStandardError())
        *lines, self._err_rest = data.split(b"\n")
        for raw in lines:
            self._stderr_line(raw)

    def _stderr_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip()
        if text:
            tail = self._outcome.stderr_tail
            tail.append(text)
            del tail[:-STDERR_TAIL]
            self.log_line.emit("stderr", text)

    # ---- the end ----
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._proc is not None:
            self._outcome.start_error = self._proc.errorString()
            self._finish()

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc = self._proc
        if proc is None:
            return
        self._on_stdout()
        self._on_stderr()
        if self._out_rest:
            self._pending.append(self._out_rest)
        if self._err_rest:
            self._stderr_line(self._err_rest)
        self._out_rest = self._err_rest = b""
        self._drain(None)
        self._outcome.stdout = b"".join(self._stdout).decode("utf-8", "replace")
        self._stdout = []
        self._outcome.crashed = status != QProcess.ExitStatus.NormalExit
        self._outcome.exit_code = None if self._outcome.crashed else int(code)
        self._finish()

    def _finish(self) -> None:
        self._escalate.stop()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.deleteLater()
        self.finished.emit(self._outcome)
