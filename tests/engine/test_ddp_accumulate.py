"""Gradient accumulation under DDP (`--accumulate N` with `--processes 2`): the engine's micro-step
skips the all-reduce on inner steps (`no_sync`) and still ends each optimizer step with the
gradient of one process on the joined batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_accumulation_on_two_ranks_matches_one_process_on_the_joined_batch(tmp_path):
    out = tmp_path / "acc.json"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(HERE / "ddp_accumulate_check.py"), str(out)], timeout=240, capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(out.read_text())
    assert found["grad_scale"] > 1e-3                                   # a real gradient, not zeros
    assert found["max_grad_diff"] <= 1e-5 * max(1.0, found["grad_scale"])
    inner, last = found["rank_difference_after_each_micro_step"][:-1], found["rank_difference_after_each_micro_step"][-1]
    assert all(d > 1e-4 for d in inner), inner          # no_sync: no all-reduce on the inner micro-steps
    assert last == 0.0                                   # the last one synchronises: every rank holds the mean
