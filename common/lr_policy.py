"""How the learning rate follows the batch, per optimizer and task: the one definition the CLI, the
engine and the app all import (standard library only).

    effective LR = base LR × (global batch ÷ reference batch) ^ power

- SGD (momentum): the linear scaling rule, power 1, base 0.1 at a reference batch of 256 (Goyal et
  al. 2017, "Accurate, Large Minibatch SGD"). It was found for SGD at large batches.
- AdamW: the square-root rule, power ½ (timm's `lr_base_scale='sqrt'` for Adam-family optimizers;
  Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms") at a
  reference batch of 32. Scaled linearly from 256 instead, AdamW at batch 8–32 got 3e-5–1.3e-4:
  8–30× too low to move a new head in a few epochs (issue 10). The base depends on the task:
  - classification, 3e-4 to 1e-3, chosen at the start of each run from how well the pretrained
    features already separate the training classes (`LrRule.fitted`, measured by
    engine/training/feature_fit.py: a 5-nearest-neighbour vote in the body's pooled features).
    Where they already separate the classes (a fit of FIT_NEAR or more), a few epochs should adapt
    the features, not overwrite them: 3e-4. Where they do not (FIT_FAR or less: pictures far from
    ImageNet), the body has to move: 1e-3. In between, log-linear. This is the LP-FT argument
    (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features"): the better the features
    fit, the more a large LR can only distort them. Measured on bench/learn.py's held-out test
    splits (means over seeds): at 1e-3 photos 0.879, digits 0.992, faces 0.974; at 3e-4 photos
    0.928, digits 0.966, faces 0.980. No single LR served all three (5e-4: 0.939, 0.975, 0.970);
    the fit tells them apart: photos 0.99, faces 0.97, digits 0.78 (README, Learning quality).
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
    classify: float       # the base LR at the reference batch, fine-tuning a classifier (the fit unknown)
    detect: float         # … training a detector
    ref_batch: int
    power: float          # 1 = linear scaling rule, 0.5 = square-root rule
    name: str             # in words, for the app and the docs
    classify_near: float  # … fine-tuning a classifier whose pretrained features already fit (FIT_NEAR)

    def base(self, task: str) -> float:
        """The base LR for `task` ("" or unknown: classification's, as for the image size), the
        features' fit unknown: for a classifier, the most `fitted` can give."""
        return self.detect if task == DETECT else self.classify

    def fitted(self, fit: float) -> float:
        """The classification base for a feature fit in [0, 1] (see the module docstring)."""
        t = min(1.0, max(0.0, (fit - FIT_FAR) / (FIT_NEAR - FIT_FAR)))
        return self.classify * (self.classify_near / self.classify) ** t

    def scale(self, global_batch: int, ref_batch: int) -> float:
        return (global_batch / ref_batch) ** self.power


# The feature fit (a chance-corrected, class-balanced 5-NN accuracy, 0 = chance, 1 = every
# training image's neighbours share its class) at and below which a classifier trains at the
# rule's `classify`, and at and above which at its `classify_near`. Measured fits
# (efficientnet_lite0, ImageNet weights, bench/learn.py's sets): digits 0.78, faces 0.97,
# photos 0.99, the bundled sample 1.00.
FIT_FAR = 0.85
FIT_NEAR = 0.95

RULES = {
    "adamw": LrRule(1e-3, 1e-3, 32, 0.5, "square-root rule", classify_near=3e-4),
    "sgd": LrRule(0.1, 0.1, 256, 1.0, "linear scaling rule", classify_near=0.1),   # not measured: one base
}


def defaults_in_words() -> str:
    """The automatic bases, for help texts: 'AdamW 0.0003–0.001 to fine-tune a classifier (…)…'."""
    adamw, sgd = RULES["adamw"], RULES["sgd"]
    return (f"AdamW {adamw.classify_near:g}–{adamw.classify:g} to fine-tune a classifier (the lower the "
            f"better the pretrained features already separate the classes, measured at the start), "
            f"{adamw.detect:g} to train a detector; SGD {sgd.classify:g}")


def base_lr(optimizer: str, lr: float = 0.0, task: str = "", fit: float | None = None) -> float:
    """The base LR in force: `lr` when given (> 0), else the optimizer's own for `task` and, for a
    classifier, for the features' `fit` (None: not measured, the most it can be)."""
    if lr > 0:
        return lr
    rule = RULES[optimizer]
    return rule.fitted(fit) if fit is not None and task != DETECT else rule.base(task)


def base_range(optimizer: str, lr: float = 0.0, task: str = "") -> tuple[float, float]:
    """The (lowest, highest) base LR a run can get before its fit is measured: one value unless
    the LR is automatic for a classifier (what the app shows before Start)."""
    if lr > 0 or task == DETECT:
        return (base_lr(optimizer, lr, task),) * 2
    rule = RULES[optimizer]
    return min(rule.classify_near, rule.classify), max(rule.classify_near, rule.classify)


def fits_features(optimizer: str, lr: float, task: str) -> bool:
    """Whether a run with these options measures the features' fit to choose its base LR."""
    low, high = base_range(optimizer, lr, task)
    return low != high


def fit_in_words(optimizer: str, fit: float | None, images: int) -> str:
    """Why a classifier's automatic base LR is what it is, in a sentence for the run's log."""
    base = base_lr(optimizer, 0.0, "", fit)
    if fit is None:
        return f"base LR {base:g}: too few training images or classes to measure the features' fit"
    how = ("already separate the classes: fine-tune gently" if fit >= FIT_NEAR else
           "do not separate the classes yet: the body has to move" if fit <= FIT_FAR else
           "partly separate the classes")
    return (f"base LR {base:.3g}: the pretrained features {how} (feature fit {fit:.2f} on {images} "
            f"training images; {FIT_FAR:g} or less gives {RULES[optimizer].classify:g}, "
            f"{FIT_NEAR:g} or more {RULES[optimizer].classify_near:g})")


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
    """The effective LR's computation in words, e.g. '0.000354 = 0.0005 × √(16 ÷ 32)'; before the
    fit is measured, a range: '0.000212–0.000707 = 0.0003–0.001 × √(16 ÷ 32)'."""
    rule, ref = RULES[optimizer], reference_batch(optimizer, ref_batch)
    scale = rule.scale(global_batch, ref)
    ratio = f"{global_batch} ÷ {ref}"
    scaled = f"√({ratio})" if rule.power == 0.5 else f"({ratio})" if rule.power == 1 else f"({ratio})^{rule.power:g}"
    low, high = base_range(optimizer, lr, task)
    if low == high:
        return f"{low * scale:.3g} = {low:.3g} × {scaled}"
    return f"{low * scale:.3g}–{high * scale:.3g} = {low:.3g}–{high:.3g} × {scaled}"
