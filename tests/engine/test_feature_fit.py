"""The features' fit that picks a classifier's automatic LR: the vote against scikit-learn's, the
fit of real features on separable and inseparable pictures, and a run that chooses its LR from it
without changing how a seeded run trains."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from frelon.common import lr_policy
from frelon.engine.training import feature_fit as ff

from runhelp import TINY, events_of, make_colour_folder, only_run, run_cli


def _sklearn_fit(x: np.ndarray, y: np.ndarray) -> float:
    """The oracle: leave-one-out 5-NN (cosine, votes weighted by similarity), scored by
    scikit-learn's chance-adjusted balanced accuracy."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import KNeighborsClassifier
    predicted = []
    for i in range(len(x)):
        rest = np.arange(len(x)) != i
        knn = KNeighborsClassifier(n_neighbors=5, metric="cosine", algorithm="brute",
                                   weights=lambda d: np.clip(1 - d, 0, None) + 1e-6)
        predicted.append(knn.fit(x[rest], y[rest]).predict(x[i:i + 1])[0])
    return balanced_accuracy_score(y, predicted, adjusted=True)


@pytest.mark.parametrize("spread", [0.3, 1.0, 3.0])
def test_the_vote_and_score_match_scikit_learn(spread):
    """Three imbalanced classes, from well apart to mixed up."""
    rng = np.random.default_rng(int(spread * 10))
    centres = rng.normal(size=(3, 16))
    y = np.repeat([0, 1, 2], [30, 15, 7])
    x = centres[y] + spread * rng.normal(size=(len(y), 16))
    xt = torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float32), dim=1)
    ours = ff.balanced_fit(ff._vote(xt, torch.tensor(y), 3, ff.K), torch.tensor(y), 3)
    assert ours == pytest.approx(_sklearn_fit(x, y), abs=1e-6)   # float32 sums; one vote moves it by > 0.01


def test_a_majority_class_does_not_fake_a_fit():
    labels = torch.tensor([0] * 45 + [1] * 5)
    assert ff.balanced_fit(torch.zeros(50, dtype=torch.long), labels, 2) == pytest.approx(0.0)
    assert ff.balanced_fit(labels, labels, 2) == pytest.approx(1.0)


class _Pictures(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def _model():
    from frelon.engine import backbones
    torch.manual_seed(0)
    model, _ = backbones.build_classifier("resnet18", 2, "none")
    return model.train()


def test_the_fit_of_real_features_tells_separable_from_inseparable_pictures():
    """Two colours, which any features tell apart, fit; noise pictures whose labels were drawn at
    random do not. Measuring leaves the model's mode, its BatchNorm statistics and torch's random
    stream as they were."""
    g = torch.Generator().manual_seed(1)
    labels = [i % 2 for i in range(40)]
    colours = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    coloured = [colours[c][:, None, None] + 0.2 * torch.rand(3, 32, 32, generator=g) for c in labels]
    noise = [torch.rand(3, 32, 32, generator=g) for _ in labels]
    random_labels = torch.randint(0, 2, (40,), generator=g).tolist()
    model = _model()
    bn_before = [b.clone() for b in model.buffers()]
    rng_before = torch.get_rng_state()
    separable = ff.feature_fit(model, _Pictures(coloured, labels), torch.device("cpu"), 2)
    inseparable = ff.feature_fit(model, _Pictures(noise, random_labels), torch.device("cpu"), 2)
    assert separable["fit"] >= lr_policy.FIT_NEAR and separable["images"] == 40
    assert inseparable["fit"] <= lr_policy.FIT_FAR - 0.3
    assert model.training and torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(a, b) for a, b in zip(bn_before, model.buffers()))
    # at most MAX_IMAGES of them, drawn by the seed
    assert ff.feature_fit(model, _Pictures(coloured, labels), torch.device("cpu"), 2, max_images=10)["images"] == 10


def _noise_folder(root, per_class=12):
    """Three classes of noise pictures: nothing in them tells the classes apart."""
    rng = np.random.default_rng(3)
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_a_run_chooses_its_lr_from_the_fit_and_trains_as_with_that_lr_given(tmp_path):
    """Through the real CLI: colours fit, so the automatic base is the gentle one; noise does not,
    so it is the top one; run_started, the log and config.json say so. A run given the chosen LR
    with --lr trains step for step as the automatic run did (measuring draws no randomness)."""
    colours = make_colour_folder(tmp_path / "colours", per_class=12)
    noise = _noise_folder(tmp_path / "noise")
    common = [*TINY, "--backbone", "resnet18", "--epochs", "1", "--log-every", "1", "--log-interval", "0"]
    for name, data in (("colours", colours), ("noise", noise)):
        r = run_cli("train", "--data", data, "--out", tmp_path / "runs" / name, *common)
        assert r.returncode == 0, r.stderr
    runs = {name: only_run(tmp_path / "runs" / name) for name in ("colours", "noise")}
    started = {n: next(e for e in events_of(r) if e["type"] == "run_started") for n, r in runs.items()}
    assert started["colours"]["lr_choice"]["fit"] >= lr_policy.FIT_NEAR
    assert started["colours"]["lr_choice"]["base_lr"] == pytest.approx(3e-4)
    assert started["noise"]["lr_choice"]["fit"] <= lr_policy.FIT_FAR
    assert started["noise"]["lr_choice"]["base_lr"] == pytest.approx(1e-3)
    for name, run in runs.items():
        base = started[name]["lr_choice"]["base_lr"]
        assert json.loads((run / "config.json").read_text())["lr"] == base
        assert started[name]["effective_lr"] == pytest.approx(base * (4 / 32) ** 0.5)
        logs = [e["message"] for e in events_of(run) if e["type"] == "log"]
        assert any(m.startswith(f"base LR {base:.3g}: ") for m in logs), logs

    r = run_cli("train", "--data", colours, "--out", tmp_path / "runs" / "given", *common, "--lr", "3e-4")
    assert r.returncode == 0, r.stderr
    given = only_run(tmp_path / "runs" / "given")
    assert next(e for e in events_of(given) if e["type"] == "run_started")["lr_choice"] is None

    def losses(run):
        return [e["loss"] for e in events_of(run) if e["type"] == "step"]
    assert losses(given) and losses(given) == losses(runs["colours"])
