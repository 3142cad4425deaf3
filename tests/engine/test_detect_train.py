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

from frelon.common import events
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


@pytest.fixture(scope="module")
def val_predictions(trained):
    """`frelon predict` on the validation COCO file, with drawings and heatmaps, run once: the
    predict test checks all it wrote, the eval test gives its COCO results to pycocotools."""
    root, data, run = trained["root"], trained["data"], trained["run"]
    out = root / "val-preds.json"
    r = frelon("predict", "--run", str(run), "--input", str(data / "val" / "annotations.json"),
               "--out", str(out), "--draw", str(root / "draw"), "--heatmaps", str(root / "heat"))
    return {"result": r, "out": out, "draw": root / "draw", "heat": root / "heat"}


def test_predict_coco_json_and_folder_with_drawings_and_heatmaps(trained, val_predictions, tmp_path):
    data, run = trained["data"], trained["run"]
    r = val_predictions["result"]
    assert r.returncode == 0, r.stderr[-3000:]
    preds = json.loads(val_predictions["out"].read_text())
    ids = {im["id"] for im in json.loads((data / "val" / "annotations.json").read_text())["images"]}
    assert preds and {p["image_id"] for p in preds} <= ids
    assert all(len(p["bbox"]) == 4 and p["category_id"] in (1, 2, 3) for p in preds)
    drawn = sorted(val_predictions["draw"].iterdir())
    heat = sorted(val_predictions["heat"].iterdir())
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


def test_eval_through_the_cli_matches_pycocotools_on_its_predictions(trained, val_predictions, tmp_path):
    """`frelon eval` against an independent oracle: pycocotools' COCOeval run here on
    `frelon predict`'s COCO results for the same images. A 2-epoch model scores 0 on the real
    boxes, which would make any comparison vacuous, so the ground truth is made from the model's
    own output: each image's top detection (found) plus a box of another class in a corner
    (missed) — an mAP strictly between 0 and 1 that both must compute alike."""
    import contextlib
    import io
    import shutil

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data, run = trained["data"], trained["run"]
    folder = tmp_path / "set"
    shutil.copytree(data / "val", folder)
    real = json.loads((folder / "annotations.json").read_text())
    r = val_predictions["result"]          # `frelon predict` on these images (the same ids)
    assert r.returncode == 0, r.stderr[-3000:]
    preds = json.loads(val_predictions["out"].read_text())
    anns = []
    for im in real["images"]:
        top = max((p for p in preds if p["image_id"] == im["id"]), key=lambda p: p["score"])
        other = top["category_id"] % 3 + 1
        for cat, box in ((top["category_id"], top["bbox"]), (other, [1.0, 1.0, 6.0, 6.0])):
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
    gt_file = folder / "annotations.json"
    gt_file.write_text(json.dumps({**real, "annotations": anns}))

    r = frelon("eval", "--run", str(run), "--data", str(gt_file), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads(r.stdout)
    assert metrics["task"] == "detect" and metrics["images"] == 4
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes([{k: p[k] for k in ("image_id", "category_id", "bbox", "score")}
                                      for p in preds]), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert 0.05 < ev.stats[0] < 0.95, ev.stats
    assert metrics["map"] == pytest.approx(ev.stats[0], abs=1e-6)
    assert metrics["map_50"] == pytest.approx(ev.stats[1], abs=1e-6)


def test_export_through_the_cli_matches_the_run_with_onnxruntime(trained):
    """`frelon export` for a detection run, checked from outside: the ONNX file's three maps, run
    with onnxruntime on the run's own images, against the PyTorch model loaded from the run."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from frelon.engine.centernet.predict import onnx_module
    from frelon.engine.inference import load_run

    run, data = trained["run"], trained["data"]
    r = frelon("export", "--run", str(run), "--format", "onnx")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    pre = json.loads((run / "export" / "preprocessing.json").read_text())
    assert pre["task"] == "detect" and pre["size"] == 64 and pre["classes"] == list(shapes.CLASSES)
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names == result["outputs"] and len(names) == 3
    mean, std = np.array(pre["mean"], "float32"), np.array(pre["std"], "float32")
    batch = np.stack([((np.asarray(Image.open(data / "val" / f"0000{i}.png").convert("RGB").resize((64, 64)),
                                   "float32") / 255 - mean) / std).transpose(2, 0, 1) for i in range(3)])
    got = session.run(None, {session.get_inputs()[0].name: batch.astype("float32")})
    module, torch_names = onnx_module(load_run(run, device="cpu").model)
    module.eval()
    assert list(torch_names) == names
    with torch.no_grad():
        want = module(torch.from_numpy(batch.astype("float32")))
    for name, g, w in zip(names, got, want):
        assert g.shape == tuple(w.shape) and g.shape[0] == 3, name
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_a_short_detection_run_learns_far_above_chance(tmp_path):
    """Training learns: 8 epochs of the default recipe (efficientnet_lite0 with its ImageNet weights,
    TTF) on 32 pictures of shapes reach an mAP@0.5 far above an untrained detector's (0.0 on these
    sets), on held-out pictures drawn with another seed and scored by `frelon eval`."""
    data = shapes.make_dataset(tmp_path / "shapes", 32, 8, size=64, seed=5)
    r = frelon("train", "--data", str(data), "--image-size", "64", "--epochs", "8", "--batch-size", "8",
               "--workers", "0", "--out", str(tmp_path / "runs"), "--events", "-")
    assert r.returncode == 0, r.stderr[-3000:]
    evs = [events.parse_line(line) for line in r.stdout.splitlines()]
    run = next(e["run_dir"] for e in evs if e["type"] == "run_started")
    held_out = shapes.write_coco(tmp_path / "held-out", 12, 64, seed=99)
    r = frelon("eval", "--run", run, "--data", str(held_out), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads(r.stdout)
    assert metrics["images"] == 12
    assert metrics["map_50"] >= 0.3, (metrics["map_50"], [e["val"]["map_50"] for e in evs if e["type"] == "epoch_end"])
