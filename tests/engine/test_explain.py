"""`frelon explain` against an independent oracle: pictures where the class evidence (a red square)
was pasted in a known place, and models built by hand to look at exactly that (redness.py). The
map's peak must fall inside the square: Grad-CAM for a classifier, the heatmap for a detector;
on pictures of other shapes than the network's square, so the way back to the picture's pixels
(the centre crop, the letterbox) is checked too."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from frelon.cli import main as frelon_main
from frelon.engine.centernet import shapes
from frelon.engine.inference import load_run
from frelon.engine.rundir import save_checkpoint
from redness import probe, red_centernet, red_classifier
from runhelp import make_colour_folder, train_here

# (picture size, red square): a square picture and a wide one (its centre crop starts at x = 46)
PROBES = {"square.png": ((146, 146), (60, 68, 112, 120)), "wide.png": ((220, 146), (90, 10, 170, 90))}


def _hand_built(run: Path, build) -> Path:
    """The run's `best` weights replaced by the hand-built model's."""
    state = build(load_run(run, device="cpu").model)
    for which in ("best", "last"):
        save_checkpoint(run / "checkpoints" / f"{which}.safetensors", state, {})
    return run


def _explain(capsys, *args) -> dict:
    capsys.readouterr()
    assert frelon_main(["explain", *map(str, args), "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probes")
    for n, (name, ((w, h), square)) in enumerate(PROBES.items()):
        probe(folder / name, w, h, square, seed=n)
    return folder


def _inside(peak, square) -> bool:
    x, y = peak
    x1, y1, x2, y2 = square
    return x1 <= x < x2 and y1 <= y < y2


def test_grad_cam_peaks_inside_the_pasted_evidence(tmp_path, pictures, capsys):
    data = make_colour_folder(tmp_path / "data", per_class=2, classes=("blue", "red"))
    run = _hand_built(train_here("--data", data, "--out", tmp_path / "runs", "--backbone", "resnet18",
                                 "--weights", "none", "--image-size", "128", "--epochs", "1",
                                 "--batch-size", "2", "--workers", "0", "--val-split", "0.5"), red_classifier)
    result = _explain(capsys, "--run", run, "--input", pictures / "square.png", pictures / "wide.png",
                      "--out", tmp_path / "maps")
    assert result["task"] == "classify" and [e["file_name"] for e in result["images"]] == list(PROBES)
    for entry in result["images"]:
        (m,) = entry["maps"]
        assert m["class"] == "red" and m["score"] > 0.5, m           # the predicted class, explained
        assert _inside(m["peak"], PROBES[entry["file_name"]][1]), (entry["file_name"], m)
        drawn = Image.open(tmp_path / "maps" / m["png"])
        assert drawn.size == PROBES[entry["file_name"]][0]          # laid over the picture itself
        x, y = map(round, m["peak"])
        r, g, b = drawn.convert("RGB").getpixel((x + 1, y))             # inside the peak's ring
        assert r > 150 and b < 100, (r, g, b)                       # hot where the peak is
    other = _explain(capsys, "--run", run, "--input", pictures / "square.png", "--class", "blue",
                     "--out", tmp_path / "maps")
    assert [m["class"] for m in other["images"][0]["maps"]] == ["blue"]
    assert not (tmp_path / "maps" / "001-wide-red.png").exists()    # the previous maps replaced


def test_detection_heatmap_overlay_peaks_at_the_planted_object(tmp_path, pictures, capsys):
    data = shapes.make_dataset(tmp_path / "shapes", 2, 1, size=64, seed=3)
    run = _hand_built(train_here("--data", data, "--out", tmp_path / "runs", "--backbone", "resnet18",
                                 "--weights", "none", "--detector", "centernet", "--image-size", "128",
                                 "--epochs", "1", "--batch-size", "2", "--workers", "0"), red_centernet)
    result = _explain(capsys, "--run", run, "--input", pictures, "--out", tmp_path / "maps")
    assert result["task"] == "detect"
    for entry in result["images"]:
        (m,) = entry["maps"]
        assert _inside(m["peak"], PROBES[entry["file_name"]][1]), (entry["file_name"], m)
        assert Image.open(tmp_path / "maps" / m["png"]).size == PROBES[entry["file_name"]][0]


def test_explain_refuses_an_unknown_class_and_an_out_holding_the_pictures(tmp_path, pictures, capsys):
    data = make_colour_folder(tmp_path / "data", per_class=2)
    run = train_here("--data", data, "--out", tmp_path / "runs", "--backbone", "resnet18", "--weights", "none",
                     "--image-size", "32", "--epochs", "1", "--batch-size", "2", "--workers", "0")
    capsys.readouterr()
    assert frelon_main(["explain", "--run", str(run), "--input", str(pictures), "--class", "hornet"]) == 1
    assert "--class hornet: not one of the run's classes" in capsys.readouterr().err
    assert frelon_main(["explain", "--run", str(run), "--input", str(pictures), "--out", str(pictures)]) == 1
    assert "holds input pictures" in capsys.readouterr().err
    assert frelon_main(["explain", "--run", str(run), "--input", str(pictures), "--out", str(pictures / "maps")]) == 1
    assert "inside" in capsys.readouterr().err and not (pictures / "maps").exists()
