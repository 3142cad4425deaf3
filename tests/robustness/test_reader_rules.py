"""The reader rule of the README ("What stops a run and what is skipped"), row by row, through the
real `frelon check` (and `frelon train` for the case that used to refuse a whole VOC set): a problem
of one entry (a box, an object, a label line, an images / annotations entry) costs that entry; a
problem of one file (an image, a VOC XML, a YOLO label file) costs that image; only what defines
the whole set (the COCO JSON, the class list) or an empty result stops it.

Each dataset below mixes good entries with the bad ones, and each test checks both sides: every
bad entry is in `skipped` with its reason, and every good entry is counted (so a reader that
skipped too much would fail as surely as one that refused the set)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from frelon.engine.data import detection as D
from frelon.engine.data.classify import scan_classification
from frelon.engine.errors import DataError


def _frelon(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def check(path: Path, task: str = "detect") -> dict:
    r = _frelon("check", "--data", path, "--task", task, "--json", "--val-split", "0")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def image(path: Path, w: int = 40, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (90, 120, 150)).save(path)
    return path


def skipped(report: dict) -> list[str]:
    return [f"{os.path.basename(s['path'])}: {s['reason']}" for s in report["skipped"]]


def has(report: dict, text: str) -> bool:
    return any(text in line for line in skipped(report))


BOX = "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>12</xmax><ymax>10</ymax></bndbox>"


def voc_object(name: str | None = "hornet", bndbox: str | None = BOX) -> str:
    return ("<object>" + (f"<name>{name}</name>" if name is not None else "") + "<difficult>0</difficult>"
            + (bndbox or "") + "</object>")


def voc_set(root: Path, xmls: dict[str, str]) -> Path:
    (root / "Annotations").mkdir(parents=True)
    for stem, body in xmls.items():
        image(root / "JPEGImages" / f"{stem}.jpg")
        (root / "Annotations" / f"{stem}.xml").write_text(body, encoding="utf-8")
    return root


def voc_doc(stem: str, *objects: str) -> str:
    return f"<annotation><filename>{stem}.jpg</filename>{''.join(objects)}</annotation>"


# ---------------------------------------------------------------- one entry, one file: Pascal VOC

def test_voc_object_without_bndbox_is_skipped_not_the_set(tmp_path):
    """The issue's case: one <object> of one XML file has no <bndbox>, the other files are fine."""
    data = voc_set(tmp_path / "voc", {
        "im0": voc_doc("im0", voc_object(bndbox=None), voc_object()),
        **{f"im{i}": voc_doc(f"im{i}", voc_object()) for i in range(1, 4)}})
    report = check(data)
    assert skipped(report) == ["im0.jpg: im0.xml <object> #1 (hornet): missing required element <bndbox>"]
    assert report["splits"]["train"]["counts"] == {"hornet": 4}      # im0's second object is used
    assert report["splits"]["train"]["images"] == 4
    # and training goes on with the rest (one step is enough to show it was not refused)
    r = _frelon("train", "--data", data, "--task", "detect", "--out", tmp_path / "runs", "--image-size", "64",
                "--batch-size", "2", "--weights", "none", "--workers", "0", "--max-steps", "1",
                "--val-split", "0.25", "--backbone", "resnet18", "--events", "-", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    report = next(e for e in events if e["type"] == "data_report")
    assert any("missing required element <bndbox>" in s["reason"] for s in report["skipped"])
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"


def test_voc_per_object_and_per_file_problems(tmp_path):
    data = voc_set(tmp_path / "voc", {
        "a": voc_doc("a", voc_object(name=None), voc_object(),                          # no <name>
                     voc_object(bndbox=BOX.replace("<ymax>10</ymax>", "")),             # no <ymax>
                     voc_object(bndbox=BOX.replace(">12<", ">x<")),                     # not a number
                     voc_object(bndbox=BOX.replace(">12<", ">1<"))),                    # inverted box
        "b": "<annotation>\n<filename>b.jpg</filename>\n<object><name>hornet</name>\n</annotation>",  # malformed
        "c": "<notvoc><filename>c.jpg</filename></notvoc>",                             # wrong root
        "d": voc_doc("d", voc_object()),
        "e": voc_doc("e", voc_object()),
    })
    (data / "JPEGImages" / "e.jpg").unlink()                                            # image missing
    (data / "JPEGImages" / "d.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")         # unreadable image
    image(data / "JPEGImages" / "f.jpg")
    (data / "Annotations" / "f.xml").write_text(voc_doc("f", voc_object()), encoding="utf-8")
    report = check(data)
    assert has(report, "a.xml <object> #1: missing required element <name>")
    assert has(report, "a.xml <object> #3 (hornet): missing required element <ymax> in <bndbox>")
    assert has(report, "a.xml <object> #4 (hornet): bndbox has a value that is not a number")
    assert has(report, "a.xml <object> #5 (hornet): zero or negative size")
    assert has(report, "b.xml: malformed XML at line 4")
    assert has(report, "c.xml: not a VOC annotation (root element <notvoc>")
    assert has(report, "e.xml: missing image file 'e.jpg'")
    assert has(report, "d.jpg: d.xml: unreadable image")
    assert len(report["skipped"]) == 8, skipped(report)
    assert report["classes"] == ["hornet"]
    assert report["splits"]["train"]["images"] == 2 and report["splits"]["train"]["counts"] == {"hornet": 2}


# ---------------------------------------------------------------- COCO

def test_coco_per_entry_problems_skip_the_entry(tmp_path):
    root = tmp_path / "coco"
    for name in ("a.png", "b.png"):
        image(root / name)
    doc = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"},
                      {"id": 3},                                    # no file_name
                      {"file_name": "b.png"},                       # no id
                      "not an object"],
           "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                           {"id": 11, "image_id": 1, "category_id": 1},             # no bbox
                           {"id": 12, "image_id": 2, "bbox": [1, 1, 5, 5]},         # no category_id
                           {"id": 13, "category_id": 1, "bbox": [1, 1, 5, 5]},      # no image_id
                           [1, 2, 3],                                               # not an object
                           {"id": 14, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
           "categories": [{"id": 1, "name": "hornet"}]}
    (root / "ann.json").write_text(json.dumps(doc))
    report = check(root / "ann.json")
    assert has(report, "images[2] (id 3): missing required key 'file_name'")
    assert has(report, "images[3]: missing required key 'id'")
    assert has(report, "images[4] is not a JSON object")
    assert has(report, "annotations[1] (id 11): missing required key 'bbox'")
    assert has(report, "annotations[2] (id 12): missing required key 'category_id'")
    assert has(report, "annotations[3] (id 13): missing required key 'image_id'")
    assert has(report, "annotations[4] is not a JSON object")
    assert len(report["skipped"]) == 7, skipped(report)
    assert report["splits"]["train"]["images"] == 2 and report["splits"]["train"]["counts"] == {"hornet": 2}


