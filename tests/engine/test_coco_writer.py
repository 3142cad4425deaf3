"""Saving annotations as COCO: the reviewed copy beside the original (original byte-identical, ids
and categories kept), VOC and YOLO sets saved as COCO, one image's boxes edited, atomic saves."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pycocotools.coco import COCO

from frelon.common import coco_doc
from frelon.common.errors import DataError
from frelon.engine.coco_writer import write_reviewed


def image(path: Path, w: int = 40, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (90, 120, 30)).save(path)
    return path


def frelon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def coco_set(tmp_path) -> Path:
    image(tmp_path / "a.png"), image(tmp_path / "b.png")
    doc = {"info": {"year": 2026}, "licenses": [{"id": 1, "name": "CC0"}],
           "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30, "license": 1},
                      {"id": 9, "file_name": "b.png", "width": 40, "height": 30}],
           "annotations": [{"id": 3, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10, 8], "area": 80, "iscrowd": 0,
                            "attributes": {"occluded": True}},
                           {"id": 4, "image_id": 9, "category_id": 8, "bbox": [5, 5, 6, 6], "area": 36, "iscrowd": 0}],
           "categories": [{"id": 5, "name": "hornet", "supercategory": "insect"}, {"id": 8, "name": "wasp"}]}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def test_reviewed_copy_of_a_coco_file_keeps_everything_and_never_touches_the_original(coco_set):
    before = coco_set.read_bytes()
    r = frelon("annotations", "--data", str(coco_set), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["path"] == str(coco_set.with_name("annotations.reviewed.json")) and result["created"]
    doc = coco_doc.load(result["path"])
    original = json.loads(before)
    for key in ("images", "annotations", "categories", "licenses"):
        assert doc[key] == original[key]
    assert doc["info"]["year"] == 2026 and doc["info"]["frelon_review"]["source"] == str(coco_set)

    # edit one image: a moved box keeps its id and extra fields, a new box gets a fresh id
    coco_doc.set_image_annotations(doc, 7, [{"id": 3, "category_id": 8, "bbox": [2, 3, 12, 9]},
                                            {"category_id": 5, "bbox": [20, 10, 5, 5]}])
    coco_doc.set_position(doc, 7)
    coco_doc.save(doc, result["path"], original=coco_set)
    gt = COCO(result["path"])
    anns = gt.loadAnns(gt.getAnnIds(imgIds=[7]))
    assert [(a["id"], a["category_id"], a["bbox"]) for a in anns] == [(3, 8, [2, 3, 12, 9]), (5, 5, [20, 10, 5, 5])]
    assert anns[0]["attributes"] == {"occluded": True} and anns[1]["area"] == 25
    assert gt.loadAnns(gt.getAnnIds(imgIds=[9]))[0]["bbox"] == [5, 5, 6, 6]
    assert coco_doc.position(coco_doc.load(result["path"])) == 7
    # a second `frelon annotations` keeps the edits; the original was never written
    r = frelon("annotations", "--data", str(coco_set), "--json")
    assert json.loads(r.stdout)["created"] is False
    assert COCO(result["path"]).loadAnns(3)[0]["category_id"] == 8
    assert coco_set.read_bytes() == before


def test_saving_refuses_the_original_and_a_failed_write_leaves_the_previous_file(coco_set, monkeypatch):
    doc = coco_doc.load(coco_set)
    with pytest.raises(DataError, match="original"):        # the data kind: one line on the command line
        coco_doc.save(doc, coco_set, original=coco_set)
    target = coco_doc.reviewed_path(coco_set)
    coco_doc.save(doc, target)
    good = target.read_bytes()
    monkeypatch.setattr(coco_doc.json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        coco_doc.save({**doc, "annotations": []}, target)
    assert target.read_bytes() == good
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_voc_and_yolo_sets_are_saved_as_coco_with_their_boxes(tmp_path):
    voc = tmp_path / "voc"
    image(voc / "JPEGImages" / "x.jpg", 40, 30)
    (voc / "Annotations").mkdir(parents=True)
    (voc / "Annotations" / "x.xml").write_text(
        "<annotation><filename>x.jpg</filename><size><width>40</width><height>30</height></size>"
        "<object><name>hornet</name><bndbox><xmin>4</xmin><ymin>5</ymin><xmax>14</xmax><ymax>25</ymax></bndbox>"
        "</object></annotation>")
    result = write_reviewed(voc)
    assert result["path"] == str(voc / "annotations.reviewed.json") and result["layout"] == "voc"
    gt = COCO(result["path"])
    (img,) = gt.loadImgs(gt.getImgIds())
    assert img["file_name"] == "JPEGImages/x.jpg" and (img["width"], img["height"]) == (40, 30)
    (ann,) = gt.loadAnns(gt.getAnnIds())
    # VOC counts pixels from 1, inclusive: xmin 4 … xmax 14 is x 3 to 14 in pixel edges
    assert ann["bbox"] == [3, 4, 11, 21] and gt.loadCats(ann["category_id"])[0]["name"] == "hornet"

    yolo = tmp_path / "yolo"
    image(yolo / "images" / "y.png", 40, 20)
    (yolo / "labels").mkdir()
    (yolo / "labels" / "y.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (yolo / "data.yaml").write_text("names: [hornet, wasp]\n")
    gt = COCO(write_reviewed(yolo)["path"])
    (ann,) = gt.loadAnns(gt.getAnnIds())
    assert ann["bbox"] == [10, 5, 20, 10] and gt.loadCats(ann["category_id"])[0]["name"] == "wasp"
    # the saved COCO reads back as training reads it
    from frelon.engine.data.detection import scan_detection
    back = scan_detection(yolo / "annotations.reviewed.json", val_split=0.0)
    assert back.classes == ["hornet", "wasp"] and back.train[0].boxes == [[10.0, 5.0, 30.0, 15.0]]


def test_a_folder_with_a_reviewed_copy_beside_its_json_is_still_the_original_set(coco_set):
    """After an edit, `--data FOLDER` keeps meaning the original annotations (the copy is named
    when it is wanted); before this, the second JSON made the folder 'not a detection dataset'."""
    r = frelon("annotations", "--data", str(coco_set), "--json")
    assert r.returncode == 0, r.stderr
    r = frelon("check", "--data", str(coco_set.parent), "--json")
    assert r.returncode == 0, r.stderr
    assert "hornet" in r.stdout and "wasp" in r.stdout


def test_a_reviewed_copy_of_a_split_set_keeps_its_validation_images(tmp_path):
    """A COCO train/ + val/ folder saved as one reviewed file: a retrain on it validates on the
    images the corrected run validated on (not on a new random split); an image added since
    (an accepted draft, unmarked) trains."""
    import shutil
    from frelon.engine.data.detection import scan_detection
    root = tmp_path / "set"
    for split, names in (("train", ["a", "b", "c", "d"]), ("val", ["e", "f"])):
        doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "hornet"}]}
        for i, n in enumerate(names):
            image(root / split / f"{n}.png")
            doc["images"].append({"id": i + 1, "file_name": f"{n}.png", "width": 40, "height": 30})
            doc["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [2, 2, 10, 10]})
        (root / split / "annotations.json").write_text(json.dumps(doc))
    path = write_reviewed(root)["path"]
    doc = coco_doc.load(path)
    shutil.copy(root / "train" / "a.png", root / "added.png")
    doc["images"].append({"id": 99, "file_name": "added.png", "width": 40, "height": 30})
    coco_doc.save(doc, path)
    scanned = scan_detection(path, val_split=0.5, seed=3)
    assert sorted(Path(r.path).name for r in scanned.val) == ["e.png", "f.png"]
    assert sorted(Path(r.path).name for r in scanned.train) == ["a.png", "added.png", "b.png", "c.png", "d.png"]
