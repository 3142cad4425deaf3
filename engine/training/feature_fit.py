"""How well the pretrained body's features already separate the training classes, before any
training: the measurement from which a classifier's automatic base LR is chosen
(common/lr_policy.py, `fitted`).

The fit is a k-nearest-neighbour probe, the standard cheap read of a frozen representation (as
DINO's k-NN evaluation): each of up to MAX_IMAGES training images (a seeded draw), at the
evaluation transform, is embedded by the body (its last feature map, averaged over space,
L2-normalised), and classified by a similarity-weighted vote of its K nearest other images
(cosine similarity, leave-one-out). The score is the class-balanced accuracy (the mean of the
per-class recalls, so that a majority class cannot fake it), rescaled so that chance (1 / classes)
is 0 and every image voted right is 1. A vote of k neighbours among a few hundred images, and not
a fitted linear probe: it costs one forward pass, has no hyper-parameter to tune, and the
thresholds it is compared with (FIT_FAR, FIT_NEAR) were measured with it.

scikit-learn's KNeighborsClassifier would do the vote but is not one of Frelon's dependencies;
on a few hundred vectors it is the three lines of `_vote`.

It draws nothing from torch's random generators (no DataLoader, whose iterator seeds itself from
them; the draw uses its own `random.Random`) and leaves the model in the mode it found it: a
seeded run trains as it would without it.
"""
from __future__ import annotations

import random
import time

import torch
import torch.nn.functional as F
from torch import nn

MAX_IMAGES = 256        # the thresholds were measured at this many (more images, higher fits)
K = 5
BATCH = 32


def embed(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The body's pooled, L2-normalised features of a batch (a Classifier from backbones.py)."""
    features = model.backbone.features(images)
    pooled = features.float().mean(dim=(2, 3)) if features.dim() == 4 else features.float()
    return F.normalize(pooled.flatten(1), dim=1)


def _vote(x: torch.Tensor, labels: torch.Tensor, classes: int, k: int) -> torch.Tensor:
    """Leave-one-out predictions: each row's k most similar other rows, weighted by similarity."""
    sim = x @ x.T
    sim.fill_diagonal_(-float("inf"))
    k = min(k, len(x) - 1)
    top, index = sim.topk(k, dim=1)
    votes = torch.zeros(len(x), classes).scatter_add_(1, labels[index], top.clamp(min=0) + 1e-6)
    return votes.argmax(1)


def balanced_fit(predicted: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """Mean per-class recall over the classes present, 0 at chance (1/classes), 1 when all right."""
    recalls = [float((predicted[labels == c] == c).float().mean()) for c in range(classes) if (labels == c).any()]
    chance = 1.0 / classes
    return (sum(recalls) / len(recalls) - chance) / (1.0 - chance)


def feature_fit(model: nn.Module, dataset, device: torch.device, classes: int, seed: int = 0,
                max_images: int = MAX_IMAGES) -> dict:
    """{"fit", "images", "k", "seconds"} for `dataset`'s (image, label) items (evaluation transform);
    fit None when there are fewer than two images or classes to compare."""
    start = time.perf_counter()
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    order = sorted(order[:max_images])
    was_training = model.training
    model.eval()
    vectors, labels = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(order), BATCH):
                items = [dataset[j] for j in order[i:i + BATCH]]
                images = torch.stack([image for image, _ in items]).to(device)
                vectors.append(embed(model, images).cpu())
                labels.extend(int(label) for _, label in items)
    finally:
        model.train(was_training)
    result = {"fit": None, "images": len(labels), "k": K}
    y = torch.tensor(labels, dtype=torch.long)
    if len(labels) >= 2 and classes >= 2 and len(set(labels)) >= 2:
        fit = balanced_fit(_vote(torch.cat(vectors), y, classes, K), y, classes)
        result["fit"] = round(fit, 4)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result
