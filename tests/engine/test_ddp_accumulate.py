"""Gradient accumulation under DDP (`--accumulate N` with `--processes 2`): the engine's micro-step
skips the all-reduce on inner steps (`no_sync`) and still ends each optimizer step with the
gradient of one process on the joined batch."""
from __future__ import annotations

import json


def test_accumulation_on_two_ranks_matches_one_process_on_the_joined_batch(ddp_checks):
    """ddp_accumulate_check.py under torchrun (launched with ddp_check.py: conftest.py's ddp_checks)."""
    r = ddp_checks["result"]
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(ddp_checks["accumulate"].read_text())
    assert found["grad_scale"] > 1e-3                                   # a real gradient, not zeros
    assert found["max_grad_diff"] <= 1e-5 * max(1.0, found["grad_scale"])
    inner, last = found["rank_difference_after_each_micro_step"][:-1], found["rank_difference_after_each_micro_step"][-1]
    assert all(d > 1e-4 for d in inner), inner          # no_sync: no all-reduce on the inner micro-steps
    assert last == 0.0                                   # the last one synchronises: every rank holds the mean
