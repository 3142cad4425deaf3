"""The engine's two I/O channels besides files: events out, stop requests in.

`EventWriter` appends each event to RUN_DIR/events.jsonl and, with `--events -`, writes it to
stdout (nothing else may go to that stdout). Events made before the run folder exists are kept
and written when it is attached. Only rank 0 writes.

`StopFlag` becomes true on `stop` from stdin (`--control stdin`), at end of stdin (the app died),
and on SIGINT / SIGTERM. The loop polls it between steps: a stop finishes the current step, saves
a checkpoint and ends the run with status `stopped`. A stop the loop has not taken within
ANSWER_S (a step or a data scan can last minutes) is answered from a side thread: the answer
registered with `on_overdue` (training/stopping.py: the last completed step saved, `run_finished`
`stopped`), then the process exits.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any, Callable

ANSWER_S = 2.0       # seconds the loop has to take a stop before it is answered from a side thread

from frelon.common import events


class EventWriter:
    def __init__(self, stream: IO[str] | None = None, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled
        self._file: IO[str] | None = None
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self.path: Path | None = None
        self.echo = None      # optional callable(event): a human-readable console line
        self.finished = False     # a run_finished was written
        self._sealed = False      # emit_last was: nothing more is written

    def attach(self, path: Path) -> None:
        """Start writing to `path` (appending: a resumed run continues its history)."""
        if not self.enabled:
            return
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        for line in self._pending:
            self._file.write(line + "\n")
        self._file.flush()
        self._pending.clear()

    def emit(self, type_: str, **fields: Any) -> dict:
        event = events.make(type_, **fields)
        if not self.enabled:
            return event
        with self._lock:
            written = self._write(event)
        if written and self.echo is not None:
            self.echo(event)
        return event

    def emit_last(self, type_: str, **fields: Any) -> bool:
        """Emit the run's last event, unless a run_finished was written already (False); either
        way nothing is written after it. For a stop answered from a side thread
        (training/stopping.py), while the main thread may still be emitting."""
        event = events.make(type_, **fields)
        with self._lock:
            written = self.enabled and not self.finished and self._write(event)
            self._sealed = True
        if written and self.echo is not None:
            self.echo(event)
        return written

    def _write(self, event: dict) -> bool:
        """One event line to the file (or the pending lines) and the stream, under `_lock`; False
        when nothing may be written any more (after emit_last)."""
        if self._sealed:
            return False
        self.finished = self.finished or event["type"] == "run_finished"
        line = events.dumps(event)
        if self._file is None:
            self._pending.append(line)
        else:
            self._file.write(line + "\n")
            self._file.flush()
        if self.stream is not None:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):   # the reader went away: keep the file
                self.stream = None
        return True

    def relay(self, line: str) -> None:
        """Pass on a line another process wrote (the launcher relays rank 0's events): to the
        stream only, under the same lock as `emit`, so lines from both never interleave."""
        if not self.enabled or self.stream is None:
            return
        with self._lock:
            try:
                self.stream.write(line if line.endswith("\n") else line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.stream = None

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class StopFlag:
    """A stop request, polled by the loop (`flag()`). Whoever takes a stop first handles it: the
    loop, by seeing it, or the side thread of `on_overdue` once ANSWER_S have passed — then the
    loop, should it look again, waits for the process to end."""

    def __init__(self, answer_s: float = ANSWER_S, exit: Callable[[int], None] = os._exit):
        self._event = threading.Event()
        self.reason = ""
        self.answer_s = answer_s
        self._exit = exit
        self._taken = threading.Event()
        self._taker = ""                 # "loop" or "late"
        self._take_lock = threading.Lock()
        self._watching = False
        self._declined = threading.Event()

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def __call__(self) -> bool:
        if not self._event.is_set():
            return False
        self.take()
        return True

    def _take(self, who: str) -> bool:
        with self._take_lock:
            if not self._taker:
                self._taker = who
                self._taken.set()
            return self._taker == who

    def take(self) -> None:
        """The run is ending by itself (the loop is done): a stop from now on is not answered
        from the side thread. Waits for the process to end when that answer has begun."""
        if not self._take("loop"):
            self._declined.wait()        # forever, unless the side thread found nothing to answer

    def on_overdue(self, answer: Callable[[], bool]) -> None:
        """Call `answer()` from a side thread when a stop is not taken by the loop within
        `answer_s`; when it answered (True), end the process: status 0, or 1 when it raised."""
        self._answer = answer
        if not self._watching:
            self._watching = True
            threading.Thread(target=self._watch_overdue, name="frelon-stop", daemon=True).start()

    def _watch_overdue(self) -> None:
        self._event.wait()
        if self._taken.wait(self.answer_s) or not self._take("late"):
            return
        try:
            code = 0 if self._answer() else None
        except Exception as e:          # the process ends either way; say why the answer failed
            print(f"frelon: error: the stop could not be answered ({e.__class__.__name__}: {e})", file=sys.stderr)
            code = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        if code is None:
            self._declined.set()
        else:
            self._exit(code)

    def watch_signals(self) -> None:
        def handler(signum, frame):
            self.set(signal.Signals(signum).name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, handler)
            except ValueError:       # not the main thread (tests): the caller handles stopping
                pass

    def watch_stdin(self, stream: IO | None = None) -> None:
        """Read commands from stdin in a thread. It reads a duplicate of the file descriptor with
        os.read, never sys.stdin itself: a DataLoader worker forked while this thread waits must
        not inherit a held lock on sys.stdin (the child closes sys.stdin and would hang)."""
        fd = os.dup((stream or sys.stdin).fileno())

        def read():
            pending = b""
            try:
                while True:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if line.strip().lower() == b"stop":
                            self.set("stop requested")
                            return
            except OSError:
                pass
            finally:
                os.close(fd)
            self.set("end of stdin (the controlling app went away)")
        threading.Thread(target=read, name="frelon-control", daemon=True).start()
