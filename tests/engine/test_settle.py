"""A run's config settled once (training/settle.py): what the options leave open is decided from the
data and the machine before anything is built, and the run says and uses what really happens."""
from __future__ import annotations

import json

import pytest
import torch

from frelon.common.train_config import TrainConfig
from frelon.engine.training import forecast
from frelon.engine.training.run import Trainer
from runhelp import events_of, make_colour_folder, recording_writer, run_cli, train_here


def test_a_set_smaller_than_a_batch_trains_and_says_the_batch_it_uses(tmp_path):
    """3 training pictures and --batch-size 16: one batch of 3 per step, and the start line, the
    LR and config.json say 3, not 16 (the LR of the square-root rule at 3: an independent formula)."""
    data = make_colour_folder(tmp_path / "data", per_class=2)            # 4 images: 3 train + 1 val… or so
    run = train_here("--data", data, "--out", tmp_path / "runs", "--backbone", "resnet18", "--image-size", "32",
                     "--weights", "none", "--workers", "0", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
                     "--val-split", "0.25")
    events = events_of(run)
    started = next(e for e in events if e["type"] == "run_started")
    n = started["train_images"]
    assert n < 16
    assert started["global_batch"] == started["batch_per_device"] == started["config"]["batch_size"] == n
    assert started["effective_lr"] == pytest.approx(1e-3 * (n / 32) ** 0.5)
    assert json.loads((run / "config.json").read_text())["batch_size"] == n
    assert any(e["type"] == "log" and f"batches of {n}" in e["message"] for e in events)
    steps = [e for e in events if e["type"] == "step"]
    assert steps and steps[-1]["step"] == 1                               # one smaller batch, one step


def test_batch_size_auto_is_forecast_at_the_size_and_classes_trained(tmp_path, monkeypatch):
    """40 × 48 px pictures train at 64 px (the automatic size): the forecast behind --batch-size
    auto measures that size and the 3 scanned classes, not the largest automatic size (224)."""
    seen = {}
    real = forecast.forecast

    def spy(cfg, device, num_classes=None):
        seen.update(size=cfg.resolved_image_size("classify"), classes=num_classes)
        return real(cfg, device, num_classes)

    monkeypatch.setattr(forecast, "forecast", spy)
    data = make_colour_folder(tmp_path / "data", per_class=6, classes=("blue", "red", "green"))
    cfg = TrainConfig(data=str(data), backbone="resnet18", weights="none", workers=0, batch_size="auto",
                      epochs=1, max_steps=1, out=str(tmp_path / "runs"))
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    assert seen == {"size": 64, "classes": 3}
    assert trainer.cfg.image_size == 64 and isinstance(trainer.cfg.batch_size, int)


def test_the_trainer_config_is_assigned_once(tmp_path):
    """Settled in one place: setup assigns `cfg` once (data, task, size, batch, LR included)."""
    assigned = []

    class Watched(Trainer):
        def __setattr__(self, name, value):
            if name == "cfg":
                assigned.append(value)
            super().__setattr__(name, value)

    data = make_colour_folder(tmp_path / "data", per_class=6)
    cfg = TrainConfig(data=str(data), weights="imagenet", workers=0, image_size=32, epochs=1, max_steps=1,
                      out=str(tmp_path / "runs"))            # the automatic LR: the features' fit is measured
    t = Watched(cfg, recording_writer()[0], lambda: False)
    t.setup()
    assert len(assigned) == 1
    assert t.cfg.task == "classify" and t.cfg.lr > 0 and t.cfg.ref_batch == 32 and t.lr_choice is not None


