#!/usr/bin/env python
"""Frelon's benchmark suite: performance figures as ratios against the physical limit on the same
machine, so that they hold on a noisy 2-core CPU and on an H100 alike.

    python bench/run.py [--quick] [--json FILE] [--device cpu|cuda] [--only P1,P4] [--threads N]

prints a table and writes JSON {"P1": {"value", "goal", "detail", "passed"}, …, "machine": {…}}.
Each figure is measured in one process, its compared variants interleaved and repeated, and the
median ratio reported (harness.py). `--quick` uses smaller images and fewer repeats (each figure's
`detail` says what it used) and ends in under 10 minutes on 2 CPU cores.

| id | figure                                                               | goal                       |
| P1 | engine training throughput ÷ a bare PyTorch loop (in-memory data)    | ≥ 0.97                     |
| P2 | throughput from a folder of JPEGs ÷ in-memory tensors                | ≥ 0.90                     |
| P3 | checkpointing stages / blocks ÷ off: activations, peak, step time    | ≤ 0.40, ≤ 0.70, ≤ 1.35     |
| P4 | `frelon plan`'s peak forecast ÷ the measured peak                    | 0.90–1.10                  |
| P5 | events streamed to a consumer ÷ events off; app event → plot p95     | ≥ 0.99; ≤ 100 ms           |
| P6 | CenterNet decode ÷ forward at 512 px                                 | ≤ 0.05                     |
| P7 | 2 CPU ranks: max |gradient difference| vs one process, joined batch  | ≤ 1e-5                     |
| P8 | CUDA: engine with AMP ÷ bare AMP loop (and images/s)                 | ≥ 0.95                     |

Not part of the test run (tests/test_bench_smoke.py calls the figures once with tiny sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
os.environ.setdefault("KINETO_LOG_LEVEL", "5")      # the profiler's own chatter, off stderr

from harness import Figure, table  # noqa: E402


def figures() -> dict:
    """{id: function(quick, device) -> Figure}, in table order."""
    import fig_detect
    import fig_memory
    import fig_ranks
    import fig_speed
    return {"P1": fig_speed.p1_engine_overhead, "P2": fig_speed.p2_jpeg_loading,
            "P3": fig_memory.p3_checkpointing, "P4": fig_memory.p4_forecast,
            "P5": fig_speed.p5_events, "P6": fig_detect.p6_decode,
            "P7": fig_ranks.p7_ranks, "P8": fig_speed.p8_cuda_amp}


def machine(device: str) -> dict:
    import psutil
    import torch
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "ram_bytes": psutil.virtual_memory().total, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "device": device}
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    return info


def run_figure(fid: str, fn, quick: bool, device: str) -> Figure:
    t = time.perf_counter()
    try:
        fig = fn(quick, device)
    except Exception as e:      # one broken figure must not hide the others
        fig = Figure(fid, fid, f"failed: {type(e).__name__}: {e}", "", {"traceback": traceback.format_exc()}, False)
    fig.detail["seconds"] = round(time.perf_counter() - t, 1)
    fig.detail["load_average"] = list(os.getloadavg())
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Frelon's benchmark suite (ratios).")
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats: < 10 min on 2 cores")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--only", default="", help="comma-separated ids, e.g. P1,P4")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (default: torch's own choice); 1 steadies the figures on a "
                        "machine others are loading, and is recorded in the JSON")
    args = p.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    wanted = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if args.device == "cpu" and not args.threads and load > cores / 2:
        print(f"[bench] warning: load average {load:.1f} on {cores} cores: other processes will preempt "
              "torch's threads and the ratios will swing; --threads 1 steadies them", file=sys.stderr)
    started = time.perf_counter()
    results: list[Figure] = []
    for fid, fn in figures().items():
        if wanted and fid not in wanted:
            continue
        print(f"[bench] {fid}…", file=sys.stderr, flush=True)
        fig = run_figure(fid, fn, args.quick, args.device)
        print(f"[bench] {fid} = {fig.value} ({fig.detail['seconds']} s)", file=sys.stderr, flush=True)
        results.append(fig)
    info = machine(args.device)
    info.update(quick=args.quick, seconds=round(time.perf_counter() - started, 1))
    print(table(results))
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}"
          + (f", {info['gpu']}" if "gpu" in info else "") + f"; {info['seconds']} s"
          + ("; --quick" if args.quick else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {f.id: f.to_json() for f in results}
        out["machine"] = info
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0 if all(f.passed is not False for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
