"""`frelon export --int8` through the command line: the INT8 model runs in onnxruntime and agrees with
the float one; the accuracies it reports are the ones measured here from outside (PIL's own resize
and crop, the run's validation pictures, onnxruntime); the bound refuses and leaves no file."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from frelon.cli import main as frelon_main
from runhelp import make_colour_folder, train_here

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    data = make_colour_folder(root / "data", per_class=8, classes=("blue", "green", "red"))
    return train_here("--data", data, "--out", root / "runs", "--backbone", "mobilenet_v3_large", "--weights", "none",
                      "--image-size", "32", "--epochs", "3", "--batch-size", "4", "--workers", "0", "--lr", "0.003",
                      "--val-split", "0.34")


def _inputs(pre: dict, paths) -> np.ndarray:
    """The evaluation preprocessing written from its description: short side to size / 0.875
    (bilinear), centre crop, [0, 1], (x - mean) / std."""
    size, out = pre["size"], []
    for path in paths:
        im = Image.open(path).convert("RGB")
        short = round(size / 0.875)
        w, h = (short, int(short * im.height / im.width)) if im.width <= im.height else (int(short * im.width / im.height), short)
        im = im.resize((w, h), Image.BILINEAR)
        left, top = int(round((w - size) / 2)), int(round((h - size) / 2))
        a = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
        out.append(((a - pre["mean"]) / pre["std"]).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def test_int8_export_runs_agrees_and_reports_what_is_measured(run, capsys):
    capsys.readouterr()
    assert frelon_main(["export", "--run", str(run), "--int8", "--max-drop", "1"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)["int8"]
    assert "INT8 kept: accuracy float" in err and "MiB" in err and " ms" in err
    export = run / "export"
    pre = json.loads((export / "preprocessing.json").read_text())
    val = json.loads((run / "predictions" / "val.json").read_text())
    x = _inputs(pre, [p["path"] for p in val])
    truth = np.array([pre["classes"].index(p["true"]) for p in val])
    float_pred = ort.InferenceSession(str(export / "model.onnx")).run(None, {"images": x})[0].argmax(1)
    int8_pred = ort.InferenceSession(str(export / "model.int8.onnx")).run(None, {"images": x})[0].argmax(1)
    assert (float_pred == int8_pred).mean() >= 0.8, (float_pred, int8_pred)
    assert result["float"]["accuracy"] == pytest.approx((float_pred == truth).mean())
    assert result["int8"]["accuracy"] == pytest.approx((int8_pred == truth).mean())
    assert result["validation_images"] == len(val) and result["calibration_images"] > 0
    assert result["int8"]["size_bytes"] < 0.5 * result["float"]["size_bytes"]
    assert result["float"]["latency_ms"] > 0 and result["int8"]["latency_ms"] > 0


def test_int8_beyond_the_bound_is_refused_and_leaves_no_file(run, tmp_path, capsys):
    target = tmp_path / "model.onnx"
    capsys.readouterr()
    assert frelon_main(["export", "--run", str(run), "--int8", "--max-drop", "-1", "--calibration", "4",
                       "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("frelon: error: --int8: refused, accuracy drops by"), err
    assert "float" in err[0] and "INT8" in err[0] and "MiB" in err[0]
    assert list(tmp_path.iterdir()) == []
    assert frelon_main(["export", "--run", str(run), "--max-drop", "0.1"]) == 2      # only with --int8
