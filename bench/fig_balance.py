#!/usr/bin/env python
"""Uneven classes: balanced accuracy on a balanced test split after training on a 1 : 10 training
split, without balancing and with each way Frelon can balance (`--balance off | sampler | weights`).

    python bench/fig_balance.py [--set faces|digits] [--seeds 3] [--epochs N] [--image-size PX]
                                [--cache /tmp/frelon-learn] [--json FILE]

The sets: bench/learn_sets.py's, made uneven (a seeded choice of a tenth of the minority classes'
training and validation pictures); the test split stays as built, balanced, never trained on.
  * faces (default): Labeled Faces in the Wild faces vs non-faces; `face` keeps 6 of its 65
    training pictures (1 of 10 validation ones) against 65 `not_face`; test 25 + 25. 64 px, 6 epochs.
  * digits: sklearn's handwritten digits; 5-9 keep ~14 of their ~140 training pictures against
    0-4's ~140; test ~20 a class. 32 px, 3 epochs. Each run is the real command line (`python -m frelon train`,
Frelon's defaults otherwise: efficientnet_lite0 at its ImageNet weights, the automatic LR, best
epoch on the uneven validation split), scored by `frelon eval --json` on the test split; seeds
0..N-1 are the training seeds (the uneven set is the same). The table gives each mode's mean
balanced accuracy (mean per-class recall) and accuracy with the lowest and highest in brackets, and
the minority classes' mean recall.

Small scale on purpose (a 2-core CPU shared with others): small pictures, a few epochs, 3 seeds —
9 short runs. The figure is about the difference between the modes at equal budget, not
about the best digits accuracy Frelon can reach.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import learn_sets  # noqa: E402

MODES = ("off", "sampler", "weights")
RATIO = 10
# each set's minority classes: they keep 1/RATIO of their training and validation pictures
MINORITY = {"faces": ("face",), "digits": ("5", "6", "7", "8", "9")}
SCALE = {"faces": dict(epochs=6, image_size=64), "digits": dict(epochs=3, image_size=32)}


def uneven_copy(source: Path, out: Path, minority: tuple, ratio: int = RATIO, seed: int = 0) -> dict:
    """`source` (train/ val/ test/ class folders) with the minority classes' train and val pictures
    cut to 1/ratio (at least 1); test copied whole. Returns the training counts."""
    if out.exists():
        shutil.rmtree(out)
    counts = {}
    for split in ("train", "val", "test"):
        for cls_dir in sorted((source / split).iterdir()):
            files = sorted(cls_dir.iterdir())
            if split != "test" and cls_dir.name in minority:
                rng = random.Random(f"uneven:{seed}:{split}:{cls_dir.name}")
                files = rng.sample(files, max(1, len(files) // ratio))
            (out / split / cls_dir.name).mkdir(parents=True)
            for f in files:
                shutil.copyfile(f, out / split / cls_dir.name / f.name)
            if split == "train":
                counts[cls_dir.name] = len(files)
    return counts


def run(data: Path, runs: Path, mode: str, seed: int, args, env: dict, minority: tuple) -> dict:
    name = f"{mode}-s{seed}"
    cmd = [sys.executable, "-m", "frelon", "train", "--data", str(data), "--out", str(runs), "--name", name,
           "--epochs", str(args.epochs), "--image-size", str(args.image_size), "--seed", str(seed),
           "--balance", mode, "--events", str(runs / f"{name}.jsonl")]
    started = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if r.returncode:
        raise RuntimeError(f"frelon train failed: {r.stderr[-2000:]}")
    run_dir = next(d for d in runs.iterdir() if d.is_dir() and d.name.endswith(name))
    ev = subprocess.run([sys.executable, "-m", "frelon", "eval", "--run", str(run_dir), "--data", str(data / "test"),
                         "--json"], capture_output=True, text=True, cwd=REPO, env=env)
    if ev.returncode:
        raise RuntimeError(f"frelon eval failed: {ev.stderr[-2000:]}")
    m = json.loads(ev.stdout)
    recalls = [m["precision_recall"][c]["recall"] for c in minority]
    return {"mode": mode, "seed": seed, "balanced_accuracy": m["balanced_accuracy"], "accuracy": m["accuracy"],
            "minority_recall": sum(recalls) / len(recalls), "seconds": time.time() - started}


def spread(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="faces", choices=tuple(MINORITY))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, help="default: faces 6, digits 3")
    ap.add_argument("--image-size", type=int, help="default: faces 64, digits 32")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/frelon-learn"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    for key, value in SCALE[args.set].items():
        setattr(args, key, getattr(args, key) or value)
    minority = MINORITY[args.set]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    source = learn_sets.ensure(args.set, args.cache)
    work = args.cache / f"{args.set}-uneven-1to{RATIO}"
    counts = uneven_copy(source, work, minority)
    runs = args.cache / f"balance-runs-{int(time.time())}"
    runs.mkdir(parents=True)
    results = []
    for seed in range(args.seeds):
        for mode in MODES:
            results.append(run(work, runs, mode, seed, args, env, minority))
            r = results[-1]
            print(f"  {mode:8s} seed {seed}: balanced accuracy {r['balanced_accuracy']:.3f}, accuracy "
                  f"{r['accuracy']:.3f} ({r['seconds']:.0f} s)", flush=True)
    print(f"\n{args.set} at 1:{RATIO} (training counts {counts}); balanced test split; {args.image_size} px, "
          f"{args.epochs} epochs, seeds 0-{args.seeds - 1}, CPU ({os.cpu_count()} cores)")
    print(f"{'--balance':10s} {'balanced accuracy':24s} {'accuracy':24s} {'minority recall':24s}")
    table = {}
    for mode in MODES:
        mine = [r for r in results if r["mode"] == mode]
        table[mode] = {k: [r[k] for r in mine] for k in ("balanced_accuracy", "accuracy", "minority_recall")}
        print(f"{mode:10s} " + " ".join(f"{spread(table[mode][k]):24s}" for k in table[mode]))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "runs": results, "table": table,
                                         "epochs": args.epochs, "image_size": args.image_size}, indent=1))


if __name__ == "__main__":
    main()
