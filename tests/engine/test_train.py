"""Training through the real entry points: the CLI, events, run folder, stop, resume, errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from frelon.common.train_config import from_dict
from frelon.engine.training.run import RunFailed, run_training

from runhelp import TINY, events_of, only_run, recording_writer, run_cli


def test_cli_run_writes_events_and_run_folder(colour_data, tmp_path):
    runs = tmp_path / "runs"
    r = run_cli("train", "--data", colour_data, "--out", runs, "--epochs", "2", "--lr", "0.002",
                "--ref-batch", "2", *TINY, "--events", "-")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    stdout_events = [json.loads(line) for line in lines]          # stdout holds events only
    run = only_run(runs)
    assert [e["type"] for e in stdout_events] == [e["type"] for e in events_of(run)]
    types = [e["type"] for e in stdout_events]
    assert types[0] == "data_report" and types[1] == "run_started" and types[-1] == "run_finished"
    started = stdout_events[1]
    assert started["global_batch"] == 4 and started["effective_lr"] == pytest.approx(0.002 * (4 / 2) ** 0.5)
    assert started["classes"] == ["blue", "red"]
    steps = [e for e in stdout_events if e["type"] == "step"]
    assert all(e["memory"][0]["rss"] > 0 for e in steps)
    assert steps[0]["activation_bytes"] > 0
    ends = [e for e in stdout_events if e["type"] == "epoch_end"]
    assert len(ends) == 2 and 0.0 <= ends[-1]["val"]["accuracy"] <= 1.0
    assert len(ends[-1]["val"]["confusion_matrix"]) == 2
    assert stdout_events[-1]["status"] == "completed"
    model = json.loads((run / "model.json").read_text())
    assert model["classes"] == ["blue", "red"] and model["preprocessing"]["size"] == 32
    assert model["preprocessing"]["mean"] == [0.5, 0.5, 0.5]          # efficientnet_lite0's own
    preds = json.loads((run / "predictions" / "val.json").read_text())
    assert len(preds) == started["val_images"] and {"path", "true", "predicted", "probabilities"} <= set(preds[0])
    assert set(load_file(run / "checkpoints" / "best.safetensors")) == set(load_file(run / "checkpoints" / "last.safetensors")) - {
        k for k in load_file(run / "checkpoints" / "last.safetensors") if k.startswith("__")}


def _train(cfg, stop_after=None, resume=None, overrides=None):
    """In-process run; returns (events, result). `stop_after` = stop once that many steps are done."""
    writer, emitted = recording_writer()
    state = {"steps": 0}

    def should_stop():
        return stop_after is not None and state["steps"] >= stop_after

    original = writer.emit

    def emit(type_, **fields):
        if type_ == "step":
            state["steps"] = fields["step"]
        return original(type_, **fields)
    writer.emit = emit
    result = run_training(cfg, writer, should_stop, resume=resume, resume_overrides=overrides)
    return emitted, result


def _lrs(events):
    return {e["step"]: e["lr"] for e in events if e["type"] == "step"}


def _steps(events):
    """[(step, lr, loss)] of every step event, in the order emitted (repeats and gaps kept)."""
    return [(e["step"], e["lr"], e["loss"]) for e in events if e["type"] == "step"]


def test_resume_continues_exactly(colour_data, tmp_path):
    """README: a resumed run has the same LR at every later step and, on the CPU, bit-identical
    weights. Stopped mid-epoch (16 images, batch 4: 4 steps an epoch), resumed from its checkpoint."""
    base = dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0, epochs=3,
                log_every=1, log_interval=0, lr=0.01, ref_batch=4, backbone="efficientnet_lite0")   # its head has dropout: the global RNG matters
    full_events, full = _train(from_dict(dict(base, out=str(tmp_path / "a"))))
    cut_events, cut = _train(from_dict(dict(base, out=str(tmp_path / "b"))), stop_after=5)
    k = cut["steps_done"]
    assert cut["status"] == "stopped" and k in (5, 6) and k % 4 != 0     # within one step, inside an epoch
    saved = load_file(f"{cut['run_dir']}/checkpoints/last.safetensors")
    rest_events, rest = _train(from_dict(dict(base, out=str(tmp_path / "b"))), resume=cut["run_dir"])
    assert rest["status"] == "completed" and rest["steps_done"] == full["steps_done"] == 12
    started = next(e for e in rest_events if e["type"] == "run_started")
    assert (started["resumed_from"] or {}).get("step") == k
    # the resumed run starts at step k + 1, no step repeated or missing, and every step (its LR and
    # its loss, so the same batches through the same weights) is the uninterrupted run's, exactly
    full_steps, cut_steps, rest_steps = _steps(full_events), _steps(cut_events), _steps(rest_events)
    assert [s for s, _, _ in cut_steps] == list(range(1, k + 1))
    assert [s for s, _, _ in rest_steps] == list(range(k + 1, 13))
    assert cut_steps == full_steps[:k] and rest_steps == full_steps[k:]
    # bit-identical on the CPU: weights, BatchNorm statistics, optimizer state, RNG states
    a = load_file(f"{full['run_dir']}/checkpoints/last.safetensors")
    b = load_file(f"{rest['run_dir']}/checkpoints/last.safetensors")
    assert set(a) == set(b) and any(key.startswith("__optim__") for key in a)
    assert [key for key in a if not torch.equal(a[key], b[key])] == []
    assert any(not torch.equal(saved[key], b[key]) for key in b if not key.startswith("__"))   # it trained on


def test_resume_with_more_epochs_follows_the_longer_plan(colour_data, tmp_path):
    base = dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0,
                log_every=1, log_interval=0, backbone="resnet18", warmup_epochs=0.5)
    long_events, _ = _train(from_dict(dict(base, epochs=3, out=str(tmp_path / "a"))))
    short_events, short = _train(from_dict(dict(base, epochs=2, out=str(tmp_path / "b"))))
    more_events, more = _train(from_dict(dict(base, out=str(tmp_path / "b"))), resume=short["run_dir"],
                               overrides={"epochs": 3})
    assert more["epochs_done"] == 3
    long_lr = _lrs(long_events)
    for step, lr in _lrs(more_events).items():
        assert lr == pytest.approx(long_lr[step])


def test_a_run_on_the_automatic_lr_resumes_at_it_after_the_default_changes(colour_data, tmp_path, monkeypatch):
    """config.json records the base LR and reference batch in force, not "0 = the default": a run
    resumed after an upgrade that changed the default keeps the LR it was planned with."""
    from frelon.common import lr_policy
    base = dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0, epochs=2,
                log_every=1, log_interval=0, backbone="resnet18", schedule="constant", warmup_epochs=0)
    cut_events, cut = _train(from_dict(dict(base, out=str(tmp_path / "b"))), stop_after=2)
    saved = json.loads(Path(cut["run_dir"], "config.json").read_text())
    chosen = next(e for e in cut_events if e["type"] == "run_started")["lr_choice"]["base_lr"]
    assert 3e-4 <= chosen <= 1e-3
    assert (saved["lr"], saved["ref_batch"]) == (chosen, 32)     # AdamW's classification base, at 32
    before = [lr for _, lr, _ in _steps(cut_events)]
    assert before == [pytest.approx(chosen * (4 / 32) ** 0.5)] * len(before)
    # a later version's defaults: another base and reference batch
    monkeypatch.setitem(lr_policy.RULES, "adamw", lr_policy.LrRule(5e-3, 5e-3, 64, 0.5, "square-root rule", 5e-3))
    assert from_dict({"task": "classify", "batch_size": 4}).effective_lr() == pytest.approx(5e-3 * (4 / 64) ** 0.5)
    rest_events, rest = _train(from_dict(dict(base, out=str(tmp_path / "b"))), resume=cut["run_dir"])
    assert rest["status"] == "completed" and rest["steps_done"] > cut["steps_done"]
    after = [lr for _, lr, _ in _steps(rest_events)]
    assert after == [pytest.approx(before[0])] * len(after)


def test_stop_on_stdin_saves_a_loadable_checkpoint(colour_data, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "frelon", "train", "--data", str(colour_data), "--out", str(runs),
           "--epochs", "50", *TINY, "--events", "-", "--control", "stdin"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        ev = json.loads(line)
        seen.append(ev)
        if ev["type"] == "step":
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            break
    rest = proc.communicate(timeout=120)[0]
    seen += [json.loads(x) for x in rest.splitlines()]
    assert proc.returncode == 0
    assert seen[-1]["type"] == "run_finished" and seen[-1]["status"] == "stopped"
    assert seen[-1]["steps_done"] <= 3          # within a step or two of the request
    ckpt = only_run(runs) / "checkpoints" / "last.safetensors"
    from frelon.engine import rundir
    from frelon.engine.backbones import build_classifier
    weights, meta, _ = rundir.load_checkpoint(ckpt)
    assert meta["progress"]["step"] == seen[-1]["steps_done"] >= 1       # saved where it stopped
    model, _ = build_classifier("efficientnet_lite0", 2, weights="none")
    model.load_state_dict(weights)                                         # every weight, nothing else


def test_end_of_stdin_means_stop(colour_data, tmp_path):
    r = run_cli("train", "--data", colour_data, "--out", tmp_path / "runs", "--epochs", "50", *TINY,
                "--events", "-", "--control", "stdin", input="")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["status"] == "stopped"


def test_freeze_backbone_trains_the_head_only_and_keeps_bn_statistics(colour_data, tmp_path):
    cfg = from_dict(dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0,
                         epochs=1, backbone="resnet18", freeze_backbone=True, out=str(tmp_path)))
    torch.manual_seed(0)
    from frelon.engine.backbones import build_classifier
    _, result = _train(cfg)
    after = load_file(f"{result['run_dir']}/checkpoints/last.safetensors")
    torch.manual_seed(0)
    ref, _ = build_classifier("resnet18", 2, weights="none")
    ref_sd = ref.state_dict()
    assert torch.equal(after["backbone.net.bn1.running_mean"], ref_sd["backbone.net.bn1.running_mean"])
    assert int(after["backbone.net.bn1.num_batches_tracked"]) == 0
    assert torch.equal(after["backbone.net.layer4.1.conv2.weight"], ref_sd["backbone.net.layer4.1.conv2.weight"])
    assert not torch.equal(after["backbone.net.fc.weight"], ref_sd["backbone.net.fc.weight"])


def test_amp_on_cpu_is_one_clear_line(colour_data, tmp_path):
    r = run_cli("train", "--data", colour_data, "--out", tmp_path, *TINY, "--amp", "--device", "cpu")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]      # one line, no traceback
    assert "--amp needs a CUDA GPU" in r.stderr


def test_config_file_with_an_unknown_key_names_it(colour_data, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"epochs": 2, "learning_rate": 0.1}))
    r = run_cli("train", "--data", colour_data, "--config", cfg)
    assert r.returncode == 2 and "unknown key 'learning_rate'" in r.stderr and str(cfg) in r.stderr
    cfg.write_text(json.dumps({"epochs": "two"}))
    r = run_cli("train", "--data", colour_data, "--config", cfg)
    assert r.returncode == 2 and "epochs: expected int" in r.stderr


def test_a_diverging_run_stops_with_a_nan_error(colour_data, tmp_path, monkeypatch):
    """A loss that becomes NaN at the third step (as an LR far too high makes it) ends the run."""
    from frelon.engine.tasks.classify import ClassifyTask
    real_loss, calls = ClassifyTask.loss, []

    def diverging(self, model, batch, device):
        loss, parts, n = real_loss(self, model, batch, device)
        calls.append(1)
        return (loss * float("nan") if len(calls) >= 3 else loss), parts, n

    monkeypatch.setattr(ClassifyTask, "loss", diverging)
    cfg = from_dict(dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0,
                         epochs=3, backbone="resnet18", optimizer="sgd", lr=0.1, ref_batch=4, out=str(tmp_path)))
    writer, emitted = recording_writer()
    with pytest.raises(RunFailed, match="loss became nan at step 3"):
        run_training(cfg, writer, lambda: False)
    error = next(e for e in emitted if e["type"] == "error")
    assert error["kind"] == "nan" and "learning rate" in error["hint"]
    assert emitted[-1]["type"] == "run_finished" and emitted[-1]["status"] == "failed"


def test_missing_data_folder_is_a_data_error(tmp_path):
    r = run_cli("train", "--data", tmp_path / "nope", "--out", tmp_path / "runs", *TINY)
    assert r.returncode == 1 and "nope" in r.stderr and "Traceback" not in r.stderr
