"""Multi-label classification through the real CLI, against the labels planted in the pictures
(shapes_multilabel.py: a label is a coloured shape present) and a hand-worked AP."""
from __future__ import annotations

import json

import pytest
from sklearn.metrics import average_precision_score

from frelon.cli import main
from frelon.common.metrics import average_precision, best_threshold, f1_at

from runhelp import events_of, only_run, run_cli
from shapes_multilabel import LABELS, planted, write_csv_set, write_folder_set


def test_average_precision_by_hand():
    # ranked 0.9 (yes) 0.8 (no) 0.7 (yes) 0.6 (no) 0.5 (yes): each positive's precision, 1, 2/3, 3/5,
    # weighs a third of the recall
    assert average_precision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1]) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # a tie is one step: at 0.5 one of two is right (recall 1/2), at 0.1 two of three (recall 1)
    assert average_precision([0.5, 0.5, 0.1], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision([0.3, 0.2], [0, 0]) is None
    # the best F1 takes the two positives; the threshold sits halfway to the next score down
    assert best_threshold([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]) == pytest.approx(0.55)
    assert f1_at([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], 0.5) == pytest.approx(2 * 1 / (2 + 2))


def frelon(capsys, *args) -> dict:
    """`frelon ARGS --json` through the CLI's own main, in this process (no torch import to wait for)."""
    capsys.readouterr()
    assert main([*map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_doctor_tells_multi_label_data_in_both_forms(tmp_path, capsys):
    folders = write_folder_set(tmp_path / "folders", count=21)
    pairs = sum(1 for _, labels in planted(21) if len(labels) == 2)
    as_classes = frelon(capsys, "check", "--data", folders)
    assert as_classes["task"] == "classify"
    assert any("--task multilabel" in w for w in as_classes["warnings"])
    report = frelon(capsys, "check", "--data", folders, "--task", "multilabel")
    assert report["task"] == "multilabel" and report["classes"] == sorted(LABELS)
    assert len(report["multi_folder"]) == pairs
    assert report["label_sets"] == {"1": 21 - pairs - 3, "2": pairs}     # 3 pictures had no label: not writable
    csv_report = frelon(capsys, "check", "--data", write_csv_set(tmp_path / "csv", count=21))
    assert csv_report["task"] == "multilabel"                            # a CSV is multi-label data
    assert csv_report["label_sets"] == {"0": 3, "1": 21 - pairs - 3, "2": pairs}
    assert sum(s["images"] for s in csv_report["splits"].values()) == 21


def test_train_predict_eval_against_the_planted_labels(tmp_path, capsys, one_thread):
    table = write_csv_set(tmp_path / "set", count=42)
    runs = tmp_path / "runs"
    r = run_cli("train", "--task", "multilabel", "--data", table, "--out", runs, "--epochs", "2",
                "--image-size", "32", "--batch-size", "8", "--weights", "none", "--workers", "0",
                "--backbone", "resnet18", "--lr", "0.003", "--augment", "none", "--warmup-epochs", "0")
    assert r.returncode == 0, r.stderr
    run = only_run(runs)
    ends = [e for e in events_of(run) if e["type"] == "epoch_end"]
    assert set(ends[-1]["val"]["per_label"]) == set(LABELS)
    assert json.loads((run / "model.json").read_text())["task"] == "multilabel"
    thresholds = json.loads((run / "thresholds.json").read_text())["thresholds"]

    frelon(capsys, "predict", "--run", run, "--input", tmp_path / "set" / "pics", "--out", tmp_path / "p.json")
    predictions = {x["file_name"]: x for x in json.loads((tmp_path / "p.json").read_text())}
    truth = dict(planted(42))
    assert set(predictions) == set(truth)
    for x in predictions.values():            # a label set: the labels at or above their threshold
        assert x["predicted"] == [c for c in sorted(LABELS) if x["scores"][c] >= thresholds[c]]

    measured = frelon(capsys, "eval", "--run", run, "--data", table)
    names = sorted(truth)
    ap = {c: average_precision_score([int(c in truth[n]) for n in names], [predictions[n]["scores"][c] for n in names])
          for c in LABELS}
    for c in LABELS:                          # eval's AP and F1 are those of predict's output on the planted labels
        assert measured["per_label"][c]["ap"] == pytest.approx(ap[c], abs=1e-4)
        hits = sum(1 for n in names if c in truth[n] and c in predictions[n]["predicted"])
        said = sum(1 for n in names if c in predictions[n]["predicted"])
        real = sum(1 for n in names if c in truth[n])
        assert measured["per_label"][c]["f1"] == pytest.approx(2 * hits / (said + real))
    assert measured["map"] == pytest.approx(sum(ap.values()) / 3, abs=1e-4)
    assert measured["map"] > 0.75             # it learnt the shapes (chance: about 0.45)

    # explain: one Grad-CAM map for each label predict gives the picture (its top label when none)
    chosen = [n for n in names if len(predictions[n]["predicted"]) == 2][:1] + \
        [n for n in names if len(predictions[n]["predicted"]) <= 1][:2]
    pics = [tmp_path / "set" / "pics" / n for n in chosen]
    explained = frelon(capsys, "explain", "--run", run, "--input", *pics, "--out", tmp_path / "maps")
    assert len(explained["images"]) == len(chosen) == 3
    for entry in explained["images"]:
        p = predictions[entry["file_name"]]
        expected = p["predicted"] or [max(p["scores"], key=p["scores"].get)]
        assert sorted(m["class"] for m in entry["maps"]) == sorted(expected)
