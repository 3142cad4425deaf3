"""Early stopping through the CLI: `--patience N` ends a run whose validation score cannot improve
after N + 1 epochs, `completed`, with the reason in `run_finished` and the log; a resumed run goes
on counting where it stopped (the count is the checkpointed best epoch's)."""
from __future__ import annotations

import json

from runhelp import TINY, events_of, only_run, run_cli

# the weights cannot move (an LR of 1e-30, a frozen body whose batch-norm statistics stay):
# every epoch's validation is the first one's, so only epoch 1 is ever "better"
FROZEN = ["--freeze-backbone", "--lr", "1e-30", "--weight-decay", "0", "--warmup-epochs", "0"]


def _finished(run):
    events = events_of(run)
    return events, [e for e in events if e["type"] == "run_finished"][-1]


def test_patience_stops_a_run_that_cannot_improve_and_a_resume_keeps_counting(colour_data, tmp_path):
    runs = tmp_path / "runs"
    r = run_cli("train", "--data", colour_data, "--out", runs, "--epochs", "10", "--patience", "2",
                *FROZEN, *TINY, "--events", "-")
    assert r.returncode == 0, r.stderr
    run = only_run(runs)
    events, finished = _finished(run)
    assert json.loads(r.stdout.splitlines()[-1]) == finished
    assert finished["status"] == "completed" and finished["epochs_done"] == 3     # N + 1 epochs, not 10
    assert "2 epoch(s) without a better validation accuracy than epoch 1's" in finished["reason"]
    assert finished["best"]["epoch"] == 0 and (run / "checkpoints" / "best.safetensors").exists()
    assert any(e["type"] == "log" and e["message"] == finished["reason"] for e in events)
    assert [e["epoch"] for e in events if e["type"] == "epoch_end"] == [0, 1, 2]

    # resumed with --patience 3: it goes on counting from epoch 1 (epoch 4 is the third without a
    # better score), not three more epochs from the resume
    r = run_cli("train", "--resume", run, "--epochs", "10", "--patience", "3")
    assert r.returncode == 0, r.stderr
    _, finished = _finished(run)
    assert finished["status"] == "completed" and finished["epochs_done"] == 4, finished
    assert "3 epoch(s) without a better" in finished["reason"]
