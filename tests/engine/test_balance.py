"""Uneven classes: the data report's imbalance through the CLI and `--balance auto` in a run, balanced accuracy
against independent oracles (a confusion matrix worked by hand; scikit-learn on the run's own
predictions), and the class-balanced sampler's draws counted over an epoch on two ranks."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from frelon.common.metrics import balanced_accuracy

from runhelp import TINY, events_of, make_colour_folder, run_cli, train_here


@pytest.fixture
def uneven(tmp_path) -> Path:
    """red 24, blue 6 pictures (32 px): 19 : 5 in training after the 20 % split, above 3 : 1."""
    root = tmp_path / "uneven"
    make_colour_folder(root, per_class=24, size=(32, 32), classes=("red",))
    make_colour_folder(root, per_class=6, size=(32, 32), classes=("blue",), seed=1)
    return root


def test_the_report_measures_the_imbalance_and_training_balances_it(uneven, tmp_path, monkeypatch):
    r = run_cli("check", "--data", uneven)
    assert r.returncode == 0, r.stderr
    assert "class imbalance 3.8:1 ('red' vs 'blue'): balanced by class-balanced sampling" in r.stdout
    assert "Frelon balances by default (--balance auto: class-balanced sampling" in r.stdout   # the warning

    # a run (the CLI's parser and run_training, in this process): its data_report, its log, its config,
    # and the draws of its training sampler
    from frelon.engine.training import loaders
    samplers = []

    class Recorded(loaders.TrainSampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            samplers.append(self)
    monkeypatch.setattr(loaders, "TrainSampler", Recorded)
    run = train_here("--data", uneven, "--out", tmp_path / "runs", "--epochs", "1", *TINY)
    assert samplers and samplers[-1].weights is not None
    weights = samplers[-1].weights.tolist()
    assert sorted(set(round(w, 6) for w in weights)) == [round(24 / (2 * 19), 6), round(24 / (2 * 5), 6)]
    events = events_of(run)
    assert events[0]["type"] == "data_report"
    assert events[0]["imbalance"] == {"ratio": 19 / 5, "largest": "red", "smallest": "blue", "threshold": 3.0,
                                      "balance": "sampler"}
    assert any(e["type"] == "log" and "balanced by class-balanced sampling" in e["message"] for e in events)
    assert json.loads((run / "config.json").read_text())["balance"] == "sampler"      # settled, recorded
    # balanced accuracy, against scikit-learn on the best epoch's own predictions
    from sklearn.metrics import balanced_accuracy_score
    preds = json.loads((run / "predictions" / "val.json").read_text())
    expected = balanced_accuracy_score([p["true"] for p in preds], [p["predicted"] for p in preds])
    assert events[-1]["best"]["metrics"]["balanced_accuracy"] == pytest.approx(expected)
    assert events[-1]["best"]["metric"] == "balanced_accuracy"           # a balanced run keeps its best by it
    assert events[-1]["best"]["score"] == pytest.approx(expected)
    assert [e for e in events if e["type"] == "epoch_end"][-1]["val"]["balanced_accuracy"] == pytest.approx(expected)


def test_balanced_accuracy_of_a_confusion_matrix_worked_by_hand():
    # rows true, columns predicted: recalls 9/10, 1/4 and a class without images (left out)
    assert balanced_accuracy([[9, 1, 0], [3, 1, 0], [0, 0, 0]]) == pytest.approx((0.9 + 0.25) / 2)
    # always answering the large class: accuracy 0.9, balanced accuracy 1/2
    assert balanced_accuracy([[90, 0], [10, 0]]) == pytest.approx(0.5)
    assert balanced_accuracy([[0, 0], [0, 0]]) is None


def test_the_balanced_sampler_draws_each_class_about_equally_on_every_rank():
    from frelon.common.choices import CLASSIFY
    from frelon.common.train_config import TrainConfig
    from frelon.engine.sampling import TrainSampler
    from frelon.engine.tasks import get_task
    from frelon.engine.tasks.base import Scanned
    from frelon.engine.training.balancing import sample_weights
    labels = [0] * 900 + [1] * 100
    scanned = Scanned(classes=["big", "small"], report={}, train=[(f"{i}.png", c) for i, c in enumerate(labels)],
                      val=[])
    weights = sample_weights(TrainConfig(balance="sampler"), get_task(CLASSIFY), scanned)
    assert sample_weights(TrainConfig(balance="off"), get_task(CLASSIFY), scanned) is None

    def epoch(weights, epoch=0, skip=0):
        """Both ranks' draws of one epoch: (place-ordered pairs per rank)."""
        out = []
        for rank in range(2):
            s = TrainSampler(len(labels), 2, rank, seed=3, weights=weights)
            s.set_epoch(epoch, skip)
            out.append(list(s))
        return out

    ranks = epoch(weights)
    drawn = [labels[i] for rank in ranks for i, _ in rank]
    assert len(drawn) == 1000 and len(ranks[0]) == len(ranks[1]) == 500     # an epoch's length, split in two
    assert 440 <= Counter(drawn)[1] <= 560            # ~500 of 1000 draws: binomial sd 16
    seeds = [seed for rank in ranks for _, seed in rank]
    assert len(set(seeds)) == len(seeds)               # a picture drawn twice is augmented twice differently
    assert epoch(weights, epoch=1) != ranks            # another epoch, other draws
    assert epoch(weights, skip=7)[1] == ranks[1][7:]   # a resume skips into the same draws
    unbalanced = [labels[i] for rank in epoch(None) for i, _ in rank]
    assert Counter(unbalanced)[1] == 100               # without weights: each picture once


def test_loss_weights_weigh_each_class_by_n_over_k_times_its_count():
    """--balance weights: the classifier's loss is the weighted cross-entropy, worked by hand."""
    import math

    import torch

    from frelon.common.choices import CLASSIFY
    from frelon.common.train_config import TrainConfig
    from frelon.engine.tasks import get_task
    from frelon.engine.tasks.base import Scanned
    task = get_task(CLASSIFY)
    scanned = Scanned(classes=["big", "small"], report={}, train=[(f"{i}.png", int(i >= 9)) for i in range(10)], val=[])
    pre = {"mean": [0.5] * 3, "std": [0.5] * 3}
    task.datasets(scanned, TrainConfig(balance="weights"), 32, pre)
    assert task.loss_weights == pytest.approx([10 / (2 * 9), 10 / (2 * 1)])
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])          # a 'big' at ln 2, a 'small' at ln(1 + e²)
    loss, _, _ = task.loss(lambda x: x, (logits, torch.tensor([0, 1])), "cpu")
    w0, w1 = 10 / 18, 10 / 2
    assert float(loss) == pytest.approx((w0 * math.log(2) + w1 * math.log(1 + math.e ** 2)) / (w0 + w1))
    task.datasets(scanned, TrainConfig(balance="off"), 32, pre)
    loss, _, _ = task.loss(lambda x: x, (logits, torch.tensor([0, 1])), "cpu")
    assert float(loss) == pytest.approx((math.log(2) + math.log(1 + math.e ** 2)) / 2)


def test_a_run_folder_from_before_the_option_resumes_unbalanced():
    from frelon.common.train_config import TrainConfig, from_saved
    assert TrainConfig().balance == "auto"
    assert from_saved({"epochs": 3}, source="config.json").balance == "off"          # as it trained
    assert from_saved({"balance": "sampler"}, source="config.json").balance == "sampler"
