"""An annotation file with far more boxes than any real image holds (the issue's case: 2.3 M boxes
on 2 images, whose first training step took minutes and whose SIGTERM was obeyed minutes late).
Every reader reads at most MAX_BOXES_PER_IMAGE box entries per image and reports the rest once per
image; through the real CLI the file trains its first step, and a stop that arrives while it is
being read ends the run cleanly within seconds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from frelon.engine.data import detection as D
from frelon.engine.data.detection.checks import MAX_BOXES_PER_IMAGE

CAP = MAX_BOXES_PER_IMAGE
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
HUGE = 2_300_000          # boxes in the huge file, on 2 images (the figure)


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (48, 40), (40 + 60 * i, 120, 90)).save(folder / name)


def write_coco(path: Path, boxes: list[int]) -> Path:
    """A COCO file with boxes[i] boxes on image i (48 × 40), written as text in chunks: the
    file's JSON is built by the writer, not by json.dumps of millions of dicts."""
    names = [f"im{i}.png" for i in range(len(boxes))]
    _images(path.parent, names)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"categories": [{"id": 1, "name": "hornet"}], "images": [')
        f.write(", ".join(f'{{"id": {i}, "file_name": "{n}", "width": 48, "height": 40}}' for i, n in enumerate(names)))
        f.write('], "annotations": [')
        k = 0
        for image_id, n in enumerate(boxes):
            for start in range(0, n, 100_000):
                chunk = range(k + start, k + min(n, start + 100_000))
                f.write((", " if k + start else "") + ", ".join(
                    f'{{"id": {a}, "image_id": {image_id}, "category_id": 1, "bbox": [{a % 30}, {a % 25}, 8, 9]}}'
                    for a in chunk))
            k += n
        f.write("]}")
    return path


def _cap_entries(log_skipped: list[dict]) -> list[dict]:
    return [s for s in log_skipped if f"only the first {CAP} read" in s["reason"]]


# ---------------------------------------------------------------- the three readers

def test_coco_reads_at_most_the_cap_per_image_and_reports_the_rest_once(tmp_path):
    result = D.read_coco(write_coco(tmp_path / "set" / "ann.json", [CAP + 7, 3]))
    boxes = {Path(r.path).name: len(r.boxes) for r in result.splits["all"]}
    assert boxes == {"im0.png": CAP, "im1.png": 3}
    capped = _cap_entries(result.log.skipped)
    assert [Path(s["path"]).name for s in capped] == ["im0.png"]
    assert f"{CAP + 7} box entries" in capped[0]["reason"] and "(7 not used" in capped[0]["reason"]
    assert len(result.log.skipped) == 1                    # one entry for the image, not one per box


def test_voc_reads_at_most_the_cap_per_image_and_reports_the_rest_once(tmp_path):
    root = tmp_path / "voc"
    _images(root / "JPEGImages", ["a.png", "b.png"])
    (root / "Annotations").mkdir()
    obj = "<object><name>hornet</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>12</xmax><ymax>10</ymax></bndbox></object>"
    for stem, n in (("a", CAP + 2), ("b", 4)):
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.png</filename>{obj * n}</annotation>", encoding="utf-8")
    result = D.read_voc(root)
    assert {Path(r.path).name: len(r.boxes) for r in result.splits["all"]} == {"a.png": CAP, "b.png": 4}
    capped = _cap_entries(result.log.skipped)
    assert len(result.log.skipped) == len(capped) == 1 and "a.xml" in capped[0]["reason"]
    assert "(2 not used" in capped[0]["reason"]


def test_yolo_reads_at_most_the_cap_per_image_and_reports_the_rest_once(tmp_path):
    root = tmp_path / "yolo"
    _images(root / "images", ["a.png", "b.png"])
    (root / "labels").mkdir()
    (root / "data.yaml").write_text("names: [hornet]\n", encoding="utf-8")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n" * (CAP + 3) + "\n", encoding="utf-8")
    (root / "labels" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 2, encoding="utf-8")
    result = D.read_yolo(root)
    assert {Path(r.path).name: len(r.boxes) for r in result.splits["all"]} == {"a.png": CAP, "b.png": 2}
    capped = _cap_entries(result.log.skipped)
    assert len(result.log.skipped) == len(capped) == 1 and "labels/a.txt" in capped[0]["reason"]
    assert f"{CAP + 3} box entries" in capped[0]["reason"]


# ---------------------------------------------------------------- the file, through the CLI

@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    return write_coco(tmp_path_factory.mktemp("huge") / "annotations.json", [HUGE // 2, HUGE // 2])


def _train(huge: Path, runs: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(huge), "--out", str(runs),
                             "--image-size", "64", "--batch-size", "2", "--weights", "none", "--workers", "0",
                             "--backbone", "resnet18", "--epochs", "1", "--max-steps", "1", "--val-split", "0",
                             "--events", "-", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ONE_THREAD)


def test_a_file_of_millions_of_boxes_trains_its_first_step(huge, tmp_path):
    proc = _train(huge, tmp_path / "runs")
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    evs = [json.loads(line) for line in out.splitlines()]
    report = next(e for e in evs if e["type"] == "data_report")
    assert report["splits"]["train"]["counts"] == {"hornet": 2 * CAP}
    capped = _cap_entries(report["skipped"])
    assert sorted(Path(s["path"]).name for s in capped) == ["im0.png", "im1.png"] == \
        sorted(Path(s["path"]).name for s in report["skipped"])
    assert all(f"{HUGE // 2} box entries" in s["reason"] for s in capped)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "completed" and evs[-1]["steps_done"] == 1


def test_a_stop_while_the_huge_file_is_read_ends_the_run_cleanly(huge, tmp_path):
    """`stop` on stdin (what the app's Stop button sends) as the run begins: the data scan is
    still reading the file when the stop is due, and the run ends there — `run_finished`
    `stopped`, nothing trained, exit 0, one line saying so."""
    runs = tmp_path / "runs"
    proc = _train(huge, runs, "--control", "stdin")
    try:
        deadline = time.time() + 120
        while not list(runs.glob("*/events.jsonl")) and time.time() < deadline:   # the run has begun
            time.sleep(0.05)
        sent = time.time()
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=240)
        took = time.time() - sent
    finally:
        proc.kill()                                        # a failed test leaves no process behind
    assert proc.returncode == 0, err[-2000:]
    evs = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in evs] == ["run_finished"], evs     # stopped inside the scan: no data_report
    assert evs[0]["status"] == "stopped" and evs[0]["steps_done"] == 0
    assert "Traceback" not in err and "frelon: run stopped (stop requested)" in err
    assert took < 60, took          # the old code read, then trained its step, for minutes
