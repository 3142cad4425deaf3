"""What a finished classification run gives: predict, eval and export through the real CLI."""
from __future__ import annotations

import json
import shutil

import pytest

from runhelp import TINY, make_colour_folder, run_cli, train_here


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    data = make_colour_folder(root / "data")
    # the run these tests read (training itself is tested through the CLI in test_train.py)
    run = train_here("--data", data, "--out", root / "runs", "--epochs", "1", *TINY, "--backbone", "resnet18")
    return run, data, root


def test_predict_a_folder_with_a_broken_file(trained):
    run, data, root = trained
    folder = root / "mixed"
    shutil.copytree(data / "red", folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = root / "preds.json"
    r = run_cli("predict", "--run", run, "--input", folder, "--out", out, "--draw", root / "drawn", "--json")
    assert r.returncode == 0, r.stderr
    preds = json.loads(out.read_text())
    assert len(preds) == 10 and "broken.jpg" in r.stderr
    said = json.loads(r.stdout)                        # --json: what was written where, what was skipped
    assert (said["out"], said["images"], said["predictions"], said["skipped"]) == (str(out), 10, 10, 1)
    assert said["skipped_files"][0]["path"].endswith("broken.jpg") and said["skipped_files"][0]["reason"]
    p = preds[0]
    assert set(p["probabilities"]) == {"blue", "red"} and p["predicted"] in ("blue", "red")
    assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert len(list((root / "drawn").glob("*.png"))) == 10


def test_eval_matches_classes_by_name(trained):
    run, data, root = trained
    r = run_cli("eval", "--run", run, "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["images"] == 20 and 0.0 <= metrics["accuracy"] <= 1.0
    other = make_colour_folder(root / "other", classes=("green", "red"), per_class=3)
    r = run_cli("eval", "--run", run, "--data", other, "--json")
    assert r.returncode == 1 and "green" in r.stderr


def test_export_onnx_matches_the_pytorch_model_of_the_run(trained):
    """`frelon export` checks itself; this checks it from outside: the exported file, run with
    onnxruntime, against the PyTorch model rebuilt here from the run's model.json and
    best.safetensors, on the run's own images preprocessed by hand from preprocessing.json."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    from frelon.engine.backbones import build_classifier

    run, data, _ = trained
    r = run_cli("export", "--run", run, "--format", "onnx")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(run / "export" / "model.onnx")
    pre = json.loads((run / "export" / "preprocessing.json").read_text())
    info = json.loads((run / "model.json").read_text())
    assert pre["size"] == 32 and pre["classes"] == info["classes"] == ["blue", "red"]
    assert (pre["mean"], pre["std"]) == (info["preprocessing"]["mean"], info["preprocessing"]["std"])

    model, _ = build_classifier(info["backbone"], len(info["classes"]), weights="none")
    model.load_state_dict({k: v for k, v in load_file(run / "checkpoints" / "best.safetensors").items()
                           if not k.startswith("__")})
    model.eval()
    paths = sorted((data / "red").glob("*.png"))[:3] + sorted((data / "blue").glob("*.png"))[:2]
    mean, std = np.array(pre["mean"], "float32"), np.array(pre["std"], "float32")
    batch = np.stack([((np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.BILINEAR), "float32") / 255
                        - mean) / std).transpose(2, 0, 1) for p in paths]).astype("float32")
    session = ort.InferenceSession(str(run / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {session.get_inputs()[0].name: batch})       # batch of 5: dynamic
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(batch)).numpy()
    assert onnx_logits.shape == torch_logits.shape == (5, 2)
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-4)
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()


def test_check_reports_and_fails_on_a_single_class(tmp_path):
    data = make_colour_folder(tmp_path / "one", classes=("red",), per_class=3)
    r = run_cli("check", "--data", data, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["task"] == "classify" and "class" in r.stderr
