"""Memory figures: P3 (gradient checkpointing stages / blocks vs off) and P4 (`frelon plan`'s
forecast ÷ the peak of a real training run).

Peak memory. CUDA: P3 torch.cuda.max_memory_allocated; P4 max_memory_reserved (what the forecast
measures), over the whole run through the run's own resets (memory.run_peaks). CPU: the torch profiler's allocation events
(profile_memory=True) summed in time order — the same meter engine/training/forecast.py uses (engine/peaks.py). For P4 the
measured side is independent of the forecast's shortcuts: the whole `run_training` (data scan,
model build, real data loader, two steps, epoch-end checkpoints) runs under the meter at the full
batch, where the forecast only ran two small batches of synthetic data and extrapolated.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import torch

from frelon.engine import memory, peaks
from frelon.engine.training import forecast as plan
from frelon.common.train_config import TrainConfig
from frelon.engine.control import EventWriter
from frelon.engine.training.run import run_training

from harness import Figure, interleaved, median
from workloads import tiny_folder

MODES = ("off", "stages", "blocks")


# ---------------------------------------------------------------- P3

def _activation_bytes(run: plan.Run, batch) -> int:
    task = run.task
    counter = memory.ActivationCounter(run.model)
    run.model.train()
    with counter.counting():
        loss, _, _ = task.loss(run.model, batch, run.device)
    del loss
    return counter.bytes


def _step_peak(run: plan.Run, batch_size: int) -> int:
    """Peak bytes of a training step (forward, backward, optimizer), at this batch."""
    measured = plan.measure(run, (batch_size,), checkpoint_phase=False)
    return max(v[0] for v in measured.values())


def _step_timer(run: plan.Run, batch):
    """A function timing one training step (seconds) on the run's model, whatever its mode."""
    task = run.task
    optimizer = torch.optim.AdamW(run.model.parameters(), lr=1e-5)

    def step() -> float:
        _sync(run.device)
        t = time.perf_counter()
        loss, _, _ = task.loss(run.model, batch, run.device)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(run.device)
        return time.perf_counter() - t
    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def checkpointing_case(backbone: str, batch: int, size: int, repeats: int, device: str) -> dict:
    """{mode: {activation_bytes, peak_bytes, step_s}} and the ratios to "off"."""
    cfg = TrainConfig(backbone=backbone, task="classify", weights="none", image_size=size,
                      batch_size=batch, device=device)
    run = plan.prepare(cfg, torch.device(device))
    data = run.task.synthetic_batch(batch, size, run.num_classes)
    out: dict = {m: {} for m in MODES}
    for mode in MODES:
        run.model.set_checkpointing(mode)
        out[mode]["activation_bytes"] = _activation_bytes(run, data)
        out[mode]["peak_bytes"] = _step_peak(run, batch)
    step = _step_timer(run, data)

    def timed(mode):
        def f():
            run.model.set_checkpointing(mode)
            return step()
        return f
    for mode in MODES:                         # warm-up: allocator, oneDNN / cuDNN choices
        timed(mode)()
    times = interleaved({m: timed(m) for m in MODES}, repeats)
    for mode in MODES:
        out[mode]["step_s"] = median(times[mode])
        out[mode]["step_s_all"] = [round(t, 4) for t in times[mode]]
    ratios = {}
    for mode in ("stages", "blocks"):
        ratios[mode] = {
            "activations": out[mode]["activation_bytes"] / out["off"]["activation_bytes"],
            "peak": out[mode]["peak_bytes"] / out["off"]["peak_bytes"],
            "time": median([t / o for t, o in zip(times[mode], times["off"])]),
        }
    return {"backbone": backbone, "batch": batch, "image_size": size, "modes": out, "ratios": ratios}


GOALS_P3 = {"activations": 0.40, "peak": 0.70, "time": 1.35}


def _meets(r: dict) -> bool:
    return all(r[k] <= g for k, g in GOALS_P3.items())


