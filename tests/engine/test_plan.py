"""The memory forecast (`frelon plan`, `--batch-size auto`): JSON through the real CLI, the forecast
against a measured peak, budget parsing, the largest batch within a budget."""
from __future__ import annotations

import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from frelon.engine import peaks
from frelon.engine.training import forecast as plan
from frelon.common.train_config import ConfigError, TrainConfig
from frelon.engine.control import EventWriter
from frelon.engine.errors import OutOfMemory
from frelon.engine.training.run import run_training

from runhelp import events_of, only_run, run_cli

CPU = torch.device("cpu")
KEYS = {"device", "backbone", "task", "image_size", "checkpointing", "amp", "world_size", "batch_size",
        "predicted_peak_bytes", "fixed_bytes", "per_sample_bytes", "budget_bytes", "max_batch_size", "method"}


def _params_bytes(backbone: str) -> int:
    from frelon.engine.backbones import build_classifier
    model, _ = build_classifier(backbone, 2, weights="none")
    return sum(p.numel() * p.element_size() for p in model.parameters())


def test_plan_json_through_the_cli():
    r = run_cli("plan", "--backbone", "resnet18", "--image-size", "32", "--batch-size", "4", "--weights", "none",
                "--budget", "4GiB", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)                      # stdout holds the JSON only
    assert KEYS <= set(out)
    assert (out["device"], out["backbone"], out["task"], out["image_size"]) == ("cpu", "resnet18", "classify", 32)
    assert (out["checkpointing"], out["amp"], out["world_size"], out["batch_size"]) == ("off", False, 1, 4)
    assert out["budget_bytes"] == 4 * 2**30
    # AdamW training holds at least parameters + gradients + two moments
    assert out["predicted_peak_bytes"] >= 4 * _params_bytes("resnet18")
    assert out["predicted_peak_bytes"] == pytest.approx(out["fixed_bytes"] + 4 * out["per_sample_bytes"], abs=8)
    assert out["max_batch_size"] >= 4 and "measured" in out["method"]


def test_plan_refuses_a_bad_budget_in_one_line():
    r = run_cli("plan", "--backbone", "resnet18", "--image-size", "32", "--weights", "none", "--budget", "lots")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("frelon: error: budget:")


@pytest.mark.parametrize("text, expected", [
    ("8GiB", 8 * 2**30), ("512MiB", 512 * 2**20), ("2.5GB", 2_500_000_000), ("1000000", 1_000_000),
    ("64 kib", 64 * 1024), ("3TB", 3 * 10**12), (" 1.5GiB ", int(1.5 * 2**30)), (4096, 4096),
])
def test_budgets_parse(text, expected):
    assert plan.parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "8 GiBs", "-1GiB", "0", "0.0MB", "1e9", "8 gigabytes", "nan"])
def test_bad_budgets_are_config_errors(text):
    with pytest.raises(ConfigError, match="budget"):
        plan.parse_budget(text)


def test_phase_peaks_follow_allocations_in_time_order():
    mib = 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with record_function("t.one"):
            a = torch.ones(mib // 4)                 # 1 MiB
            b = torch.ones(mib // 2)                 # + 2 MiB
            del a, b
        with record_function("t.two"):
            c = torch.ones(mib // 4)
        del c
    found = peaks.phase_peaks(prof, 10 * mib, "t.")
    assert found["one"] == pytest.approx(13 * mib, abs=64 * 1024)
    assert found["two"] == pytest.approx(11 * mib, abs=64 * 1024)


def test_the_fit_extrapolates_to_a_directly_measured_batch():
    cfg = TrainConfig(backbone="resnet18", task="classify", weights="none", image_size=32, device="cpu")
    run = plan.prepare(cfg, CPU)
    measured = plan.measure(run, (4, 12, 32), checkpoint_phase=False)["forward_backward"]
    fit = plan.fit_phases({"fb": measured[:2]}, (4, 12), 0)["fb"]
    # what the batch adds from 4 to 32, forecast against measured
    assert fit.at(32) - measured[0] == pytest.approx(measured[2] - measured[0], rel=0.05)


def test_forecast_matches_the_peak_of_a_real_training_run(tmp_path):
    """The whole run_training (scan, model, real loader, steps, checkpoints) under the profiler,
    against the forecast; efficientnet_lite0 is small enough that activations make the peak."""
    batch = 16
    data = _noise_folder(tmp_path / "data", 2 * batch)     # two steps: the 2nd runs with AdamW's state
    cfg = TrainConfig(data=str(data), task="classify", backbone="efficientnet_lite0", weights="none",
                      image_size=64, batch_size=batch, epochs=1, val_split=0.0, workers=0,
                      out=str(tmp_path / "runs"), device="cpu")
    forecast = plan.plan_memory(cfg, budget="64GiB")
    assert forecast["peak_phase"] == "forward_backward"
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run_training(cfg, EventWriter(), lambda: False)
    measured = peaks.phase_peaks(prof, 0, "")["all"]
    assert 0.90 <= forecast["predicted_peak_bytes"] / measured <= 1.10, (forecast, measured)


def _noise_folder(root, n: int):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"c{i % 2}" / f"{i}.png")
    return root


def test_auto_batch_fits_the_budget():
    cfg = TrainConfig(backbone="resnet18", task="classify", weights="none", image_size=64, batch_size="auto",
                      device="cpu")
    budget = 400 * 2**20
    best = plan.auto_batch_size(cfg, CPU, budget=budget)
    assert 1 <= best < plan.MAX_BATCH
    run = plan.prepare(cfg.replace(batch_size=best), CPU)
    measured = plan.measure(run, (best,))               # a real step at that batch, and the checkpoint
    assert max(v[0] for v in measured.values()) <= budget


def test_auto_batch_refuses_a_budget_nothing_fits():
    cfg = TrainConfig(backbone="resnet18", task="classify", weights="none", image_size=32, device="cpu")
    with pytest.raises(OutOfMemory, match="batch of 1"):
        plan.auto_batch_size(cfg, CPU, budget="100MB")


def test_several_cpu_ranks_share_the_budget_and_carry_ddp_buckets():
    one = TrainConfig(backbone="resnet18", task="classify", weights="none", image_size=32, batch_size=4,
                      device="cpu")
    single = plan.plan_memory(one, budget="400MB")
    double = plan.plan_memory(one.replace(processes=2), budget="400MB")
    trainable = _params_bytes("resnet18")          # every parameter trains
    assert double["ddp_bucket_bytes"] == trainable
    assert double["predicted_peak_bytes"] == pytest.approx(single["predicted_peak_bytes"] + trainable, rel=0.01)
    assert double["max_batch_size"] < single["max_batch_size"]


def test_train_with_batch_size_auto(colour_data, tmp_path):
    runs = tmp_path / "runs"
    r = run_cli("train", "--data", colour_data, "--out", runs, "--epochs", "1", "--image-size", "32",
                "--weights", "none", "--workers", "0", "--backbone", "resnet18", "--batch-size", "auto")
    assert r.returncode == 0, r.stderr
    started = next(e for e in events_of(only_run(runs)) if e["type"] == "run_started")
    assert isinstance(started["config"]["batch_size"], int) and started["config"]["batch_size"] >= 1
