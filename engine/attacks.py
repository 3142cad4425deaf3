"""Adversarial attacks on a classifier, in pixel space: FGSM and PGD (L∞).

The model sees `normalize(x)` where x holds pixels in [0, 1] at the network's input size (after
resize and crop), so ε means the same for every backbone whatever its mean and std: ε = 2/255 is
"at most two 8-bit levels per pixel and channel". Both attacks raise the cross-entropy of the true
label and keep x + δ inside [0, 1].

- FGSM (Goodfellow, Shlens & Szegedy 2015): one step, x + ε · sign(∇ₓ loss).
- PGD (Madry et al. 2018): `steps` steps of size `step_size` along the gradient's sign, each
  projected back onto the ε-ball around x and onto [0, 1]. No random start, so a run is
  deterministic (and its first step is FGSM's direction). Default: 10 steps of 2.5 ε / 10, Madry's
  rule that lets the walk reach the ball's edge and move along it.

The loss is a parameter: a classifier's summed cross-entropy by default; a detector's heatmap
focal loss for `frelon robustness` on a detection run. It is summed over the batch, so one image's
perturbation does not depend on the batch it is in. The model's weights get no gradient
(requires_grad is switched off for the call, then restored).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

PGD_STEPS = 10
PGD_STEP_RATIO = 2.5          # step size = ratio × ε / steps


@contextmanager
def _frozen(model: nn.Module):
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


Loss = Callable[[Any, Any], torch.Tensor]        # (model outputs, target) → a scalar summed over the batch


def cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, reduction="sum")


def input_gradient(model: nn.Module, normalize: Callable, pixels: torch.Tensor, target: Any,
                   loss: Loss = cross_entropy_sum) -> torch.Tensor:
    """∇ₓ loss(model(normalize(x)), target) at x = pixels."""
    with _frozen(model), torch.enable_grad():
        x = pixels.detach().clone().requires_grad_(True)
        value = loss(model(normalize(x)), target)
        (grad,) = torch.autograd.grad(value, x)
    return grad


def fgsm(model: nn.Module, normalize: Callable, pixels: torch.Tensor, target: Any, eps: float,
         loss: Loss = cross_entropy_sum) -> torch.Tensor:
    """Adversarial pixels: pixels + eps · sign(∇ₓ loss), clipped to [0, 1] (eps in [0, 1] units)."""
    if eps <= 0:
        return pixels.detach().clone()
    grad = input_gradient(model, normalize, pixels, target, loss)
    return (pixels.detach() + eps * grad.sign()).clamp(0.0, 1.0)


def pgd_step_size(eps: float, steps: int = PGD_STEPS) -> float:
    return PGD_STEP_RATIO * eps / steps


def pgd(model: nn.Module, normalize: Callable, pixels: torch.Tensor, target: Any, eps: float,
        steps: int = PGD_STEPS, step_size: float | None = None, loss: Loss = cross_entropy_sum) -> torch.Tensor:
    """Adversarial pixels after `steps` projected sign-gradient steps inside the ε-ball and [0, 1]."""
    if eps <= 0:
        return pixels.detach().clone()
    alpha = pgd_step_size(eps, steps) if step_size is None else step_size
    clean = pixels.detach()
    x = clean.clone()
    for _ in range(steps):
        x = x + alpha * input_gradient(model, normalize, x, target, loss).sign()
        x = torch.minimum(torch.maximum(x, clean - eps), clean + eps).clamp(0.0, 1.0)
    return x


ATTACKS = {"fgsm": fgsm, "pgd": pgd}


LEVELS = 255.0          # ε and step sizes are given in 8-bit pixel levels


def attacker(model: nn.Module, normalize: Callable, attack: str, steps: int = PGD_STEPS,
             step_size_levels: float | None = None, loss: Loss = cross_entropy_sum) -> Callable:
    """fn(pixels, target, eps_levels) → adversarial pixels, for `frelon robustness --attack`."""
    def run(pixels: torch.Tensor, target: Any, eps_levels: float) -> torch.Tensor:
        eps = eps_levels / LEVELS
        if attack == "pgd":
            size = None if step_size_levels is None else step_size_levels / LEVELS
            return pgd(model, normalize, pixels, target, eps, steps=steps, step_size=size, loss=loss)
        return fgsm(model, normalize, pixels, target, eps, loss=loss)
    return run


@dataclass(frozen=True)
class Sweep:
    """One `frelon robustness` sweep as a task runs it (tasks/: classify/robustness.py,
    centernet/robustness.py): the attack and its sizes, how the model's input is normalised, where
    progress and pictures go."""
    eps: tuple[float, ...]                       # 8-bit levels, 0 first (the clean score)
    attack: str = "fgsm"                         # ATTACKS
    steps: int = PGD_STEPS                       # PGD's
    step_size: float | None = None               # PGD's step in 8-bit levels; None: PGD_STEP_RATIO × ε / steps
    examples: int = 6                            # flipped images drawn (classification)
    normalize: Callable = lambda x: x            # [0, 1] pixels → the network's input
    emit: Callable[..., object] = lambda *a, **k: None    # robustness_eps events
    out_dir: Path | None = None                  # RUN/robustness/ (the pictures)

    def attacker(self, model: nn.Module, loss: Loss = cross_entropy_sum) -> Callable:
        """This sweep's attack on `model` (see `attacker`)."""
        return attacker(model, self.normalize, self.attack, self.steps, self.step_size, loss=loss)

