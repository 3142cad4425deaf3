"""The one-shot GPU check (bench/gpu_check.sh): everything that only a GPU can show, in one run
of under 8 minutes, into one JSON file. On a machine without CUDA each GPU item is recorded as
skipped with the reason, and the CPU-side checks (--sync-bn refused on the CPU) still run.

Items: CUDA memory and AMP in a real run (--amp: bf16 or fp16 + scaler, as the GPU supports),
--gpus N through torchrun with NCCL (N = the GPUs visible, at least 2), --sync-bn used on CUDA
ranks or refused on the CPU as documented, and bench/run.py's P3 (checkpointing), P4 (forecast
÷ torch.cuda.max_memory_allocated) and P8 (engine with AMP ÷ a bare AMP loop) on CUDA.

    bash bench/gpu_check.sh [OUT.json]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = "20"


def frelon(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frelon", *args], capture_output=True, text=True, timeout=timeout)


def events_of(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def train(out: Path, *extra: str) -> dict:
    """A short real run on the bundled sample; what it reported."""
    t = time.perf_counter()
    r = frelon("train", "--out", str(out), "--epochs", "1", "--max-steps", STEPS, "--workers", "2",
               "--log-interval", "0", "--events", "-", *extra)
    evs = events_of(r.stdout)
    started = next((e for e in evs if e["type"] == "run_started"), {})
    finished = next((e for e in evs if e["type"] == "run_finished"), {})
    steps = [e for e in evs if e["type"] == "step"]
    error = next((e for e in evs if e["type"] == "error"), None)
    return {"status": "ok" if r.returncode == 0 and finished.get("status") == "completed" else "failed",
            "seconds": round(time.perf_counter() - t, 1), "args": list(extra), "exit_code": r.returncode,
            "device": started.get("device"), "world_size": started.get("world_size"),
            "samples_per_s": steps[-1]["samples_per_s"] if steps else None,
            "memory_last_step": steps[-1]["memory"] if steps else None,
            "error": error and {k: error.get(k) for k in ("kind", "message", "hint")},
            "stderr_tail": r.stderr[-1500:] if r.returncode else ""}


def skipped(why: str) -> dict:
    return {"status": "skipped", "why": why}


def main() -> int:
    import torch
    out_path = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_check.json")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    no_gpu = "no CUDA device is visible on this machine"
    report: dict = {"torch": torch.__version__, "cuda_devices": gpus,
                    "gpu": torch.cuda.get_device_name(0) if gpus else None,
                    "capability": list(torch.cuda.get_device_capability(0)) if gpus else None, "items": {}}
    items = report["items"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        if gpus:
            items["cuda_run"] = train(runs / "cuda", "--device", "cuda")
            items["amp"] = train(runs / "amp", "--device", "cuda", "--amp")
            from frelon.engine.precision import amp_dtype
            items["amp"]["dtype"] = str(amp_dtype(torch.device("cuda", 0)))
        else:
            items["cuda_run"] = items["amp"] = skipped(no_gpu)
        if gpus >= 2:
            items["gpus_nccl"] = train(runs / "nccl", "--gpus", str(gpus))
            items["sync_bn"] = train(runs / "syncbn", "--gpus", str(gpus), "--sync-bn", "--batch-size", "4")
        else:
            items["gpus_nccl"] = skipped(f"--gpus N needs at least 2 GPUs; {gpus} visible")
            r = frelon("train", "--out", str(runs / "refused"), "--sync-bn", "--device", "cpu", "--max-steps", "1")
            refused = r.returncode == 1 and "--sync-bn needs CUDA" in r.stderr
            items["sync_bn"] = {"status": "ok" if refused else "failed", "checked": "refused on the CPU as documented",
                                "stderr_tail": r.stderr[-500:]}
        if gpus:
            bench_json = runs / "bench.json"
            r = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--device", "cuda",
                                "--only", "P3,P4,P8", "--json", str(bench_json)], capture_output=True, text=True,
                               timeout=360)
            figures = json.loads(bench_json.read_text()) if bench_json.is_file() else {}
            items["bench"] = {"status": "ok" if r.returncode == 0 else "failed", "figures": figures,
                              "stderr_tail": r.stderr[-1500:]}
        else:
            items["bench"] = skipped(no_gpu + ": P3, P4 and P8 are CUDA figures here")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["ok"] = all(i["status"] != "failed" for i in items.values())
    out_path.write_text(json.dumps(report, indent=2))
    for name, item in items.items():
        print(f"{name:10s} {item['status']:8s} {item.get('why') or item.get('checked') or item.get('seconds', '')}")
    print(f"wrote {out_path} ({report['seconds']} s)")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
