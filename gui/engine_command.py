"""How the app starts the engine, and one-shot engine commands (`info`, `check`, `predict`).

`engine_command()` is the prefix every engine command line starts with: `python -m frelon`, or the
program named by the FRELON_GUI_ENGINE environment variable (tests and benchmarks point it at a
fake engine). :class:`JsonCommand` runs one command in a QProcess without blocking the GUI and
hands back its JSON output, or one readable line saying why it failed.
"""
from __future__ import annotations

import collections
import json
import os
import shlex
import sys
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

ENV_VAR = "FRELON_GUI_ENGINE"


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


def parse_json_output(text: str) -> Any:
    """The JSON a command printed: the whole text, or else its last line that parses."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line[:1] in "{[":
                try:
                    return json.loads(line)
                except ValueError:
                    continue
    raise ValueError("the command printed no JSON")


class JsonCommand(QObject):
    """One engine command at a time; starting another cancels the one running."""

    done = Signal(object)          # the parsed JSON (None when parse_json was False)
    failed = Signal(str, str)      # one line for the user, details (stderr tail)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._proc: QProcess | None = None
        self._parse_json = True

    def is_running(self) -> bool:
        return self._proc is not None

    def start(self, args: list[str], parse_json: bool = True) -> None:
        self.cancel()
        self._parse_json = parse_json
        program, *prefix = engine_command()
        proc = QProcess(self)
        proc.setProcessEnvironment(child_environment())
        proc.finished.connect(lambda code, status, p=proc: self._on_finished(p, code, status))
        proc.errorOccurred.connect(lambda err, p=proc: self._on_error(p, err))
        self._proc = proc
        proc.start(program, prefix + list(args))
        proc.closeWriteChannel()

    def cancel(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.finished.disconnect()
            proc.errorOccurred.disconnect()
            if proc.state() != QProcess.ProcessState.NotRunning:
                proc.kill()
                proc.waitForFinished(2000)
            proc.deleteLater()

    def _on_error(self, proc: QProcess, error: QProcess.ProcessError) -> None:
        if proc is self._proc and error == QProcess.ProcessError.FailedToStart:
            self._proc = None
            proc.deleteLater()
            self.failed.emit(f"The engine could not start: {proc.errorString()}", "")

    def _on_finished(self, proc: QProcess, code: int, status: QProcess.ExitStatus) -> None:
        if proc is not self._proc:
            return
        self._proc = None
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace")
        proc.deleteLater()
        tail = "\n".join(collections.deque(err.splitlines(), maxlen=40))
        if status != QProcess.ExitStatus.NormalExit or code != 0:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else (
                f"exit code {code}" if status == QProcess.ExitStatus.NormalExit else "the engine crashed")
            self.failed.emit(why, tail)
            return
        if not self._parse_json:
            self.done.emit(None)
            return
        try:
            result = parse_json_output(out)
        except ValueError as e:
            self.failed.emit(f"Unexpected output from the engine: {e}", tail or out[-2000:])
            return
        self.done.emit(result)
