"""A real `frelon train` process stopped by SIGINT (Ctrl-C) and by SIGTERM (what the app, a
scheduler or `kill` send): it finishes the step, saves a checkpoint, ends with run_finished
`stopped`, exits 0, and the run resumes from that checkpoint. (`--print-launch`: test_multinode.py.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from frelon.engine import rundir

from runhelp import TINY, events_of, only_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}     # tiny models: one thread is fastest, and no spinning


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_real_run_with_a_checkpoint_and_it_resumes(colour_data, tmp_path, sig):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
                             "--epochs", "50", *TINY, "--backbone", "resnet18", "--log-interval", "0",
                             "--events", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["type"] == "step" and seen[-1]["step"] >= 2:
            proc.send_signal(sig)
            break
    rest, err = proc.communicate(timeout=120)
    seen += [json.loads(x) for x in rest.splitlines()]
    assert proc.returncode == 0, err[-2000:]
    assert seen[-1]["type"] == "run_finished" and seen[-1]["status"] == "stopped"
    done = seen[-1]["steps_done"]
    assert 2 <= done <= max(e["step"] for e in seen if e["type"] == "step") + 1 and done < 50 * 4
    run = only_run(runs)
    _, meta, _ = rundir.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["progress"]["step"] == done                               # saved where it stopped
    assert "Traceback" not in err and "KeyboardInterrupt" not in err

    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--resume", str(run), "--epochs", "1"],
                       capture_output=True, text=True, timeout=240, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    evs = events_of(run)
    resumed = evs[[i for i, e in enumerate(evs) if e["type"] == "run_started"][-1]:]
    steps = [e["step"] for e in resumed if e["type"] == "step"]
    assert steps[0] == done + 1 and resumed[-1]["status"] == "completed"