def test_an_out_of_memory_keeps_every_step_s_images_even_for_an_odd_batch(tmp_path, monkeypatch):
    """An odd batch of 9 that runs out of memory continues as 3 micro-batches of 3: each optimizer
    step still trains on the very images an uninterrupted run's step trains on (the oracle: the
    same seed without the error), at the same LR."""
    data = make_colour_folder(tmp_path / "data", per_class=20)       # 32 training pictures: 3 steps
    for batch, after in ((9, (3, 3)),):
        steps = {}
        for fail in (False, True):
            cfg = TrainConfig(data=str(data), backbone="resnet18", weights="none", workers=0, image_size=32,
                              batch_size=batch, epochs=1, lr=1e-3, out=str(tmp_path / f"runs{batch}{fail}"))
            t = Trainer(cfg, recording_writer()[0], lambda: False)
            t.setup()
            seen, calls = [], {"n": 0}
            micro = t.step.micro

            def recording(b, sync=True, count_activations=False, micro=micro, seen=seen, calls=calls, t=t):
                calls["n"] += 1
                if fail and calls["n"] == 3:                  # the second step's first micro-batch
                    raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
                seen.append((t.progress.step, sorted(round(float(x), 3) for x in b[0].sum(dim=(1, 2, 3)))))
                return micro(b, sync, count_activations)

            t.step.micro = recording
            lrs = []
            update = t.step.update
            t.step.update = lambda lr, **kw: (lrs.append(lr), update(lr, **kw))[1]
            assert t.train() == "completed"
            per_step = {}
            for step, images in seen:
                per_step.setdefault(step, []).extend(images)
            steps[fail] = ({s: sorted(v) for s, v in per_step.items()}, lrs, (t.batch, t.accumulate))
        assert steps[True][2] == after
        assert steps[True][0] == steps[False][0] and steps[True][1] == pytest.approx(steps[False][1])


@pytest.mark.parametrize("flags, says", [
    (["--lr", "nan"], "lr: must be a finite number from 0 to 10 (0 = the optimizer's own), got nan"),
    (["--warmup-epochs", "inf"], "warmup_epochs: must be a finite number from 0 to 10000, got inf"),
    (["--image-size", "100000"], "image_size: must be from 0 to 4096 (0 = from the data), got 100000"),
    (["--weight-decay", "-5"], "weight_decay: must be from 0 to 10, got -5"),
    (["--log-interval", "nan"], "log_interval: must be a finite number from 0 to 3600, got nan"),
    (["--random-erasing", "2"], "random_erasing: a probability, from 0 to 1, got 2"),
    (["--val-split", "1"], "val_split: must be at least 0 and below 1, got 1"),
    (["--head-lr-mult", "0"], "head_lr_mult: must be above 0 and at most 10000, got 0"),
])
def test_a_non_finite_or_absurd_option_is_one_line_naming_it_and_its_range(tmp_path, flags, says):
    r = run_cli("train", "--out", tmp_path / "runs", *flags, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == f"frelon: error: {says}", r.stderr
    assert not (tmp_path / "runs").exists()


def test_a_config_file_s_nan_is_refused_not_made_automatic(tmp_path):
    (tmp_path / "c.json").write_text('{"lr": NaN, "epochs": 1}')
    r = run_cli("train", "--config", tmp_path / "c.json", "--out", tmp_path / "runs", timeout=60)
    assert r.returncode == 2 and "lr: must be a finite number" in r.stderr and r.stderr.count("\n") == 1


def test_frelon_plan_forecasts_where_the_ranks_would_train(monkeypatch):
    """`--processes 2` trains on CPU ranks even where a GPU is visible: the forecast measures the
    CPU (it measured cuda:0), and with the run's memory format (channels_last where the run uses it)."""
    from frelon.engine import precision
    seen = {}

    class Measured(Exception):
        pass

    def measured_here(cfg, device, num_classes=None):
        seen["device"] = device
        raise Measured

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(forecast, "resolve_budget", lambda budget, device, ws: None)
    monkeypatch.setattr(forecast, "forecast", measured_here)
    with pytest.raises(Measured):
        forecast.plan_memory(TrainConfig(processes=2, backbone="resnet18", weights="none", image_size=32))
    assert seen["device"].type == "cpu"
    monkeypatch.setattr(precision, "channels_last", lambda device, amp: True)
    run = forecast.prepare(TrainConfig(backbone="resnet18", weights="none", image_size=32, task="classify"),
                           torch.device("cpu"), num_classes=2)
    conv = next(m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()


def test_batch_size_auto_on_detection_reads_no_annotations_again(tmp_path, monkeypatch):
    """The scan already counted the classes: the forecast behind --batch-size auto does not read the
    annotations a second time (on every rank)."""
    from frelon.common.samples import default_sample_data
    from frelon.engine.tasks.detect import DetectTask

    def read_again(self, cfg):
        raise AssertionError("the annotations were read again")

    monkeypatch.setattr(DetectTask, "class_count", read_again)
    cfg = TrainConfig(data=default_sample_data("detect"), backbone="resnet18", weights="none", workers=0,
                      batch_size="auto", image_size=128, epochs=1, max_steps=1, out=str(tmp_path / "runs"))
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    assert trainer.cfg.task == "detect" and trainer.cfg.batch_size >= 1
