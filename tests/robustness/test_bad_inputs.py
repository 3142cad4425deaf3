"""Messy folders and hostile files through the real command line: broken files are skipped and
reported, valid oddities are used, training goes on, annotation files cannot reach outside."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from awkward import make_awkward_corpus  # noqa: E402
from runhelp import TINY, make_colour_folder, train_here  # noqa: E402


def _frelon(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_training_on_the_awkward_corpus_skips_the_broken_and_uses_the_odd(tmp_path):
    corpus = make_awkward_corpus(tmp_path / "data")
    r = _frelon("train", "--data", tmp_path / "data", "--out", tmp_path / "runs", "--epochs", "1", *TINY,
                "--backbone", "resnet18", "--val-split", "0.3", "--events", "-")
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    report = next(e for e in events if e["type"] == "data_report")
    skipped = {os.path.basename(s["path"]) for s in report["skipped"]}
    for kind, f in corpus["files"].items():
        name = os.path.basename(os.fsdecode(f["path"]))
        if f["expect"] == "skipped":
            assert any(name in s or s in name for s in skipped), (kind, name)
        elif f["expect"] == "ignored":
            assert not any(name == s for s in skipped), (kind, name)
    used = sum(split["images"] for split in report["splits"].values())
    assert used == len(corpus["valid"])                    # every valid oddity is used
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"


def test_predict_on_hostile_coco_file_names_does_not_leave_the_folder(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=4)
    run = train_here("--data", data, "--out", tmp_path / "runs", "--epochs", "1", *TINY, "--backbone", "resnet18")
    secret = tmp_path / "secret.png"
    (data / "red" / "000.png").replace(secret)                   # a picture outside the dataset folder
    inside = tmp_path / "set"
    inside.mkdir()
    (data / "red" / "001.png").replace(inside / "ok.png")
    coco = {"images": [{"id": 1, "file_name": "../secret.png"}, {"id": 2, "file_name": str(secret)},
                       {"id": 3, "file_name": "ok.png"}], "annotations": [], "categories": []}
    (inside / "set.json").write_text(json.dumps(coco))
    out = tmp_path / "preds.json"
    r = _frelon("predict", "--run", run, "--input", inside / "set.json", "--out", out)
    assert r.returncode == 0, r.stderr
    preds = json.loads(out.read_text())
    assert [p["image_id"] for p in preds] == [3]
    assert r.stderr.count("outside the dataset folder") == 2


def test_a_malformed_annotation_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "ann.json"
    bad.write_text('{"images": [], "annotations": [ {"id": 1,, } ]}')
    for cmd in (["check", "--data", bad, "--task", "detect", "--json"],
                ["train", "--data", bad, "--task", "detect", "--out", tmp_path / "runs", *TINY]):
        r = _frelon(*cmd)
        assert r.returncode == 1 and str(bad) in r.stderr and "line 1" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