def p3_checkpointing(quick: bool, device: str = "cpu", cases=None, repeats=None) -> Figure:
    """cases: [(backbone, batch, image size)]; the goal is on the first (resnet18 b32 at 224 px)."""
    # quick keeps the goal's case at full size (activations' share of the peak depends on it)
    cases = cases or [("resnet18", 32, 224), ("resnet50", 8, 160 if quick else 224)]
    repeats = repeats or (4 if quick else 6)
    results = [checkpointing_case(b, n, size, repeats, device) for b, n, size in cases]
    first = results[0]
    # the best mode: one meeting every goal (the lower peak first), else the lowest peak
    best = min(("stages", "blocks"), key=lambda m: (not _meets(first["ratios"][m]), first["ratios"][m]["peak"]))
    r = first["ratios"][best]
    value = {"mode": best, **{k: round(v, 3) for k, v in r.items()}}
    detail = {"cases": results, "repeats": repeats, "device": device,
              "peak": "CPU: torch profiler allocation events; CUDA: max_memory_allocated — of one training "
                      "step (forward, backward, AdamW) with parameters, gradients and optimizer state",
              "note": f"value = {first['backbone']} b{first['batch']} at {first['image_size']} px, best mode"
                      + ("; quick: fewer timing repeats, resnet50 at 160 px" if quick else "")}
    return Figure("P3", "checkpointing ÷ off (act, peak, time)", value,
                  "act ≤ 0.40, peak ≤ 0.70, time ≤ 1.35", detail, _meets(r))


# ---------------------------------------------------------------- P4

@contextlib.contextmanager
def measured_peak(device: torch.device):
    """Yields a dict whose "peak" is set on exit: the peak bytes of what ran inside. CUDA: what the
    caching allocator reserved, as the forecast measures (engine/peaks.py) — through every reset
    the run makes itself (each `step` event starts a new high-water mark: memory.run_peaks keeps
    the whole run's); "peak_allocated" beside it."""
    result = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base_reserved, base_allocated = torch.cuda.memory_reserved(device), torch.cuda.memory_allocated(device)
        memory.clear_run_peaks(device)
        yield result
        torch.cuda.synchronize(device)
        run = memory.run_peaks(device)
        result["peak"] = run["reserved"] - base_reserved
        result["peak_allocated"] = run["allocated"] - base_allocated
        return
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        yield result
    result["peak"] = peaks.phase_peaks(prof, 0, "")["all"]


def forecast_case(backbone: str, batch: int, size: int, device: str, checkpointing: str = "off",
                  task: str = "classify") -> dict:
    """The forecast and the measured peak of a real 2-step training run at `batch`."""
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_folder(Path(tmp) / "data", 2 * batch)
        cfg = TrainConfig(data=str(data), task=task, backbone=backbone, weights="none", image_size=size,
                          batch_size=batch, epochs=1, val_split=0.0, workers=0, checkpointing=checkpointing,
                          device=device, out=str(Path(tmp) / "runs"), warmup_epochs=0.0)
        t = time.perf_counter()
        forecast = plan.plan_memory(cfg, budget="1TiB")
        plan_s = time.perf_counter() - t
        with measured_peak(torch.device(device)) as measured:
            run_training(cfg, EventWriter(), lambda: False)
    ratio = forecast["predicted_peak_bytes"] / measured["peak"]
    return {"backbone": backbone, "task": task, "batch": batch, "image_size": size,
            "checkpointing": checkpointing, "forecast_bytes": forecast["predicted_peak_bytes"],
            "measured_bytes": measured["peak"], "measured_allocated_bytes": measured.get("peak_allocated"),
            "ratio": ratio, "peak_phase": forecast["peak_phase"], "plan_s": round(plan_s, 2)}


def default_or_torchvision() -> str:
    """The default backbone, efficientnet_lite0, where its package is installed (a GPU machine may
    lack it: bench/gpu_wheels.sh fetches it), else torchvision's nearest, efficientnet_b0."""
    import importlib.util
    return "efficientnet_lite0" if importlib.util.find_spec("efficientnet_lite_pytorch") else "efficientnet_b0"


def p4_forecast(quick: bool, device: str = "cpu", cases=None) -> Figure:
    if cases is None:
        size = 112 if quick else 224
        cases = [("resnet18", 32, size, "off"), ("resnet18", 32, size, "stages"),
                 (default_or_torchvision(), 16, size, "off")]
        if not quick:
            cases.append(("resnet50", 16, size, "off"))
    results = [forecast_case(b, n, s, device, ck) for b, n, s, ck in cases]
    worst = max(results, key=lambda r: abs(r["ratio"] - 1))
    ok = all(0.90 <= r["ratio"] <= 1.10 for r in results)
    detail = {"cases": results, "device": device, "value": "the case farthest from 1",
              "measured": "peak tensor bytes of a whole run_training (scan, build, real loader, 2 steps, "
                          "checkpoints): CPU profiler allocation events / CUDA max_memory_reserved over the whole run "
                          "(memory.run_peaks), as the forecast measures"}
    return Figure("P4", "plan forecast ÷ measured peak", worst["ratio"], "0.90–1.10", detail, ok)
