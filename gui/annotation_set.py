"""The annotations the box editor works on: one COCO document (common/coco_doc.py), its images
resolved to files, each image's boxes as plain `Box`es, and saving to the reviewed copy.

No Qt and no torch here: the editor's widgets and undo commands call `boxes` / `set_boxes`, and
`save` writes the whole document atomically to `path`, never to `original`, under the rule every
writer of annotations obeys (common/coco_doc.py, `check_target`): `path` is a file Frelon wrote (a
reviewed copy or drafts, by name and mark) or a new one. A file Frelon did not write, opened here,
is edited in its reviewed copy beside it (continued when one exists), never in place.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from frelon.common import coco_doc


@dataclass(frozen=True)
class Box:
    """One box in the original image's pixels: `bbox` is COCO's [x, y, width, height]."""
    category_id: int
    bbox: tuple[float, float, float, float]
    id: int | None = None              # the annotation's id in the document (None: new)
    draft: bool = False                # a model's proposal not yet accepted
    score: float | None = None

    def moved(self, bbox) -> "Box":
        return replace(self, bbox=tuple(round(float(v), 2) for v in bbox))

    def accepted(self) -> "Box":
        return replace(self, draft=False, score=None)


class AnnotationSet:
    def __init__(self, doc: dict[str, Any], path: str | os.PathLike, original: str | os.PathLike | None = None,
                 image_root: str | os.PathLike | None = None):
        self.doc = doc
        self.path = Path(path)
        self.original = Path(original) if original else None
        self.image_root = Path(image_root) if image_root else self._image_root(doc, self.path.parent)
        self.images: list[dict[str, Any]] = [im for im in doc["images"] if isinstance(im, dict) and "id" in im]
        self.categories: list[dict[str, Any]] = [c for c in doc["categories"] if isinstance(c, dict) and "id" in c]
        self.dirty = False               # boxes changed since the last save
        self.moved = False               # only the editor's place changed

    @classmethod
    def open(cls, path: str | os.PathLike, original: str | os.PathLike | None = None) -> "AnnotationSet":
        path = Path(path)
        doc = coco_doc.load(path)
        if coco_doc.own_kind(path, doc) is None:     # not Frelon's: its edits go to the reviewed copy
            copy = coco_doc.reviewed_path(path)
            copy = coco_doc.free_name(path) if copy == path else copy
            earlier = coco_doc.marked_document(copy)
            if earlier is not None:                  # edits made before: continue them
                doc = earlier
            return cls(doc, copy, original or path, image_root=cls._image_root(doc, path.parent))
        source = original or coco_doc.review_state(doc).get("source")
        return cls(doc, path, source if source and Path(source).is_file() else None)

    @staticmethod
    def _image_root(doc: dict[str, Any], folder: Path) -> Path:
        drafts = (doc.get("info") or {}).get(coco_doc.DRAFTS_KEY) if isinstance(doc.get("info"), dict) else None
        return Path((drafts or {}).get("image_root") or folder)

    # ---- images and classes
    def class_names(self) -> list[str]:
        return [str(c.get("name", c["id"])) for c in self.categories]

    def class_index(self, category_id: int) -> int:
        return next((i for i, c in enumerate(self.categories) if c["id"] == category_id), 0)

    def image_path(self, image: dict[str, Any]) -> str:
        """The file of an image entry: its file_name against the document's folder, else images/."""
        name = str(image.get("file_name", ""))
        first = self.image_root / name
        if first.is_file():
            return str(first)
        return str(self.image_root / "images" / name)

    def index_of(self, image_id: Any) -> int:
        return next((i for i, im in enumerate(self.images) if im["id"] == image_id), -1)

    def image_size(self, image: dict[str, Any]) -> tuple[int, int] | None:
        w, h = image.get("width"), image.get("height")
        return (int(w), int(h)) if isinstance(w, (int, float)) and isinstance(h, (int, float)) else None

    # ---- boxes
    def boxes(self, image_id: Any) -> list[Box]:
        out = []
        for a in coco_doc.image_annotations(self.doc, image_id):
            bbox = a.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
                continue
            out.append(Box(int(a.get("category_id", 0)), tuple(float(v) for v in bbox), a.get("id"),
                           coco_doc.is_draft(a), a.get("score")))
        return out

    def set_boxes(self, image_id: Any, boxes: list[Box]) -> list[Box]:
        """Replace one image's boxes; returns them with the ids the document gave new ones."""
        coco_doc.set_image_annotations(self.doc, image_id, [
            {"id": b.id, "category_id": b.category_id, "bbox": list(b.bbox), "score": b.score, "draft": b.draft}
            for b in boxes])
        self.dirty = True
        return self.boxes(image_id)

    def drafts(self, image_id: Any) -> int:
        return sum(1 for b in self.boxes(image_id) if b.draft)

    # ---- pre-annotated images joining the set
    def join(self, other: "AnnotationSet", image: dict[str, Any], boxes: list[Box]) -> tuple[Any, int]:
        """Add `other`'s `image` to this set with `boxes` (accepted): the picture is copied into
        `added/` beside this document (the readers refuse files outside a set's folder), classes
        are matched by name. Returns (its image id here, boxes of classes this set lacks, left out)."""
        source = Path(other.image_path(image))
        target = self.path.parent / "added" / Path(str(image.get("file_name"))).name
        n = 1
        while target.exists() and target.read_bytes() != source.read_bytes():
            target = target.with_name(f"{source.stem}-{n}{source.suffix}")
            n += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(source, target)
        size = other.image_size(image) or (0, 0)
        image_id = coco_doc.add_image(self.doc, target.relative_to(self.path.parent).as_posix(), *size)
        by_name = {str(c.get("name")): c["id"] for c in self.categories}
        names = {c["id"]: str(c.get("name")) for c in other.categories}
        kept = [Box(by_name[names[b.category_id]], b.bbox) for b in boxes if names.get(b.category_id) in by_name]
        self.images = [im for im in self.doc["images"] if isinstance(im, dict) and "id" in im]
        self.set_boxes(image_id, kept)
        return image_id, len(boxes) - len(kept)

    # ---- the editor's place, saving
    def position(self) -> Any:
        return coco_doc.position(self.doc)

    def set_position(self, image_id: Any) -> None:
        if coco_doc.position(self.doc) != image_id:
            coco_doc.set_position(self.doc, image_id)
            self.moved = True

    def mark_reviewed(self, image_id: Any) -> None:
        coco_doc.mark_reviewed(self.doc, image_id)
        self.dirty = True

    def reviewed(self) -> list[Any]:
        return list(coco_doc.review_state(self.doc)["reviewed"])

    def save(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path else self.path
        coco_doc.save_annotations(self.doc, target, ("reviewed", "drafts"), inputs=[self.original])
        self.path = target
        self.dirty = self.moved = False
        return target
