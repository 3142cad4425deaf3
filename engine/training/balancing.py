"""`--balance`: settled from the training split's imbalance (common/balance.py), and the class-balanced
sampler's weights. The loss weights are the task's own (tasks/classify.py reads the settled
`cfg.balance`); a task whose pictures are not one class each (detection) has no `train_labels` to
balance by.
"""
from __future__ import annotations

from frelon.common.balance import (AUTO, IMBALANCE_RATIO, OFF, class_weights, counts_of, imbalance, in_words,
                                   settled_mode)
from frelon.common.train_config import TrainConfig

from ..errors import ConfigurationError


def class_counts(task, scanned) -> list[int] | None:
    """The training images of each class, or None when the task's pictures are not one class each."""
    labels = task.train_labels(scanned)
    return None if labels is None else counts_of(labels, len(scanned.classes))


def settle_balance(cfg: TrainConfig, task, scanned) -> tuple[TrainConfig, str]:
    """`cfg` with `balance` settled (auto → sampler above the ratio, else off) and the log's sentence
    ("" when there is nothing to say: classes within the ratio, left as they are)."""
    counts = class_counts(task, scanned)
    if counts is None:
        if cfg.balance not in (AUTO, OFF):
            raise ConfigurationError(f"--balance {cfg.balance}: the {task.name} task has no single class per "
                                     "picture to balance by", hint="leave --balance at auto (off for this task)")
        return cfg.replace(balance=OFF), ""
    info = imbalance(dict(zip(scanned.classes, counts)))
    mode = settled_mode(cfg.balance, info["ratio"] if info else None)
    uneven = info is not None and info["ratio"] > IMBALANCE_RATIO
    return cfg.replace(balance=mode), in_words(mode, info) if mode != OFF or uneven else ""


def sample_weights(cfg: TrainConfig, task, scanned) -> list[float] | None:
    """Each training sample's draw weight under --balance sampler (its class's weight), else None."""
    if cfg.balance != "sampler":
        return None
    weights = class_weights(class_counts(task, scanned))
    return [weights[label] for label in task.train_labels(scanned)]
