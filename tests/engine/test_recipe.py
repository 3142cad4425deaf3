"""The training recipe a user gets by default: the LR rule per optimizer, the faster new parts,
the image size taken from the data, the flip decision, and a short run that really learns."""
from __future__ import annotations

import json
import math

import pytest
import torch

from frelon.common import lr_policy
from frelon.common.train_config import TrainConfig, auto_image_size, from_dict
from frelon.engine.data.mirror import asymmetric_classes, flip_wanted, mirror_note

from runhelp import TINY, events_of, make_colour_folder, only_run, recording_writer, run_cli


# ---------------------------------------------------------------- the LR rule, by hand

@pytest.mark.parametrize("optimizer, task, batch, lr, ref, expected", [
    ("adamw", "detect", 32, 0, 0, 1e-3),       # a detector's new neck and heads: 1e-3 at 32
    ("adamw", "detect", 8, 0, 0, 5e-4),        # 1e-3 × √(8/32)
    ("adamw", "classify", 16, 2e-3, 64, 1e-3),  # given base and reference win: 2e-3 × √(16/64)
    ("adamw", "detect", 16, 2e-3, 64, 1e-3),
    ("sgd", "classify", 256, 0, 0, 0.1),       # Goyal et al.: 0.1 at 256
    ("sgd", "detect", 64, 0, 0, 0.025),        # linear: 0.1 × 64/256
    ("sgd", "classify", 32, 0.05, 128, 0.0125),  # 0.05 × 32/128
])
def test_effective_lr_follows_each_optimizers_rule(optimizer, task, batch, lr, ref, expected):
    cfg = TrainConfig(optimizer=optimizer, task=task, batch_size=batch, lr=lr, ref_batch=ref)
    assert cfg.effective_lr() == pytest.approx(expected)
    # what the app shows (it computes with the same TrainConfig)
    assert cfg.lr_formula().startswith(f"{expected:.3g} = ")


@pytest.mark.parametrize("task, batch, low, high", [
    ("classify", 32, 3e-4, 1e-3),              # AdamW at its reference batch: 3e-4 to 1e-3
    ("", 8, 1.5e-4, 5e-4),                     # task not known yet: classification's; × √(8/32)
    ("classify", 128, 6e-4, 2e-3),             # × √(128/32)
])
def test_an_automatic_classification_lr_is_a_range_until_the_fit_is_measured(task, batch, low, high):
    """Before Start, the app and the engine agree on the range the automatic LR can take; the
    engine's value without a fit is its top."""
    cfg = TrainConfig(task=task, batch_size=batch)
    assert cfg.effective_lr() == pytest.approx(high)
    assert cfg.lr_formula().startswith(f"{low:.3g}–{high:.3g} = 0.0003–0.001 × √({batch} ÷ 32)")
    assert cfg.pinned_lr().lr == 0                          # left for the Trainer to choose
    assert cfg.replace(task="detect").pinned_lr().lr == 1e-3


@pytest.mark.parametrize("fit, base", [
    (None, 1e-3),                              # not measured: the top of the range
    (0.0, 1e-3), (0.78, 1e-3), (0.85, 1e-3),   # features that do not separate the classes: the body must move
    (0.90, math.sqrt(3e-4 * 1e-3)),            # halfway, log-linear
    (0.95, 3e-4), (0.97, 3e-4), (1.0, 3e-4),   # features that already separate them: gently
])
def test_the_classification_base_follows_the_feature_fit(fit, base):
    assert lr_policy.base_lr("adamw", 0.0, "classify", fit) == pytest.approx(base)
    assert lr_policy.base_lr("adamw", 2e-3, "classify", fit) == 2e-3          # a given LR wins
    assert lr_policy.base_lr("adamw", 0.0, "detect", fit) == 1e-3             # a detector's does not move
    assert lr_policy.base_lr("sgd", 0.0, "classify", fit) == 0.1              # SGD: one base, not measured


def test_global_batch_counts_ranks_and_accumulation():
    # 8 per device × 2 ranks × 2 accumulation = 32: AdamW's reference batch
    cfg = TrainConfig(batch_size=8, processes=2, accumulate=2, lr=5e-4)
    assert cfg.effective_lr() == pytest.approx(5e-4)
    assert TrainConfig(batch_size=8, processes=2, accumulate=2, optimizer="sgd").effective_lr() == pytest.approx(0.1 * 32 / 256)


