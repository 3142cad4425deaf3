"""Per-class precision and recall, and balanced accuracy, from a confusion matrix (rows true, columns
predicted), and the multi-label task's per-label AP, F1 and tuned threshold (stdlib only).

One definition for the engine (`epoch_end.val.precision_recall`, `frelon eval --json`) and the app
(the table beside the confusion matrix, also for run folders written before the engine sent it).
Precision of a class: of the images predicted as it, the share that are it (None when none was
predicted as it); recall: of the images that are it, the share predicted as it (None when it has
no image) — recall is what the app called per-class accuracy.
"""
from __future__ import annotations

from typing import Sequence


def precision_recall(matrix: Sequence[Sequence[float]], classes: Sequence[str]) -> dict[str, dict]:
    """{class: {"precision", "recall", "support" (true images), "predicted" (images predicted as it)}}."""
    n = len(classes)
    out = {}
    for i, name in enumerate(classes):
        row = matrix[i] if i < len(matrix) else []
        support = sum(row)
        predicted = sum(matrix[r][i] for r in range(min(n, len(matrix))) if i < len(matrix[r]))
        hit = row[i] if i < len(row) else 0
        out[str(name)] = {"precision": hit / predicted if predicted else None,
                          "recall": hit / support if support else None,
                          "support": int(support), "predicted": int(predicted)}
    return out


def balanced_accuracy(matrix: Sequence[Sequence[float]]) -> float | None:
    """The mean of the per-class recalls over the classes that have images (None when none has):
    accuracy as if every class had as many images. A model that always answers the largest of k
    classes scores 1/k, however uneven the set."""
    recalls = [row[i] / sum(row) for i, row in enumerate(matrix) if i < len(row) and sum(row) > 0]
    return sum(recalls) / len(recalls) if recalls else None


# ---------------------------------------------------------------------------------------------
# Multi-label: one label's scores against its truths (0/1), a few hundred to a few thousand pictures.
# Written here rather than taken from scikit-learn or torchmetrics: neither is a dependency of the
# engine, and these are twenty lines the app can read too (stdlib only).


def _ranked(scores: Sequence[float], truths: Sequence[int]) -> list[tuple[float, int, int]]:
    """(score, true positives, predicted positives) at each distinct score, highest first: a tie of
    scores is one step (predicted positive together), as scikit-learn's curves count it."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out, tp = [], 0
    for k, i in enumerate(order):
        tp += truths[i]
        if k + 1 == len(order) or scores[order[k + 1]] != scores[i]:
            out.append((scores[i], tp, k + 1))
    return out


def average_precision(scores: Sequence[float], truths: Sequence[int]) -> float | None:
    """AP = Σ (Rₖ − Rₖ₋₁) · Pₖ over the distinct scores, highest first (scikit-learn's
    average_precision_score, no interpolation); None when the label has no positive."""
    positives = sum(truths)
    if not positives:
        return None
    ap, recall = 0.0, 0.0
    for _, tp, predicted in _ranked(scores, truths):
        ap += (tp / positives - recall) * tp / predicted
        recall = tp / positives
    return ap


def f1_at(scores: Sequence[float], truths: Sequence[int], threshold: float) -> float:
    """F1 of "score >= threshold" (1 when nothing is predicted and nothing is true: no error made)."""
    tp = sum(1 for s, t in zip(scores, truths) if s >= threshold and t)
    predicted = sum(1 for s in scores if s >= threshold)
    positives = sum(truths)
    return 1.0 if predicted + positives == 0 else 2 * tp / (predicted + positives)


def best_threshold(scores: Sequence[float], truths: Sequence[int], default: float = 0.5) -> float:
    """The threshold with the best F1 of "score >= threshold", halfway between the last score taken
    and the next one down (the margin new pictures need); `default` when there is no positive."""
    positives = sum(truths)
    if not positives:
        return default
    steps = _ranked(scores, truths)
    f1 = [2 * tp / (predicted + positives) for _, tp, predicted in steps]
    k = max(range(len(steps)), key=lambda j: (f1[j], -j))       # the best, fewest predicted on a tie
    return (steps[k][0] + steps[k + 1][0]) / 2 if k + 1 < len(steps) else steps[k][0]
