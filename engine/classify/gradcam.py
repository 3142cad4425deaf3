"""Grad-CAM (Selvaraju et al. 2017): which part of a picture drove a classifier's score for a class.

The backbone's last block (`BackboneNet.last_block`: the module whose output the head pools) is
watched by a forward hook that keeps its output A (K channels, h × w cells, stride 32). For a class
c, the gradient of its logit y_c reaching A gives each channel a weight (the gradient's mean over
the cells), and the map is ReLU(Σ_k weight_k · A_k): the cells whose features raise y_c. One
forward pass serves every class asked for; each class is one backward pass to A only
(torch.autograd.grad with A as the input: no parameter's .grad is touched, the run's weights stay
as they were).

Why not pytorch-grad-cam (PyPI `grad-cam`, which does install here): it brings opencv, matplotlib,
scikit-learn, scipy, ttach and tqdm into every Frelon install, for what is these forty lines around
one hook; Frelon already knows its backbones' last block (backbones.py's cut), which that library
asks the caller to name; and a multi-label task plugs in by choosing the class indices, nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ClassMap:
    index: int                  # the class
    cells: torch.Tensor         # (h, w) ≥ 0, largest 1 (all 0 when nothing raised the score)


class LastBlockHook:
    """A forward hook on `layer` keeping its last output (with its graph) while the `with` lasts."""

    def __init__(self, layer: nn.Module):
        self.layer = layer
        self.output: torch.Tensor | None = None

    def __enter__(self) -> "LastBlockHook":
        self.handle = self.layer.register_forward_hook(self._keep)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def _keep(self, _module, _inputs, output) -> None:
        self.output = output


def class_maps(model: nn.Module, layer: nn.Module, image: torch.Tensor,
               pick) -> tuple[torch.Tensor, list[ClassMap]]:
    """(logits (C,), a Grad-CAM map for each class `pick(logits)` names) of one picture (1, 3, H, W)."""
    with torch.enable_grad(), LastBlockHook(layer) as hook:
        logits = model(image.requires_grad_(False))[0]
        acts = hook.output
        maps = []
        for c in pick(logits.detach()):
            (grad,) = torch.autograd.grad(logits[c], acts, retain_graph=True)
            weights = grad[0].mean((1, 2))                                   # (K,)
            cam = torch.relu((weights[:, None, None] * acts[0]).sum(0)).detach()
            top = float(cam.max())
            maps.append(ClassMap(int(c), cam / top if top > 0 else cam))
    return logits.detach(), maps


def upsampled(cells: torch.Tensor, size: int) -> torch.Tensor:
    """(h, w) cells → (size, size) map in [0, 1], bilinear, the network input's pixels."""
    import torch.nn.functional as F
    return F.interpolate(cells[None, None].float(), size=(size, size), mode="bilinear",
                         align_corners=False)[0, 0].clamp(0, 1)


def strongest_cell(cells: torch.Tensor, size: int) -> tuple[float, float]:
    """(x, y) of the strongest cell's centre in the network input's pixels: the map's resolution is
    one cell (size / w pixels), so the peak is said at that resolution and no finer."""
    h, w = cells.shape
    index = int(cells.flatten().argmax())
    return (index % w + 0.5) * size / w, (index // w + 0.5) * size / h
