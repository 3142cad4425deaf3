"""Several ranks (gloo on CPU): the same DDP code path `--gpus N` takes on GPUs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runhelp import TINY, events_of, only_run, train_here


def test_two_ranks_match_one_process_on_the_joined_batch(ddp_checks):
    """ddp_check.py under torchrun (launched with ddp_accumulate_check.py: conftest.py's ddp_checks)."""
    assert ddp_checks["result"].returncode == 0, ddp_checks["result"].stderr[-3000:]
    r = json.loads(ddp_checks["ddp"].read_text())
    assert r["max_grad_diff"] <= 1e-5
    assert r["sharded"]["loss"] == pytest.approx(r["single"]["loss"], abs=1e-6)
    for key in ("accuracy", "confusion_matrix", "per_class", "images"):
        assert r["sharded"][key] == r["single"][key], key
    assert r["sharded"]["images"] == 7
    assert [d[0] for d in r["sharded_details"]] == list(range(7))


def test_two_cpu_ranks_through_the_cli(colour_data, tmp_path):
    runs = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                        "--processes", "2", "--epochs", "1", "--lr", "0.001", "--ref-batch", "4", "--accumulate", "2",
                        *TINY, "--batch-size", "2", "--log-interval", "0", "--checkpointing", "blocks",
                        "--backbone", "resnet18", "--events", "-"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    evs = [json.loads(line) for line in r.stdout.splitlines()]
    assert evs == events_of(only_run(runs))
    started = next(e for e in evs if e["type"] == "run_started")
    assert started["world_size"] == 2 and started["global_batch"] == 2 * 2 * 2
    assert started["effective_lr"] == pytest.approx(0.001 * (8 / 4) ** 0.5)     # AdamW: square-root rule
    steps = [e for e in evs if e["type"] == "step"]
    assert steps and all(sorted(m["rank"] for m in e["memory"]) == [0, 1] for e in steps)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "completed"


def _rank_pids(root: psutil.Process) -> dict[int, int]:
    found = {}
    for child in root.children(recursive=True):
        try:
            env = child.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if "RANK" in env and "frelon" in " ".join(child.cmdline()):
            found[int(env["RANK"])] = child.pid
    return found


def test_a_killed_rank_ends_the_run_with_a_distributed_error(colour_data, tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                             "--processes", "2", "--epochs", "100", *TINY, "--batch-size", "2",
                             "--backbone", "resnet18", "--events", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, FRELON_DIST_TIMEOUT="30"))
    launcher = psutil.Process(proc.pid)
    for line in proc.stdout:
        if json.loads(line)["type"] == "step":
            break
    ranks = _rank_pids(launcher)
    assert set(ranks) == {0, 1}
    family = [launcher, *launcher.children(recursive=True)]
    started = time.time()
    os.kill(ranks[1], signal.SIGKILL)
    rest = proc.communicate(timeout=120)[0]
    assert time.time() - started < 90
    assert proc.returncode == 1
    evs = [json.loads(x) for x in rest.splitlines()]
    error = next(e for e in evs if e["type"] == "error")
    assert error["kind"] == "distributed" and "rank 1" in error["message"]
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "failed"
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_more_gpus_than_present_is_refused_before_anything_starts(colour_data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(tmp_path / "runs"),
                        "--gpus", "64", *TINY], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "--gpus 64 asked for" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_sync_bn_on_cpu_is_refused(colour_data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(tmp_path / "runs"),
                        "--sync-bn", *TINY], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "--sync-bn needs CUDA" in r.stderr


def test_resume_on_two_ranks_rescales_the_lr_from_the_resume_point(colour_data, tmp_path):
    runs = tmp_path / "runs"
    common = [*TINY, "--batch-size", "2", "--backbone", "resnet18", "--log-interval", "0", "--ref-batch", "2"]
    run = train_here("--data", colour_data, "--out", runs, "--epochs", "1", *common)    # the one-rank run: setup
    first = events_of(run)
    one_rank = next(e for e in first if e["type"] == "run_started")
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--resume", str(run), "--epochs", "2",
                        "--processes", "2", "--log-interval", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    evs = events_of(run)[len(first):]
    started = next(e for e in evs if e["type"] == "run_started")
    assert started["resumed_from"]["world_size_before"] == 1 and started["world_size"] == 2
    assert started["effective_lr"] == pytest.approx(2 ** 0.5 * one_rank["effective_lr"])   # 2× the batch, AdamW: √2
    steps = [e["step"] for e in evs if e["type"] == "step"]
    assert steps[0] == one_rank["total_steps"] + 1 and steps[-1] == started["total_steps"]
    assert evs[-1]["status"] == "completed" and evs[-1]["epochs_done"] == 2, [e["type"] for e in evs[-6:]]


@pytest.mark.parametrize("status, ok", [("completed", True), ("stopped", True), ("failed", False)])
def test_a_rank_that_aborts_after_the_run_ended_does_not_undo_it(tmp_path, monkeypatch, capsys, status, ok):
    """Gloo can abort a rank at interpreter exit, after run_finished is written: the launcher
    then reports what the run did, not the rank's exit."""
    from frelon.common import events
    from frelon.engine import launch
    finished = events.dumps(events.make("run_finished", status=status, epochs_done=1, best=None,
                                        duration_s=1.0, run_dir=str(tmp_path)))
    script = (f"import os, pathlib; pathlib.Path({str(tmp_path / 'events.jsonl')!r}).write_text({finished!r} + '\\n'); "
              "os.abort()")
    monkeypatch.setattr(launch, "launch_command", lambda *a, **k: [sys.executable, "-c", script])
    code = launch.run_ranks([], 2, None, "x", stream_events=False, control_stdin=False, run_dir=str(tmp_path))
    assert (code == 0) == ok
    assert ("ended badly after the run" in capsys.readouterr().err) == ok


