#!/usr/bin/env python
"""INT8 against float on real held-out pictures: accuracy, file size, CPU latency.

For each set of bench/learn_sets.py asked for (default: faces and photos), a classifier is trained
through the real command line (`frelon train`, the default backbone efficientnet_lite0 with its
bundled ImageNet weights, the set's image size from bench/learn.py), exported with
`frelon export --int8 --max-drop 1` (calibrated on 64 training pictures, so that nothing is
refused here: the figures are the point), and both ONNX models are scored with onnxruntime on the
set's TEST split — pictures neither training, calibration nor the export's own validation check
saw — through the evaluation transform. Latency: one picture per call, one thread, median of 20
(engine/commands/int8.py). Prints one row per set, and the scale it ran at.

    OMP_NUM_THREADS=1 python bench/fig_int8.py [--sets faces,photos] [--scale 0.3] [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import learn  # noqa: E402
import learn_sets  # noqa: E402


def frelon(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))
    if p.returncode:
        raise SystemExit(f"frelon {args[0]} failed: {p.stderr[-2000:]}")
    return p.stdout


def test_scores(run: Path, test: Path, export: dict) -> dict:
    """Accuracy of the float and INT8 ONNX models on the test folder (classes matched by name)."""
    from frelon.engine.classify.int8 import ClassifierQuantization
    from frelon.engine.classify.predict import labelled_samples
    from frelon.engine.commands.int8 import session
    from frelon.engine.inference import load_run
    loaded = load_run(run, device="cpu")
    samples, _ = labelled_samples(loaded, str(test))
    data = ClassifierQuantization(loaded, [], samples, str(test))
    out = {}
    for name, path in (("float", export["path"]), ("int8", export["int8"]["path"])):
        s = session(path)
        out[name] = data.score(lambda x, s=s: s.run(None, {"images": x}))
    agree = sum(a == b for a, b in zip(out["float"]["predicted"], out["int8"]["predicted"])) / max(1, len(samples))
    return {"float": out["float"]["value"], "int8": out["int8"]["value"], "images": len(samples), "agreement": agree}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="faces,photos")
    ap.add_argument("--scale", type=float, default=0.3, help="share of each set's pictures (learn_sets --scale)")
    ap.add_argument("--epochs", type=int, default=None, help="default: bench/learn.py's quick epochs")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "frelon-learn"))
    args = ap.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="frelon-int8-"))
    rows = []
    for name in args.sets.split(","):
        spec = learn.SPECS[name]
        data = learn_sets.ensure(name, Path(args.cache), seed=0, scale=args.scale)
        epochs = args.epochs or spec.quick_epochs
        frelon("train", "--data", str(data), "--out", str(runs / name), "--image-size", str(spec.image_size),
               "--epochs", str(epochs), "--workers", "0")
        run = next((runs / name).iterdir())
        export = json.loads(frelon("export", "--run", str(run), "--int8", "--max-drop", "1"))
        q = export["int8"]
        test = test_scores(run, data / "test", export)
        rows.append((name, spec.image_size, epochs, q, test))
        print(f"{name}: done ({q['validation_images']} val, {test['images']} test pictures)", file=sys.stderr)
    print(f"INT8 (onnxruntime static QDQ, per-channel, 64 calibration pictures) vs float, efficientnet_lite0, "
          f"learn_sets scale {args.scale}, seed 0, one run each; CPU: {os.cpu_count()} cores, latency 1 thread")
    print("| set | px | epochs | test pictures | accuracy float | accuracy INT8 | agreement | size float → INT8 (MiB) | latency float → INT8 (ms) | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, px, epochs, q, t in rows:
        f, i = q["float"], q["int8"]
        print(f"| {name} | {px} | {epochs} | {t['images']} | {t['float']:.3f} | {t['int8']:.3f} | {t['agreement']:.3f} | "
              f"{f['size_bytes'] / 2**20:.1f} → {i['size_bytes'] / 2**20:.1f} ({f['size_bytes'] / i['size_bytes']:.1f}×) | "
              f"{f['latency_ms']:.1f} → {i['latency_ms']:.1f} | {f['latency_ms'] / i['latency_ms']:.2f}× |")


if __name__ == "__main__":
    main()
