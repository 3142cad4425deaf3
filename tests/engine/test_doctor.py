"""engine/data/doctor.py, class_folders.py and classify.py: the data doctor's report, layouts, the split, ImageDataset."""
from __future__ import annotations

import itertools
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # so that `tests.awkward` imports however pytest was started
    sys.path.insert(0, ROOT)

from frelon.common import events  # noqa: E402
from frelon.engine.data.class_folders import ClassificationData, find_layout, stratified_split, val_count  # noqa: E402
from frelon.engine.data.classify import scan_classification  # noqa: E402
from frelon.engine.data.doctor import check_classification  # noqa: E402
from frelon.engine.data.images import printable_path  # noqa: E402
from frelon.engine.errors import DataError  # noqa: E402
from tests.awkward import make_awkward_corpus  # noqa: E402

_seed = itertools.count(1000)


def picture(path, seed=None, size=(8, 8)):
    """A tiny PNG with its own bytes (unless two calls share a seed)."""
    rng = np.random.default_rng(next(_seed) if seed is None else seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, "PNG")
    return str(path)


def make_classes(root, counts):
    """root/<class>/<i>.png for each class: count."""
    return {cls: [picture(os.path.join(root, cls, f"{i:03d}.png")) for i in range(n)]
            for cls, n in counts.items()}