def test_lr_options_are_validated():
    with pytest.raises(ValueError, match="lr"):
        from_dict({"lr": -1e-3})
    with pytest.raises(ValueError, match="head_lr_mult"):
        from_dict({"head_lr_mult": 0})
    assert from_dict({"lr": 0}).effective_lr() == pytest.approx(lr_policy.effective_lr("adamw", 16))


# ---------------------------------------------------------------- image size from the data

@pytest.mark.parametrize("task, median, expected", [
    ("classify", [104, 117], 128),     # the bundled sample: short side 104 → next multiple of 32
    ("classify", [64, 64], 64),
    ("classify", [20, 30], 64),        # never below 64
    ("classify", [1600, 1200], 224),   # photos: the usual fine-tuning size
    ("detect", [192, 160], 192),       # detection looks at the long side (the letterbox keeps it)
    ("detect", [4000, 3000], 512),
    ("detect", [50, 50], 128),
    ("detect", None, 512),             # no data sizes known: the largest automatic size
])
def test_auto_image_size(task, median, expected):
    assert auto_image_size(task, median) == expected


# ---------------------------------------------------------------- flip

def test_flip_decision_from_class_names():
    assert asymmetric_classes(["0", "1", "7"]) == ["0", "1", "7"]
    assert asymmetric_classes(["A", "b"]) == ["A", "b"]
    assert asymmetric_classes(["stop_sign", "road text", "licence-plate"]) == ["stop_sign", "road text", "licence-plate"]
    assert asymmetric_classes(["hornet", "bee", "wasp", "cat", "signal_crayfish"]) == []
    assert not flip_wanted("auto", ["0", "1"]) and flip_wanted("auto", ["hornet", "bee"])
    assert flip_wanted("on", ["0"]) and not flip_wanted("off", ["hornet"])
    assert "'0'" in mirror_note(["0", "1"]) and mirror_note(["hornet"]) is None


def test_flip_reaches_the_transforms():
    from torchvision.transforms import v2

    from frelon.engine.classify import transforms
    from frelon.engine.centernet import transforms as det

    def flips(t):
        return any(isinstance(op, v2.RandomHorizontalFlip) for op in t.transforms)
    assert flips(transforms.train_transform(32, [0] * 3, [1] * 3, flip=True))
    assert not flips(transforms.train_transform(32, [0] * 3, [1] * 3, flip=False))
    assert flips(det.train_transform(64, [0] * 3, [1] * 3, flip=True))
    assert not flips(det.train_transform(64, [0] * 3, [1] * 3, flip=False))


# ---------------------------------------------------------------- in a real run

def test_new_parts_train_at_the_multiplier_and_run_started_says_so(tmp_path):
    """After a real step, the optimizer's groups hold the body at the planned LR and the head at
    ×head_lr_mult; run_started reports the rule and the multiplier."""
    from frelon.engine.training.reports import run_started_fields
    from frelon.engine.training.run import Trainer
    data = make_colour_folder(tmp_path / "data")
    cfg = TrainConfig(data=str(data), backbone="resnet18", image_size=32, batch_size=4, epochs=1, weights="none", workers=0,
                      warmup_epochs=0, schedule="constant", head_lr_mult=7.0, out=str(tmp_path / "runs"))
    writer, emitted = recording_writer()
    trainer = Trainer(cfg, writer, lambda: False)
    trainer.setup()
    writer.emit("run_started", **run_started_fields(trainer))
    # weights "none": nothing is pretrained, one LR for all
    assert {g["lr_scale"] for g in trainer.optimizer.param_groups} == {1.0}

    cfg = cfg.replace(weights=str(_saved_weights(tmp_path)))
    writer, emitted = recording_writer()
    trainer = Trainer(cfg, writer, lambda: False)
    trainer.setup()
    writer.emit("run_started", **run_started_fields(trainer))
    started = next(e for e in emitted if e["type"] == "run_started")
    assert started["head_lr_mult"] == 7.0
    base = started["lr_choice"]["base_lr"]                      # chosen from the features' fit
    assert 3e-4 <= base <= 1e-3 and started["config"]["lr"] == base
    assert started["effective_lr"] == pytest.approx(base * math.sqrt(4 / 32))
    assert started["lr_rule"].endswith("× √(4 ÷ 32)")
    trainer.train()
    head = {id(p) for p in trainer.model.parameters()} - {id(p) for m in trainer.model.body_modules() for p in m.parameters()}
    assert head, "the classifier has a new head"
    for g in trainer.optimizer.param_groups:
        is_head = all(id(p) in head for p in g["params"])
        assert g["lr"] == pytest.approx(started["effective_lr"] * (7.0 if is_head else 1.0))


