"""The app against the real engine's `frelon check` and `frelon info` (no fake): what the data
panel and the training panel show comes from the real command's output on a tiny folder. And the
contract that keeps the fake engine honest: its canned `check` / `info` answers have the shape of
the real ones (keys, JSON types, the values the app branches on), so they cannot drift apart."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frelon.gui.main_window import MainWindow

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def real_engine(monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)          # the real `python -m frelon`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def tiny_classes(root: Path) -> Path:
    """Two classes of 3 noisy pictures, one broken file, one picture in both classes."""
    rng = np.random.default_rng(0)
    for cls, colour in (("bee", (200, 180, 40)), ("hornet", (120, 60, 20))):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            a = (rng.normal(0, 30, (40, 48, 3)) + colour).clip(0, 255).astype("uint8")
            Image.fromarray(a).save(root / cls / f"{i}.png")
    (root / "hornet" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (root / "hornet" / "same.png").write_bytes((root / "bee" / "0.png").read_bytes())
    return root


def tiny_voc(root: Path) -> Path:
    """Two VOC images; the first has one <object> without <bndbox> (skipped, not the set)."""
    box = "<bndbox><xmin>4</xmin><ymin>4</ymin><xmax>20</xmax><ymax>18</ymax></bndbox>"
    for stem, objects in (("im0", ["<object><name>hornet</name></object>", f"<object><name>hornet</name>{box}</object>"]),
                          ("im1", [f"<object><name>hornet</name>{box}</object>"])):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / "Annotations").mkdir(exist_ok=True)
        Image.new("RGB", (48, 40), (90, 120, 150)).save(root / "JPEGImages" / f"{stem}.jpg")
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename>{''.join(objects)}</annotation>")
    return root


def table(t) -> list[tuple[str, ...]]:
    return [tuple(t.item(r, c).text() for c in range(t.columnCount())) for r in range(t.rowCount())]


def test_data_panel_shows_the_real_check_of_a_tiny_folder(qtbot, tmp_path, real_engine):
    data = tiny_classes(tmp_path / "data")
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    panel = w.data_panel
    with qtbot.waitSignal(panel.report_ready, timeout=120_000) as got:
        panel.set_path(str(data))
    report = got.args[0]
    assert report["task"] == "classify" and report["layout"] == "class_folders"
    text = panel.status.text()
    assert "Classification" in text and "2 classes" in text and "1 file(s) skipped" in text
    assert "1 duplicate group(s)" in text
    rows = table(panel.skipped)
    assert len(rows) == 1 and rows[0][0].endswith("broken.jpg") and "truncated" in rows[0][1]
    dups = table(panel.duplicates)
    assert len(dups) == 1 and dups[0][1] == "bee, hornet" and "same.png" in dups[0][2]
    shown = {split: sum(c.values()) for split, c in panel.bars.counts.items()}
    assert shown == {s: report["splits"][s]["images"] for s in ("train", "val")} and sum(shown.values()) == 7
    assert panel.thumbs.count() >= 2
    # and the training panel learnt the task and the number of training images from it
    assert w.training_panel._train_images == report["splits"]["train"]["images"]


def test_data_panel_shows_a_real_detection_check_with_a_skipped_object(qtbot, tmp_path, real_engine):
    data = tiny_voc(tmp_path / "voc")
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    panel = w.data_panel
    with qtbot.waitSignal(panel.report_ready, timeout=120_000) as got:
        panel.set_path(str(data))
    assert got.args[0]["task"] == "detect" and got.args[0]["layout"] == "voc"
    assert "Detection" in panel.status.text() and "2 images" in panel.status.text()
    rows = table(panel.skipped)
    assert len(rows) == 1 and rows[0][0].endswith("im0.jpg")
    assert rows[0][1] == "im0.xml <object> #1 (hornet): missing required element <bndbox>"
    assert panel.bars.counts and sum(sum(c.values()) for c in panel.bars.counts.values()) == 2     # boxes
    assert panel.thumbs.count() == 2


def test_training_panel_shows_the_real_info(qtbot, tmp_path, real_engine):
    from frelon.engine.backbones import list_backbones
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.info.done, timeout=120_000) as got:
        w.info.start(["info", "--json"])
    info = got.args[0]
    panel = w.training_panel
    combo = [panel.backbone.itemData(i) for i in range(panel.backbone.count())]
    assert combo == list_backbones() == [b["name"] for b in info["backbones"]]
    lite = panel.backbone.itemText(combo.index("efficientnet_lite0"))
    assert "offline ✓" in lite and f"{info['backbones'][combo.index('efficientnet_lite0')]['params'] / 1e6:.1f} M" in lite
    assert panel.options().backbone == info["default_backbone"] == "efficientnet_lite0"
    assert "ImageNet weights available offline" in panel.weights_status.text()
    assert f"{info['devices']['cpu']['cores']} cores" in panel.gpu_reason.text()


# ---------------------------------------------------------------- the fake engine's contract

def _run(cmd: list[str]) -> dict:
    r = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _kind(value) -> str:
    return {bool: "bool", int: "number", float: "number", str: "str", list: "list", dict: "dict",
            type(None): "null"}[type(value)]


def _conforms(fake, real, where: str, free_keys: tuple[str, ...] = ()) -> list[str]:
    """Where `fake` departs from the shape of `real`: a key the real output lacks, a value of
    another JSON type, list items that do not fit the real list's items. Mappings keyed by data
    (class names) are compared by their values' shape (`free_keys` names them)."""
    if _kind(fake) != _kind(real):
        return [f"{where}: {_kind(fake)} in the fake, {_kind(real)} in the real output"]
    problems: list[str] = []
    if isinstance(fake, dict):
        if where.rsplit(".", 1)[-1] in free_keys:
            for k, v in fake.items():
                for rv in list(real.values())[:1]:
                    problems += _conforms(v, rv, f"{where}[{k!r}]", free_keys)
            return problems
        for k, v in fake.items():
            if k not in real:
                problems.append(f"{where}.{k}: not in the real output")
            else:
                problems += _conforms(v, real[k], f"{where}.{k}", free_keys)
    elif isinstance(fake, list) and real:
        for i, item in enumerate(fake):
            problems += _conforms(item, real[0], f"{where}[{i}]", free_keys)
    return problems


