#!/usr/bin/env python
"""Issue 28's figures on big photos: P10 (the data pipeline alone), P11 (a scan remembered) and the
accuracy with draft decoding vs full decoding. Side by side in one run, on this machine's CPU.

    python bench/big_photos.py --out /tmp/big            # 12 MP photos and their 448 px copies
    python bench/fig_photos.py --photos /tmp/big [--files 20000] [--parts p10,p11,accuracy]

P10: decode + augmentation at 224 px (classification's training transform), one DataLoader worker
process, no model: pictures/s on the 12 MP JPEGs (full decode as before issue 28; draft decode with
the resized cache cold — the first epoch, which also writes the copies —; and warm) ÷ the same
pipeline on the pictures pre-resized to 448 px (no cache). The warm rate is one core's.
P11: `frelon check` twice on a folder of FILES small pictures (the second reads the remembered
probes), then the time from `frelon train` starting to its first step event, cold (cache cleared)
and warm. Accuracy: efficientnet_lite0 (ImageNet weights) fine-tuned on the photos' train split at
160 px, scored on their val split, once decoding at draft scale (the default) and once in full.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def pictures(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.jpg"))


def pipeline_rate(paths: list[str], size: int, min_short: int | None, cache_dir: Path | None) -> float:
    """Pictures/s through decode + the training transform, one worker process, after its first batch."""
    from torch.utils.data import DataLoader

    from frelon.engine.classify.transforms import decode_short_side, train_transform
    from frelon.engine.data.image_dataset import ImageDataset
    from frelon.engine.data.resized_cache import ResizedCache
    short = decode_short_side(size, "default") if min_short is None else min_short
    cache = ResizedCache(cache_dir) if cache_dir is not None else None
    ds = ImageDataset([(p, 0) for p in paths], train_transform(size, [0.5] * 3, [0.5] * 3), short, cache)
    loader = DataLoader(ds, batch_size=4, num_workers=1, prefetch_factor=4)
    it = iter(loader)
    next(it)
    start, n = time.perf_counter(), 0
    for images, _ in it:
        n += len(images)
    return n / (time.perf_counter() - start)


def cpu_rate(paths: list[str], size: int, cache_dir: Path) -> float:
    """Pictures per CPU second of decode + the training transform in this process (warm copies):
    one core's rate, whatever else the machine is running."""
    import torch

    from frelon.engine.classify.transforms import decode_short_side, train_transform
    from frelon.engine.data.image_dataset import ImageDataset
    from frelon.engine.data.resized_cache import ResizedCache
    torch.set_num_threads(1)
    ds = ImageDataset([(p, 0) for p in paths], train_transform(size, [0.5] * 3, [0.5] * 3),
                      decode_short_side(size, "default"), ResizedCache(cache_dir))
    start = time.process_time()
    for i in range(len(ds)):
        ds[i]
    return len(ds) / (time.process_time() - start)


