"""The engine's two I/O channels besides files: events out, stop requests in.

`EventWriter` appends each event to RUN_DIR/events.jsonl and, with `--events -`, writes it to
stdout (nothing else may go to that stdout). Events made before the run folder exists are kept
and written when it is attached. Only rank 0 writes.

`StopFlag` becomes true on `stop` from stdin (`--control stdin`), at end of stdin (the app died),
and on SIGINT / SIGTERM. The loop polls it between steps: a stop finishes the current step, saves
a checkpoint and ends the run with status `stopped`.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

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
        if self.echo is not None:
            self.echo(event)
        line = events.dumps(event)
        with self._lock:
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
        return event

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
    def __init__(self):
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

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
