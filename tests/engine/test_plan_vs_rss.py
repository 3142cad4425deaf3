"""`frelon plan`'s CPU forecast against one independent measurement: how far the resident set of
a real training process rose at its peak (Linux's VmHWM), not the profiler the forecast is made
with. The forecast counts tensors only; the process also holds what the forecast leaves out on
purpose (decoded images, the validation pass, the allocator's slack), measured at 15 % more on the
development machine. So the forecast may not exceed the measured growth, nor fall below 0.7 of it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runhelp import make_colour_folder

HERE = Path(__file__).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="VmHWM reset is Linux's")
def test_cpu_forecast_matches_the_measured_resident_peak(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=12, classes=("blue", "green", "red"))
    options = ["--data", str(data), "--image-size", "96", "--batch-size", "16", "--weights", "none",
               "--backbone", "resnet18", "--workers", "0"]
    r = subprocess.run([sys.executable, "-m", "frelon", "plan", *options, "--json"], capture_output=True, text=True,
                       timeout=240, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    forecast = json.loads(r.stdout)
    assert forecast["device"] == "cpu" and forecast["batch_size"] == 16
    r = subprocess.run([sys.executable, str(HERE / "rss_peak_check.py"), str(data), str(tmp_path / "runs"), "96", "16"],
                       capture_output=True, text=True, timeout=240, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    measured = json.loads(r.stdout.splitlines()[-1])
    assert measured["status"] == "completed"
    ratio = forecast["predicted_peak_bytes"] / measured["grown_bytes"]
    assert 0.7 <= ratio <= 1.0, (forecast["predicted_peak_bytes"], measured["grown_bytes"], ratio)