# ---------------------------------------------------------------- YOLO

def test_yolo_unreadable_label_file_costs_its_image_only(tmp_path):
    root = tmp_path / "yolo"
    for stem in ("a", "b", "c"):
        image(root / "images" / f"{stem}.jpg")
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n")    # one bad line
    (root / "labels" / "b.txt").mkdir()                       # a folder where the label file should be
    (root / "labels" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: [hornet]\n")
    os.mkfifo(root / "images" / "d.jpg")                     # an "image" no one can read (opening it blocks)
    (root / "images" / "e.jpg").mkdir()                      # a folder named like an image: a folder, empty
    report = check(root)
    assert has(report, "a.txt line 2: expected 5 values")
    assert has(report, "b.jpg: labels/b.txt: label file cannot be read (not a regular file), image not used")
    assert has(report, "d.jpg: not a regular file")
    assert len(report["skipped"]) == 3, skipped(report)
    # b is not used as a negative: its boxes are unknown
    assert report["splits"]["train"]["images"] == 2 and report["splits"]["train"]["empty_images"] == 0


# ---------------------------------------------------------------- what is fatal for the set

def _coco(tmp_path: Path, **doc) -> Path:
    image(tmp_path / "a.png")
    full = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
            "categories": [{"id": 1, "name": "hornet"}]}
    full.update(doc)
    p = tmp_path / "ann.json"
    p.write_text(json.dumps({k: v for k, v in full.items() if v is not None}))
    return p


