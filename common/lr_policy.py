"""How the learning rate follows the batch, per optimizer and task: the one definition the CLI, the
engine and the app all import (standard library only).

    effective LR = base LR × (global batch ÷ reference batch) ^ power

- SGD (momentum): the linear scaling rule, power 1, base 0.1 at a reference batch of 256 (Goyal et
  al. 2017, "Accurate, Large Minibatch SGD"). It was found for SGD at large batches.
- AdamW: the square-root rule, power ½ (timm's `lr_base_scale='sqrt'` for Adam-family optimizers;
  Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms") at a
  reference batch of 32. Scaled linearly from 256 instead, AdamW at batch 8–32 got 3e-5–1.3e-4:
  8–30× too low to move a new head in a few epochs (issue 10). The base depends on the task:
  - classification, 5e-4: every layer but one linear head is pretrained, and a few epochs should
    adapt the features, not overwrite them. Measured on bench/learn.py's held-out test splits
    against the earlier 1e-3 (test accuracy, means over seeds): photos 0.879 → 0.939 (five seeds,
    each higher), digits 0.992 → 0.975 (three), faces 0.974 → 0.970 (ten: noise). 3e-4 gave
    photos 0.928, faces 0.980 but digits 0.966, below the 0.97 a 10-class set of small pictures
    should reach; grey 8 × 8 digits are far from ImageNet, and their body has to move.
  - detection, 1e-3: the neck and heads (most of the network's work) start from random weights and
    train for tens of epochs (the TTF recipe was measured at this LR; issue 10's 0.011 → 0.355).

`lr` and `ref_batch` of 0 mean "the optimizer's own" (the defaults); a value given wins. A run
records the values in force in its config.json, so a resumed run keeps its LR when a default
changes. The new parts of the network (a classifier's head; CenterNet's neck and heads) train at
`head_lr_mult` × the effective LR, the pretrained body at the effective LR (discriminative
fine-tuning, as fastai's `fine_tune` and ULMFiT do).
"""
from __future__ import annotations

from dataclasses import dataclass

from frelon.common.choices import DETECT

HEAD_LR_MULT = 10.0
# Warmup lasts `--warmup-epochs`, but never more than this share of the run: on a short fine-tuning
# run (2–6 epochs) a whole epoch of warmup spends a third of the budget below the useful LR.
# (fastai's one-cycle warms up over 25 %, timm and Ultralytics over 2–5 % of long runs.)
MAX_WARMUP_FRACTION = 0.25


@dataclass(frozen=True)
class LrRule:
    classify: float       # the base LR at the reference batch, fine-tuning a classifier
    detect: float         # … training a detector
    ref_batch: int
    power: float          # 1 = linear scaling rule, 0.5 = square-root rule
    name: str             # in words, for the app and the docs

    def base(self, task: str) -> float:
        """The base LR for `task` ("" or unknown: classification's, as for the image size)."""
        return self.detect if task == DETECT else self.classify

    def scale(self, global_batch: int, ref_batch: int) -> float:
        return (global_batch / ref_batch) ** self.power


RULES = {
    "adamw": LrRule(5e-4, 1e-3, 32, 0.5, "square-root rule"),
    "sgd": LrRule(0.1, 0.1, 256, 1.0, "linear scaling rule"),
}


def defaults_in_words() -> str:
    """The automatic bases, for help texts: 'AdamW 0.0005 to fine-tune a classifier, …; SGD 0.1'."""
    adamw, sgd = RULES["adamw"], RULES["sgd"]
    return (f"AdamW {adamw.classify:g} to fine-tune a classifier, {adamw.detect:g} to train a detector; "
            f"SGD {sgd.classify:g}")


def base_lr(optimizer: str, lr: float = 0.0, task: str = "") -> float:
    """The base LR in force: `lr` when given (> 0), else the optimizer's own for `task`."""
    return lr if lr > 0 else RULES[optimizer].base(task)


def reference_batch(optimizer: str, ref_batch: int = 0) -> int:
    return ref_batch if ref_batch > 0 else RULES[optimizer].ref_batch


def effective_lr(optimizer: str, global_batch: int, lr: float = 0.0, ref_batch: int = 0, task: str = "") -> float:
    """The peak LR of the pretrained body for a global batch (see the module docstring)."""
    return base_lr(optimizer, lr, task) * RULES[optimizer].scale(global_batch, reference_batch(optimizer, ref_batch))


def warmup_steps(total_steps: int, steps_per_epoch: int, warmup_epochs: float) -> int:
    """Steps of linear warmup: `warmup_epochs` of steps, at most MAX_WARMUP_FRACTION of the run."""
    if total_steps <= 1:
        return 0
    wanted = round(warmup_epochs * steps_per_epoch)
    return max(0, min(total_steps - 1, wanted, int(MAX_WARMUP_FRACTION * total_steps)))


def formula(optimizer: str, global_batch: int, lr: float = 0.0, ref_batch: int = 0, task: str = "") -> str:
    """The effective LR's computation in words, e.g. '0.000354 = 0.0005 × √(16 ÷ 32)'."""
    rule, base, ref = RULES[optimizer], base_lr(optimizer, lr, task), reference_batch(optimizer, ref_batch)
    value = effective_lr(optimizer, global_batch, lr, ref_batch, task)
    ratio = f"{global_batch} ÷ {ref}"
    scaled = f"√({ratio})" if rule.power == 0.5 else f"({ratio})" if rule.power == 1 else f"({ratio})^{rule.power:g}"
    return f"{value:.3g} = {base:.3g} × {scaled}"
