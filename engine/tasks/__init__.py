"""The tasks Frelon trains. Each one says what differs by task: data, model, loss, evaluation."""
from __future__ import annotations

from ..errors import ConfigurationError


def get_task(name: str):
    if name == "classify":
        from .classify import ClassifyTask
        return ClassifyTask()
    if name == "detect":
        from .detect import DetectTask
        return DetectTask()
    raise ConfigurationError(f"unknown task {name!r}", hint="use --task classify or --task detect")


def infer_task(data: str) -> str:
    """'detect' when the data looks like COCO / VOC / YOLO, else 'classify'."""
    from ..data.detection import detect_layout
    return "detect" if detect_layout(data) else "classify"
