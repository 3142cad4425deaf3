"""Uneven classes: how uneven a training split is, when Frelon balances it, and the weights it uses
(stdlib only: the data doctor, the engine and the app read the same definitions).

The imbalance is the largest training class's image count over the smallest's. Above
`IMBALANCE_RATIO` (3 : 1), `--balance auto` balances the training; the data report says so.
Balancing gives each class the same share of the training signal: class `c` of `n_c` images, out
of `n` in `k` classes, weighs `n / (k · n_c)` (scikit-learn's "balanced" weights: the mean weight
over the images is 1, so the loss keeps its scale and the LR rule still holds).
"""
from __future__ import annotations

from typing import Mapping, Sequence

IMBALANCE_RATIO = 3.0    # largest / smallest training class above this: `--balance auto` balances
AUTO = "auto"
OFF = "off"
# what `--balance auto` does above the ratio: bench/fig_balance.py measured both ways on faces at
# 1 : 10 (README, "Uneven classes"; 3 seeds, balanced accuracy on a balanced test split): off 0.50,
# loss weights 0.63, class-balanced sampling 0.94; on digits at 1 : 10, 0.35, 0.42, 0.49
AUTO_MODE = "sampler"


def imbalance(counts: Mapping[str, int]) -> dict | None:
    """{ratio, largest, smallest} of a split's image counts per class (classes without an image
    left out), or None for fewer than two such classes."""
    present = {c: n for c, n in counts.items() if n > 0}
    if len(present) < 2:
        return None
    largest = max(present, key=lambda c: (present[c], c))
    smallest = min(present, key=lambda c: (present[c], c))
    return {"ratio": present[largest] / present[smallest], "largest": largest, "smallest": smallest}


def settled_mode(option: str, ratio: float | None) -> str:
    """What `--balance OPTION` does on a training split of this imbalance (None: not measurable)."""
    if option != AUTO:
        return option
    return AUTO_MODE if ratio is not None and ratio > IMBALANCE_RATIO else OFF


def counts_of(labels: Sequence[int], classes: int) -> list[int]:
    """How many of `labels` (class indices) each of the `classes` classes has."""
    counts = [0] * classes
    for label in labels:
        counts[label] += 1
    return counts


def class_weights(counts: Sequence[int]) -> list[float]:
    """Each class's weight n / (k · n_c); a class without images weighs 0 (it is never drawn)."""
    present = [n for n in counts if n > 0]
    total, k = sum(present), len(present)
    return [total / (k * n) if n > 0 else 0.0 for n in counts]


MODE_WORDS = {"sampler": "class-balanced sampling, each class drawn equally often",
              "weights": "loss weights, each class's loss weighed n / (k · n_class)",
              OFF: "not balanced"}


def in_words(mode: str, info: dict | None) -> str:
    """The log's, `frelon check`'s and the app's sentence about it: the imbalance and what is done."""
    measured = f"class imbalance {info['ratio']:.3g}:1 ('{info['largest']}' vs '{info['smallest']}')" if info else \
        "class imbalance not measured"
    if mode != OFF:
        return f"{measured}: balanced by {MODE_WORDS[mode]} (--balance off to turn it off)"
    if info and info["ratio"] <= IMBALANCE_RATIO:
        return f"{measured}: not balanced (within {IMBALANCE_RATIO:g}:1, --balance auto leaves it)"
    return f"{measured}: not balanced (--balance off)"
