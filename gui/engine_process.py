"""One training engine as a child process: events in, `stop` out, and how it ended in words.

:class:`EngineProcess` owns one QProcess (qutebrowser's GUIProcess pattern). Stdout carries JSON
event lines only; they are split across reads (partial lines wait for their end), parsed with
``frelon.events.parse_line``, and emitted one by one as ``event``. A stdout line that is not JSON
and every stderr line are ``log_line``. Parsing runs in slices of a few milliseconds, so a flood
of events never freezes the window. Stop writes ``stop`` on stdin, then escalates to terminate()
and kill() only if the engine does not end in time. When it ends, ``finished`` carries an
:class:`Outcome`: what happened, in words, with the last lines of stderr.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from frelon import events as ev
from frelon.gui.engine_command import child_environment, engine_command

STDERR_TAIL = 40
SLICE_S = 0.008          # parse events for at most this long before letting the window breathe


@dataclass
class Outcome:
    """How an engine run ended."""
    exit_code: int | None = None
    crashed: bool = False              # ended by a signal (or Qt could not read its exit code)
    stop_requested: bool = False
    terminated: bool = False           # we sent SIGTERM because `stop` was not enough
    killed: bool = False               # we sent SIGKILL
    start_error: str = ""              # it never started
    finish_status: str = ""            # from the run_finished event: completed | stopped | failed
    error_event: dict[str, Any] | None = None
    run_dir: str = ""
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finish_status in ("completed", "stopped") and not self.killed

    @property
    def resumable(self) -> bool:
        """A run folder exists and the run did not complete: Resume can continue it."""
        return bool(self.run_dir) and self.finish_status != "completed" and not self.start_error

    def title(self) -> str:
        if self.start_error:
            return "The engine could not start"
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
        if self.finish_status == "completed":
            return "Training completed."
        if self.finish_status == "stopped" and not self.killed:
            return "Training stopped; a checkpoint was saved and Resume continues from it."
        if self.killed:
            why = "it did not stop when asked, so it was killed" if self.stop_requested else "it was killed"
            return f"The engine ended abruptly: {why}. Resume continues from the last saved checkpoint."
        if self.error_event:
            msg = str(self.error_event.get("message", "")).strip()
            hint = str(self.error_event.get("hint") or "").strip()
            return msg + (f"\n\n{hint}" if hint else "")
        last = next((ln for ln in reversed(self.stderr_tail) if ln.strip()), "")
        if self.crashed:
            how = "The engine crashed (killed by a signal: out of memory, or stopped from outside)"
        elif self.exit_code:
            how = f"The engine exited with code {self.exit_code} without reporting an error"
        else:
            how = "The engine ended without finishing the run"
        how += "." if not last else f". Its last message: {last.strip()}"
        if self.run_dir:
            how += " Resume continues from the last saved checkpoint."
        return how

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
    """Runs `frelon <args>` (normally `train ... --events - --control stdin`) in a child process."""

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
    def start(self, args: list[str]) -> None:
        if self.is_running():
            raise RuntimeError("the engine is already running")
        self._outcome = Outcome()
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

    def stop(self) -> None:
        """Ask for a graceful stop; a second call (or a timeout) escalates."""
        if not self.is_running():
            return
        if self._outcome.stop_requested:
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
        proc.write(b"stop\n")
        proc.closeWriteChannel()
        if not proc.waitForFinished(stop_ms):
            self._outcome.terminated = True
            proc.terminate()
            if not proc.waitForFinished(term_ms):
                self._outcome.killed = True
                proc.kill()
                proc.waitForFinished(2_000)

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
        self._outcome.crashed = status != QProcess.ExitStatus.NormalExit
        self._outcome.exit_code = None if self._outcome.crashed else int(code)
        self._finish()

    def _finish(self) -> None:
        self._escalate.stop()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.deleteLater()
        self.finished.emit(self._outcome)
