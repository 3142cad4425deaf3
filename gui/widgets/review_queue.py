"""The annotation editor's image list, and what a review (`frelon review --json`) says about each image.

Without a review the list is the set's own order; with one it is a queue, worst disagreement first,
each line with the review's reasons, its drafts and a ✓ once reviewed. The model's boxes that the
review flagged (missing, conflicting or loose) are the editor's suggestions, shown dashed. No engine,
no files: the review arrives as the JSON the editor's command handed back.
"""
from __future__ import annotations

import os

from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from frelon.gui.annotation_set import AnnotationSet, Box


def norm(path: str) -> str:
    """A path as the review and the annotations may both spell it (absolute, normalised, case-folded on Windows)."""
    return os.path.normcase(os.path.normpath(os.path.abspath(path)))


def entries_by_path(review: dict) -> dict[str, dict]:
    """The review's images, each by its normalised path."""
    return {norm(e["path"]): e for e in review.get("images", [])}


def review_order(annotations: AnnotationSet, review: dict) -> list[int]:
    """Indices into ``annotations.images``: the review's images in its order (worst first), then the rest."""
    index = {norm(annotations.image_path(im)): i for i, im in enumerate(annotations.images)}
    ranked = [index[norm(e["path"])] for e in review.get("images", []) if norm(e["path"]) in index]
    seen = set(ranked)
    return ranked + [i for i in range(len(annotations.images)) if i not in seen]


def review_scope(review: dict) -> str:
    """Which images a review looked at, in words (its `splits` and `own_data`)."""
    n = len(review.get("images", []))
    splits, own = review.get("splits", "val"), review.get("own_data", True)
    if splits == "all":
        return f"all {n} images" + ("" if own else " (a set the run did not train on)")
    return f"the {n} {'validation' if splits == 'val' else 'training'} images" + \
        (" of the run's own set" if own else ", split as the run splits its own")


def suggestions(annotations: AnnotationSet, entries: dict[str, dict], image: dict) -> list[Box]:
    """The model's boxes the review flagged on `image` (none without a review)."""
    entry = entries.get(norm(annotations.image_path(image)))
    if entry is None:
        return []
    flagged = sorted({i["detection"] for i in entry.get("issues", []) if i.get("detection") is not None})
    dets = [entry["detections"][k] for k in flagged if k < len(entry["detections"])]
    return [Box(int(d["category_id"]), tuple(d["bbox"]), score=d["score"]) for d in dets
            if d.get("category_id") is not None]


class ReviewQueue(QListWidget):
    """One line per image, in the editor's order; ``currentRowChanged`` is the user's choice only."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip("Images, worst disagreement with the model first (after a review)")
        self.setMinimumWidth(220)

    def fill(self, annotations: AnnotationSet | None, order: list[int], entries: dict[str, dict]) -> None:
        self.blockSignals(True)
        self.clear()
        reviewed = set(annotations.reviewed()) if annotations else set()
        for i in order:
            image = annotations.images[i]
            entry = entries.get(norm(annotations.image_path(image)))
            text = str(image.get("file_name"))
            if entry is not None and entry["disagreement"] > 0:
                text = f"{entry['disagreement']:.2f}  {text}\n      " + ", ".join(
                    f"{r} ×{entry['counts'][r]}" for r in entry["reasons"])
            drafts = annotations.drafts(image["id"])
            if drafts:
                text += f"  · {drafts} draft(s)"
            self.addItem(QListWidgetItem(("✓ " if image["id"] in reviewed else "") + text))
        self.blockSignals(False)

    def show_row(self, row: int) -> None:
        """Follow the editor (no ``currentRowChanged``)."""
        self.blockSignals(True)
        self.setCurrentRow(row)
        self.blockSignals(False)
