"""The app's options are the engine's TrainConfig: their flags parse with the real CLI into the same
config, the batch and LR rules, the LR plan the app previews (no Qt needed), and the option form's
words for a special lowest value (Qt)."""
from __future__ import annotations

import pytest

from frelon.cli import build_parser
from frelon.common import schedule
from frelon.common.train_config import TrainConfig, resolve
from frelon.engine.commands.train import TRAIN_KEYS
from frelon.gui.options import from_settings, to_settings, train_flags


def _parsed(flags: list[str]) -> TrainConfig:
    """What `frelon train <flags>` resolves to: the real parser, the engine's resolution."""
    args = build_parser().parse_args(["train", *flags, "--events", "-", "--control", "stdin"])
    return resolve({k: v for k, v in vars(args).items() if k in TRAIN_KEYS})


def test_flags_parse_with_the_real_cli_into_the_same_config():
    o = TrainConfig(data="/d", task="detect", backbone="resnet18", image_size=320, epochs=3, batch_size=8,
                    lr=3e-4, warmup_epochs=0.5, schedule="step", optimizer="sgd", freeze_backbone=True,
                    augment="light", checkpointing="blocks", gpus=2, accumulate=4, amp=True, out="/runs", name="x",
                    noise=8.0, weight_decay=0.01, seed=7, val_split=0.3, random_erasing=0.25, device="cpu")
    assert _parsed(train_flags(o)) == o
    assert train_flags(TrainConfig()) == []                          # the defaults are the engine's own
    assert train_flags(TrainConfig(), ["--max-steps", "2"]) == ["--max-steps", "2"]


def test_a_true_default_switch_travels_as_its_no_form():
    from frelon.common.train_config import to_flags
    assert to_flags({"amp": True, "freeze_backbone": False, "lr": 1e-3}) == ["--amp", "--lr", "0.001"]


def test_batch_rules():
    o = TrainConfig(lr=1e-3, batch_size=32, ref_batch=256, gpus=4, accumulate=2, optimizer="sgd")
    assert o.global_batch() == 32 * 4 * 2
    assert o.effective_lr() == pytest.approx(1e-3 * 256 / 256)
    assert TrainConfig(gpus=1, batch_size=32).global_batch() == 32         # one GPU = one rank
    assert TrainConfig(batch_size=32).steps_per_epoch(100) == 3             # full batches only
    assert TrainConfig(batch_size=32).steps_per_epoch(18) == 1              # one smaller batch
    assert TrainConfig(batch_size=32).batch_per_rank(18) == 18
    assert TrainConfig(batch_size=8, gpus=2, accumulate=2).steps_per_epoch(100) == 3
    assert TrainConfig(batch_size=8, processes=2).batch_per_rank(5) == 3     # ceil(5 / 2) per rank


def test_settings_round_trip_ignores_junk():
    o = TrainConfig(backbone="resnet18", epochs=7, lr=5e-4, freeze_backbone=True, seed=3)
    assert from_settings(to_settings(o)) == o
    assert from_settings({"epochs": "zebra", "unknown": 1, "freeze_backbone": "true", "lr": float("nan"),
                          "warmup_epochs": -3, "data": "/elsewhere"}) == TrainConfig(freeze_backbone=True)


@pytest.mark.parametrize("name", ["cosine", "step", "constant"])
def test_schedule_shapes(name):
    total, peak, warm = 300, 0.1, 30
    p = schedule.Plan(peak, total, warm, name)
    lrs = [schedule.lr_at(s, p) for s in range(total)]
    assert lrs[0] == pytest.approx(peak / (warm + 1))            # warmup starts near 0
    assert lrs[warm] == pytest.approx(peak)                      # and reaches the effective LR
    assert all(a < b for a, b in zip(lrs[:warm], lrs[1:warm + 1]))
    if name == "cosine":
        assert lrs[-1] < peak * 1e-3
    elif name == "step":
        assert set(round(x / peak, 6) for x in lrs[warm:]) == {1.0, 0.1, 0.01}
    else:
        assert lrs[-1] == peak


def test_the_drawn_curve_keeps_the_corners_of_long_runs():
    points = schedule.curve(schedule.Plan(1.0, 1_000_000, 10_000, "step"), points=200)
    steps, lrs = [int(p[0]) for p in points], [p[1] for p in points]
    assert len(steps) < 220 and steps[-1] == 1_000_000            # x counts steps done
    assert lrs[steps.index(10_001)] == pytest.approx(1.0)         # the end of warmup is kept
    assert 0.01 in [pytest.approx(v) for v in lrs]
    drop = 10_000 + -(-990_000 // 3)                               # the first ×0.1 step, and the one before it
    assert lrs[steps.index(drop)] == pytest.approx(1.0) and lrs[steps.index(drop + 1)] == pytest.approx(0.1)
    short = schedule.curve(schedule.Plan(1.0, 50, 5, "cosine"))
    assert [p[0] for p in short] == list(range(1, 51))             # a short run: every step


def test_plan_for_config_caps_warmup_and_max_steps():
    cfg = TrainConfig(epochs=3, warmup_epochs=1.0)
    p = schedule.Plan.for_config(cfg, 10)
    assert (p.total_steps, p.warmup_steps, p.peak_lr) == (30, 7, cfg.effective_lr())   # warmup ≤ ¼ of the run
    assert schedule.Plan.for_config(cfg.replace(max_steps=12), 10).total_steps == 12
    assert schedule.Plan.for_config(cfg, 10, peak_lr=0.5, offset=4).end_step == 34


def test_the_option_form_names_an_option_s_special_lowest_value(qtbot):
    from dataclasses import fields

    from frelon.common.train_config import TrainConfig
    from frelon.gui.widgets.option_form import OptionForm
    chosen = [f for f in fields(TrainConfig) if f.name in ("patience", "workers", "epochs")]
    form = OptionForm(chosen)
    qtbot.addWidget(form)
    patience, workers, epochs = (form.widgets[n] for n in ("patience", "workers", "epochs"))
    assert patience.value() == 0 and patience.text() == "off"            # "0 = off"
    assert workers.text() == "automatic"                                 # "-1 = automatic"
    assert form.values()["patience"] == 0 and form.values()["workers"] == -1
    patience.setValue(3)
    assert patience.text() == "3" and form.values()["patience"] == 3
    assert epochs.specialValueText() == ""                               # no special value: the number