def p10(photos: Path, size: int = 224) -> dict:
    big = pictures(photos / "full") * 2            # enough pictures after the first batch
    small = pictures(photos / "small448") * 2
    cache = Path(tempfile.mkdtemp(prefix="frelon-p10-"))
    try:
        r = {"small_448": pipeline_rate(small, size, None, None),
             "big_full_decode": pipeline_rate(big[: len(big) // 2], size, 0, None),
             "big_cold": pipeline_rate(big[: len(big) // 2], size, None, cache)}
        r["big_warm"] = pipeline_rate(big, size, None, cache)
        r["warm_per_cpu_s"] = cpu_rate(big, size, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    r["cold_ratio"] = r["big_cold"] / r["small_448"]
    r["warm_ratio"] = r["big_warm"] / r["small_448"]
    r["before_ratio"] = r["big_full_decode"] / r["small_448"]
    print(f"P10  pipeline alone at {size} px, 1 worker ({len(big) // 2} photos of 12 MP; {cpu()}):")
    print(f"     pre-resized 448 px {r['small_448']:.1f}/s | 12 MP full decode (before) {r['big_full_decode']:.1f}/s"
          f" | draft + cache cold {r['big_cold']:.1f}/s | warm {r['big_warm']:.1f}/s")
    print(f"     ratios vs 448 px: before {r['before_ratio']:.2f}, cold {r['cold_ratio']:.2f} (goal >= 0.25), "
          f"warm {r['warm_ratio']:.2f} (goal >= 0.8)")
    print(f"     warm: {r['big_warm']:.0f} pictures/s from one worker on this shared machine; "
          f"{r['warm_per_cpu_s']:.0f} pictures per CPU second in one process (goal >= 140 per core)")
    return r


def make_files(folder: Path, n: int) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in range(2):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        for i in range(n // 2):
            tile = base.copy()
            tile[i % 24, (i // 24) % 24] = i % 251        # each file's bytes its own (no duplicates)
            Image.fromarray(tile).save(folder / f"class{c}" / f"{i:05d}.png", compress_level=1)


def frelon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True, cwd=ROOT)


def timed_check(data: Path, runs: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `frelon check`: CPU time says what it costs whatever
    else the machine runs."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = frelon("check", "--data", str(data), "--out", runs)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, r.stderr
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def photo_checks(photos: Path, work: Path, remembered_cpu_s: float, files: int) -> dict:
    """`frelon check` twice on the 12 MP photos: what one photo costs, probed and remembered; the
    ratio `files` such photos would give, their second check costing what the small files' did
    (`remembered_cpu_s`: a remembered file costs its stat and lookup, whatever its size)."""
    data = photos / "full"
    n = len(pictures(data))
    make_files(work / "tiny", 4)
    base = timed_check(work / "tiny", str(work / "runs0"))[1]   # the interpreter, imports, the report
    first = timed_check(data, str(work / "runs1"))[1]
    second = timed_check(data, str(work / "runs1"))[1]
    per_first, per_second = (first - base) / n, max(0.0, second - base) / n
    projected = remembered_cpu_s / (base + files * per_first)
    return {"photos": n, "fixed_cpu_s": base, "first_ms_per_photo": per_first * 1000,
            "second_ms_per_photo": per_second * 1000, "projected_20k_ratio": projected}


def first_step_s(data: Path, runs: Path) -> float:
    """From `frelon train` starting to its first step event."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", "--data", str(data), "--out", str(runs),
                             "--epochs", "1", "--max-steps", "1", "--image-size", "32", "--weights", "none",
                             "--workers", "1", "--events", "-"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    took = float("nan")
    for line in proc.stdout:
        if line.startswith("{") and json.loads(line).get("type") == "step":
            took = time.perf_counter() - start
            break
    proc.wait()
    return took


def p11(files: int, photos: Path | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="frelon-p11-"))
    try:
        made = time.perf_counter()
        make_files(work / "data", files)
        made = time.perf_counter() - made
        time.sleep(2.5)                               # past the probe cache's racy window
        runs = str(work / "runs")
        times, cpu_s = zip(*(timed_check(work / "data", runs) for _ in range(2)))
        warm = first_step_s(work / "data", work / "runs")
        frelon("cache", "--out", runs, "--clear")
        cold = first_step_s(work / "data", work / "runs")
        photos_r = photo_checks(photos, work, cpu_s[1], files) if photos is not None else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r = {"files": files, "first_check_s": times[0], "second_check_s": times[1], "ratio": times[1] / times[0],
         "first_check_cpu_s": cpu_s[0], "second_check_cpu_s": cpu_s[1], "cpu_ratio": cpu_s[1] / cpu_s[0],
         "first_step_warm_s": warm, "first_step_cold_s": cold, "build_s": made, "photos": photos_r}
    print(f"P11  frelon check on {files} files of 24 px: first {times[0]:.1f} s ({cpu_s[0]:.1f} CPU s), "
          f"second {times[1]:.1f} s ({cpu_s[1]:.1f} CPU s): ratio {r['ratio']:.3f}, in CPU time "
          f"{r['cpu_ratio']:.3f} (goal <= 0.05)")
    if photos_r:
        print(f"     on the {photos_r['photos']} photos of 12 MP: a photo costs the check "
              f"{photos_r['first_ms_per_photo']:.0f} CPU ms probed, {photos_r['second_ms_per_photo']:.1f} remembered "
              f"(beside {photos_r['fixed_cpu_s']:.1f} CPU s for starting and reporting): {files} such photos, "
              f"second ÷ first ≈ {photos_r['projected_20k_ratio']:.4f} in CPU time (projected)")
    print(f"     time to the first training step: warm {warm:.1f} s (goal <= 10), cold {cold:.1f} s")
    return r


def accuracy(photos: Path, epochs: int = 4, size: int = 160) -> dict:
    """Val accuracy of the same fine-tuning, pictures decoded at draft scale vs in full."""
    import torch

    from frelon.common.train_config import from_dict
    from frelon.engine.classify import transforms
    from frelon.engine.control import EventWriter
    from frelon.engine.training.run import run_training
    torch.set_num_threads(1)
    out, draft_rule = {}, transforms.decode_short_side
    work = Path(tempfile.mkdtemp(prefix="frelon-acc-"))
    try:
        for way in ("draft", "full"):
            transforms.decode_short_side = draft_rule if way == "draft" else (lambda size, augment="none": 0)
            cfg = from_dict({"data": str(photos / "full"), "out": str(work / way), "epochs": epochs,
                             "image_size": size, "batch_size": 8, "workers": 1, "cache": "off", "seed": 0})
            start = time.perf_counter()
            fields = run_training(cfg, EventWriter(), lambda: False)
            out[way] = {"accuracy": fields["best"]["score"], "seconds": time.perf_counter() - start}
    finally:
        transforms.decode_short_side = draft_rule
        shutil.rmtree(work, ignore_errors=True)
    print(f"ACC  lite0 at {size} px, {epochs} epochs on {photos / 'full'}: val accuracy draft "
          f"{out['draft']['accuracy']:.3f} ({out['draft']['seconds']:.0f} s) vs full decode "
          f"{out['full']['accuracy']:.3f} ({out['full']['seconds']:.0f} s)")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="bench/big_photos.py's --out")
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--parts", default="p10,p11,accuracy")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    results = {"cpu": cpu()}
    if "p10" in parts:
        results["p10"] = p10(args.photos)
    if "p11" in parts:
        results["p11"] = p11(args.files, args.photos)
    if "accuracy" in parts:
        results["accuracy"] = accuracy(args.photos)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fig_photos.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