def test_the_fake_engines_canned_check_and_info_have_the_real_shape(tmp_path):
    data = tiny_classes(tmp_path / "data")
    real_check = _run(["-m", "frelon", "check", "--data", str(data), "--json"])
    fake_check = _run([str(FAKE_ENGINE), "check", "--data", str(data), "--json"])
    assert real_check["skipped"] and real_check["duplicates"]                  # the lists have items to compare
    assert _conforms(fake_check, real_check, "check", free_keys=("counts",)) == []
    # the values the app branches on are values the real engine gives
    assert fake_check["task"] in ("classify", "detect")
    assert fake_check["layout"] in ("class_folders", "train_val", "explicit_val", "coco", "voc", "yolo")
    assert {d["kind"] for d in fake_check["duplicates"]} <= {"cross_class", "train_val", "same_class", "repeated"}
    app_reads = {"task", "root", "layout", "classes", "splits", "skipped", "warnings", "empty_classes", "duplicates"}
    assert app_reads <= set(real_check) and app_reads <= set(fake_check)

    real_info = _run(["-m", "frelon", "info", "--json"])
    fake_info = _run([str(FAKE_ENGINE), "info", "--json"])
    assert _conforms(fake_info, real_info, "info") == []
    app_reads = {"default_backbone", "backbones", "devices"}
    assert app_reads <= set(real_info) and app_reads <= set(fake_info)
    for key in ("name", "params", "weights_available", "weights_source"):
        assert all(key in b for b in real_info["backbones"] + fake_info["backbones"]), key
    assert {"cuda", "cpu"} <= set(fake_info["devices"]) and {"cuda", "cpu"} <= set(real_info["devices"])
