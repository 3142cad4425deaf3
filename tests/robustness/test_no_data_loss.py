"""No command destroys a user's annotations, and an output that cannot be written is one line
before any work (issue 26, items 1, 2, 3 and 5), through the real command line.

Each attempt is checked against the files themselves: the original annotation file's bytes are
unchanged, the set still reads (`frelon check`, same classes and boxes), and the answer is one
`frelon: error:` line with exit 1 and no traceback."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import make_colour_folder, train_here  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def frelon(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=ENV)


def refused(r: subprocess.CompletedProcess, *named: str) -> str:
    """The one error line of a refused command (exit 1, no traceback), naming each of `named`."""
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frelon: error: "), r.stderr
    assert "bug in Frelon" not in lines[0] and " — " in lines[0], lines[0]      # what to do, not a bug report
    for name in named:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def reads_as_before(data: Path, classes: list[str], boxes: int) -> None:
    r = frelon("check", "--data", data, "--task", "detect", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["classes"] == classes, report["classes"]
    assert sum(sum(v["counts"].values()) for v in report["splits"].values()) == boxes


def picture(path: Path, size=(48, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)
    return path


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    """A one-step CenterNet run (64 px shapes) and the COCO set it was trained on."""
    from frelon.engine.centernet import shapes
    root = tmp_path_factory.mktemp("run")
    data = shapes.make_dataset(root / "shapes", 6, 2, size=64, seed=5)
    run = train_here("--data", data, "--backbone", "resnet18", "--weights", "none", "--image-size", "64",
                     "--epochs", "1", "--batch-size", "4", "--workers", "0", "--max-steps", "1",
                     "--out", root / "runs")
    return {"run": run, "data": data}


# ---------------------------------------------------------------- 1. predict --as-annotations

def test_predict_never_writes_its_drafts_over_the_input_coco_file(detection_run, tmp_path):
    """Before: `--as-annotations` onto the `--input` COCO file replaced 6 images and their boxes by
    the model's drafts. The input, a hard link to it, and `--out` onto it are refused; a new file works."""
    shutil.copytree(detection_run["data"] / "train", tmp_path / "set")
    coco = tmp_path / "set" / "annotations.json"
    before = coco.read_bytes()
    boxes = len(json.loads(before)["annotations"])
    link = tmp_path / "set" / "linked.json"
    os.link(coco, link)                          # the same file under another name
    run = detection_run["run"]
    for target in (coco, link):
        line = refused(frelon("predict", "--run", run, "--input", coco, "--out", tmp_path / "p.json",
                              "--as-annotations", target), target, ".drafts.json")
        assert "input" in line
    refused(frelon("predict", "--run", run, "--input", coco, "--out", coco), coco)
    assert coco.read_bytes() == before
    reads_as_before(coco, ["circle", "square", "triangle"], boxes)

    drafts = tmp_path / "set.drafts.json"        # a new file: written, marked as Frelon's drafts
    r = frelon("predict", "--run", run, "--input", coco, "--out", tmp_path / "p.json", "--as-annotations", drafts)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "frelon_drafts" in json.loads(drafts.read_text())["info"]
    assert coco.read_bytes() == before


# ---------------------------------------------------------------- 2. annotations --out [--force]

def _yolo(root: Path) -> Path:
    picture(root / "images" / "a.png")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("names: [hornet, wasp]\n")
    return root / "data.yaml"


def _voc(root: Path) -> Path:
    picture(root / "JPEGImages" / "a.jpg")
    (root / "Annotations").mkdir(parents=True)
    xml = root / "Annotations" / "a.xml"
    xml.write_text("<annotation><filename>a.jpg</filename><size><width>48</width><height>40</height></size>"
                   "<object><name>hornet</name><bndbox><xmin>4</xmin><ymin>5</ymin><xmax>14</xmax><ymax>25</ymax>"
                   "</bndbox></object></annotation>")
    return xml


def _roboflow(root: Path) -> Path:
    for split in ("train", "valid"):
        picture(root / split / "a.jpg")
        doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 48, "height": 40}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]}],
               "categories": [{"id": 1, "name": "hornet"}]}
        (root / split / "_annotations.coco.json").write_text(json.dumps(doc))
    return root / "train" / "_annotations.coco.json"


