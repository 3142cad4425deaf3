#!/usr/bin/env python
"""Learning quality as a benchmark: Frelon with its defaults against a plain PyTorch loop, on five
sets made offline from real pictures, each scored on a held-out test split.

    python bench/learn.py [--quick] [--only faces,digits-det] [--repeats N] [--json FILE] [--cache DIR]
                          [--epochs-scale F] [--data-scale F] [--threads N] [--keep-runs]

prints a table and writes JSON {"sets": {name: {...}}, "machine": {...}, "quick": ..., "seconds": ...}.

The sets (bench/learn_sets.py, built once into --cache, default /tmp/frelon-learn; not committed):

| set        | task     | train / val / test | metric        | Frelon's options, full (--quick)                  |
| faces      | classify | 130 / 20 / 50      | accuracy      | --image-size 96 --epochs 6 (4)                     |
| digits     | classify | 1,401 / 198 / 198  | accuracy      | --image-size 64 --epochs 8 (3)                     |
| photos     | classify | 1,040 / 130 / 260  | accuracy      | --image-size 128 --epochs 6 (2)                    |
| digits-det | detect   | 320 / 80 / 80      | mAP@0.5       | --task detect --image-size 192 --epochs 26 (6)     |
| cat-det    | detect   | 200 / 50 / 50      | mAP@0.5       | --task detect --image-size 192 --epochs 36 (6)     |

For each set, one after the other:
  1. Frelon: the real command line in a subprocess, `python -m frelon train --data SET --out RUNS
     --name NAME --events FILE` plus only the options above (everything else is Frelon's default:
     batch, LR and its schedule, augmentation, detector...). Its wall-clock, start to exit, is the
     budget. Then `python -m frelon eval --run RUN --data SET/test --json` scores its best
     checkpoint (chosen on val) on the test split; the val curve comes from its epoch_end events.
  2. The reference: a plain loop written here, run in a process of its own (`--reference`), with
     the same wall-clock budget counted, as Frelon's is, from the moment its process is started
     (interpreter, imports, model and data set-up included; the final test scoring not). Run inside
     this process instead, it would get the interpreter's start and torch's import for free: on
     the short sets that was a quarter of the budget. The same backbone
     (efficientnet_lite0, the same ImageNet weights, through frelon.engine.backbones) with a new
     head, AdamW at 1e-3 constant (default weight decay), batch 16, RandomResizedCrop(scale 0.25-1)
     + horizontal flip (torchvision transforms v2), no schedule, no validation; it stops when the
     budget is spent (mid-epoch) and its last weights are scored. Classification: resize + centre
     crop, top-1 accuracy by argmax. Detection: the engine's CenterNet (build_detector, the paper's
     plain neck where the engine offers a choice), targets.encode, centernet_loss and decode as
     building blocks in the same plain loop (letterbox, then crop scale 0.5-1 + flip), mAP@0.5 by
     pycocotools' COCOeval against the test split's annotations.json, not Frelon's code.

Reading the table: "Frelon (defaults)" and "reference loop" are the test-split figures (accuracy or
mAP@0.5, higher is better) of the two at equal wall-clock; "minutes" is that budget. A reference
above Frelon means Frelon's defaults learn less from the same time than the plainest recipe does.
The JSON also holds Frelon's val curve per epoch, its best epoch, the reference's steps and epochs,
and the effective settings Frelon chose. `--repeats N` runs both sides N times with training seeds
0..N-1 (Frelon's `--seed`; the data stay the same) and reports the means, with the lowest and
highest in brackets: on a small test split one run moves by a few pictures. Digits are
mirror-asymmetric: the reference flips them anyway (it is the plain recipe); Frelon may not (its
flip policy is one of its defaults).

`--quick` uses fewer epochs (the figures in brackets above; the table says "quick") and ends in
under 30 minutes on 2 CPU cores; the full run takes about 1.1 hours there (the detection sets
about 14 and 12 Frelon minutes, each matched by the reference; digits-det's 26 and cat-det's 36
epochs are sized to end within the 20 and 15 minutes the goals allow). `--epochs-scale` and `--data-scale`
shrink both further for smoke tests. Not part of the test run (tests/test_bench_smoke.py builds the
sets at a tiny size and checks them).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import learn_sets  # noqa: E402

BACKBONE = "efficientnet_lite0"
REF_LR = 1e-3
REF_BATCH = 16


@dataclass(frozen=True)
class Spec:
    name: str
    task: str            # classify | detect
    metric: str          # the key in `frelon eval --json`: accuracy | map_50
    image_size: int
    epochs: int
    quick_epochs: int


SPECS = {s.name: s for s in (
    Spec("faces", "classify", "accuracy", 96, 6, 4),
    Spec("digits", "classify", "accuracy", 64, 8, 3),
    Spec("photos", "classify", "accuracy", 128, 6, 2),
    Spec("digits-det", "detect", "map_50", 192, 26, 6),
    Spec("cat-det", "detect", "map_50", 192, 36, 6),
)}
METRIC_NAMES = {"accuracy": "accuracy", "map_50": "mAP@0.5"}


def epochs_for(spec: Spec, quick: bool, scale: float) -> int:
    return max(1, round((spec.quick_epochs if quick else spec.epochs) * scale))


def frelon_options(spec: Spec, epochs: int) -> list[str]:
    task = ["--task", "detect"] if spec.task == "detect" else []
    return [*task, "--image-size", str(spec.image_size), "--epochs", str(epochs)]


# ---------------------------------------------------------------- Frelon, through its command line

def _read_events(path: Path) -> list[dict]:
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    out.append(event)
    return out


def _tail(path: Path, n: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    return ""


def run_frelon(spec: Spec, data: Path, runs: Path, epochs: int, env: dict, seed: int = 0,
               extra: tuple[str, ...] = (), tag: str = "") -> dict:
    """Train with the real CLI, then score its best checkpoint on data/test with `frelon eval`.
    A seed other than 0 (Frelon's default) is passed as `--seed`: the same recipe, another draw.
    `extra`: options beyond the set's (an arm of a comparison, named `tag` in the run's name)."""
    runs.mkdir(parents=True, exist_ok=True)
    name = (spec.name if seed == 0 else f"{spec.name}-seed{seed}") + (f"-{tag}" if tag else "")
    events_path, log_path = runs / f"{name}.events.jsonl", runs / f"{name}.log"
    options = [*frelon_options(spec, epochs), *extra]
    cmd = [sys.executable, "-m", "frelon", "train", "--data", str(data), "--out", str(runs),
           "--name", name, "--events", str(events_path), *options, *(["--seed", str(seed)] if seed else [])]
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env).returncode
    seconds = time.perf_counter() - start
    events = _read_events(events_path)
    started = next((e for e in events if e.get("type") == "run_started"), {})
    finished = next((e for e in events if e.get("type") == "run_finished"), {})
    errors = [e for e in events if e.get("type") == "error"]
    curve = [{"epoch": e.get("epoch"), "train_loss": e.get("train_loss"),
              "val": (e.get("val") or {}).get(spec.metric), "seconds": e.get("duration_s")}
             for e in events if e.get("type") == "epoch_end"]
    result = {"options": " ".join(options), "command": " ".join(cmd), "seconds": seconds, "rc": rc,
              "status": finished.get("status"), "epochs_done": finished.get("epochs_done"),
              "best": finished.get("best"), "val_curve": curve, "settings": _settings(started)}
    run_dir = finished.get("run_dir") or started.get("run_dir")
    if rc != 0 or not run_dir or finished.get("status") != "completed":
        why = errors[0].get("message") if errors else f"exit status {rc}"
        raise RuntimeError(f"frelon train failed: {why}\n{_tail(log_path)}")
    start = time.perf_counter()
    ev = subprocess.run([sys.executable, "-m", "frelon", "eval", "--run", run_dir, "--data", str(data / "test"),
                         "--json"], capture_output=True, text=True, cwd=REPO, env=env)
    result["eval_seconds"] = time.perf_counter() - start
    if ev.returncode != 0:
        raise RuntimeError(f"frelon eval failed (exit {ev.returncode}): {ev.stderr[-2000:]}")
    metrics = json.loads(ev.stdout[ev.stdout.index("{"):])
    result.update(test=metrics.get(spec.metric), test_images=metrics.get("images"), run_dir=run_dir)
    return result


def _settings(started: dict) -> dict:
    """What Frelon chose by itself (from run_started): the defaults this run used."""
    cfg = started.get("config") or {}
    keep = ("batch_size", "lr", "ref_batch", "head_lr_mult", "warmup_epochs", "schedule", "optimizer",
            "weight_decay", "augment", "flip", "detector", "random_erasing", "image_size")
    out = {k: cfg[k] for k in keep if k in cfg}
    for k in ("effective_lr", "global_batch", "steps_per_epoch", "total_steps", "device", "lr_choice"):
        if k in started:
            out[k] = started[k]
    return out


# ---------------------------------------------------------------- the reference loops

def _device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _workers() -> int:
    return max(0, (os.cpu_count() or 1) - 1)     # what Frelon picks by itself (training/loaders.py)


def reference_classify(data: Path, size: int, budget_s: float, seed: int = 0) -> dict:
    """A plain fine-tuning loop: train on data/train for `budget_s` seconds, then top-1 on data/test."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2
    from frelon.engine.backbones import build_classifier

    start, device = time.perf_counter(), _device()
    torch.manual_seed(seed)
    train = ImageFolder(str(data / "train"))
    model, pre = build_classifier(BACKBONE, len(train.classes))           # ImageNet weights, new head
    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre["mean"], pre["std"])]
    train.transform = v2.Compose([v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True),
                                  v2.RandomHorizontalFlip(), *norm])
    loader = DataLoader(train, batch_size=REF_BATCH, shuffle=True, drop_last=len(train) > REF_BATCH,
                        num_workers=_workers(), persistent_workers=_workers() > 0)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=REF_LR)
    steps = seen = 0
    while time.perf_counter() - start < budget_s:
        for x, y in loader:
            if time.perf_counter() - start >= budget_s:
                break
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps, seen = steps + 1, seen + len(y)
    train_s = time.perf_counter() - start

    test = ImageFolder(str(data / "test"), transform=v2.Compose(
        [v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size), *norm]))
    if test.classes != train.classes:
        raise RuntimeError(f"test classes {test.classes} differ from training classes {train.classes}")
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=64):
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    return {"test": correct / len(test), "test_images": len(test), "seconds": train_s, "steps": steps,
            "epochs": seen / len(train), "loss": loss.item() if steps else None}


