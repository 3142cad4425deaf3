"""Heartbeats: where every rank of a multi-rank run is, for the launcher's stall watchdog.

Each rank owns one small file, RUN_DIR/ranks/rank<R>.heartbeat, and overwrites its 40 bytes in
place (one `pwrite`, no fsync: a few microseconds) each time it enters a phase of the step. The
launcher, on the same machine, reads the files every second. When no rank has moved for longer
than the stall threshold, the run is stuck: the rank that is not waiting on the others is the one
that hangs, and every rank's Python stack is dumped (faulthandler, on SIGUSR1) into
RUN_DIR/ranks/rank<R>.stack.txt.

Why files and not torchrun's TCPStore: a store read needs the store to answer, and a file can be
read whatever state the rank is in.
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# How long a collective waits for a peer (distributed.py's process group; the watchdog's bound on
# long phases). A rank that dies is noticed by torchrun within a second or so; this only bounds a
# rank that hangs. It must outlast the longest thing one rank does while the others wait: rank 0
# scanning a large data set before the first collective, writing a checkpoint, evaluating on a
# slow disk. Here, in a module without torch, because the launcher's watchdog reads it too.
TIMEOUT_S = int(os.environ.get("FRELON_DIST_TIMEOUT", "1800"))

# the phases of a rank's life, in the order a step goes through them
PHASES = ("setup", "data", "forward", "backward", "collective", "optimizer", "checkpoint", "validation", "done")
# a rank in these phases waits for the others: it is not the one that hangs
WAITING = ("collective",)
DUMP_SIGNAL = signal.SIGUSR1
_RECORD = struct.Struct("<qqdB7x")        # pid, step, time, phase index


def heartbeat_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / "ranks" / f"rank{rank}.heartbeat"


def stack_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / "ranks" / f"rank{rank}.stack.txt"


@dataclass(frozen=True)
class Beat:
    rank: int
    pid: int
    step: int
    time: float
    phase: str

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.time)


class Heartbeat:
    """A rank's heartbeat writer; also arranges that SIGUSR1 dumps the rank's stack to a file."""

    def __init__(self, run_dir: Path, rank: int):
        path = heartbeat_path(run_dir, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rank = rank
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._stacks = open(stack_path(run_dir, rank), "w", encoding="utf-8")
        faulthandler.register(DUMP_SIGNAL, file=self._stacks, all_threads=True)
        self.step = 0
        self.phase = "setup"
        self.beat("setup")

    def beat(self, phase: str, step: int | None = None) -> None:
        if step is not None:
            self.step = step
        self.phase = phase
        os.pwrite(self._fd, _RECORD.pack(os.getpid(), self.step, time.time(), PHASES.index(phase)), 0)
        if _DELAY and _DELAY[:2] == (self.rank, phase) and self.step >= _DELAY[2]:
            delay_for_tests(_DELAY[3])

    def close(self) -> None:
        self.beat("done")
        faulthandler.unregister(DUMP_SIGNAL)
        os.close(self._fd)
        self._stacks.close()


class NoHeartbeat:
    """One process: nobody watches (FRELON_TEST_DELAY for rank 0 still applies: a long step)."""
    step = 0
    phase = "setup"

    def beat(self, phase: str, step: int | None = None) -> None:
        if _DELAY and _DELAY[:2] == (0, phase) and (self.step if step is None else step) >= _DELAY[2]:
            delay_for_tests(_DELAY[3])

    def close(self) -> None:
        pass


def _parse_delay(text: str) -> tuple[int, str, int, float] | None:
    """FRELON_TEST_DELAY="RANK:PHASE:FROM_STEP:SECONDS": that rank sleeps SECONDS each time it
    enters PHASE once FROM_STEP steps are done — how the tests make a rank hang or run slow."""
    if not text:
        return None
    rank, phase, step, seconds = text.split(":")
    return int(rank), phase, int(step), float(seconds)


_DELAY = _parse_delay(os.environ.get("FRELON_TEST_DELAY", ""))


def delay_for_tests(seconds: float) -> None:
    time.sleep(seconds)


class RescueWatcher:
    """On rank 0: when the launcher asks (RUN_DIR/ranks/save-request appears), call `save` from
    this thread — the main thread may be stuck in a collective — and write its answer (a dict)
    to RUN_DIR/ranks/rescue.json."""

    def __init__(self, run_dir: Path, save, poll_s: float = 0.5):
        self.request = Path(run_dir) / "ranks" / "save-request"
        self.answer = Path(run_dir) / "ranks" / "rescue.json"
        self.request.unlink(missing_ok=True)
        self._save, self._poll = save, poll_s
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="frelon-rescue", daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            if self.request.exists():
                self.request.unlink(missing_ok=True)
                try:
                    answer = self._save()
                except Exception as e:       # the launcher reports it; the run is ending anyway
                    answer = {"saved": False, "reason": f"{e.__class__.__name__}: {e}"}
                tmp = self.answer.with_suffix(".tmp")
                tmp.write_text(json.dumps(answer), encoding="utf-8")
                os.replace(tmp, self.answer)

    def stop(self) -> None:
        self._stop.set()


def read(run_dir: Path, rank: int) -> Beat | None:
    try:
        with open(heartbeat_path(run_dir, rank), "rb") as f:
            data = f.read(_RECORD.size)
    except OSError:
        return None
    if len(data) < _RECORD.size:
        return None
    pid, step, t, phase = _RECORD.unpack(data)
    return Beat(rank, pid, step, t, PHASES[phase] if phase < len(PHASES) else "?")


# innermost Python frames of a rank blocked in a collective: torch.distributed's calls, DDP's own
# (its forward broadcasts buffers), and autograd's engine: under DDP a rank waiting inside backward
# waits in the gradient all-reduce, which DDP's C++ hooks run below that frame
COLLECTIVE_FRAMES = ("torch/distributed/", "torch/nn/parallel/distributed.py", " in _engine_run_backward")
# process states (psutil's names) in which a rank cannot move, whatever its heartbeat says: stopped
# (SIGSTOP), stopped by a debugger, in uninterruptible sleep (a dead disk or network mount)
HELD_STATES = ("stopped", "tracing-stop", "disk-sleep")


def in_collective(frames: list[str], depth: int = 4) -> bool:
    return any(mark in f for f in frames[:depth] for mark in COLLECTIVE_FRAMES)


def _narrow(beats: list[Beat], keep) -> list[Beat]:
    return [b for b in beats if keep(b)] or beats


def stuck_rank(beats: list[Beat], frames: dict[int, list[str]] | None = None,
               states: dict[int, str] | None = None) -> Beat:
    """The rank that hangs, by the strongest evidence there is, each rule narrowing the suspects
    (a rule that would leave none is passed over):
    1. its process cannot run (`states`, psutil's: stopped, or in uninterruptible sleep);
    2. it is not waiting for the others by its phase;
    3. its stack dump did not come while another's did (faulthandler writes it from the signal
       handler, whatever the rank's Python is doing: only a process that cannot run stays silent);
    4. it is not waiting by its stack (inside torch.distributed, DDP's forward or autograd's backward);
    then the one furthest behind (lowest step), then the one silent the longest."""
    candidates = _narrow(beats, lambda b: (states or {}).get(b.rank) in HELD_STATES)
    candidates = _narrow(candidates, lambda b: b.phase not in WAITING)
    if frames:
        candidates = _narrow(candidates, lambda b: not frames.get(b.rank))
        candidates = _narrow(candidates, lambda b: not in_collective(frames.get(b.rank, [])))
    return min(candidates, key=lambda b: (b.step, b.time))


TRAINING_CODE = "engine/training/"      # in a frame's path: the training thread's code


def top_frames(stack_text: str, n: int = 6) -> list[str]:
    """The innermost frames ("File …, line … in f", innermost first) of the training thread in a
    faulthandler dump: the last thread block running the training package (engine/training/), else the last
    block of the thread that took the signal."""
    blocks, current = [], None
    for line in stack_text.splitlines():
        if line.startswith(("Thread 0x", "Current thread 0x")):
            current = [line]
            blocks.append(current)
        elif current is not None and line.strip().startswith("File "):
            current.append(line.strip())
    if not blocks:
        return []
    chosen = next((b for b in reversed(blocks) if any(TRAINING_CODE in f for f in b[1:])), None) \
        or next((b for b in reversed(blocks) if b[0].startswith("Current thread")), blocks[-1])
    return chosen[1:n + 1]