@pytest.mark.parametrize("layout, make, classes, boxes", [("yolo", _yolo, ["hornet", "wasp"], 1),
                                                          ("voc", _voc, ["hornet"], 1),
                                                          ("roboflow", _roboflow, ["hornet"], 2)])
def test_annotations_never_overwrites_a_set_s_own_file_whatever_force_says(tmp_path, layout, make, classes, boxes):
    """Before: `--out` naming a folder set's own file (data.yaml, a VOC XML, Roboflow's
    train/_annotations.coco.json) with --force wrote COCO JSON over it and broke the set; without
    --force, data.yaml was a JSONDecodeError traceback."""
    root = tmp_path / layout
    own = make(root)
    before = own.read_bytes()
    attempts = [["--data", root, "--out", own], ["--data", root, "--out", own, "--force"]]
    if own.suffix == ".json":                    # also given as the data itself, and through a hard link
        os.link(own, root / "link.json")
        attempts += [["--data", own, "--out", own, "--force"], ["--data", own, "--out", root / "link.json", "--force"]]
    for args in attempts:
        refused(frelon("annotations", *args), args[3])
        assert own.read_bytes() == before, args
    reads_as_before(root, classes, boxes)
    # a file with Frelon's mark but not its name (a reviewed copy published as the set's own) is kept
    r = frelon("annotations", "--data", root, "--out", tmp_path / "kept.reviewed.json", "--json")
    assert r.returncode == 0, r.stderr
    published = tmp_path / "published.json"
    shutil.copy(tmp_path / "kept.reviewed.json", published)
    refused(frelon("annotations", "--data", root, "--out", published, "--force"), published)
    assert published.read_bytes() == (tmp_path / "kept.reviewed.json").read_bytes()
    # a new file inside the set's folder is refused too: a reader of the set could take it for its own
    refused(frelon("annotations", "--data", root, "--out", root / "data.yml", "--force"), "reviewed.json")
    reads_as_before(root, classes, boxes)
    # the reviewed copy itself is written, and rewritten with --force
    for force in ([], ["--force"]):
        r = frelon("annotations", "--data", root, "--json", *force)
        assert r.returncode == 0 and json.loads(r.stdout)["created"], r.stderr
    assert own.read_bytes() == before


# ---------------------------------------------------------------- 3. outputs that cannot be written

