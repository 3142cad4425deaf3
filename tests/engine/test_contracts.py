"""The contracts other parts lean on: event schema round trips, the LR plan, import boundaries."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from frelon.common import events
from frelon.common import schedule
from frelon.common.train_config import ConfigError, TrainConfig, from_dict

SAMPLES = {
    "run_started": dict(run_dir="/r", config={"lr": 0.001}, task="classify", backbone="resnet18",
                        classes=["a", "b"], world_size=2, device="cpu", effective_lr=0.002, global_batch=64,
                        steps_per_epoch=10, total_steps=100),
    "scan_progress": dict(done=1200, total=20000, eta_s=41.5),
    "data_report": dict(splits={"train": {"counts": {"a": 3}, "images": 3}}, skipped=[{"path": "x.jpg", "reason": "empty file"}],
                        warnings=["w"]),
    "step": dict(epoch=0, step=1, loss=0.5, lr=1e-3, samples_per_s=10.0, eta_s=3.0, data_wait=0.25,
                 memory=[{"rank": 0, "device": "cpu", "rss": 1}], loss_parts={"heatmap": 1.0, "size": 2.0, "offset": 0.1},
                 activation_bytes=1024),
    "epoch_end": dict(epoch=0, train_loss=0.4, val={"loss": 0.3, "accuracy": 0.9, "per_class": {"a": 1.0}}, duration_s=1.5),
    "checkpoint": dict(path="/r/checkpoints/last.safetensors", epoch=0, step=10, best=False),
    "log": dict(level="info", message="hello"),
    "error": dict(kind="nan", message="the loss became nan", hint="lower the LR", traceback="..."),
    "run_finished": dict(status="completed", epochs_done=1, best=None, duration_s=2.0),
    "heartbeat": dict(ranks=[{"rank": 0, "step": 3, "phase": "forward", "age_s": 0.1}], stall_after_s=30.0),
    "robustness_eps": dict(attack="fgsm", eps=0.5, metric="accuracy", value=0.75, images=8, flipped=2, index=1, of=6),
    "robustness_finished": dict(attack="pgd", path="/r/robustness/pgd.json", eps=[0, 1], metric="map_50",
                                values=[0.9, 0.5], images=8),
}


def test_every_event_type_has_a_sample():
    assert set(SAMPLES) == set(events.TYPES)


@pytest.mark.parametrize("type_", events.TYPES)
def test_event_round_trip(type_):
    ev = events.make(type_, **SAMPLES[type_])
    back = events.parse_line(events.dumps(ev) + "\n")
    assert back == ev and back["v"] == 1 and back["type"] == type_ and isinstance(back["time"], float)


def test_schema_refuses_incomplete_events_and_readers_never_crash():
    with pytest.raises(events.SchemaError, match="lacks"):
        events.make("step", epoch=0)
    with pytest.raises(events.SchemaError):
        events.make("error", kind="weird", message="", hint="", traceback="")
    for line in ["", "hello", "{not json", "[1, 2]", '{"no_type": 1}', b"\xff\xfe"]:
        assert events.parse_line(line) is None
    assert events.parse_line('{"type": "future_thing", "x": 1}')["type"] == "future_thing"
    # NaN / inf cannot be written as JSON: they become null
    assert json.loads(events.dumps(events.make("log", level="info", message="x", value=float("nan"))))["value"] is None


def test_lr_plan_warmup_peak_and_decay():
    plan = schedule.Plan.for_config(TrainConfig(epochs=10, warmup_epochs=2, schedule="cosine"), 10, peak_lr=0.1)
    lrs = [schedule.lr_at(s, plan) for s in range(plan.total_steps)]
    assert lrs[0] == pytest.approx(0.1 / 21)                     # warmup starts small
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 20
    assert all(a < b for a, b in zip(lrs[:20], lrs[1:21]))       # rises
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))       # then never rises again
    assert lrs[-1] < 0.001
    step = schedule.Plan.for_config(TrainConfig(epochs=9, warmup_epochs=0, schedule="step"), 10, 0.1)
    assert {round(schedule.lr_at(s, step), 6) for s in range(90)} == {0.1, 0.01, 0.001}
    const = schedule.Plan.for_config(TrainConfig(epochs=3, warmup_epochs=1, schedule="constant"), 10, 0.1)
    assert schedule.lr_at(29, const) == 0.1


def test_linear_scaling_rule_for_sgd():
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=32, ref_batch=256, processes=4, accumulate=2)
    assert cfg.global_batch() == 256 and cfg.effective_lr() == pytest.approx(0.1)
    assert TrainConfig(optimizer="sgd", lr=0.1, batch_size=64, ref_batch=256).effective_lr() == pytest.approx(0.025)
    # AdamW: the square-root rule (tests/engine/test_recipe.py has the table)
    assert TrainConfig(lr=0.1, batch_size=64, ref_batch=256).effective_lr() == pytest.approx(0.05)


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="schedule: 'linear' is not one of"):
        from_dict({"schedule": "linear"})
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="batch_size"):
        from_dict({"batch_size": "big"})


@pytest.mark.parametrize("module, forbidden", [("frelon.engine.training.run", ("PySide6", "pyqtgraph")),
                                               ("frelon.engine.commands.handlers", ("PySide6", "pyqtgraph")),
                                               ("frelon.cli", ("torch", "PySide6")),
                                               # the launcher of several ranks starts torchrun at once:
                                               # importing torch first cost every multi-rank run 3-4 s
                                               ("frelon.engine.launch", ("torch",))])
def test_import_boundaries(module, forbidden):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