def json_safe(report):
    """The report must reach a UTF-8 stream as JSON (no lone surrogates from odd file names)."""
    return json.loads(json.dumps(report, ensure_ascii=False, allow_nan=False).encode("utf-8"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_awkward_corpus(tmp_path_factory.mktemp("awkward"))


@pytest.fixture(scope="module")
def corpus_check(corpus):
    return check_classification(corpus["root"], workers=4)


# ---------------------------------------------------------------------------------------------
# The awkward corpus: every kind lands where it should


def test_every_valid_file_is_kept_with_its_class(corpus, corpus_check):
    report, data = corpus_check
    assert data.classes == corpus["classes"] == report["classes"]
    labelled = {p: data.classes[label] for p, label in data.train + data.val}
    for entry in corpus["files"].values():
        if entry["expect"] == "valid":
            expected_class = "beta" if os.sep + "beta" + os.sep in entry["path"] else "alpha"
            assert labelled.get(entry["path"]) == expected_class, entry["path"]
    assert len(labelled) == len(corpus["valid"])
    assert report["files_checked"] == len(corpus["valid"]) + len(corpus["skipped"])


def test_every_bad_file_is_skipped_with_its_reason(corpus, corpus_check):
    report, _ = corpus_check
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    for path, reason in {**corpus["skipped"], **corpus["problems"]}.items():
        assert reasons[printable_path(path)].startswith(reason), (path, reasons.get(printable_path(path)))
    assert len(reasons) == len(corpus["skipped"]) + len(corpus["problems"])
    assert any("files skipped" in w and "truncated" in w for w in report["warnings"])


def test_hidden_and_system_files_are_not_mentioned(corpus, corpus_check):
    report, _ = corpus_check
    text = json.dumps(report, ensure_ascii=False)
    for path in corpus["ignored"]:
        assert path not in text
    for word in ("__MACOSX", "Thumbs.db", "desktop.ini", "@eaDir", "._ok_rgb", ".foo.jpg", ".cache"):
        assert word not in text


def test_empty_class_and_cross_class_duplicate(corpus, corpus_check):
    report, _ = corpus_check
    assert report["empty_classes"] == corpus["empty_classes"]
    assert any("'empty' is empty" in w for w in report["warnings"])
    cross = [d for d in report["duplicates"] if d["kind"] == "cross_class"]
    assert cross == [{"paths": sorted(printable_path(p) for p in corpus["cross_class"]),
                      "classes": ["alpha", "beta"], "splits": cross[0]["splits"], "kind": "cross_class"}]
    assert any("different classes" in w for w in report["warnings"])


def test_report_format(corpus, corpus_check):
    report, data = corpus_check
    assert json_safe(report) == report
    assert report["task"] == "classify" and report["layout"] == "class_folders"
    assert report["root"] == os.path.abspath(corpus["root"]) and report["val_root"] == ""
    for split, samples in (("train", data.train), ("val", data.val)):
        counts = report["splits"][split]["counts"]
        assert set(counts) == set(data.classes)
        assert report["splits"][split]["images"] == sum(counts.values()) == len(samples)
    assert report["errors"] == []
    assert data.report is report and data.layout == "class_folders" and data.num_classes == 2
    event = events.make("data_report", **report)  # the report is the data_report event's fields
    assert events.parse_line(events.dumps(event))["splits"] == report["splits"]
    if "non_utf8_name" in corpus["files"]:  # samples keep the real path (it opens), the report a printable one
        real = corpus["files"]["non_utf8_name"]["path"]
        assert real in {p for p, _ in data.train + data.val}
        assert "\\xe9" in printable_path(real) and os.path.exists(real)


def test_workers_do_not_change_the_result(corpus, corpus_check):
    calls = []
    report, data = check_classification(corpus["root"], workers=1, progress=lambda *a: calls.append(a))
    n = report["files_checked"]
    assert calls[0] == (1, n) and calls[-1] == (n, n) and len(calls) == n
    assert report == corpus_check[0]
    assert (data.train, data.val) == (corpus_check[1].train, corpus_check[1].val)


# ---------------------------------------------------------------------------------------------
# The split


def test_val_count_rules():
    assert [val_count(n, 0.2) for n in (1, 2, 3, 5, 10, 11)] == [0, 1, 1, 1, 2, 2]
    assert val_count(10, 0.0) == 0
    assert val_count(2, 0.9) == 1  # a class always keeps a training image
    assert val_count(10, 0.99) == 9


def test_split_is_stratified_and_seeded(tmp_path):
    make_classes(tmp_path, {"big": 20, "mid": 5, "pair": 2, "single": 1})
    report, data = check_classification(tmp_path, val_split=0.25, seed=3)
    assert report["splits"]["val"]["counts"] == {"big": 5, "mid": 1, "pair": 1, "single": 0}
    assert report["splits"]["train"]["counts"] == {"big": 15, "mid": 4, "pair": 1, "single": 1}
    assert any("'single' has no validation images" in w for w in report["warnings"])
    again = check_classification(tmp_path, val_split=0.25, seed=3)[1]
    assert (again.train, again.val) == (data.train, data.val)
    others = {tuple(check_classification(tmp_path, val_split=0.25, seed=s)[1].val) for s in range(4, 8)}
    assert len(others | {tuple(data.val)}) > 1  # another seed, another split
    assert not {p for p, _ in data.train} & {p for p, _ in data.val}


def test_split_of_one_class_does_not_depend_on_the_others(tmp_path):
    make_classes(tmp_path, {"a": 12, "b": 12})
    before = [p for p, _ in check_classification(tmp_path)[1].val if "/a/" in p]
    make_classes(tmp_path, {"c": 7})
    after = [p for p, _ in check_classification(tmp_path)[1].val if "/a/" in p]
    assert before == after


def test_identical_files_stay_in_one_split(tmp_path):
    for i in range(6):  # 6 pictures, each saved twice in the same class
        for copy in range(2):
            picture(tmp_path / "a" / f"{i}_{copy}.png", seed=i)
    make_classes(tmp_path, {"b": 4})
    for seed in range(5):
        report, _ = check_classification(tmp_path, val_split=0.3, seed=seed)
        kinds = {d["kind"] for d in report["duplicates"]}
        assert kinds == {"same_class"}, report["duplicates"]
        assert len(report["duplicates"]) == 6
        assert report["splits"]["val"]["counts"]["a"] in (4, 6)
    files = {"a": [(f"a{i}", f"h{i // 2}") for i in range(6)]}  # three pairs of identical files
    train, val = stratified_split(files, 0.5, seed=0)
    assert sorted(train["a"] + val["a"]) == [f"a{i}" for i in range(6)]
    assert {p[1] for p in val["a"]} and all(f"a{int(p[1]) ^ 1}" in val["a"] for p in val["a"])


def test_class_folders_may_hold_sub_folders(tmp_path):
    picture(tmp_path / "cat" / "2019" / "a.png")
    picture(tmp_path / "cat" / "b.png")
    picture(tmp_path / "dog" / "c.png")
    report, _ = check_classification(tmp_path, val_split=0)
    assert report["splits"]["train"]["counts"] == {"cat": 2, "dog": 1}
    assert any("no validation images" in w for w in report["warnings"])


# ---------------------------------------------------------------------------------------------
# Layouts


def test_train_val_layout_and_leak(tmp_path):
    make_classes(tmp_path / "Train", {"cat": 4, "dog": 4})
    make_classes(tmp_path / "Validation", {"cat": 2})
    make_classes(tmp_path / "Validation", {"owl": 1})  # only in val: cannot be learnt
    leaked = picture(tmp_path / "Train" / "dog" / "leak.png", seed=7)
    picture(tmp_path / "Validation" / "dog" / "same.png", seed=7)
    report, data = check_classification(tmp_path)
    assert report["layout"] == "train_val" == data.layout
    assert report["val_root"] == str(tmp_path / "Validation")
    assert data.classes == ["cat", "dog"]
    assert report["splits"]["train"]["counts"] == {"cat": 4, "dog": 5}
    assert report["splits"]["val"]["counts"] == {"cat": 2, "dog": 1}
    assert report["empty_classes"] == ["owl"]
    assert any("'owl' has validation images but no training images" in w for w in report["warnings"])
    leaks = [d for d in report["duplicates"] if d["kind"] == "train_val"]
    assert len(leaks) == 1 and leaked in leaks[0]["paths"] and leaks[0]["splits"] == ["train", "val"]
    assert any("leak" in w for w in report["warnings"])


def test_test_folder_is_used_when_there_is_no_val(tmp_path):
    make_classes(tmp_path / "train", {"a": 2, "b": 2})
    make_classes(tmp_path / "test", {"a": 1, "b": 1})
    layout = find_layout(tmp_path)
    assert layout.kind == "train_val" and layout.val_root.endswith("test")
    assert any("using" in n and "test" in n for n in layout.notes)


def test_a_class_called_train_is_a_class(tmp_path):
    make_classes(tmp_path, {"train": 3, "car": 3})  # pictures of trains, not a split folder
    assert find_layout(tmp_path).kind == "class_folders"
    assert check_classification(tmp_path)[1].classes == ["car", "train"]


def test_explicit_val_folder(tmp_path):
    make_classes(tmp_path / "mine", {"a": 3, "b": 3})
    make_classes(tmp_path / "held_out", {"a": 2, "b": 1})
    report, data = check_classification(tmp_path / "mine", val_data=tmp_path / "held_out", val_split=0.5)
    assert report["layout"] == "explicit_val"
    assert report["splits"]["train"]["images"] == 6 and report["splits"]["val"]["images"] == 3
    assert all("held_out" in p for p, _ in data.val)


def test_stray_images_at_the_top_are_mentioned(tmp_path):
    make_classes(tmp_path, {"a": 2, "b": 2})
    picture(tmp_path / "lost.png")
    report, _ = check_classification(tmp_path)
    assert any("not in a class folder" in w for w in report["warnings"])


def test_imbalance_and_tiny_classes(tmp_path):
    make_classes(tmp_path, {"many": 60, "few": 3})
    report, _ = check_classification(tmp_path, val_split=0.0)
    assert any("imbalance 20:1" in w and "'many'" in w for w in report["warnings"])
    assert any("'few' has only 3 training image" in w for w in report["warnings"])


# ---------------------------------------------------------------------------------------------
# Clear errors


def test_missing_folder(tmp_path):
    with pytest.raises(DataError) as e:
        scan_classification(tmp_path / "nowhere")
    assert "nowhere" in e.value.message and "not found" in e.value.message and e.value.hint
    with pytest.raises(DataError, match="not found"):
        check_classification(tmp_path / "nowhere")


def test_file_instead_of_folder(tmp_path):
    (tmp_path / "coco.json").write_text("{}")
    with pytest.raises(DataError) as e:
        scan_classification(tmp_path / "coco.json")
    assert "not a folder" in e.value.message and "--task detect" in e.value.hint


def test_no_class_folders(tmp_path):
    for i in range(3):
        picture(tmp_path / f"{i}.png")
    with pytest.raises(DataError) as e:
        scan_classification(tmp_path)
    assert "no class folders" in e.value.message and "3 images directly in it" in e.value.message
    assert "sub-folder" in e.value.hint


def test_one_class_only(tmp_path):
    make_classes(tmp_path, {"cat": 3})
    (tmp_path / "dog").mkdir()
    report, _ = check_classification(tmp_path)  # the doctor reports, training refuses
    assert "only one class" in report["errors"][0]["message"]
    with pytest.raises(DataError, match=r"only one class has usable images \('cat'\)"):
        scan_classification(tmp_path)


def test_one_level_too_high_gets_a_hint(tmp_path):
    make_classes(tmp_path / "dataset", {"cat": 2, "dog": 2})
    with pytest.raises(DataError) as e:
        scan_classification(tmp_path)
    assert "did you mean --data" in e.value.hint and "dataset" in e.value.hint


def test_no_usable_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.jpg").write_text("not a picture")
    (tmp_path / "b" / "y.jpg").write_bytes(b"")
    with pytest.raises(DataError) as e:
        scan_classification(tmp_path)
    assert "no usable images" in e.value.message
    assert "1 not an image" in e.value.message and "1 empty file" in e.value.message
    assert "frelon check" in e.value.hint


def test_empty_class_folders_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="no files in the class folders"):
        scan_classification(tmp_path)


# ---------------------------------------------------------------------------------------------
# scan_classification and ImageDataset


def test_scan_keeps_only_good_files(corpus):
    data = scan_classification(corpus["root"], seed=1)
    assert isinstance(data, ClassificationData)
    kept = {p for p, _ in data.train + data.val}
    assert kept == set(corpus["valid"])


def test_image_dataset_and_a_file_that_disappears(tmp_path):
    from frelon.engine.data.classify import ImageDataset

    make_classes(tmp_path, {"a": 3, "b": 3})
    data = scan_classification(tmp_path, val_split=0)
    ds = ImageDataset(data.train)
    x, y = ds[0]
    assert tuple(x.shape) == (3, 8, 8) and str(x.dtype) == "torch.float32" and 0 <= float(x.min())
    assert y == 0 and len(ds) == 6

    os.remove(data.train[0][0])  # gone since the scan: the next sample takes its place
    x, y = ds[0]
    assert y == data.train[1][1] and ds.failures == [(data.train[0][0], "missing (moved or deleted)")]
    assert ds[0][1] == y  # deterministic

    sized = ImageDataset(data.train, transform=lambda im: im.size)
    assert sized[3] == ((8, 8), 1)
    assert pickle.loads(pickle.dumps(sized.samples)) == sized.samples
    assert type(pickle.loads(pickle.dumps(ImageDataset(data.train)))) is ImageDataset

    shutil.rmtree(tmp_path / "a")
    shutil.rmtree(tmp_path / "b")
    with pytest.raises(DataError, match="could not be read either"):
        ds[2]


def test_doctor_does_not_import_torch():
    code = ("import sys, frelon.engine.data.doctor, frelon.engine.data.classify, frelon.engine.data.detection; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