# ---------------------------------------------------------------- the stall watchdog

def _family_gone(family) -> bool:
    return not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_hung_rank_is_named_with_its_phase_and_stack_and_the_run_resumes_on_one_rank(colour_data, tmp_path):
    """Rank 1 hangs on entering its forward pass after step 12: the watchdog names it and its
    phase, its stack shows the hanging function, rank 0 saves step 12, no process is left, and
    the run continues on one rank at step 13 with the LR of the square-root rule for 1 rank."""
    runs = tmp_path / "runs"
    common = ["--processes", "2", *TINY, "--batch-size", "2", "--backbone", "resnet18", "--log-interval", "0",
              "--schedule", "constant", "--warmup-epochs", "0", "--lr", "0.001", "--ref-batch", "4"]
    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                             "--epochs", "40", "--stall-timeout", "2", *common, "--events", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, FRELON_TEST_DELAY="1:forward:12:600"))
    family = [psutil.Process(proc.pid)]
    evs = []
    for line in proc.stdout:
        evs.append(json.loads(line))
        if evs[-1]["type"] == "step":
            family += family[0].children(recursive=True)
            break
    rest = proc.communicate(timeout=120)[0]       # times out if a rank outlived the launcher
    evs += [json.loads(x) for x in rest.splitlines()]
    assert proc.returncode == 1
    steps = [e for e in evs if e["type"] == "step"]
    stalled_at = next(i for i, e in enumerate(evs) if e["type"] == "error")
    error = evs[stalled_at]
    assert error["kind"] == "stall" and error["rank"] == 1 and error["phase"] == "forward" and error["step"] == 12
    assert "delay_for_tests" in Path(error["stack_file"]).read_text()
    assert any("delay_for_tests" in f for f in error["frames"])
    # detected once the threshold has passed, within a few seconds (the one-second look, the stacks)
    last_step_time = max(e["time"] for e in steps)
    assert error["threshold_s"] <= error["quiet_s"] <= error["time"] - last_step_time < error["threshold_s"] + 8
    rescued = [e for e in evs[:stalled_at] if e["type"] == "checkpoint" and not e["best"]][-1]
    assert rescued["step"] == 12 == steps[-1]["step"]
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "failed"
    psutil.wait_procs(family, timeout=10)
    assert _family_gone(family)

    run = only_run(runs)
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--resume", str(run), "--processes", "1",
                        "--epochs", "4", "--log-interval", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    after = events_of(run)[len(evs):]
    resumed = [e for e in after if e["type"] == "step"]
    assert resumed[0]["step"] == 13
    assert resumed[0]["lr"] == pytest.approx(steps[-1]["lr"] / 2 ** 0.5)     # AdamW: √(global batch ratio)
    assert after[-1]["status"] == "completed"


def test_a_slow_but_live_rank_is_not_a_stall_and_heartbeats_are_reported(colour_data, tmp_path):
    """Rank 1 takes a second longer every step, well past the 0.5 s floor: the threshold follows
    the run's pace, so the run completes; `heartbeat` events show both ranks."""
    runs = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                        "--processes", "2", "--epochs", "2", *TINY, "--batch-size", "2", "--backbone", "resnet18",
                        "--stall-timeout", "0.5", "--events", "-"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, FRELON_TEST_DELAY="1:forward:0:1.0"))
    assert r.returncode == 0, r.stderr[-2000:]
    evs = [json.loads(line) for line in r.stdout.splitlines()]
    assert not [e for e in evs if e["type"] == "error"]
    beats = [e for e in evs if e["type"] == "heartbeat"]
    assert beats and all(sorted(b["rank"] for b in e["ranks"]) == [0, 1] for e in beats)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "completed"


@pytest.mark.parametrize("how", ["stdin", "SIGINT"])
def test_stopping_two_ranks_ends_with_a_checkpoint_at_the_step_reached(colour_data, tmp_path, how):
    """`stop` on the launcher's stdin (what the app sends) or Ctrl+C: rank 0 hears it through the
    launcher and the ranks agree at the next step; the run ends `stopped` with its checkpoint."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                             "--processes", "2", "--epochs", "50", *TINY, "--batch-size", "2", "--backbone", "resnet18",
                             "--log-interval", "0", "--events", "-", "--control", "stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    evs = []
    for line in proc.stdout:
        evs.append(json.loads(line))
        if evs[-1]["type"] == "step" and evs[-1]["step"] >= 3:
            break
    if how == "stdin":
        proc.stdin.write("stop\n")
        proc.stdin.flush()
    else:
        proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    evs += [json.loads(x) for x in rest.splitlines()]
    assert proc.returncode == 0
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "stopped"
    saved = [e for e in evs if e["type"] == "checkpoint" and not e["best"]][-1]
    assert saved["step"] == max(e["step"] for e in evs if e["type"] == "step") == evs[-1]["steps_done"]