def _yolo(tmp_path: Path, yaml: str | None) -> Path:
    image(tmp_path / "images" / "a.jpg")
    (tmp_path / "labels").mkdir()
    if yaml is not None:
        (tmp_path / "data.yaml").write_text(yaml)
    return tmp_path


SET_FATAL = {
    "coco malformed JSON": (lambda t: (t / "ann.json", t.joinpath("ann.json").write_text('{"images": [,]}')),
                            r"ann\.json: malformed JSON at line 1"),
    "coco not UTF-8": (lambda t: (t / "ann.json", t.joinpath("ann.json").write_bytes(b'{"images": "caf\xe9"}')),
                       r"ann\.json: not UTF-8 text"),
    "coco missing top-level key": (lambda t: _coco(t, categories=None), r"ann\.json: missing required key 'categories'"),
    "coco images not a list": (lambda t: _coco(t, images={"id": 1}), r"ann\.json: 'images' must be a list"),
    "coco category without a name": (lambda t: _coco(t, categories=[{"id": 1}]),
                                     r"categories\[0\] \(id 1\): missing required key 'name'"),
    "coco category id twice": (lambda t: _coco(t, categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]),
                               r"category id 1 is listed twice"),
    "coco category name twice": (lambda t: _coco(t, categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]),
                                 r"category name 'a' is also id 1"),
    "yolo without names": (lambda t: _yolo(t, None), "without class names"),
    "yolo malformed yaml": (lambda t: _yolo(t, "names: [a, b\n"), r"data\.yaml: malformed YAML"),
    "voc without xml": (lambda t: (t.joinpath("Annotations").mkdir(), t.joinpath("JPEGImages").mkdir(), t)[-1],
                        "no .xml annotation files"),
    "no usable image left": (lambda t: voc_set(t, {"a": voc_doc("a", voc_object())}) and
                             (t / "JPEGImages" / "a.jpg").unlink() or t, "no usable image"),
}


@pytest.mark.parametrize("case", list(SET_FATAL))
def test_what_defines_the_set_is_fatal_and_named(tmp_path, case):
    make, message = SET_FATAL[case]
    made = make(tmp_path)
    path = made[0] if isinstance(made, tuple) else made
    with pytest.raises(DataError, match=message):
        D.scan_detection(path)


def test_classification_set_fatal_and_per_file(tmp_path):
    """Classification: no class folders, or fewer than two classes with a usable image, is fatal;
    a bad file costs that file (the awkward corpus in test_bad_inputs.py covers each kind)."""
    (tmp_path / "flat").mkdir()
    image(tmp_path / "flat" / "a.jpg")
    with pytest.raises(DataError, match="no class folders found"):
        scan_classification(tmp_path / "flat")
    for cls in ("red", "blue"):
        for i in range(3):
            image(tmp_path / "set" / cls / f"{i}.jpg")
    (tmp_path / "set" / "blue" / "bad.jpg").write_bytes(b"not an image")
    data = scan_classification(tmp_path / "set", val_split=0)
    assert [os.path.basename(s["path"]) for s in data.report["skipped"]] == ["bad.jpg"]
    assert len(data.train) == 6
    for p in (tmp_path / "set" / "blue").iterdir():
        p.write_bytes(b"")
    with pytest.raises(DataError, match="class"):
        scan_classification(tmp_path / "set", val_split=0)
