"""Each option's choices, in one place that the CLI, the engine and the app all import (stdlib only).

The first entry is the default where the option has one among them (common/train_config.py's TrainConfig
holds the defaults); "" for `task` means "inferred from the data".
"""
from __future__ import annotations

# the tasks' names: engine/tasks/ has one class for each; data files and reports carry these words
CLASSIFY = "classify"
DETECT = "detect"
MULTILABEL = "multilabel"     # several labels (or none) per picture: engine/tasks/multilabel.py
TASKS: tuple[str, ...] = (CLASSIFY, DETECT, MULTILABEL)
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")     # common/lr_policy.py holds each one's LR rule

CHOICES: dict[str, tuple[str, ...]] = {
    "task": ("", *TASKS),
    "schedule": ("cosine", "step", "constant"),
    "optimizer": OPTIMIZERS,
    "checkpointing": ("off", "stages", "blocks"),
    "augment": ("default", "light", "randaugment", "none"),
    "flip": ("auto", "on", "off"),
    "detector": ("ttf", "centernet"),
    "slicing": ("auto", "on", "off"),
    "device": ("auto", "cpu", "cuda"),
    "balance": ("auto", "sampler", "weights", "off"),     # common/balance.py: what auto does
    "cache": ("disk", "off"),
}

# `frelon robustness --attack` (not a training option; engine/attacks.py implements each)
ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
