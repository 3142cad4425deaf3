"""The benchmark suite still runs: its figures at tiny sizes, and bench/run.py's table and JSON.
(The suite itself is not part of the test run: `python bench/run.py --quick`.)"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


BENCH_MODULES = ("run", "harness", "workloads", "fig_speed", "fig_memory", "fig_detect", "fig_ranks", "real_images",
                 "learn", "learn_sets")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import fig_detect
    import fig_speed
    import harness
    import run
    yield {"run": run, "speed": fig_speed, "detect": fig_detect, "harness": harness}
    for name in BENCH_MODULES:           # generic names: leave nothing behind for other tests
        sys.modules.pop(name, None)


def test_bench_figures_at_tiny_sizes(bench, tmp_path, capsys, monkeypatch):
    run, speed, detect = bench["run"], bench["speed"], bench["detect"]
    tiny = {
        "P1": lambda quick, device: speed.p1_engine_overhead(quick, device, size=32, batch=2, steps=3, repeats=1),
        "P6": lambda quick, device: detect.p6_decode(quick, device, size=64, classes=3, repeats=1),
        "P8": speed.p8_cuda_amp,
    }
    out = tmp_path / "bench.json"
    monkeypatch.setattr(run, "figures", lambda: tiny)
    run.main(["--quick", "--json", str(out)])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {"P1", "P6", "P8", "machine"}
    for fid in ("P1", "P6"):
        fig = result[fid]
        assert isinstance(fig["value"], float) and fig["value"] > 0, fig
        assert fig["goal"] and isinstance(fig["detail"], dict)
        assert fid in printed
    assert result["P1"]["detail"]["engine_img_s"] > 0 and result["P1"]["detail"]["bare_img_s"] > 0
    assert result["P8"]["value"] == "skipped: needs CUDA" and result["P8"]["passed"] is None
    assert result["machine"]["cores"] >= 1


def test_interleaving_alternates_the_order(bench):
    harness = bench["harness"]
    calls = []
    r = harness.interleaved({"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 1.0}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert harness.median(harness.ratios(r, "a", "b")) == 2.0
    marks = [(1, 0.0), (2, 1.0), (4, 2.0), (5, 5.0)]          # step 3 not logged (throttled events)
    assert harness.step_seconds(marks, warmup=1) == [1.0, 0.5, 3.0]
    assert harness.rate(marks, batch=4, warmup=1) == pytest.approx(4 / 1.0)
    assert harness.rate(marks, batch=4, warmup=1, how="window") == pytest.approx(4 * 4 / 5.0)


@pytest.fixture
def learn_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import learn
    import learn_sets
    yield learn, learn_sets
    for name in BENCH_MODULES:
        sys.modules.pop(name, None)


def _frelon_check(folder: Path, task: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "frelon", "check", "--data", str(folder), "--task", task, "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_learn_sets_are_valid_and_hold_out_their_test_split(learn_bench, tmp_path):
    """bench/learn.py's five sets at a tiny size: each a valid Frelon data set, train / val / test
    without a file in common, and the detection boxes inside their images."""
    from PIL import Image
    learn, learn_sets = learn_bench
    assert set(learn.SPECS) == set(learn_sets.SET_NAMES)
    for name in learn_sets.SET_NAMES:
        folder = learn_sets.ensure(name, tmp_path, seed=0, scale=0.03)
        stamp = (folder / learn_sets.STAMP).stat().st_mtime_ns
        assert learn_sets.ensure(name, tmp_path, seed=0, scale=0.03) == folder      # cached: not rebuilt
        assert (folder / learn_sets.STAMP).stat().st_mtime_ns == stamp
        assert (folder / "SOURCES.md").is_file()
        task = learn_sets.task_of(name)
        report = _frelon_check(folder, task)
        assert report["errors"] == [] and report["skipped"] == [] and report["duplicates"] == [], (name, report)
        assert report["layout"] == ("coco" if task == "detect" else "train_val"), (name, report["layout"])
        if task == "detect":
            assert report["clipped"] == [], (name, report["clipped"])
            assert report["splits"]["train"]["images"] >= 3 and report["splits"]["val"]["images"] >= 2
            assert sum(report["splits"]["train"]["boxes"].values()) >= 1
        hashes = {}
        for split in ("train", "val", "test"):
            files = [p for p in (folder / split).rglob("*.jpg")]
            assert files, (name, split)
            hashes[split] = {hashlib.sha1(p.read_bytes()).hexdigest() for p in files}
            assert len(hashes[split]) == len(files), f"{name}/{split}: a file twice"
            if task == "detect":
                doc = json.loads((folder / split / "annotations.json").read_text())
                assert len(doc["images"]) == len(files)
                sizes = {}
                for img in doc["images"]:
                    with Image.open(folder / split / img["file_name"]) as im:
                        assert im.size == (img["width"], img["height"])
                        sizes[img["id"]] = im.size
                for a in doc["annotations"]:
                    x, y, w, h = a["bbox"]
                    width, height = sizes[a["image_id"]]
                    assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height, (name, a)
        assert not hashes["train"] & hashes["val"], name
        assert not hashes["train"] & hashes["test"], name
        assert not hashes["val"] & hashes["test"], name


def test_learn_table_reads_results(learn_bench):
    learn, _ = learn_bench
    results = {"faces": {"metric": "accuracy", "options": "--image-size 96 --epochs 1",
                         "frelon": {"test": 0.9, "seconds": 30.0,
                                    "val_curve": [{"epoch": 0, "val": 0.8}], "best": {"epoch": 0}},
                         "reference": {"test": 0.85, "steps": 10, "epochs": 1.2}},
               "cat-det": {"metric": "map_50", "options": "--task detect", "frelon": {"error": "boom"}}}
    text = learn.table(results, quick=True)
    assert "0.900" in text and "0.850" in text and "0.5" in text and "failed" in text and "mAP@0.5" in text
    assert "quick" in text
    assert "0.800" in learn.curves(results)
    assert learn.epochs_for(learn.SPECS["digits-det"], quick=False, scale=1.0) == 26
    assert learn.epochs_for(learn.SPECS["faces"], quick=True, scale=0.01) == 1


def test_learn_repeats_are_reported_as_their_mean_and_range(learn_bench):
    """--repeats: a side's runs become one cell, the mean of those that ended and their range; a
    failed run is counted, not averaged as zero."""
    learn, _ = learn_bench
    runs = [{"test": 0.9, "seconds": 10.0}, {"test": 0.7, "seconds": 20.0}, {"error": "boom"}]
    side = learn.combine(runs)
    assert side["test"] == pytest.approx(0.8) and side["seconds"] == pytest.approx(15.0)
    assert side["failed_runs"] == 1
    assert learn._cell(side) == "0.800 (0.700-0.900)"
    assert learn.combine(runs[:1]) == runs[0] and learn._cell(runs[0]) == "0.900"
    text = learn.table({"faces": {"metric": "accuracy", "options": "", "frelon": side, "reference": side}},
                       quick=False, repeats=3)
    assert "mean of 3 training seeds" in text


def test_bench_modules_do_not_leak_onto_sys_path():
    """Runs after the tests above (pytest keeps a file's order): their fixtures must have taken
    bench/ off sys.path and dropped every module imported from it (generic names like `run` or
    `harness` would shadow other tests' imports). A module imported from bench/ and left in
    sys.modules fails this, whatever its name."""
    assert str(BENCH) not in sys.path
    leaked = sorted(name for name, module in list(sys.modules.items())
                    if str(getattr(module, "__file__", None) or "").startswith(str(BENCH)))
    assert leaked == []


def test_the_gpu_check_runs_on_a_cpu_machine_and_says_why_it_skips(tmp_path):
    """bench/gpu_check.sh on a machine without CUDA: every GPU item is skipped with its reason,
    the CPU-side items (a CPU run, --sync-bn refused) run, and one JSON holds it all.
    (tests/test_gpu_check.py runs it in a Python holding only the GPU machine's packages.)"""
    out = tmp_path / "gpu.json"
    r = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(out)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable))
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    items = report["items"]
    assert report["cuda_devices"] == 0 and report["ok"]
    for name in ("cuda_run", "amp", "detection", "gpus_nccl", "bench", "compile"):
        assert items[name]["status"] == "skipped" and items[name]["why"].startswith(("no CUDA", "--gpus N")), name
    assert items["cpu_smoke"]["status"] == "ok" and items["cpu_smoke"]["steps"] == 2
    assert items["sync_bn"]["status"] == "ok" and items["sync_bn"]["summary"] == "refused on the CPU as documented"