@pytest.mark.parametrize("option", ["--out", "--draw", "--heatmaps", "--as-annotations"])
def test_predict_refuses_an_unwritable_output_before_any_work(detection_run, tmp_path, option):
    """Before: a PermissionError / FileNotFoundError traceback, for --out only after every
    prediction was computed (the --draw folder was full of drawings by then)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = {"--out": "/proc/p.json", "--draw": "/proc/frelon-test",                # /proc: there, not writable
           "--heatmaps": blocker / "heatmaps", "--as-annotations": blocker / "drafts.json"}[option]
    outputs = {"--out": tmp_path / "p.json", "--draw": tmp_path / "drawn", option: bad}
    args = [a for k, v in outputs.items() for a in (k, v)]
    line = refused(frelon("predict", "--run", detection_run["run"], "--input", detection_run["data"] / "val", *args))
    assert ("/proc" in line or str(blocker) in line) and option in line.split(" — ")[-1], line
    assert not (tmp_path / "drawn").exists() or not any((tmp_path / "drawn").iterdir())   # no work done


@pytest.mark.parametrize("command", ["annotations", "export", "review", "preview-augment", "train", "train --events"])
def test_every_command_refuses_an_unwritable_output_in_one_line(detection_run, tmp_path, command):
    """The outputs each command checks first, and an OSError no check foresaw (--events FILE)."""
    run, data = detection_run["run"], detection_run["data"]
    args = {"train --events": ["--data", data, "--out", tmp_path / "runs", "--events", "/proc/frelon-test/e.jsonl",
                               "--image-size", "64", "--weights", "none", "--backbone", "resnet18", "--max-steps", "1"],
            "annotations": ["--data", data / "val" / "annotations.json", "--out", "/proc/frelon-test/a.json"],
            "export": ["--run", run, "--out", "/proc/frelon-test/m.onnx"],
            "review": ["--run", run, "--out", "/proc/frelon-test/r.json"],
            "preview-augment": ["--data", data, "--out", "/proc/frelon-test", "--image-size", "64"],
            "train": ["--data", data, "--out", "/proc/frelon-test", "--image-size", "64", "--weights", "none",
                      "--backbone", "resnet18", "--max-steps", "1", "--workers", "0"]}[command]
    refused(frelon(*command.split()[:1], *args), "/proc")


@pytest.mark.parametrize("command", ["predict --draw", "review --out", "export --out"])
def test_no_output_lands_on_what_the_command_reads(detection_run, tmp_path, command):
    """Drawings into the input folder would overwrite its pictures (a.png -> a drawn a.png), a
    review written over the set's annotations or an ONNX file over the run's checkpoint destroy them."""
    shutil.copytree(detection_run["data"] / "val", tmp_path / "set")
    shutil.copytree(detection_run["run"], tmp_path / "run")
    victim = {"predict --draw": tmp_path / "set" / "00000.png", "review --out": tmp_path / "set" / "annotations.json",
              "export --out": tmp_path / "run" / "checkpoints" / "best.safetensors"}[command]
    before = victim.read_bytes()
    args = {"predict --draw": ["--input", tmp_path / "set", "--out", tmp_path / "p.json", "--draw", tmp_path / "set"],
            "review --out": ["--data", tmp_path / "set" / "annotations.json", "--out", victim],
            "export --out": ["--out", victim]}[command]
    refused(frelon(command.split()[0], "--run", tmp_path / "run", *args))
    assert victim.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder regardless of its mode")
def test_a_read_only_folder_is_one_line(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=2)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(frelon("preview-augment", "--data", data, "--out", ro / "p", "--image-size", "32"), ro)
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------- 5. malformed COCO: the data error kind

def test_a_malformed_or_foreign_json_is_a_data_error_not_a_traceback(tmp_path):
    """Before: coco_doc.load raised JSONDecodeError / ValueError outward, a traceback on the
    command line; now the data error kind (the `error` event's "data"), one line naming the file."""
    picture(tmp_path / "a.png")
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [], "annotations": [,]}')
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"images": [], "annotations": {}}')
    assert "line 1" in refused(frelon("annotations", "--data", broken), broken)
    refused(frelon("annotations", "--data", foreign), foreign)
    from frelon.common import coco_doc
    from frelon.engine.errors import DataError
    for path in (broken, foreign, tmp_path / "missing.json"):
        with pytest.raises(DataError) as caught:
            coco_doc.load(path)
        assert caught.value.kind == "data" and str(path) in caught.value.message


# ---------------------------------------------------------------- the app's save obeys the same rule

def test_the_box_editor_never_saves_over_a_file_frelon_did_not_write(tmp_path):
    """Before: a COCO file opened directly in the editor (AnnotationSet.open) was saved over in
    place. Now its edits go to its reviewed copy, reopening continues them, and a save aimed at
    the original (or at another file Frelon did not write) is refused."""
    from frelon.common import coco_doc
    from frelon.common.errors import DataError
    from frelon.gui.annotation_set import AnnotationSet, Box
    picture(tmp_path / "a.png")
    coco = tmp_path / "annotations.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 48, "height": 40}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]}],
                                "categories": [{"id": 1, "name": "hornet"}]}))
    before = coco.read_bytes()
    edited = AnnotationSet.open(coco)
    edited.set_boxes(1, [Box(1, (5, 5, 20, 20))])
    assert edited.save() == tmp_path / "annotations.reviewed.json"
    assert coco.read_bytes() == before
    assert AnnotationSet.open(coco).boxes(1)[0].bbox == (5, 5, 20, 20)        # continued, not restarted
    other = tmp_path / "other.json"
    other.write_text("{}")
    for target in (coco, other):
        with pytest.raises(DataError):
            edited.save(target)
    assert coco.read_bytes() == before and other.read_text() == "{}"
    assert coco_doc.own_kind(tmp_path / "annotations.reviewed.json") == "reviewed"