FILL = (124, 116, 104)      # ImageNet's mean, for the letterbox padding


def _letterbox(image, boxes, size: int):
    """The longer side resized to `size`, padded right and bottom: (image, boxes, scale)."""
    from PIL import Image
    scale = size / max(image.size)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size), FILL)
    canvas.paste(resized)
    return canvas, boxes * scale, scale


class CocoFolder:
    """A COCO folder (annotations.json beside its images) as (image, CenterNet targets) for training,
    or (image, image id, scale) for scoring."""

    def __init__(self, folder: Path, size: int, train: bool, mean, std):
        import torch
        from torchvision.transforms import v2
        self.folder, self.size, self.train = Path(folder), size, train
        doc = json.loads((self.folder / "annotations.json").read_text(encoding="utf-8"))
        self.category_ids = sorted(c["id"] for c in doc["categories"])
        label = {cid: i for i, cid in enumerate(self.category_ids)}
        self.images = doc["images"]
        self.boxes = {img["id"]: ([], []) for img in self.images}
        for a in doc["annotations"]:
            x, y, w, h = a["bbox"]
            self.boxes[a["image_id"]][0].append([x, y, x + w, y + h])
            self.boxes[a["image_id"]][1].append(label[a["category_id"]])
        augment = [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip(),
                   v2.SanitizeBoundingBoxes()] if train else []
        self.transform = v2.Compose([v2.ToImage(), *augment, v2.ToDtype(torch.float32, scale=True),
                                     v2.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image
        from torchvision import tv_tensors
        from frelon.engine.centernet.targets import encode
        info = self.images[i]
        image = Image.open(self.folder / info["file_name"]).convert("RGB")
        boxes, labels = self.boxes[info["id"]]
        image, boxes, scale = _letterbox(image, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), self.size)
        target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(self.size, self.size)),
                  "labels": torch.tensor(labels, dtype=torch.long)}
        image, target = self.transform(image, target)
        if not self.train:
            return image, info["id"], scale
        out = self.size // 4
        return image, encode(target["boxes"].as_subclass(torch.Tensor), target["labels"],
                             len(self.category_ids), (out, out))


