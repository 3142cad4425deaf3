"""P9: what the multi-rank heartbeats cost a training step (issue: the stall watchdog, ≤ 1 %).

A rank beats 6 times per optimizer step with one micro-batch (data, forward, backward,
collective, optimizer, and a logged step's memory gather); each beat is one pwrite of 40 bytes.
This times the beats themselves (median of many) and divides by the time of a real training step
of the P1 workload (resnet18, 112 px, batch 16, on this machine), so the ratio is the share of a
step spent beating. The launcher reads the files in its own process, once a second.

    python bench/watchdog_cost.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from frelon.engine.backbones import build_classifier
from frelon.engine.heartbeat import Heartbeat

BEATS_PER_STEP = 6


def beat_seconds(n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        hb = Heartbeat(d, 0)
        phases = ["data", "forward", "backward", "collective", "optimizer", "collective"]
        times = []
        for _ in range(n // 100):
            t = time.perf_counter()
            for i in range(100):
                hb.beat(phases[i % 6])
            times.append((time.perf_counter() - t) / 100)
        hb.close()
    return statistics.median(times)


def step_seconds(size: int, batch: int, steps: int) -> float:
    model, _ = build_classifier("resnet18", 10, "none")
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    beat = beat_seconds(2_000 if a.quick else 20_000)
    step = step_seconds(64 if a.quick else 112, 16, 3 if a.quick else 10)
    ratio = BEATS_PER_STEP * beat / step
    print(f"P9 heartbeat: {beat * 1e6:.1f} µs per beat × {BEATS_PER_STEP} per step ÷ {step * 1e3:.0f} ms "
          f"per step (resnet18, {64 if a.quick else 112} px, batch 16, CPU) = {ratio:.2e} of a step "
          f"({'within' if ratio <= 0.01 else 'over'} the 1 % goal)")


if __name__ == "__main__":
    main()
