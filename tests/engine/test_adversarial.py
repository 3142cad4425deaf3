"""`frelon robustness`: FGSM / PGD checked by hand on a linear model and against the Adversarial
Robustness Toolbox, then the command end to end on a trained toy classifier (ε = 0 is `frelon eval`,
accuracy never rises with ε, the triptychs are written, events stream)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from frelon.common import events
from frelon.common.choices import ATTACKS
from frelon.engine import attacks
from runhelp import TINY, events_of, make_colour_folder, run_cli, train_here

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
ENV = {"OMP_NUM_THREADS": "1"}


def _normalize(x):
    return TF.normalize(x, MEAN, STD)


def _linear() -> nn.Module:
    """Two classes scored by fixed weights on a 3×2×2 image: ∇ₓ of the loss for label 0 is
    p₁ (W₁ − W₀) / std, so FGSM's δ is ε · sign(W₁ − W₀) wherever [0, 1] allows."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2, bias=False))
    w0 = torch.tensor([1.0, -1, 2, 0, 0, -0.5, 1, 1, -2, 0, 0, 0])
    w1 = torch.tensor([-1.0, 1, 0, 0, 0, 0.5, -1, 2, -3, 0, 1, -1])      # 0 at 3, 4 and 9: no push there
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w0, w1]))
    return model.eval()


def test_fgsm_and_pgd_by_hand_on_a_linear_model():
    model = _linear()
    x = torch.full((1, 3, 2, 2), 0.5)
    x[0, 0, 0, 0] = 1.0 / 255            # pushed down (w1 < w0) by 2 levels: clipped at 0
    x[0, 2, 1, 0] = 254.5 / 255          # pushed up: clipped at 1
    eps = 2 / 255
    sign = torch.tensor([-1.0, 1, -1, 0, 0, 1, -1, 1, -1, 0, 1, -1]).reshape(1, 3, 2, 2)
    expected = (x + eps * sign).clamp(0, 1)
    adv = attacks.fgsm(model, _normalize, x, torch.tensor([0]), eps)
    assert torch.equal(adv, expected)
    assert adv[0, 0, 0, 0] == 0 and adv[0, 2, 1, 0] == 1 and adv[0, 0, 1, 1] == 0.5
    # label 1: the opposite push
    assert torch.equal(attacks.fgsm(model, _normalize, x, torch.tensor([1]), eps), (x - eps * sign).clamp(0, 1))
    # PGD on a linear model: every step has FGSM's sign, and the ball stops it at ε
    assert torch.allclose(attacks.pgd(model, _normalize, x, torch.tensor([0]), eps), expected, atol=1e-7)
    short = attacks.pgd(model, _normalize, x, torch.tensor([0]), eps, steps=2, step_size=0.25 * eps)
    assert torch.allclose(short, (x + 0.5 * eps * sign).clamp(0, 1), atol=1e-7)
    assert torch.equal(attacks.fgsm(model, _normalize, x, torch.tensor([0]), 0.0), x)
    assert all(p.requires_grad for p in model.parameters())          # restored after the attack


def test_fgsm_matches_the_adversarial_robustness_toolbox():
    import art.attacks.evasion as art      # a declared test dependency: a broken install fails here
    from art.estimators.classification import PyTorchClassifier
    import numpy as np
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                          nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.rand(6, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    eps = 4 / 255
    ours = attacks.fgsm(model, _normalize, x, labels, eps)
    classifier = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=(3, 16, 16), nb_classes=3,
                                   clip_values=(0.0, 1.0),
                                   preprocessing=(np.array(MEAN).reshape(3, 1, 1), np.array(STD).reshape(3, 1, 1)))
    theirs = art.FastGradientMethod(classifier, norm=np.inf, eps=eps, targeted=False).generate(
        x.numpy(), y=np.eye(3)[labels.numpy()])
    same = np.isclose(ours.numpy(), theirs, atol=1e-6)
    assert same.mean() > 0.999, same.mean()            # a sign can differ only where the gradient is ~0
    assert (ours - x).abs().max() <= eps + 1e-6


def test_the_app_and_engine_know_the_same_attacks():
    assert tuple(attacks.ATTACKS) == ATTACKS


# ---------------------------------------------------------------- the command on a trained toy model

@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    data = make_colour_folder(root / "data", per_class=12)
    # trained in this process: these tests attack a finished run, they do not test `frelon train`
    return train_here("--data", data, "--out", root / "runs", "--epochs", "3", *TINY, "--backbone", "resnet18"), data


