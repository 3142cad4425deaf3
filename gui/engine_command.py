"""A short engine command (`info`, `check`, `predict`, `plan`, `lr-find`, `robustness`, `explain`,
`preview-augment`, `review`, `annotations`) in the background, and its JSON answer.

:class:`JsonCommand` runs one command at a time on an :class:`EngineProcess` (the same supervisor
as training: start, stop / terminate / kill, an :class:`Outcome` in words) without blocking the
GUI, and hands back the JSON the command printed, or the outcome's words saying why it failed.
"""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, Signal

from frelon.gui.engine_process import EngineProcess, Outcome


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
    failed = Signal(str, str)      # the outcome in one line for the user, its details

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process = EngineProcess(self)
        self.process.finished.connect(self._on_finished)
        self._parse_json = True

    def is_running(self) -> bool:
        return self.process.is_running()

    def start(self, args: list[str], parse_json: bool = True) -> None:
        self.cancel()
        self._parse_json = parse_json
        self.process.start(args, events=False)

    def cancel(self) -> None:
        """Kill the running command, if any, without a word (neither `done` nor `failed`)."""
        self.process.cancel()

    def _on_finished(self, outcome: Outcome) -> None:
        if not outcome.ok:
            self.failed.emit(outcome.describe(), outcome.details())
        elif not self._parse_json:
            self.done.emit(None)
        else:
            try:
                result = parse_json_output(outcome.stdout)
            except ValueError as e:
                self.failed.emit(f"Unexpected output from the engine: {e}",
                                 outcome.details() + "\n\nstdout:\n" + outcome.stdout[-2000:])
                return
            self.done.emit(result)
