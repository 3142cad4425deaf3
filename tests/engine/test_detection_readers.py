"""The COCO, VOC and YOLO readers: fatal errors name the file and entry, bad entries are skipped
and reported, valid edge cases are used (engine/data/detection/)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from frelon.engine.data import detection as D
from frelon.engine.errors import DataError


def image(path: Path, w: int = 40, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (90, 120, 150)).save(path)
    return path


def reasons(report: dict) -> str:
    return "\n".join(f"{s['path']}: {s['reason']}" for s in report["skipped"])


# ---------------------------------------------------------------- COCO

def coco(tmp_path: Path, images=None, annotations=None, categories=None, name="ann.json") -> Path:
    doc = {"images": images if images is not None else [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
           "annotations": annotations if annotations is not None else [],
           "categories": categories if categories is not None else [{"id": 1, "name": "hornet"}]}
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_coco_malformed_json_names_file_and_line(tmp_path):
    p = tmp_path / "ann.json"
    p.write_text('{\n "images": [\n  {"id": 1,}\n ]\n}', encoding="utf-8")
    with pytest.raises(DataError) as e:
        D.scan_detection(p)
    assert "ann.json" in e.value.message and "line 3" in e.value.message


@pytest.mark.parametrize("drop", ["images", "annotations", "categories"])
def test_coco_missing_top_level_key(tmp_path, drop):
    p = coco(tmp_path)
    doc = json.loads(p.read_text())
    del doc[drop]
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=f"ann.json: missing required key '{drop}'"):
        D.scan_detection(p)


def test_coco_entry_missing_a_key_is_skipped_naming_the_entry(tmp_path):
    image(tmp_path / "a.png")
    p = coco(tmp_path, annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                                    {"id": 7, "image_id": 1, "category_id": 1}])
    data = D.scan_detection(p, val_split=0)
    assert reasons(data.report).endswith("annotations[1] (id 7): missing required key 'bbox'")
    assert data.train[0].boxes == [[1.0, 1.0, 6.0, 6.0]]
    p = coco(tmp_path, images=[{"id": 1}, {"id": 2, "file_name": "a.png"}])
    data = D.scan_detection(p, val_split=0)
    assert reasons(data.report).endswith("images[0] (id 1): missing required key 'file_name'")
    assert [r.image_id for r in data.train] == [2]


def test_coco_bad_entries_are_skipped_with_their_reason(tmp_path):
    image(tmp_path / "a.png")                    # 40 x 30
    image(tmp_path / "b.png")
    (tmp_path / "empty.png").write_bytes(b"")
    images = [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
              {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
              {"id": 3, "file_name": "gone.png"},
              {"id": 4, "file_name": "../../etc/passwd"},
              {"id": 5, "file_name": "/etc/hostname"},
              {"id": 6, "file_name": "empty.png"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8]},          # good
        {"id": 2, "image_id": 1, "category_id": 99, "bbox": [2, 3, 10, 8]},         # unknown category
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [50, 40, 5, 5]},         # outside
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},           # zero width
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, -3, 5]},          # negative
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5]},              # 3 values
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, "x", 5, 5]},         # not a number
        {"id": 8, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]},          # unlisted image
        {"id": 9, "image_id": 2, "category_id": 1, "bbox": [30, 20, 20, 20]},       # partly outside
    ]
    p = coco(tmp_path, images=images, annotations=anns)
    text = p.read_text()
    # a NaN, as Python's and JavaScript's serialisers write it
    text = text.replace('{"id": 9,', '{"id": 10, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 5, 5]}, {"id": 9,')
    p.write_text(text)
    data = D.scan_detection(p, val_split=0)
    report = data.report
    why = reasons(report)
    assert "annotations[1] (id 2): unknown category id 99" in why
    assert "annotations[2] (id 3): box outside the image (40×30)" in why
    assert "annotations[3] (id 4): zero or negative size" in why
    assert "annotations[4] (id 5): zero or negative size" in why
    assert "annotations[5] (id 6): bbox must have 4 values" in why
    assert "annotations[6] (id 7): bbox has a value that is not a number" in why
    assert "(id 8): annotation for image id 42, which is not in 'images'" in why
    assert "(id 10): NaN or infinite coordinate" in why
    assert "images[2] (id 3): missing image file 'gone.png'" in why
    assert "images[3] (id 4): file_name '../../etc/passwd' points outside the dataset folder" in why
    assert "images[4] (id 5): file_name '/etc/hostname' points outside the dataset folder" in why
    assert "images[5] (id 6): unreadable image (empty file)" in why
    assert len(report["skipped"]) == 12
    # partly outside: clipped, reported, used
    assert len(report["clipped"]) == 1 and "(id 9)" in report["clipped"][0]["reason"]
    by_id = {r.image_id: r for r in data.train}
    assert sorted(by_id) == [1, 2]
    assert by_id[1].boxes == [[2.0, 3.0, 12.0, 11.0]]
    assert by_id[2].boxes == [[30.0, 20.0, 40.0, 30.0]]
    assert report["splits"]["train"]["counts"] == {"hornet": 2}


def test_coco_valid_edge_cases(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        image(tmp_path / "images" / name)       # resolved through images/ beside the JSON
    cats = [{"id": 90, "name": "wasp"}, {"id": 5, "name": "hornet"}, {"id": 17, "name": "bee"}]
    anns = [{"id": 1, "image_id": 10, "category_id": 90, "bbox": [1.25, 2.5, 10.5, 7.75]},
            {"id": 2, "image_id": 10, "category_id": 5, "bbox": [20, 10, 5, 5], "iscrowd": 1},
            {"id": 3, "image_id": 20, "category_id": 17, "bbox": [0, 0, 40, 30]}]
    images = [{"id": 10, "file_name": "a.png"}, {"id": 20, "file_name": "b.png"}, {"id": 30, "file_name": "c.png"}]
    p = coco(tmp_path, images=images, annotations=anns, categories=cats)
    data = D.scan_detection(p, val_split=0)
    assert data.classes == ["hornet", "bee", "wasp"] and data.category_ids == [5, 17, 90]
    recs = {r.image_id: r for r in data.train}
    assert recs[10].boxes == [[1.25, 2.5, 11.75, 10.25], [20.0, 10.0, 25.0, 15.0]]
    assert recs[10].labels == [2, 0] and recs[10].iscrowd == [False, True]
    assert recs[30].boxes == []                                  # a negative, kept
    r = data.report
    assert r["skipped"] == [] and r["clipped"] == []
    assert r["splits"]["train"]["counts"] == {"hornet": 0, "bee": 1, "wasp": 1}
    assert r["splits"]["train"]["crowd_boxes"] == 1
    assert r["splits"]["train"]["empty_images"] == 1
    assert r["task"] == "detect" and r["layout"] == "coco"
    first = r["images"][0]
    assert set(first) >= {"path", "boxes", "labels"}
    assert first["boxes"] == [[1.25, 2.5, 10.5, 7.75], [20.0, 10.0, 5.0, 5.0]]
    assert first["labels"] == ["wasp", "hornet"]


def test_coco_train_val_folders(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        images = [{"id": i, "file_name": f"{i}.png"} for i in range(n)]
        anns = [{"id": i, "image_id": i, "category_id": 3 if split == "train" else 1, "bbox": [1, 1, 5, 5]}
                for i in range(n)]
        for i in range(n):
            image(tmp_path / split / f"{i}.png")
        # the val file numbers the same class differently: classes match by name
        cats = [{"id": 3 if split == "train" else 1, "name": "hornet"}]
        if split == "val":
            cats.append({"id": 2, "name": "moth"})
            anns.append({"id": 9, "image_id": 0, "category_id": 2, "bbox": [1, 1, 5, 5]})
        coco(tmp_path / split, images=images, annotations=anns, categories=cats, name="instances.json")
    assert D.detect_layout(tmp_path) == "coco"
    data = D.scan_detection(tmp_path)
    assert len(data.train) == 3 and len(data.val) == 2
    assert data.classes == ["hornet"] and data.category_ids == [3]
    assert all(r.labels == [0] for r in data.val)
    assert "class 'moth' is not among the training classes" in reasons(data.report)


# ---------------------------------------------------------------- Pascal VOC

def voc_xml(filename: str, objects: list[tuple], size=(40, 30)) -> str:
    objs = "".join(
        f"<object><name>{name}</name><difficult>{int(diff)}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, diff in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


def voc(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "Annotations").mkdir(parents=True, exist_ok=True)
    (tmp_path / "JPEGImages").mkdir(exist_ok=True)
    for stem, xml in files.items():
        (tmp_path / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
    return tmp_path


def test_voc_malformed_xml_costs_its_image_and_names_file_and_line(tmp_path):
    image(tmp_path / "JPEGImages" / "b.png")
    voc(tmp_path, {"a": "<annotation>\n<filename>a.jpg</filename>\n<object><name>x</name>\n</annotation>",
                   "b": voc_xml("b.png", [("hornet", (1, 1, 5, 5), False)])})
    assert D.detect_layout(tmp_path) == "voc"
    data = D.scan_detection(tmp_path, val_split=0)
    assert "a.xml: malformed XML at line 4" in reasons(data.report)
    assert [Path(r.path).name for r in data.train] == ["b.png"]


def test_voc_object_missing_a_required_element_is_skipped_naming_the_object(tmp_path):
    image(tmp_path / "JPEGImages" / "a.png")
    voc(tmp_path, {"a": "<annotation><filename>a.png</filename><object><name>hornet</name></object></annotation>"})
    data = D.scan_detection(tmp_path, val_split=0)
    assert reasons(data.report).endswith("a.xml <object> #1 (hornet): missing required element <bndbox>")
    assert data.train[0].boxes == []
    voc(tmp_path, {"a": "<annotation><filename>a.png</filename><object><name>hornet</name>"
                        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox></object></annotation>"})
    data = D.scan_detection(tmp_path, val_split=0)
    assert reasons(data.report).endswith("missing required element <ymax> in <bndbox>")


def test_voc_bad_entries_and_valid_edge_cases(tmp_path):
    image(tmp_path / "JPEGImages" / "a.png")
    image(tmp_path / "JPEGImages" / "b.png")
    image(tmp_path / "JPEGImages" / "c.png")
    voc(tmp_path, {
        "a": voc_xml("a.png", [("hornet", (1.5, 2.5, 10.25, 12), False),     # fractional: used
                               ("hornet", ("x", 2, 10, 12), False),           # not a number
                               ("hornet", (60, 50, 70, 60), False),           # outside
                               ("hornet", (10, 10, 9, 20), False),            # zero width (VOC is inclusive)
                               ("bee", (30, 20, 45, 30), False),              # partly outside: clipped
                               ("wasp", (5, 5, 9, 9), True)]),                # difficult: crowd
        "b": voc_xml("b.png", []),                                            # no objects: a negative
        "c": voc_xml("../../c.png", [("hornet", (1, 1, 5, 5), False)]),       # escapes: refused
        "d": voc_xml("d.png", [("hornet", (1, 1, 5, 5), False)]),             # missing image
    })
    data = D.scan_detection(tmp_path, val_split=0)
    assert data.classes == ["bee", "hornet", "wasp"]
    why = reasons(data.report)
    assert "a.xml <object> #2 (hornet): bndbox has a value that is not a number" in why
    assert "a.xml <object> #3 (hornet): box outside the image" in why
    assert "a.xml <object> #4 (hornet): zero or negative size" in why
    assert "<filename> '../../c.png' points outside the dataset folder" in why
    assert "missing image file 'd.png'" in why
    assert len(data.report["clipped"]) == 1
    recs = {Path(r.path).name: r for r in data.train}
    assert set(recs) == {"a.png", "b.png"}
    a = recs["a.png"]
    assert a.boxes[0] == [0.5, 1.5, 10.25, 12.0]                 # 1-based VOC pixels
    assert a.boxes[1] == [29.0, 19.0, 40.0, 30.0]
    assert a.labels == [1, 0, 2] and a.iscrowd == [False, False, True]
    assert recs["b.png"].boxes == []


def test_voc_imagesets_split_and_class_list(tmp_path):
    files = {}
    for stem in ("a", "b", "c"):
        image(tmp_path / "JPEGImages" / f"{stem}.png")
        files[stem] = voc_xml(f"{stem}.png", [("hornet", (1, 1, 5, 5), False), ("dog", (6, 6, 9, 9), False)])
    voc(tmp_path, files)
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\nb\nzz\n")
    (main / "val.txt").write_text("c\n")
    (tmp_path / "classes.txt").write_text("hornet\nwasp\n")
    data = D.scan_detection(tmp_path)
    assert [Path(r.path).stem for r in data.train] == ["a", "b"] and [Path(r.path).stem for r in data.val] == ["c"]
    assert data.classes == ["hornet", "wasp"]
    why = reasons(data.report)
    assert "line 3: 'zz' has no Annotations/zz.xml" in why
    assert "unknown class 'dog'" in why
    assert "wasp" in data.report["empty_classes"]


# ---------------------------------------------------------------- YOLO

def yolo(tmp_path: Path, labels: dict[str, str], names_yaml: str | None = "names: [hornet, wasp]\n",
         sub: str = "") -> Path:
    for stem, text in labels.items():
        image(tmp_path / "images" / sub / f"{stem}.png", 40, 30)
        if text is not None:
            lab = tmp_path / "labels" / sub / f"{stem}.txt"
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(text)
    (tmp_path / "labels").mkdir(exist_ok=True)
    if names_yaml is not None:
        (tmp_path / "data.yaml").write_text(names_yaml)
    return tmp_path


def test_yolo_bad_lines_are_skipped_with_file_and_line(tmp_path):
    yolo(tmp_path, {"a": "0 0.5 0.5 0.5 0.5\n"
                         "0 0.5 0.5 0.5\n"            # 4 values
                         "5 0.5 0.5 0.2 0.2\n"        # class beyond names
                         "x 0.5 0.5 0.2 0.2\n"        # class not a number
                         "1 0.5 abc 0.2 0.2\n"        # not a number
                         "1 1.5 0.5 0.2 0.2\n"        # out of [0, 1]
                         "1 0.5 0.5 0 0.2\n"          # zero size
                         "1 0.5 0.5 -0.2 0.2\n"       # negative size
                         "1 0.5 0.5 nan 0.2\n"        # NaN
                         "1 0.95 0.5 0.2 0.2\n"       # partly outside: clipped
                         "\n",
                    "b": "",                          # empty label file: a negative
                    "c": None})                       # no label file: a negative
    orphan = tmp_path / "labels" / "ghost.txt"
    orphan.write_text("0 0.5 0.5 0.1 0.1\n")
    assert D.detect_layout(tmp_path) == "yolo"
    data = D.scan_detection(tmp_path, val_split=0)
    why = reasons(data.report)
    assert "a.txt line 2: expected 5 values" in why
    assert "a.txt line 3: class index 5 but there are 2 class names" in why
    assert "a.txt line 4: class index 'x' is not a whole number" in why
    assert "a.txt line 5: a value is not a number" in why
    assert "a.txt line 6: values out of [0, 1]" in why
    assert "a.txt line 7: zero or negative size" in why
    assert "a.txt line 8: zero or negative size" in why
    assert "a.txt line 9: NaN or infinite coordinate" in why
    assert "ghost.txt: labels for an image that is not in the images folder" in why
    assert len(data.report["clipped"]) == 1 and "line 10" in data.report["clipped"][0]["reason"]
    recs = {Path(r.path).stem: r for r in data.train}
    assert recs["a"].boxes == [[10.0, 7.5, 30.0, 22.5], [34.0, 12.0, 40.0, 18.0]]
    assert recs["a"].labels == [0, 1]
    assert recs["b"].boxes == [] and recs["c"].boxes == []
    assert data.report["splits"]["train"]["empty_images"] == 2


def test_yolo_names_from_classes_txt_and_split_folders(tmp_path):
    yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0.2 0.2\n"}, names_yaml=None, sub="train")
    yolo(tmp_path, {"c": "0 0.5 0.5 0.2 0.2\n"}, names_yaml=None, sub="val")
    (tmp_path / "classes.txt").write_text("hornet\n")
    data = D.scan_detection(tmp_path)
    assert data.classes == ["hornet"]
    assert len(data.train) == 2 and len(data.val) == 1


def test_yolo_without_names_or_with_broken_yaml(tmp_path):
    yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names_yaml=None)
    with pytest.raises(DataError, match="without class names"):
        D.scan_detection(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images\nnames: [hornet, wasp\nnc: 2\n")
    with pytest.raises(DataError, match=r"data\.yaml: malformed YAML"):
        D.scan_detection(tmp_path)
    (tmp_path / "data.yaml").write_text("nc: 2\n")
    with pytest.raises(DataError, match=r"data\.yaml: missing required key 'names'"):
        D.scan_detection(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("names: [hornet, 'big wasp']\n", ["hornet", "big wasp"]),
    ("path: .\nnames:\n  - hornet\n  - \"big, wasp\"\nnc: 2\n", ["hornet", "big, wasp"]),
    ("names:\n  0: hornet\n  1: wasp  # comment\n", ["hornet", "wasp"]),
    ("names: {0: hornet, 1: wasp}\n", ["hornet", "wasp"]),
])
def test_data_yaml_names(text, expected, tmp_path):
    assert D.parse_yaml_names(text, tmp_path / "data.yaml") == expected


def test_data_yaml_errors_name_the_file_and_the_line(tmp_path):
    with pytest.raises(DataError, match=r"data\.yaml: malformed YAML at line 3"):
        D.parse_yaml_names("nc: 2\nnames: [a, b\n", tmp_path / "data.yaml")
    with pytest.raises(DataError, match="without gaps"):
        D.parse_yaml_names("names: {0: a, 2: b}\n", tmp_path / "data.yaml")
    with pytest.raises(DataError, match="must be a list or a mapping"):
        D.parse_yaml_names("names: 3\n", tmp_path / "data.yaml")


# ---------------------------------------------------------------- layouts, split, safety

def test_detect_layout(tmp_path):
    assert D.detect_layout(tmp_path / "nothing") is None
    (tmp_path / "cls" / "cat").mkdir(parents=True)
    assert D.detect_layout(tmp_path / "cls") is None
    p = coco(tmp_path)
    assert D.detect_layout(p) == "coco"
    assert D.detect_layout(tmp_path) == "coco"          # a folder holding one COCO JSON
    with pytest.raises(DataError, match="not a detection dataset"):
        D.scan_detection(tmp_path / "cls")


def test_split_is_seeded_and_stratified(tmp_path):
    recs = []
    for i in range(40):
        labels = [1] if i < 5 else [0]                  # class 1 is rare
        recs.append(D.DetectionRecord(path=f"/x/{i}.png", file_name=f"{i}.png", width=10, height=10,
                                      boxes=[[0, 0, 5, 5]], labels=labels, iscrowd=[False]))
    train, val = D.split_records(recs, 0.2, seed=3, num_classes=2)
    again, val2 = D.split_records(list(reversed(recs)), 0.2, seed=3, num_classes=2)
    assert [r.path for r in val] == [r.path for r in val2]
    assert len(val) == 8 and len(train) == 32
    assert sum(1 for r in val if r.labels == [1]) == 1
    _, other = D.split_records(recs, 0.2, seed=4, num_classes=2)
    assert [r.path for r in other] != [r.path for r in val]


def test_safe_join_refuses_escapes(tmp_path):
    assert D.safe_join(tmp_path, "a/b.jpg") == tmp_path / "a" / "b.jpg"
    for bad in ("../x.jpg", "a/../../x.jpg", "/etc/passwd", "C:\\x.jpg", "..\\..\\x.jpg", ""):
        assert D.safe_join(tmp_path, bad) is None, bad


def test_duplicates_and_leaks_reported(tmp_path):
    for split in ("train", "val"):
        image(tmp_path / split / "same.png")
        coco(tmp_path / split, images=[{"id": 1, "file_name": "same.png"}],
             annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}], name="a.json")
    report = D.check_detection(tmp_path)
    assert len(report["duplicates"]) == 1
    assert "train and val" in report["duplicates"][0]["reason"]


def test_coco_odd_ids_names_and_sizes(tmp_path):
    image(tmp_path / "a.png")                                         # 40 x 30
    image(tmp_path / "b.png")
    images = [{"id": 1, "file_name": "a.png", "width": 400, "height": 300},   # another size listed
              {"id": [2], "file_name": "b.png"}]                              # an id that is no id
    anns = [{"id": 1, "image_id": {"x": 1}, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 1.0, "category_id": 1.0, "bbox": [1, 1, 5, 5]}]   # 1.0 is 1
    data = D.scan_detection(coco(tmp_path, images=images, annotations=anns), val_split=0)
    why = reasons(data.report)
    assert "images[1] (id [2]): id [2] is not a number or a string" in why
    assert "annotations[0] (id 1): annotation for image id {'x': 1}" in why
    assert data.train[0].boxes == [[1.0, 1.0, 6.0, 6.0]]
    assert any("not the size the file lists" in w for w in data.report["warnings"])
    cats = [{"id": 1, "name": "hornet"}, {"id": 2, "name": "hornet"}]
    with pytest.raises(DataError, match=r"categories\[1\] \(id 2\): category name 'hornet' is also id 1"):
        D.scan_detection(coco(tmp_path, categories=cats))


def test_val_data_of_another_layout_matches_classes_by_name(tmp_path):
    image(tmp_path / "train" / "a.png")
    train = coco(tmp_path / "train", images=[{"id": 1, "file_name": "a.png"}],
                 annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]}],
                 categories=[{"id": 4, "name": "bee"}, {"id": 7, "name": "wasp"}])
    val = yolo(tmp_path / "val", {"v": "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n"}, names_yaml="names: [wasp, moth]\n")
    data = D.scan_detection(train, val_data=val)
    assert data.classes == ["bee", "wasp"] and len(data.train) == 1 and len(data.val) == 1
    assert data.val[0].labels == [1]                     # YOLO's class 0 "wasp" is our class 1
    assert "class 'moth' is not among the training classes" in reasons(data.report)