def test_clean_accuracy_is_eval_and_fgsm_flips_are_drawn(toy):
    run, data = toy
    r = run_cli("robustness", "--run", run, "--data", data, "--json", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    ev = json.loads(run_cli("eval", "--run", run, "--data", data, "--json").stdout)
    assert result["eps"] == [0, 0.5, 1, 2, 4, 8] and result["images"] == ev["images"] == 24
    assert result["accuracy"][0] == ev["accuracy"]
    acc = result["accuracy"]
    assert all(a >= b for a, b in zip(acc, acc[1:])) and acc[-1] < acc[0]
    assert result == json.loads((run / "robustness" / "fgsm.json").read_text())
    flipped = result["flipped"]
    assert flipped and [f["eps"] for f in flipped] == sorted(f["eps"] for f in flipped)
    for f in flipped:
        assert f["clean"]["class"] == f["true"] != f["adversarial"]["class"]
    drawn = [f for f in flipped if f.get("triptych")]
    assert len(drawn) == min(6, len(flipped))
    from PIL import Image
    with Image.open(run / "robustness" / drawn[0]["triptych"]) as im:
        assert im.width > 3 * im.height / 2                       # three panels side by side


def test_pgd_never_rises_with_eps_and_beats_fgsm_streamed_as_events(toy):
    run, _ = toy
    r = run_cli("robustness", "--run", run, "--attack", "pgd", "--eps", "2,0.5,1", "--events", "-",
                "--examples", "1", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    evs = [events.parse_line(line) for line in r.stdout.splitlines()]
    assert all(e is not None for e in evs), "stdout holds events only"
    steps = [e for e in evs if e["type"] == "robustness_eps"]
    assert [e["eps"] for e in steps] == [0, 0.5, 1, 2]
    done = evs[-1]
    assert done["type"] == "robustness_finished" and done["metric"] == "accuracy"
    assert done["values"] == [e["value"] for e in steps]
    acc = done["values"]
    assert all(a >= b for a, b in zip(acc, acc[1:])) and acc[-1] < acc[0]
    result = json.loads((run / "robustness" / "pgd.json").read_text())
    assert result["steps"] == 10 and result["step_sizes"] == [0, 0.125, 0.25, 0.5]
    report = next(e for e in events_of(run) if e["type"] == "data_report")
    assert steps[0]["images"] == report["splits"]["val"]["images"]      # the run's own validation split
    fgsm = json.loads(run_cli("robustness", "--run", run, "--eps", "0,0.5,1,2", "--json", "--examples", "0",
                              env={"OMP_NUM_THREADS": "1"}).stdout)
    assert all(p <= f for p, f in zip(acc, fgsm["accuracy"]))  # PGD is the stronger attack


def test_an_image_fooled_at_a_small_eps_stays_fooled(toy, monkeypatch):
    """The accuracy at ε counts only images no attack up to ε fooled: an attack that fools at ε = 1
    and not at ε = 2 leaves the accuracy at 2 as low as at 1."""
    from frelon.engine.commands import robustness
    run, data = toy

    def swap_colours_at_one_level(model, normalize, pixels, labels, eps, loss=None):
        return pixels.flip(1) if abs(eps - 1 / 255) < 1e-9 else pixels.clone()
    monkeypatch.setattr(attacks, "fgsm", swap_colours_at_one_level)
    result = robustness.robustness_check(str(run), data=str(data), eps=[0, 1, 2], examples=0)
    clean, at1, at2 = result["accuracy"]
    assert at1 < clean and at2 == at1
    assert {f["eps"] for f in result["flipped"]} == {1}


def test_bad_options_are_one_line(toy, tmp_path):
    run, data = toy
    r = run_cli("robustness", "--run", run, "--eps", "0,abc")
    assert r.returncode == 2 and r.stderr.strip().startswith("frelon: error: --eps 0,abc")
    r = run_cli("robustness", "--run", tmp_path)
    assert r.returncode == 1 and "not a Frelon run folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- detection

def test_detection_fgsm_raises_the_heatmap_loss_within_eps():
    from frelon.engine.centernet import targets as T
    from frelon.engine.centernet.model import CenterNet
    from frelon.engine.centernet.robustness import heatmap_loss
    torch.manual_seed(0)
    layers, c = [], 3
    for out in (16, 16, 32, 32, 32):                                   # a stride-32 toy backbone
        layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    model = CenterNet(nn.Sequential(*layers), 32, 2, neck_channels=(32, 16, 16)).eval()
    x = torch.rand(2, 3, 64, 64)
    boxes = [torch.tensor([[8.0, 8, 40, 30]]), torch.tensor([[20.0, 30, 60, 62]])]
    targets = T.collate_targets([T.encode(b, torch.tensor([i]), 2, (16, 16)) for i, b in enumerate(boxes)])
    eps = 2 / 255
    adv = attacks.fgsm(model, _normalize, x, targets, eps, loss=heatmap_loss)
    assert (adv - x).abs().max() <= eps + 1e-6
    from frelon.engine.centernet.loss import focal_loss

    def heat(pixels):                                                  # the training loss's heatmap term
        with torch.no_grad():
            return focal_loss(model(_normalize(pixels))["heatmap"], targets["heatmap"], targets["mask"].sum())
    before, after, away = heat(x), heat(adv), heat((2 * x - adv).clamp(0, 1))        # away: the other way
    assert after > before > away


def test_detection_sweep_through_the_cli_starts_at_eval(tmp_path):
    from frelon.engine.centernet import shapes
    data = shapes.make_dataset(tmp_path / "shapes", 8, 4, size=64, seed=2)
    run = train_here("--data", data, "--backbone", "resnet18", "--weights", "none", "--image-size", "64",
                     "--epochs", "1", "--batch-size", "4", "--workers", "0", "--out", tmp_path / "runs")
    r = run_cli("robustness", "--run", run, "--data", data / "val", "--eps", "0,2", "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    ev = json.loads(run_cli("eval", "--run", run, "--data", data / "val", "--json", env=ENV).stdout)
    assert result["metric"] == "map_50" and result["eps"] == [0, 2] and result["images"] == ev["images"] == 4
    assert result["map_50"][0] == ev["map_50"] and result["map"][0] == ev["map"]
    assert result["flipped"] == [] and (run / "robustness" / "fgsm.json").is_file()
