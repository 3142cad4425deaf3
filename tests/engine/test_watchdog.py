"""The stall watchdog's decisions, on heartbeat files written by hand (no ranks, no waiting)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from frelon.engine import heartbeat as H
from frelon.engine import watchdog as W


def _write(run_dir, rank, step, phase, t, pid=None):
    """A heartbeat record as a rank would leave it (the writer's own format)."""
    path = H.heartbeat_path(run_dir, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(H._RECORD.pack(pid or os.getpid(), step, t, H.PHASES.index(phase)))


def _watchdog(tmp_path, floor=2.0, nproc=2):
    emitted = []
    return W.Watchdog(tmp_path, nproc, floor, lambda type_, **f: emitted.append((type_, f))), emitted


def test_the_threshold_follows_the_pace_of_the_steps(tmp_path):
    wd, emitted = _watchdog(tmp_path, floor=2.0)
    t0 = 1000.0
    for i, step in enumerate([0, 1, 3, 5, 7]):          # 2 steps a second after the first
        for rank in (0, 1):
            _write(tmp_path, rank, step, "forward", t0 + i)
        assert wd.check(now=t0 + i + 0.1) is None
    assert wd.threshold() == pytest.approx(max(2.0, 10 * 0.5))
    assert emitted[0][0] == "heartbeat" and [r["rank"] for r in emitted[0][1]["ranks"]] == [0, 1]


def test_no_stall_is_called_before_two_steps_are_measured_or_when_off(tmp_path):
    wd, _ = _watchdog(tmp_path)
    for rank in (0, 1):
        _write(tmp_path, rank, 0, "data", 0.0)
    assert wd.check(now=10_000.0) is None                 # start-up: only the process-group timeout
    off, _ = _watchdog(tmp_path, floor=0.0)
    off.step_times = [0.1, 0.1]
    assert off.check(now=10_000.0) is None


def test_a_rank_that_moved_recently_means_no_stall(tmp_path):
    wd, _ = _watchdog(tmp_path, floor=1.0)
    wd.step_times = [0.1, 0.1, 0.1]
    _write(tmp_path, 0, 10, "collective", 100.0)          # waiting for rank 1 …
    _write(tmp_path, 1, 10, "forward", 104.5)             # … which is still working
    assert wd.check(now=105.0) is None


def test_validation_is_given_the_process_group_timeout(tmp_path):
    wd, _ = _watchdog(tmp_path, floor=1.0)
    wd.step_times = [0.1, 0.1, 0.1]
    _write(tmp_path, 0, 10, "validation", 100.0)
    _write(tmp_path, 1, 10, "collective", 100.0)
    assert wd.check(now=100.0 + 60) is None


def test_the_stuck_rank_is_the_one_not_waiting_furthest_behind():
    beats = [H.Beat(0, 1, 12, 100.0, "collective"), H.Beat(1, 2, 12, 101.0, "data"),
             H.Beat(2, 3, 11, 102.0, "forward"), H.Beat(3, 4, 12, 99.0, "collective")]
    assert H.stuck_rank(beats).rank == 2
    assert H.stuck_rank(beats[:2]).rank == 1
    assert H.stuck_rank([H.Beat(0, 1, 5, 100.0, "forward"), H.Beat(1, 2, 5, 98.0, "backward")]).rank == 1


def test_a_stall_dumps_the_stacks_and_names_the_stuck_rank(tmp_path, monkeypatch):
    """With this very process as 'rank 1': SIGUSR1 makes faulthandler write its stack into the
    rank's stack file, and the error names the function the rank is in."""
    beat = H.Heartbeat(tmp_path, 1)                       # registers the stack dump on SIGUSR1
    try:
        monkeypatch.setattr(W, "RESCUE_WAIT_S", 0.5)
        wd, _ = _watchdog(tmp_path, floor=1.0)
        wd.step_times = [0.1, 0.1]
        _write(tmp_path, 0, 7, "collective", 100.0, pid=os.getpid())
        _write(tmp_path, 1, 7, "data", 99.0, pid=os.getpid())
        stall = wd.check(now=200.0)
        assert stall is not None and stall.beat.rank == 1 and stall.beat.phase == "data"
        assert any("test_a_stall_dumps_the_stacks" in f or "check" in f for f in stall.frames)
        assert stall.rescue == {"saved": False, "reason": "rank 0 did not answer within 0 s"}
        error = W.stall_error(stall, 2, tmp_path)
        assert error["kind"] == "stall" and error["message"].startswith("rank 1 of 2 stalled in data after step 7")
        assert "--resume" in error["hint"] and "--processes 1" in error["hint"]
    finally:
        beat.close()
        signal.signal(H.DUMP_SIGNAL, signal.SIG_DFL)


def test_top_frames_pick_the_training_thread():
    dump = ("Thread 0x00007f01 (most recent call first):\n"
            "  File \"/x/threading.py\", line 320 in wait\n\n"
            "Thread 0x00007f02 (most recent call first):\n"
            "  File \"/x/heartbeat.py\", line 9 in delay_for_tests\n"
            "  File \"/x/engine/training/step.py\", line 361 in micro\n\n"
            "Current thread 0x00007f03 (most recent call first):\n"
            "  File \"/x/selectors.py\", line 1 in select\n")
    assert H.top_frames(dump, 2) == ['File "/x/heartbeat.py", line 9 in delay_for_tests',
                                     'File "/x/engine/training/step.py", line 361 in micro']
    assert H.top_frames("", 2) == []


def test_the_rescue_watcher_saves_when_asked(tmp_path):
    calls = []
    (tmp_path / "ranks").mkdir()
    watcher = H.RescueWatcher(tmp_path, lambda: calls.append(1) or {"saved": True, "step": 3}, poll_s=0.05)
    try:
        (tmp_path / "ranks" / "save-request").touch()
        deadline = time.time() + 5
        while not (tmp_path / "ranks" / "rescue.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert calls == [1] and '"step": 3' in (tmp_path / "ranks" / "rescue.json").read_text()
    finally:
        watcher.stop()


def test_a_rank_whose_stack_is_inside_a_collective_is_waiting_not_stuck():
    """Both ranks entered forward; rank 0 did so first but is blocked in DDP's buffer broadcast
    (its stack says so): the stuck one is rank 1."""
    beats = [H.Beat(0, 1, 12, 100.0, "forward"), H.Beat(1, 2, 12, 100.5, "forward")]
    frames = {0: ['File "/x/torch/nn/parallel/distributed.py", line 2364 in _distributed_broadcast_coalesced'],
              1: ['File "/x/engine/heartbeat.py", line 107 in delay_for_tests']}
    assert H.stuck_rank(beats).rank == 0                  # by phase and time alone
    assert H.stuck_rank(beats, frames).rank == 1


def test_a_stopped_or_silent_rank_is_the_first_suspect():
    """The issue's case: both ranks' heartbeats say backward at the same step; rank 0 entered it
    first and waits there in DDP's all-reduce (autograd's frame innermost), rank 1 is stopped and
    wrote no stack. By phase and time alone rank 0 would be named."""
    beats = [H.Beat(0, 1, 3, 100.0, "backward"), H.Beat(1, 2, 3, 100.2, "backward")]
    waiting = ['File "/x/torch/autograd/graph.py", line 825 in _engine_run_backward',
               'File "/x/torch/autograd/__init__.py", line 347 in backward']
    assert H.stuck_rank(beats).rank == 0
    assert H.stuck_rank(beats, {0: waiting, 1: []}).rank == 1                     # its stack did not come
    assert H.stuck_rank(beats, {0: waiting, 1: ['File "/x/m.py", line 1 in f']}).rank == 1   # 0 waits in backward
    assert H.stuck_rank(beats, states={0: "sleeping", 1: "stopped"}).rank == 1
    assert H.stuck_rank(beats[::-1], states={0: "disk-sleep", 1: "running"}).rank == 0
    # a held process outranks the stack evidence: rank 1's stack came, rank 0's did not, rank 1 is stopped
    assert H.stuck_rank(beats, {0: [], 1: waiting}, {0: "sleeping", 1: "tracing-stop"}).rank == 1


@pytest.fixture
def stopped_process():
    """A live process stopped by SIGSTOP, killed afterwards."""
    import subprocess
    import sys
    import psutil
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.time() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED and time.time() < deadline:
        time.sleep(0.01)                                  # the stop takes effect once the process is scheduled
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_stopped_rank_makes_a_stall_before_the_pace_is_known_and_in_a_long_phase(tmp_path, monkeypatch,
                                                                                    stopped_process):
    """No step measured yet (the watchdog saw rank 0 only at step 3) and rank 1 stopped in its
    `checkpoint` phase: either would give it the process-group timeout (30 minutes) — a stopped
    process will not move however long it waits, so --stall-timeout alone applies; rank 1 is named,
    its state said, and rank 0 (this process, dumping its stack) is asked to save."""
    beat = H.Heartbeat(tmp_path, 0)                       # rank 0 = this process: SIGUSR1 dumps its stack
    try:
        monkeypatch.setattr(W, "RESCUE_WAIT_S", 0.3)
        wd, _ = _watchdog(tmp_path, floor=2.0)
        _write(tmp_path, 0, 3, "collective", 100.0, pid=os.getpid())
        _write(tmp_path, 1, 3, "checkpoint", 100.0, pid=stopped_process)
        assert wd.threshold() is None
        assert wd.check(now=101.0) is None                # quiet for 1 s only: under the floor
        stall = wd.check(now=103.0)
        assert stall is not None and stall.beat.rank == 1 and stall.state == "stopped"
        assert stall.threshold_s == 2.0
        error = W.stall_error(stall, 2, tmp_path)
        assert "its process is stopped (SIGSTOP or a debugger)" in error["message"]
        assert stall.rescue["saved"] is False             # nobody answered in this test
    finally:
        beat.close()
        signal.signal(H.DUMP_SIGNAL, signal.SIG_DFL)


def test_without_a_stopped_rank_the_long_phase_still_gets_the_process_group_timeout(tmp_path):
    wd, _ = _watchdog(tmp_path, floor=2.0)
    _write(tmp_path, 0, 3, "collective", 100.0)
    _write(tmp_path, 1, 3, "checkpoint", 100.0)
    assert wd.check(now=200.0) is None                    # no pace yet, nobody stopped: no stall
    wd.step_times = [0.1, 0.1]
    assert wd.check(now=200.0) is None                    # a checkpoint may take long
