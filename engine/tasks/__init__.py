"""The tasks Frelon trains, by name: each one says what differs by task (tasks/base.py lists it).

The registry is lazy: a task's module is imported when the task is first asked for.
"""
from __future__ import annotations

from importlib import import_module

from frelon.common.choices import CLASSIFY, DETECT, MULTILABEL, TASKS

from ..errors import ConfigurationError

# name → (module in this package, class); common/choices.TASKS lists the same names
REGISTRY: dict[str, tuple[str, str]] = {CLASSIFY: (".classify", "ClassifyTask"), DETECT: (".detect", "DetectTask"),
                                        MULTILABEL: (".multilabel", "MultiLabelTask")}
TASK_NAMES: tuple[str, ...] = TASKS


def get_task(name: str):
    """A new task object (a task remembers what its run's data and model were)."""
    if name not in REGISTRY:
        raise ConfigurationError(f"unknown task {name!r}",
                                 hint="use " + " or ".join(f"--task {n}" for n in TASK_NAMES))
    module, cls = REGISTRY[name]
    return getattr(import_module(module, __name__), cls)()


def infer_task(data: str) -> str:
    """Detection when the data looks like COCO / VOC / YOLO; multi-label for a `file,labels` CSV (or a
    folder holding labels.csv); else classification. Class folders that share pictures stay
    classification (knowing needs every file's SHA-1, and a copy in two folders is as often a
    mistake): the data doctor says so and names --task multilabel."""
    from ..data.detection import detect_layout
    from ..data.multilabel import csv_file
    if detect_layout(data):
        return DETECT
    return MULTILABEL if data and csv_file(data) else CLASSIFY
