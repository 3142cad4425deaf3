"""TrainOptions -> flags, the linear scaling rule and the LR schedule preview (no Qt needed)."""
from __future__ import annotations

import dataclasses

import pytest

from frelon.cli import build_parser
from frelon.gui.lr_schedule import lr_at, plan, preview
from frelon.gui.options import TrainOptions


def test_defaults_match_the_engine():
    from frelon.engine import config      # no torch in it: a declared part of the package, never skipped
    engine = config.TrainConfig()
    ours = TrainOptions()
    for f in dataclasses.fields(TrainOptions):
        if hasattr(engine, f.name) and f.name not in ("out", "data", "task"):
            assert getattr(ours, f.name) == getattr(engine, f.name), f.name


def test_flags_parse_with_the_real_cli():
    o = TrainOptions(data="/d", task="detect", backbone="resnet18", image_size=320, epochs=3, batch_size=8,
                     lr=3e-4, warmup_epochs=0.5, schedule="step", optimizer="sgd", freeze_backbone=True,
                     augment="light", checkpointing="blocks", gpus=2, accumulate=4, amp=True, out="/runs", name="x")
    args = build_parser().parse_args(["train", *o.to_flags(), "--events", "-", "--control", "stdin"])
    assert (args.data, args.task, args.backbone, args.image_size, args.epochs) == ("/d", "detect", "resnet18", 320, 3)
    assert args.batch_size == "8" and args.lr == 3e-4 and args.warmup_epochs == 0.5
    assert (args.schedule, args.optimizer, args.augment, args.checkpointing) == ("step", "sgd", "light", "blocks")
    assert args.freeze_backbone and args.amp and args.gpus == 2 and args.accumulate == 4
    assert args.out == "/runs" and args.name == "x" and args.events == "-" and args.control == "stdin"


def test_cpu_run_never_asks_for_amp():
    flags = TrainOptions(gpus=0, amp=True).to_flags()
    assert "--amp" not in flags and flags[flags.index("--device") + 1] == "cpu"


def test_linear_scaling_rule():
    o = TrainOptions(lr=1e-3, batch_size=32, ref_batch=256, gpus=4, accumulate=2)
    assert o.global_batch == 32 * 4 * 2
    assert o.effective_lr == pytest.approx(1e-3 * 256 / 256)
    assert TrainOptions(gpus=1, batch_size=32).global_batch == 32          # one GPU = one rank
    assert TrainOptions(batch_size=32).steps_per_epoch(100) == 3              # full batches only
    assert TrainOptions(batch_size=32).steps_per_epoch(18) == 1               # one smaller batch
    assert TrainOptions(batch_size=8, gpus=2, accumulate=2).steps_per_epoch(100) == 3


def test_settings_round_trip_ignores_junk():
    o = TrainOptions(backbone="resnet18", epochs=7, lr=5e-4, freeze_backbone=True)
    assert TrainOptions.from_settings(o.to_settings()) == o
    assert TrainOptions.from_settings({"epochs": "zebra", "unknown": 1, "freeze_backbone": "true"}) == \
        TrainOptions(freeze_backbone=True)


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_schedule_shapes(schedule):
    total, peak, warm = 300, 0.1, 30
    lrs = [lr_at(s, total, peak, warm, schedule) for s in range(total)]
    assert lrs[0] == pytest.approx(peak / (warm + 1))            # warmup starts near 0
    assert lrs[warm] == pytest.approx(peak)                      # and reaches the effective LR
    assert all(a < b for a, b in zip(lrs[:warm], lrs[1:warm + 1]))
    if schedule == "cosine":
        assert lrs[-1] < peak * 1e-3
    elif schedule == "step":
        assert set(round(x / peak, 6) for x in lrs[warm:]) == {1.0, 0.1, 0.01}
    else:
        assert lrs[-1] == peak


def test_preview_keeps_corners_of_long_runs():
    steps, lrs = preview(1_000_000, 1.0, 10_000, "step", max_points=200)
    assert len(steps) < 220 and steps[-1] == 1_000_000            # x counts steps done
    assert lrs[steps.index(10_001)] == pytest.approx(1.0)         # the end of warmup is kept
    after = [lr for s, lr in zip(steps, lrs) if s > 10_000]
    assert min(after) == pytest.approx(0.01)


def test_plan_and_schedule_match_the_engine():
    from frelon.common import schedule
    for spe, epochs, warmup in ((10, 3, 1.0), (1, 5, 1.0), (7, 2, 0.5), (1, 1, 1.0), (100, 10, 0)):
        total, warm = plan(spe, epochs, warmup)
        engine_plan = schedule.Plan.for_run(0.1, spe, epochs, warmup, "cosine")
        assert (total, warm) == (engine_plan.total_steps, engine_plan.warmup_steps)
    for name in ("cosine", "step", "constant"):
        p = schedule.Plan(0.1, 300, 30, name)
        for s in range(300):
            assert schedule.lr_at(s, p) == pytest.approx(lr_at(s, 300, 0.1, 30, name)), (name, s)
        ours = preview(300, 0.1, 30, name)
        theirs = schedule.curve(p)
        for x, y in theirs:
            assert ours[1][ours[0].index(int(x))] == pytest.approx(y)
