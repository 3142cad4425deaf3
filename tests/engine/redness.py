"""Hand-built models whose evidence is known: a resnet18 whose last-stage channel 0 is the picture's
redness, and a classifier / CenterNet on it. What `frelon explain` must find is then a fact of the
picture (where the red square was pasted), not of a training run: the oracle of test_explain.py.

ResNet18 made transparent: the stem's channel 0 is a 7 × 7 "red minus the other two" filter, every
BatchNorm is the identity, every block's convolutions are zero (a BasicBlock then passes its input
through) and each down-sampling 1 × 1 convolution copies its channels; so channel 0 at stride 32 is
the redness around each cell. The classifier's "red" logit is that channel's mean, "none" its
negative. The CenterNet ("plain" neck) carries channel 0 up to stride 4 (3 × 3 centre taps; the
transposed convolutions keep their bilinear start) and its heatmap is sigmoid(4 · redness − 2).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

RED = (220, 30, 30)


def probe(path, width: int, height: int, square: tuple[int, int, int, int], seed: int = 0):
    """A grey noisy picture with a red square at (x1, y1, x2, y2)."""
    a = np.random.default_rng(seed).normal(128, 20, (height, width, 3)).clip(0, 255).astype("uint8")
    x1, y1, x2, y2 = square
    a[y1:y2, x1:x2] = RED
    Image.fromarray(a).save(path)


def _transparent(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not isinstance(m, nn.ConvTranspose2d):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1)
                m.eps = 0.0


def red_resnet18(net: nn.Module) -> None:
    """torchvision's resnet18 `net` (inside a Frelon model) made to carry redness on channel 0."""
    _transparent(net)
    with torch.no_grad():
        net.conv1.weight[0, 0] = 1 / 49                      # normalised R …
        net.conv1.weight[0, 1:] = -0.5 / 49                  # … minus the mean of G and B
        for layer in (net.layer2, net.layer3, net.layer4):
            down = layer[0].downsample[0]
            for i in range(down.in_channels):
                down.weight[i, i, 0, 0] = 1.0


def red_classifier(model) -> dict:
    """A Frelon Classifier (resnet18; classes none, red) set by hand; its state dict."""
    net = model.backbone.net
    red_resnet18(net)
    with torch.no_grad():
        net.fc.weight[1, 0], net.fc.weight[0, 0] = 1.0, -1.0
    return model.state_dict()


def red_centernet(model) -> dict:
    """A Frelon CenterNet (resnet18, plain neck) whose heatmap, every class, is the redness."""
    red_resnet18(model.backbone.net)
    for stage in model.neck:                        # UpStage: conv, BN, ReLU, deconv, BN, ReLU
        _transparent(stage[0]), _transparent(stage[1]), _transparent(stage[4])
    head = model.heads["heatmap"]
    _transparent(head)
    with torch.no_grad():
        for stage in model.neck:
            stage[0].weight[0, 0, 1, 1] = 1.0
        head[0].weight[0, 0, 1, 1] = 1.0
        head[-1].weight[:, 0] = 4.0
        head[-1].bias.fill_(-2.0)
    return model.state_dict()