def _collate_train(batch):
    import torch
    return torch.stack([b[0] for b in batch]), {k: torch.stack([b[1][k] for b in batch]) for k in batch[0][1]}


def _reference_detector(num_classes: int):
    """The engine's CenterNet on the same backbone; the paper's recipe (plain neck, centre-only
    targets: what targets.encode and centernet_loss go with) where build_detector offers a choice."""
    import inspect
    from frelon.engine.tasks.detect import build_detector
    if "detector" in inspect.signature(build_detector).parameters:
        return build_detector(BACKBONE, num_classes, detector="centernet")
    return build_detector(BACKBONE, num_classes)


def reference_detect(data: Path, size: int, budget_s: float, seed: int = 0) -> dict:
    """A plain CenterNet loop: train on data/train for `budget_s` seconds, then mAP@0.5 on data/test."""
    import torch
    from torch.utils.data import DataLoader
    from frelon.engine.centernet.decode import decode
    from frelon.engine.centernet.loss import centernet_loss

    start, device = time.perf_counter(), _device()
    torch.manual_seed(seed)
    classes = json.loads((data / "train" / "annotations.json").read_text(encoding="utf-8"))["categories"]
    model, pre = _reference_detector(len(classes))
    train = CocoFolder(data / "train", size, True, pre["mean"], pre["std"])
    loader = DataLoader(train, batch_size=REF_BATCH, shuffle=True, drop_last=len(train) > REF_BATCH,
                        num_workers=_workers(), persistent_workers=_workers() > 0, collate_fn=_collate_train)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=REF_LR)
    steps = seen = 0
    while time.perf_counter() - start < budget_s:
        for x, targets in loader:
            if time.perf_counter() - start >= budget_s:
                break
            loss, _ = centernet_loss(model(x.to(device)), {k: v.to(device) for k, v in targets.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps, seen = steps + 1, seen + len(x)
    train_s = time.perf_counter() - start

    test = CocoFolder(data / "test", size, False, pre["mean"], pre["std"])
    model.eval()
    results = []
    with torch.no_grad():
        for x, ids, scales in DataLoader(test, batch_size=16):
            for det, image_id, scale in zip(decode(model(x.to(device))), ids.tolist(), scales.tolist()):
                for (x1, y1, x2, y2), score, label in zip((det.boxes / scale).tolist(), det.scores.tolist(),
                                                          det.labels.tolist()):
                    results.append({"image_id": image_id, "category_id": test.category_ids[label],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    return {"test": coco_map50(data / "test" / "annotations.json", results), "test_images": len(test),
            "seconds": train_s, "steps": steps, "epochs": seen / len(train), "loss": loss.item() if steps else None}


def coco_map50(annotations: Path, results: list[dict]) -> float:
    """AP at IoU 0.5 (area all, 100 detections) by pycocotools, straight from the annotations file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        ev = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(max(ev.stats[1], 0.0))


REFERENCES = {"classify": reference_classify, "detect": reference_detect}
REFERENCE_MARK = "reference-result: "


def run_reference(spec: Spec, data: Path, budget_s: float, seed: int, env: dict) -> dict:
    """The reference loop in a new process whose budget counts from now, as Frelon's did from its
    own start: the child spends what its interpreter and imports take out of `budget_s`."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--reference", spec.name, "--data", str(data),
           "--budget", repr(budget_s), "--spawned-at", repr(time.time()), "--seed", str(seed)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith(REFERENCE_MARK)), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"the reference failed (exit {p.returncode}): {p.stderr[-2000:]}")
    return json.loads(line[len(REFERENCE_MARK):])


def reference_main(args) -> None:
    """`--reference SET`: the child side of run_reference (prints one marked JSON line)."""
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    spec = SPECS[args.reference]
    started_late = time.time() - args.spawned_at        # the interpreter's start and the imports
    result = REFERENCES[spec.task](Path(args.data), spec.image_size, args.budget - started_late, seed=args.seed)
    result["seconds"] += started_late
    result["startup_seconds"] = started_late
    print(REFERENCE_MARK + json.dumps(result), flush=True)


# ---------------------------------------------------------------- the table

def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def _cell(side: dict) -> str:
    """The test figure; over several seeds their mean, then the lowest and highest."""
    if "error" in side:
        return "failed"
    tests = side.get("tests") or []
    spread = f" ({_fmt(min(tests))}-{_fmt(max(tests))})" if len(tests) > 1 else ""
    return _fmt(side.get("test")) + spread


def table(results: dict, quick: bool, repeats: int = 1) -> str:
    rows = [("set", "metric", "Frelon (defaults)", "reference loop", "minutes", "Frelon's options")]
    for name, r in results.items():
        f, ref = r.get("frelon") or {}, r.get("reference") or {}
        minutes = f"{f['seconds'] / 60:.1f}" if "seconds" in f else "-"
        rows.append((name, METRIC_NAMES.get(r["metric"], r["metric"]),
                     _cell(f), _cell(ref), minutes, r["options"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("test-split figures at equal wall-clock (minutes: Frelon's whole command = the reference's "
                 "budget)" + ("; quick: fewer epochs than the full benchmark" if quick else "")
                 + (f"; each figure the mean of {repeats} training seeds (lowest-highest)" if repeats > 1 else ""))
    return "\n".join(lines)


def curves(results: dict) -> str:
    lines = []
    for name, r in results.items():
        f, ref = r.get("frelon") or {}, r.get("reference") or {}
        vals = " ".join(_fmt(c["val"]) for c in f.get("val_curve", []))
        if vals:
            best = (f.get("best") or {}).get("epoch")
            lines.append(f"{name}: Frelon val {METRIC_NAMES.get(r['metric'])} by epoch: {vals} (best epoch {best}); "
                         f"reference: {ref.get('steps', '-')} steps, {_fmt(ref.get('epochs'))} epochs")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def run_set(spec: Spec, args, env: dict) -> dict:
    """The set's Frelon run and reference run, `--repeats` times with training seeds 0, 1, ... (the
    data stay the same); "frelon" and "reference" hold the mean of the repeats, "runs" each one."""
    epochs = epochs_for(spec, args.quick, args.epochs_scale)
    out = {"task": spec.task, "metric": spec.metric, "options": " ".join(frelon_options(spec, epochs))}
    t = time.perf_counter()
    data = learn_sets.ensure(spec.name, args.cache, seed=args.seed, scale=args.data_scale)
    out["data"] = {"path": str(data), "build_seconds": round(time.perf_counter() - t, 1),
                   **{k: v for k, v in learn_sets.summary(data).items() if k != "build"}}
    runs = Path(args.cache) / "runs" / spec.name
    shutil.rmtree(runs, ignore_errors=True)
    out["runs"] = []
    for seed in range(args.repeats):
        one = run_pair(spec, data, runs, epochs, seed, env)
        out["runs"].append({"seed": seed, **one})
        if args.repeats > 1:
            print(f"  {spec.name} seed {seed}: Frelon {_cell(one['frelon'])}, reference "
                  f"{_cell(one.get('reference') or {})}", flush=True)
    out["frelon"] = combine([r["frelon"] for r in out["runs"]])
    out["reference"] = combine([r.get("reference") or {"error": "not run: Frelon failed"} for r in out["runs"]])
    if not args.keep_runs:
        for run_dir in runs.glob("*"):
            if run_dir.is_dir():
                shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return out


def run_pair(spec: Spec, data: Path, runs: Path, epochs: int, seed: int, env: dict) -> dict:
    """Frelon with training seed `seed`, then the reference with the same seed and Frelon's time."""
    try:
        frelon = run_frelon(spec, data, runs, epochs, env, seed=seed)
    except Exception as e:                   # no budget: the reference is not run
        print(f"{spec.name}: Frelon failed: {e}", file=sys.stderr)
        return {"frelon": {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}}
    budget = frelon["seconds"]
    try:
        reference = {"budget_seconds": budget, **run_reference(spec, data, budget, seed, env)}
    except Exception as e:
        reference = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        print(f"{spec.name}: reference failed: {e}", file=sys.stderr)
    return {"frelon": frelon, "reference": reference}


def combine(sides: list[dict]) -> dict:
    """One side's repeats as one: the first run's details, with `test` and `seconds` the means
    over the runs that ended, `tests` each of them. A single run is left as it is."""
    done = [s for s in sides if "error" not in s and isinstance(s.get("test"), (int, float))]
    if len(sides) == 1 or not done:
        return sides[0]
    tests = [s["test"] for s in done]
    return {**done[0], "test": sum(tests) / len(tests), "tests": tests, "failed_runs": len(sides) - len(done),
            "seconds": sum(s["seconds"] for s in done) / len(done)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs: under 30 minutes on 2 CPU cores")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SPECS)}")
    parser.add_argument("--json", type=Path, default=None, help="default: CACHE/learn.json")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/frelon-learn"), help="data sets and runs")
    parser.add_argument("--seed", type=int, default=0, help="the sets' build seed (the reference's, as a child)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train each side N times, with training seeds 0..N-1, and report the mean")
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="× every epoch count (smoke tests)")
    parser.add_argument("--data-scale", type=float, default=1.0, help="× every set's image counts (smoke tests)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads, both sides (default: one per core)")
    parser.add_argument("--keep-runs", action="store_true", help="keep Frelon's checkpoints")
    parser.add_argument("--reference", choices=list(SPECS), help=argparse.SUPPRESS)    # run_reference's child
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference:
        reference_main(args)
        return {}
    names = [n for n in args.only.split(",") if n] or list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}: choose from {', '.join(SPECS)}")

    import torch
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    started = time.perf_counter()
    results = {}
    for name in names:
        print(f"[{time.perf_counter() - started:6.0f} s] {name} ...", flush=True)
        results[name] = r = run_set(SPECS[name], args, env)
        f, ref = r.get("frelon") or {}, r.get("reference") or {}
        print(f"{name}: Frelon {_cell(f)}, reference {_cell(ref)} ({METRIC_NAMES[r['metric']]}, test split)"
              + (f" in {f['seconds'] / 60:.1f} min each" if "seconds" in f else ""), flush=True)
    from run import machine
    report = {"sets": results, "quick": args.quick, "repeats": args.repeats, "epochs_scale": args.epochs_scale,
              "data_scale": args.data_scale, "seconds": round(time.perf_counter() - started, 1),
              "machine": machine(_device())}
    print(table(results, args.quick, args.repeats))
    print(curves(results))
    print(f"{report['seconds'] / 60:.1f} minutes in all")
    path = args.json or Path(args.cache) / "learn.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(f"JSON: {path}")
    return report


if __name__ == "__main__":
    main()
