"""LP-FT's head fit: before any fine-tuning step, the new head fitted on the start weights' frozen
features classifies held-out pictures (counted here, picture by picture); the head at random does not."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from frelon.common.train_config import TrainConfig

from runhelp import make_colour_folder, recording_writer

CLASSES = ("blue", "green", "red")


def _accuracy(model, folder, preprocessing) -> float:
    """The oracle: each held-out picture through the model (evaluation mode), argmax against its folder."""
    from torchvision.transforms import v2
    to_input = v2.Compose([v2.Resize((32, 32)), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                           v2.Normalize(preprocessing["mean"], preprocessing["std"])])
    right = total = 0
    model.eval()
    with torch.no_grad():
        for c, name in enumerate(CLASSES):
            for path in sorted((folder / name).iterdir()):
                image = to_input(Image.open(path).convert("RGB"))[None]
                right += int(model(image).argmax(1).item() == c)
                total += 1
    return right / total


def _started(tmp_path, data, fit: bool):
    from frelon.engine.training.run import Trainer
    cfg = TrainConfig(data=str(data), backbone="resnet18", image_size=32, batch_size=4, epochs=1, weights="none",
                      workers=0, out=str(tmp_path / f"runs-{fit}"), head_fit=fit)
    writer, emitted = recording_writer()
    trainer = Trainer(cfg, writer, lambda: False)
    trainer.setup()              # settled, built: not one step taken
    return trainer, [e.get("message", "") for e in emitted if e["type"] == "log"]


def test_the_head_fitted_on_frozen_features_classifies_before_any_step(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=12, classes=CLASSES)
    held_out = make_colour_folder(tmp_path / "held-out", per_class=10, classes=CLASSES, seed=7)
    fitted, said = _started(tmp_path, data, True)
    at_random, _ = _started(tmp_path, data, False)
    assert any(m.startswith("--head-fit: the new head fitted") for m in said), said
    accuracy = _accuracy(fitted.model, held_out, fitted.preprocessing)
    assert accuracy >= 0.9, accuracy
    assert _accuracy(at_random.model, held_out, at_random.preprocessing) <= 0.5   # chance is 1/3
    # the rest of the model is the start weights, untouched
    body = [k for k in fitted.model.state_dict() if not k.startswith("backbone.net.fc.")]
    assert all(torch.equal(fitted.model.state_dict()[k], at_random.model.state_dict()[k]) for k in body)


def test_the_logistic_regression_matches_scikit_learn():
    """The fit itself: scikit-learn's LogisticRegression (C = 1, lbfgs) on the same features."""
    from sklearn.linear_model import LogisticRegression

    from frelon.engine.training.head_fit import fit_head
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.randn(3, 8, generator=g)[y] + 0.8 * torch.randn(60, 8, generator=g)
    weight, bias = fit_head(x, y, 3)
    ours = torch.softmax(x @ weight.T + bias, 1)
    theirs = LogisticRegression(C=1.0, max_iter=1000, tol=1e-8).fit(x.numpy(), y.numpy()).predict_proba(x.numpy())
    assert ours.numpy() == pytest.approx(theirs, abs=1e-3)


@pytest.mark.parametrize("options, kept", [
    ({}, True),                           # the default: LP-FT from pretrained weights
    ({"head_fit": False}, False),         # the head at random: BatchNorm learns the batches' statistics
    ({"weights": "none"}, False),         # a body from scratch has no statistics to keep
    ({"task": "multilabel"}, False),      # no head fit there
])
def test_fine_tuning_after_the_head_fit_keeps_the_batchnorm_statistics(options, kept):
    """The second half of LP-FT: the body computes in training the features its head was fitted on."""
    from frelon.engine import backbones
    from frelon.engine.training.step import train_mode
    model, _ = backbones.build_classifier("resnet18", 2, "none")
    before = [b.clone() for n, b in model.named_buffers() if n.endswith("running_mean")]
    train_mode(model, TrainConfig(**{"task": "classify", "weights": "imagenet", **options}))
    model(torch.rand(4, 3, 32, 32))
    after = [b for n, b in model.named_buffers() if n.endswith("running_mean")]
    assert model.training and model.head.training
    assert all(torch.equal(a, b) for a, b in zip(before, after)) == kept
