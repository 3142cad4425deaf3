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

The same pass gives the new head's inputs to `head_fit.py` (LP-FT's linear probe): the body runs
once for both.

It draws nothing from torch's random generators (no DataLoader, whose iterator seeds itself from
them; the draw uses its own `random.Random`) and leaves the model in the mode it found it: a
seeded run trains as it would without it.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MAX_IMAGES = 256        # the thresholds were measured at this many (more images, higher fits)
K = 5
BATCH = 32


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """The body's last feature map averaged over space, L2-normalised: what the vote compares."""
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


@dataclass
class Probe:
    """One pass of the body over a seeded draw of the training images (evaluation transform)."""
    pooled: torch.Tensor              # (images, channels): `_pooled`, for the fit
    labels: torch.Tensor              # (images,)
    head_inputs: torch.Tensor | None  # (images, head's in_features): what the new head sees, when asked
    seconds: float


def probe(model: nn.Module, dataset, device: torch.device, seed: int = 0, max_images: int = MAX_IMAGES,
          head: bool = False) -> Probe:
    """The pass: each batch through the body once; with `head`, also what the new head's Linear
    receives from the same feature maps (the pooling, and any layers before it, are cheap)."""
    start = time.perf_counter()
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    order = sorted(order[:max_images])
    was_training = model.training
    model.eval()
    vectors, inputs, labels = [], [], []
    hook = model.head.register_forward_hook(lambda m, args, out: inputs.append(args[0].float().cpu())) \
        if head else None
    try:
        with torch.no_grad():
            for i in range(0, len(order), BATCH):
                items = [dataset[j] for j in order[i:i + BATCH]]
                images = torch.stack([image for image, _ in items]).to(device)
                features = model.backbone.features(images)
                vectors.append(_pooled(features).cpu())
                if head:
                    model.from_features(features)
                labels.extend(int(label) for _, label in items)
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()
    cat = (lambda t: torch.cat(t)) if labels else (lambda t: torch.zeros(0, 0))
    return Probe(cat(vectors), torch.tensor(labels, dtype=torch.long), cat(inputs) if head else None,
                 time.perf_counter() - start)


def fit_of(probed: Probe, classes: int) -> dict:
    """{"fit", "images", "k", "seconds"}; fit None when there are fewer than two images or classes."""
    y = probed.labels
    result = {"fit": None, "images": len(y), "k": K}
    if len(y) >= 2 and classes >= 2 and len(set(y.tolist())) >= 2:
        result["fit"] = round(balanced_fit(_vote(probed.pooled, y, classes, K), y, classes), 4)
    result["seconds"] = round(probed.seconds, 2)
    return result


def feature_fit(model: nn.Module, dataset, device: torch.device, classes: int, seed: int = 0,
                max_images: int = MAX_IMAGES) -> dict:
    """`fit_of` a `probe` of `dataset`'s (image, label) items (evaluation transform)."""
    return fit_of(probe(model, dataset, device, seed, max_images), classes)
