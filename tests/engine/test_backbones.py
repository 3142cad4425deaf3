"""The backbone registry: every backbone builds and runs; checkpointing changes memory, not maths;
weights load from files the test saves; unsafe pickles are refused without running."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from frelon.engine import backbones, weights
from frelon.engine.errors import ConfigurationError, WeightsError
from frelon.engine.memory import ActivationCounter

NAMES = backbones.list_backbones()


def test_registry_has_the_promised_backbones():
    for name in ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                 "convnext_tiny", "efficientnet_lite0"):
        assert name in NAMES
    with pytest.raises(ConfigurationError, match="unknown backbone 'resnet19'"):
        backbones.get_spec("resnet19")


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_runs_at_64px(name):
    model, pre = backbones.build_classifier(name, 3, weights="none")
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
        feats = model.backbone.features(torch.randn(1, 3, 64, 64))
    assert out.shape == (2, 3)
    assert feats.shape == (1, model.backbone.out_channels, 2, 2)     # stride 32
    assert len(pre["mean"]) == len(pre["std"]) == 3


def _step(model, x, y):
    torch.manual_seed(1)                      # same dropout / stochastic depth in both runs
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return grads, buffers


@pytest.mark.parametrize("name", NAMES)
def test_checkpointing_keeps_gradients_and_batchnorm_statistics(name):
    torch.manual_seed(0)
    base, _ = backbones.build_classifier(name, 3, weights="none")
    base.train()
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 1])
    ref_grads, ref_buffers = _step(copy.deepcopy(base), x, y)
    for mode in ("stages", "blocks"):
        model = copy.deepcopy(base)
        model.set_checkpointing(mode)
        grads, buffers = _step(model, x, y)
        assert grads.keys() == ref_grads.keys()
        for n in ref_grads:
            torch.testing.assert_close(grads[n], ref_grads[n], rtol=1e-5, atol=1e-6, msg=f"{mode}: grad {n}")
        for n in ref_buffers:   # running stats and num_batches_tracked updated exactly once
            torch.testing.assert_close(buffers[n], ref_buffers[n], rtol=1e-6, atol=1e-7, msg=f"{mode}: buffer {n}")


def test_checkpointing_reduces_saved_activations():
    model, _ = backbones.build_classifier("resnet18", 2, weights="none")
    model.train()
    x = torch.randn(2, 3, 96, 96)
    measured = {}
    for mode in ("off", "stages", "blocks"):
        model.set_checkpointing(mode)
        counter = ActivationCounter(model)
        with counter.counting():
            model(x).sum().backward()
        measured[mode] = counter.bytes
    assert measured["stages"] < 0.4 * measured["off"]
    assert measured["blocks"] < measured["off"]


def test_weights_from_a_safetensors_and_a_pth_file(tmp_path):
    from safetensors.torch import save_file
    src, _ = backbones.build_classifier("resnet18", 1000, weights="none")
    sd = src.backbone.net.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "r18.safetensors")
    torch.save(sd, tmp_path / "r18.pth")
    for f in ("r18.safetensors", "r18.pth"):
        model, pre = backbones.build_classifier("resnet18", 2, weights=str(tmp_path / f))
        torch.testing.assert_close(model.backbone.net.conv1.weight, sd["conv1.weight"])
        assert pre["weights"].endswith(f)
        assert model.backbone.net.fc.out_features == 2          # the head was replaced after loading


def test_weights_of_another_backbone_are_refused(tmp_path):
    other, _ = backbones.build_classifier("mobilenet_v3_large", 10, weights="none")
    torch.save(other.backbone.net.state_dict(), tmp_path / "mnv3.pth")
    with pytest.raises(WeightsError, match="does not fit backbone resnet18"):
        backbones.build_classifier("resnet18", 2, weights=str(tmp_path / "mnv3.pth"))


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": evil}, f)
    with pytest.raises(WeightsError, match="refused"):
        weights.read_state_dict(path)
    assert not marker.exists()


def test_imagenet_weights_through_torchvisions_weights_api(tmp_path, monkeypatch):
    """`--weights imagenet` for a torchvision backbone, through the real path (the weights enum's
    URL, torch.hub's cache under $TORCH_HOME, the safe loader): with nothing cached, the one-line
    error names the folder to copy the file into; with a state dict of the right architecture
    saved there under torchvision's file name, exactly those tensors are loaded (and `frelon info`
    says they are available), with no network."""
    import json
    import os
    import subprocess
    import sys

    from torchvision.models import resnet18
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)            # in case something called set_dir
    spec = backbones.get_spec("resnet18")
    assert spec.weights.file.parent == tmp_path / "torch" / "hub" / "checkpoints"
    assert not spec.weights.available()
    with pytest.raises(WeightsError) as e:
        backbones.build_classifier("resnet18", 2, weights="imagenet")
    assert str(spec.weights.file.parent) in e.value.hint and "--weights" in e.value.hint

    torch.manual_seed(11)
    saved = resnet18(num_classes=1000).state_dict()                # stands in for the ImageNet file
    spec.weights.file.parent.mkdir(parents=True, exist_ok=True)     # the failed download made it
    torch.save(saved, spec.weights.file)
    assert spec.weights.file.name == os.path.basename(spec.weights.enum.url)      # torchvision's name
    assert spec.weights.available()
    model, pre = backbones.build_classifier("resnet18", 2, weights="imagenet")
    got = model.state_dict()
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        assert torch.equal(got[f"backbone.net.{key}"], saved[key]), key
    assert pre["weights"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert pre["mean"] == pytest.approx([0.485, 0.456, 0.406]) and pre["std"] == pytest.approx([0.229, 0.224, 0.225])
    out = subprocess.run([sys.executable, "-m", "frelon", "info", "--json"], capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ, "TORCH_HOME": str(tmp_path / "torch")}).stdout
    listed = {b["name"]: b for b in json.loads(out)["backbones"]}
    assert listed["resnet18"]["weights_available"] and not listed["resnet34"]["weights_available"]


def test_efficientnet_lite0_weights_ship_with_the_package():
    spec = backbones.get_spec("efficientnet_lite0")
    assert spec.weights.available()
    model, pre = backbones.build_classifier("efficientnet_lite0", 2, weights="imagenet")
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["std"] == [0.5, 0.5, 0.5]


def test_info_lists_every_backbone_and_the_devices():
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "frelon", "info", "--json"], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    info = json.loads(out)
    assert [b["name"] for b in info["backbones"]] == NAMES
    lite = next(b for b in info["backbones"] if b["name"] == "efficientnet_lite0")
    assert lite["weights_available"] and lite["default"] and info["default_backbone"] == "efficientnet_lite0"
    assert info["devices"]["cpu"]["cores"] >= 1 and isinstance(info["devices"]["cuda"], list)
