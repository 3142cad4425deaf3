#!/usr/bin/env python
"""LP-FT against fine-tuning from a random head (issue 31): Frelon's real CLI, the same options but
one, on bench/learn.py's classification sets, several training seeds, each scored on the test split.

LP-FT was measured and not adopted (README, Learning quality, LP-FT): `--head-fit` exists only at
commit 61ae9f8 (in main's history); run this from a checkout of it (`git worktree add DIR 61ae9f8`).

    python bench/lpft.py [--only faces,digits] [--seeds 0,1,2] [--epochs-scale F] [--threads N]
                         [--cache DIR] [--json FILE] [--arms lp-ft,random head] [--runs DIR]

Two arms per set and seed: `--head-fit` (the new head fitted on the start weights' frozen
features, then fine-tuning with the BatchNorm statistics kept; engine/training/head_fit.py there)
and `--no-head-fit` (today's recipe: the head at random). Everything else is Frelon's default and bench/learn.py's options for
the set (image size, epochs x --epochs-scale). Each run's best checkpoint (chosen on val) is scored
on the test split by `frelon eval`. Prints per-arm mean [lowest, highest] over the seeds, the val
accuracy of the first epoch (how far the start is from the goal) and the minutes, and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import learn  # noqa: E402
import learn_sets  # noqa: E402

ARMS = {"lp-ft": ("--head-fit",), "random head": ("--no-head-fit",)}


def _summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{sum(values) / len(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="faces,digits,photos")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/frelon-learn"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--arms", default=",".join(ARMS), help="which arms, comma-separated")
    parser.add_argument("--runs", type=Path, default=None, help="run folders (default CACHE/runs-lpft)")
    args = parser.parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {"seeds": seeds, "epochs_scale": args.epochs_scale, "threads": threads, "sets": {}}
    path = args.json or args.cache / "lpft.json"
    for name in args.only.split(","):
        spec = learn.SPECS[name]
        data = learn_sets.ensure(name, args.cache)
        epochs = learn.epochs_for(spec, False, args.epochs_scale)
        runs = (args.runs or args.cache / "runs-lpft") / name
        out = results["sets"][name] = {"epochs": epochs, "image_size": spec.image_size, "arms": {}}
        for seed in seeds:
            for arm in args.arms.split(","):
                extra = ARMS[arm]
                start = time.perf_counter()
                r = learn.run_frelon(spec, data, runs, epochs, env, seed, extra, arm.replace(" ", "-"))
                row = {"seed": seed, "test": r["test"], "best": r["best"], "minutes": (time.perf_counter() - start) / 60,
                       "val_curve": [c["val"] for c in r["val_curve"]], "lr": r["settings"].get("lr")}
                out["arms"].setdefault(arm, []).append(row)
                print(f"{name} seed {seed} {arm:12s} test {row['test']:.4f}  val {row['val_curve']}  "
                      f"{row['minutes']:.1f} min", flush=True)
                path.write_text(json.dumps(results, indent=1))
    print(f"\nLP-FT vs a random head: test accuracy, mean [lowest, highest] over seeds {seeds}; "
          f"bench/learn.py's full epochs x {args.epochs_scale:g}, {threads} thread(s), efficientnet_lite0")
    for name, out in results["sets"].items():
        for arm, rows in out["arms"].items():
            print(f"  {name:7s} ({out['epochs']} epochs)  {arm:12s} test {_summary([r['test'] for r in rows])}  "
                  f"first-epoch val {_summary([r['val_curve'][0] for r in rows if r['val_curve']])}  "
                  f"{sum(r['minutes'] for r in rows) / len(rows):.1f} min/run")
    return results


if __name__ == "__main__":
    main()
