"""Per-class precision and recall, and balanced accuracy, from a confusion matrix (rows true, columns
predicted; stdlib only).

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
