"""How the learning rate follows the batch, per optimizer: the one definition the CLI, the engine
and the app all import (standard library only).

    effective LR = base LR × (global batch ÷ reference batch) ^ power

- SGD (momentum): the linear scaling rule, power 1, base 0.1 at a reference batch of 256 (Goyal et
  al. 2017, "Accurate, Large Minibatch SGD"). It was found for SGD at large batches.
- AdamW: the square-root rule, power ½ (timm's `lr_base_scale='sqrt'` for Adam-family optimizers;
  Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms"), base 1e-3
  at a reference batch of 32 — the LR of every AdamW fine-tuning recipe at the batches people use on
  one machine (fastai, Ultralytics' `optimizer=auto`). Scaled linearly from 256 instead, AdamW at
  batch 8–32 got 3e-5–1.3e-4: 8–30× too low to move a new head in a few epochs.

`lr` and `ref_batch` of 0 mean "the optimizer's own" (the defaults); a value given wins. The new
parts of the network (a classifier's head; CenterNet's neck and heads) train at `head_lr_mult` ×
the effective LR, the pretrained body at the effective LR (discriminative fine-tuning, as fastai's
`fine_tune` and ULMFiT do).
"""
from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("adamw", "sgd")
HEAD_LR_MULT = 10.0
# Warmup lasts `--warmup-epochs`, but never more than this share of the run: on a short fine-tuning
# run (2–6 epochs) a whole epoch of warmup spends a third of the budget below the useful LR.
# (fastai's one-cycle warms up over 25 %, timm and Ultralytics over 2–5 % of long runs.)
MAX_WARMUP_FRACTION = 0.25


@dataclass(frozen=True)
class LrRule:
    base: float           # the LR at the reference batch
    ref_batch: int
    power: float          # 1 = linear scaling rule, 0.5 = square-root rule
    name: str             # in words, for the app and the docs

    def scale(self, global_batch: int, ref_batch: int) -> float:
        return (global_batch / ref_batch) ** self.power


RULES = {
    "adamw": LrRule(1e-3, 32, 0.5, "square-root rule"),
    "sgd": LrRule(0.1, 256, 1.0, "linear scaling rule"),
}


def base_lr(optimizer: str, lr: float = 0.0) -> float:
    """The base LR in force: `lr` when given (> 0), else the optimizer's own."""
    return lr if lr > 0 else RULES[optimizer].base


def reference_batch(optimizer: str, ref_batch: int = 0) -> int:
    return ref_batch if ref_batch > 0 else RULES[optimizer].ref_batch


def effective_lr(optimizer: str, global_batch: int, lr: float = 0.0, ref_batch: int = 0) -> float:
    """The peak LR of the pretrained body for a global batch (see the module docstring)."""
    return base_lr(optimizer, lr) * RULES[optimizer].scale(global_batch, reference_batch(optimizer, ref_batch))


def warmup_steps(total_steps: int, steps_per_epoch: int, warmup_epochs: float) -> int:
    """Steps of linear warmup: `warmup_epochs` of steps, at most MAX_WARMUP_FRACTION of the run."""
    if total_steps <= 1:
        return 0
    wanted = round(warmup_epochs * steps_per_epoch)
    return max(0, min(total_steps - 1, wanted, int(MAX_WARMUP_FRACTION * total_steps)))


def formula(optimizer: str, global_batch: int, lr: float = 0.0, ref_batch: int = 0) -> str:
    """The effective LR's computation in words, e.g. '7.07e-04 = 1e-03 × √(16 ÷ 32)'."""
    rule, base, ref = RULES[optimizer], base_lr(optimizer, lr), reference_batch(optimizer, ref_batch)
    value = effective_lr(optimizer, global_batch, lr, ref_batch)
    ratio = f"{global_batch} ÷ {ref}"
    scaled = f"√({ratio})" if rule.power == 0.5 else f"({ratio})" if rule.power == 1 else f"({ratio})^{rule.power:g}"
    return f"{value:.3g} = {base:.3g} × {scaled}"
