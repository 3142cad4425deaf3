"""Detection end to end through the command line: check, train (events, checkpoints, val
predictions), predict (COCO results, drawings, heatmaps), and the detection helpers of eval/export."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from frelon import events
from frelon.engine.centernet import shapes

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}     # tiny models: one thread is fastest, and no spinning


def frelon(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run of CenterNet (resnet18, random weights) on 64 px shapes, task inferred."""
    root = tmp_path_factory.mktemp("detect")
    data = shapes.make_dataset(root / "shapes", 12, 4, size=64, seed=5)
    r = frelon("train", "--data", str(data), "--backbone", "resnet18", "--weights", "none",
               "--image-size", "64", "--epochs", "2", "--batch-size", "4", "--workers", "0",
               "--out", str(root / "runs"), "--events", "-")
    assert r.returncode == 0, r.stderr[-3000:]
    evs = [events.parse_line(line) for line in r.stdout.splitlines()]
    assert all(e is not None for e in evs), "stdout holds events only"
    run_dir = Path(next(e["run_dir"] for e in evs if e["type"] == "run_started"))
    return {"root": root, "data": data, "events": evs, "run": run_dir}


def test_training_events_checkpoints_and_val_predictions(trained):
    evs = trained["events"]
    started = next(e for e in evs if e["type"] == "run_started")
    assert started["task"] == "detect" and started["classes"] == list(shapes.CLASSES)
    report = next(e for e in evs if e["type"] == "data_report")
    assert report["splits"]["train"]["images"] == 12 and report["splits"]["val"]["images"] == 4
    steps = [e for e in evs if e["type"] == "step"]
    assert steps and all(set(e["loss_parts"]) == {"heatmap", "size", "offset"} for e in steps)
    ends = [e for e in evs if e["type"] == "epoch_end"]
    assert len(ends) == 2
    for e in ends:
        assert {"loss", "map", "map_50", "per_class"} <= set(e["val"])
        assert set(e["val"]["per_class"]) == set(shapes.CLASSES)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "completed"
    assert evs[-1]["best"]["metric"] == "map"
    run = trained["run"]
    assert (run / "checkpoints" / "best.safetensors").is_file()
    model = json.loads((run / "model.json").read_text())
    assert model["task"] == "detect" and model["detector"]["category_ids"] == [1, 2, 3]
    preds = json.loads((run / "predictions" / "val.json").read_text())
    assert preds and {"image_id", "file_name", "category_id", "bbox", "score"} <= set(preds[0])
    assert min(p["score"] for p in preds) >= 0.01


def test_predict_coco_json_and_folder_with_drawings_and_heatmaps(trained, tmp_path):
    data, run = trained["data"], trained["run"]
    out = tmp_path / "preds.json"
    r = frelon("predict", "--run", str(run), "--input", str(data / "val" / "annotations.json"),
               "--out", str(out), "--draw", str(tmp_path / "draw"), "--heatmaps", str(tmp_path / "heat"))
    assert r.returncode == 0, r.stderr[-3000:]
    preds = json.loads(out.read_text())
    ids = {im["id"] for im in json.loads((data / "val" / "annotations.json").read_text())["images"]}
    assert preds and {p["image_id"] for p in preds} <= ids
    assert all(len(p["bbox"]) == 4 and p["category_id"] in (1, 2, 3) for p in preds)
    drawn = sorted((tmp_path / "draw").iterdir())
    heat = sorted((tmp_path / "heat").iterdir())
    assert len(drawn) == len(heat) == 4
    assert Image.open(heat[0]).size == Image.open(data / "val" / "00000.png").size
    assert Image.open(heat[0]).mode == "L"

    folder = tmp_path / "folder"
    folder.mkdir()
    Image.open(data / "val" / "00000.png").resize((90, 50)).save(folder / "wide.png")
    (folder / "broken.jpg").write_bytes(b"not a picture")
    out2 = tmp_path / "preds2.json"
    r = frelon("predict", "--run", str(run), "--input", str(folder), "--out", str(out2))
    assert r.returncode == 0, r.stderr[-3000:]
    preds2 = json.loads(out2.read_text())
    assert {p["file_name"] for p in preds2} <= {"wide.png"}
    assert all(0 <= p["bbox"][0] <= 90 and 0 <= p["bbox"][1] <= 50 for p in preds2)
    assert "broken.jpg" in r.stderr


def test_check_reports_and_fatal_errors_exit_nonzero(trained, tmp_path):
    data = trained["data"]
    r = frelon("check", "--data", str(data), "--task", "detect", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["task"] == "detect" and report["layout"] == "coco"
    assert report["images"] and set(report["images"][0]) >= {"path", "boxes", "labels"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [\n{"id": 1,\n}]}')
    r = frelon("check", "--data", str(bad), "--task", "detect", "--json")
    assert r.returncode != 0
    assert "bad.json" in r.stderr and "line 3" in r.stderr and r.stdout == ""


def test_evaluate_and_onnx_helpers_on_the_trained_run(trained):
    import numpy as np
    import torch

    from frelon.engine.centernet.predict import evaluate_detection, onnx_module
    from frelon.engine.inference import load_run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = load_run(trained["run"], device="cpu")
        metrics = evaluate_detection(loaded, str(trained["data"]))
    finally:
        torch.set_num_threads(threads)
    assert metrics["images"] == 4 and set(metrics["per_class"]) == set(shapes.CLASSES)
    assert 0.0 <= metrics["map"] <= 1.0

    ort = pytest.importorskip("onnxruntime")
    module, names = onnx_module(loaded.model)
    x = torch.randn(2, 3, 64, 64)
    path = trained["root"] / "model.onnx"
    torch.onnx.export(module, (x,), str(path), input_names=["images"], output_names=list(names),
                      dynamic_axes={"images": {0: "batch"}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = module(x)
    assert max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)) < 1e-4
