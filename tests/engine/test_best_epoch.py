"""Which epoch becomes best.safetensors: the highest validation score, and of equal scores the
lowest validation loss (not the first: on a small validation split the accuracy ties often)."""
from __future__ import annotations

from frelon.engine import rundir

from runhelp import TINY, events_of, make_colour_folder, train_here


def test_of_equal_validation_scores_the_best_checkpoint_is_the_one_with_the_lower_loss(tmp_path):
    """The colour set reaches full validation accuracy in several epochs of this run; the best
    checkpoint is, of those, the epoch whose validation loss (read from the epoch_end events)
    is the lowest — here a later one than the first to reach it."""
    data = make_colour_folder(tmp_path / "data", per_class=10)
    run = train_here("--data", data, "--out", tmp_path / "runs", *TINY, "--backbone", "resnet18",
                     "--epochs", "5", "--seed", "1",
                     "--lr", "5e-4")   # the LR this run's ties were found at (the automatic one depends on the data)
    events = events_of(run)
    ends = [e for e in events if e["type"] == "epoch_end"]
    top = max(e["val"]["accuracy"] for e in ends)
    tied = [e for e in ends if e["val"]["accuracy"] == top]
    assert len(tied) >= 2, [e["val"] for e in ends]
    expected = min(tied, key=lambda e: e["val"]["loss"])["epoch"]
    assert expected != tied[0]["epoch"], "this run no longer has a tie the first epoch would win"
    finished = next(e for e in events if e["type"] == "run_finished")
    assert finished["best"]["epoch"] == expected
    _, meta, _ = rundir.load_checkpoint(finished["best"]["path"])
    assert meta["epoch"] == expected and meta["score"] == top
