"""LP-FT's first half: the new classifier head fitted on the start weights' frozen features, before
any fine-tuning step (Kumar et al., ICLR 2022, "Fine-Tuning can Distort Pretrained Features and
Underperform Out-of-Distribution": a head at random makes the first steps' large gradients reshape
the body to suit it; a fitted head lets fine-tuning start from a good classifier).

The fit is a multinomial logistic regression on what the head's Linear receives (feature_fit.py's
pass collects it, at the evaluation transform, in the body's evaluation mode), solved to
convergence by L-BFGS, full batch: scikit-learn's LogisticRegression with its default C = 1 (an L2
penalty of ½‖W‖² on the summed loss; the bias is not penalised), the linear probe of Kumar et al.
It starts from zeros and draws no random numbers, so every rank that ran it would get the same head
(rank 0 runs it and sends it); on a few hundred images of a few thousand features it takes well
under a second.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

C = 1.0              # scikit-learn's default inverse penalty
MAX_ITER = 200       # L-BFGS iterations (scikit-learn's lbfgs default is 100; this converges on all we measured)


def fit_head(x: torch.Tensor, y: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (classes, features), bias (classes,)) minimising Σ cross-entropy + ½‖W‖² / C."""
    x, y = x.double(), y.long()
    weight = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([weight, bias], lr=1, max_iter=MAX_ITER, tolerance_grad=1e-6,
                               tolerance_change=1e-9, history_size=10, line_search_fn="strong_wolfe")

    def loss():
        solver.zero_grad()
        value = F.cross_entropy(x @ weight.T + bias, y, reduction="sum") + 0.5 * (weight ** 2).sum() / C
        value.backward()
        return value
    solver.step(loss)
    return weight.detach().float(), bias.detach().float()


def head_state(head: nn.Linear, x: torch.Tensor, y: torch.Tensor, classes: int) -> dict:
    """{"weight", "bias"} for `head` (its dtype) fitted on (x, y), and its training accuracy."""
    weight, bias = fit_head(x, y, classes)
    accuracy = float(((x.float() @ weight.T + bias).argmax(1) == y).float().mean())
    return {"weight": weight.to(head.weight.dtype), "bias": bias.to(head.bias.dtype), "accuracy": accuracy}


def load_head(head: nn.Linear, state: dict) -> None:
    """Put a fitted head's weights into `head`, on its device."""
    with torch.no_grad():
        head.weight.copy_(state["weight"])
        head.bias.copy_(state["bias"])