def _saved_weights(tmp_path):
    """resnet18 weights saved by the test (a stand-in for a pretrained file)."""
    from safetensors.torch import save_file
    from torchvision.models import resnet18
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18(num_classes=1000).state_dict().items()}, str(path))
    return path


def test_a_short_run_learns_an_easy_set(tmp_path):
    """Trained from random weights for a few epochs, a model tells two colours apart far above
    chance (0.5), checked on the validation images by `frelon eval` and by hand on predictions."""
    data = make_colour_folder(tmp_path / "data", per_class=16)
    r = run_cli("train", "--data", data, "--out", tmp_path / "runs", *TINY, "--backbone", "resnet18",
                "--epochs", "6", "--seed", "1")
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "runs")
    ends = [e for e in events_of(run) if e["type"] == "epoch_end"]
    assert max(e["val"]["accuracy"] for e in ends) >= 0.9, [e["val"]["accuracy"] for e in ends]
    held_out = make_colour_folder(tmp_path / "held-out", per_class=16, seed=7)   # never trained on; 32 images, so one
    # borderline picture moves the score by 3 points, not 6
    r = run_cli("predict", "--run", run, "--input", held_out, "--out", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    preds = json.loads((tmp_path / "p.json").read_text())
    assert len(preds) == 32
    right = sum(1 for p in preds if p["file_name"].split("/")[0] == p["predicted"])
    assert right / len(preds) >= 0.9, preds


def test_old_run_folders_read_as_they_trained():
    """A config.json written before --detector, --head-lr-mult and --flip existed describes a run
    trained with the CenterNet recipe, one LR and flips: predict/eval/resume must rebuild that."""
    from frelon.common.train_config import from_saved
    old = from_saved({"epochs": 3, "lr": 0.001, "ref_batch": 256}, "old/config.json")
    assert (old.detector, old.head_lr_mult, old.flip) == ("centernet", 1.0, "on")
    # what a Trainer writes: the LR pinned (a classifier's, once the features' fit has chosen it)
    new = TrainConfig(task="classify", detector="ttf", head_lr_mult=10.0, flip="auto").pinned_lr().replace(lr=3e-4)
    assert from_saved(new.to_dict(), "new/config.json") == new
    # "lr": 0 was written before runs recorded their LR; it meant AdamW's base of then, 1e-3 at 32
    auto = from_saved({"task": "classify", "lr": 0.0, "ref_batch": 0}, "auto/config.json")
    assert auto.effective_lr() == pytest.approx(1e-3 * math.sqrt(16 / 32))


def test_a_runs_checkpoint_as_weights_starts_the_whole_model_from_it(tmp_path):
    """Retraining on corrected data from a run: --weights RUN/checkpoints/best.safetensors fills
    the new parts too (here the classifier head), not only the backbone."""
    from safetensors.torch import load_file

    from frelon.engine.training.run import Trainer
    data = make_colour_folder(tmp_path / "data")
    cfg = TrainConfig(data=str(data), backbone="resnet18", image_size=32, batch_size=4, epochs=1, weights="none",
                      workers=0, out=str(tmp_path / "runs"))
    first = Trainer(cfg, recording_writer()[0], lambda: False)
    first.setup()
    first.train()
    best = first.run_dir / "checkpoints" / "best.safetensors"
    saved = load_file(str(best))
    writer, emitted = recording_writer()
    second = Trainer(cfg.replace(weights=str(best)), writer, lambda: False)
    second.setup()
    state = second.model.state_dict()
    head = [k for k in saved if k.startswith("backbone.net.fc.")]
    assert head and all(torch.equal(state[k], saved[k]) for k in head)
    assert all(torch.equal(state[k], saved[k]) for k in saved if k in state)
    assert any("tensors of the whole model loaded" in e.get("message", "") for e in emitted if e["type"] == "log")
