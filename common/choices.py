"""Each option's choices, in one place that the CLI, the engine and the app all import (stdlib only).

The first entry is the default where the option has one among them (engine/config.py's TrainConfig
holds the defaults); "" for `task` means "inferred from the data".
"""
from __future__ import annotations

from frelon.common.lr_policy import OPTIMIZERS

CHOICES: dict[str, tuple[str, ...]] = {
    "task": ("", "classify", "detect"),
    "schedule": ("cosine", "step", "constant"),
    "optimizer": OPTIMIZERS,
    "checkpointing": ("off", "stages", "blocks"),
    "augment": ("default", "light", "randaugment", "none"),
    "flip": ("auto", "on", "off"),
    "detector": ("ttf", "centernet"),
    "device": ("auto", "cpu", "cuda"),
}

# `frelon robustness --attack` (not a training option; engine/attacks.py implements each)
ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
