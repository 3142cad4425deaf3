"""The launcher's stall watchdog: reads the ranks' heartbeats (heartbeat.py), reports them, and
turns a run where no rank moves into an `error` of kind `stall` — with the stuck rank, its phase,
its stack — and a checkpoint of the last completed step.

The threshold follows the run's own pace: max(--stall-timeout, 10 × the median step time), so a
slow but live rank (every step 3× slower) is not a stall. Until two steps are measured, and while
a rank is in a long phase (setup, validation, checkpoint), only the process-group timeout applies —
unless a rank's process is stopped (SIGSTOP, a debugger): it cannot move however long it is
given, so --stall-timeout alone applies.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import heartbeat as H
from .heartbeat import TIMEOUT_S

PACE = 10                 # × the median step time
REPORT_EVERY_S = 5.0      # how often a `heartbeat` event is written
LONG_PHASES = ("setup", "validation", "checkpoint")
RESCUE_WAIT_S = 60.0      # how long rank 0 gets to save the last completed step
STACK_WAIT_S = 2.0        # how long the ranks' stack dumps get to arrive
STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)   # a process that cannot move until continued


@dataclass
class Stall:
    beat: H.Beat                  # the stuck rank's last heartbeat
    quiet_s: float                # how long no rank had moved
    threshold_s: float
    frames: list[str]             # the stuck rank's innermost frames
    stack_file: Path
    rescue: dict                  # rank 0's emergency save: {"saved": bool, "step" | "reason"}
    state: str = ""               # the stuck rank's process state (psutil's name)


class Watchdog:
    def __init__(self, run_dir: Path, nproc: int, floor_s: float, emit):
        self.run_dir, self.nproc, self.floor_s, self.emit = Path(run_dir), nproc, floor_s, emit
        self.step_times: list[float] = []
        self._last: tuple[int, float] | None = None       # (rank 0's step, when it was seen)
        self._reported = 0.0
        self._procs: dict[int, psutil.Process] = {}

    def states(self, beats: list[H.Beat]) -> dict[int, str]:
        """Each rank's process state, psutil's name ("gone" when it has ended)."""
        out = {}
        for b in beats:
            try:
                proc = self._procs.get(b.pid) or self._procs.setdefault(b.pid, psutil.Process(b.pid))
                out[b.rank] = proc.status()
            except psutil.Error:
                out[b.rank] = "gone"
        return out

    def threshold(self) -> float | None:
        """Seconds without progress that make a stall; None before two steps are measured."""
        if len(self.step_times) < 2:
            return None
        return max(self.floor_s, PACE * statistics.median(self.step_times[-50:]))

    def beats(self) -> list[H.Beat] | None:
        beats = [H.read(self.run_dir, r) for r in range(self.nproc)]
        return None if any(b is None for b in beats) else beats

    def check(self, now: float | None = None) -> Stall | None:
        """One look at the heartbeats (call every second or so): the stall, if there is one."""
        now = time.time() if now is None else now
        beats = self.beats()
        if beats is None:
            return None
        if any(b.phase == "done" for b in beats):        # the run is ending: rank 0 writes the last events
            return None
        self._pace(beats[0], now)
        limit = self.threshold()
        if now - self._reported >= REPORT_EVERY_S:
            self._reported = now
            self.emit("heartbeat", ranks=[{"rank": b.rank, "step": b.step, "phase": b.phase, "age_s": b.age(now)}
                                          for b in beats], stall_after_s=limit)
        if not self.floor_s:
            return None
        states = self.states(beats)
        held = any(state in STOPPED for state in states.values())
        if limit is None and not held:
            return None
        limit = self.floor_s if held else limit       # a stopped rank will not move, whatever the pace

        def quiet(b):
            return b.age(now) > (max(limit, TIMEOUT_S) if b.phase in LONG_PHASES and not held else limit)
        if not all(quiet(b) for b in beats):
            return None
        return self._stalled(beats, min(b.age(now) for b in beats), limit, states)

    def _pace(self, rank0: H.Beat, now: float) -> None:
        if self._last is None or rank0.step < self._last[0]:
            self._last = (rank0.step, now)
        elif rank0.step > self._last[0]:
            step, seen = self._last
            if step > 0:                       # the first step also holds the start-up
                self.step_times.append((now - seen) / (rank0.step - step))
            self._last = (rank0.step, now)

    def _stalled(self, beats: list[H.Beat], quiet_s: float, limit: float, states: dict[int, str]) -> Stall:
        for b in beats:                        # every rank's stack, into ranks/rank<R>.stack.txt
            try:
                os.kill(b.pid, H.DUMP_SIGNAL)
            except OSError:
                pass
        frames = self._wait_for_frames([b.rank for b in beats if states.get(b.rank) not in H.HELD_STATES])
        stuck = H.stuck_rank(beats, frames, states)
        stack_file = H.stack_path(self.run_dir, stuck.rank)
        rank0 = states.get(0, "")
        rescue = (self._rescue() if rank0 not in H.HELD_STATES else
                  {"saved": False, "reason": f"rank 0's process is {rank0}: it cannot save"})
        return Stall(stuck, quiet_s, limit, frames.get(stuck.rank, []), stack_file, rescue, states.get(stuck.rank, ""))

    def _wait_for_frames(self, ranks: list[int]) -> dict[int, list[str]]:
        """The innermost frames of each rank's stack dump, waited for together (STACK_WAIT_S at
        most); [] for a rank whose dump did not come. Only `ranks` are waited for: a process that
        cannot run (stopped) does not write its dump."""
        frames: dict[int, list[str]] = {rank: [] for rank in range(self.nproc)}
        deadline = time.time() + STACK_WAIT_S
        waiting = set(ranks)
        while waiting and time.time() < deadline:
            time.sleep(0.1)
            for rank in list(waiting):
                try:
                    text = H.stack_path(self.run_dir, rank).read_text(encoding="utf-8", errors="replace")
                    frames[rank] = H.top_frames(text)
                except OSError:
                    pass
                if frames[rank]:
                    waiting.discard(rank)
        return frames

    def _rescue(self) -> dict:
        """Ask rank 0 to save the last completed step (heartbeat.RescueWatcher) and wait for it."""
        answer = self.run_dir / "ranks" / "rescue.json"
        answer.unlink(missing_ok=True)
        (self.run_dir / "ranks" / "save-request").touch()
        deadline = time.time() + RESCUE_WAIT_S
        while time.time() < deadline:
            try:
                return json.loads(answer.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                time.sleep(0.2)
        return {"saved": False, "reason": f"rank 0 did not answer within {RESCUE_WAIT_S:.0f} s"}


def stall_error(stall: Stall, nproc: int, run_dir: Path) -> dict:
    """The `error` event's fields for a stall."""
    b = stall.beat
    saved = (f"the run was saved at step {stall.rescue['step']}" if stall.rescue.get("saved")
             else f"the last completed step could not be saved ({stall.rescue.get('reason')}); the last checkpoint stays")
    where = f"it was at {stall.frames[0]}" if stall.frames else "its stack could not be read"
    if stall.state in H.HELD_STATES:
        where = f"its process is {stall.state}" + (" (SIGSTOP or a debugger)" if stall.state in STOPPED else "")
    return dict(
        kind="stall", rank=b.rank, phase=b.phase, step=b.step, frames=stall.frames, stack_file=str(stall.stack_file),
        quiet_s=stall.quiet_s, threshold_s=stall.threshold_s,
        message=f"rank {b.rank} of {nproc} stalled in {b.phase} after step {b.step}: no rank moved for "
                f"{stall.quiet_s:.0f} s (stall threshold {stall.threshold_s:.0f} s); {where}",
        hint=f"{saved}. Every rank's stack is in {stall.stack_file.parent}. Continue with: frelon train --resume {run_dir}"
             + f" (with --gpus {nproc - 1} or --processes {nproc - 1} to leave rank {b.rank}'s device out)",
        traceback="\n".join(stall.frames))

