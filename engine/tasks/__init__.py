"""The tasks Frelon trains, by name: each one says what differs by task (tasks/base.py lists it).

The registry is lazy: a task's module is imported when the task is first asked for.
"""
from __future__ import annotations

from importlib import import_module

from frelon.common.choices import CLASSIFY, DETECT, TASKS

from ..errors import ConfigurationError

# name → (module in this package, class); common/choices.TASKS lists the same names
REGISTRY: dict[str, tuple[str, str]] = {CLASSIFY: (".classify", "ClassifyTask"), DETECT: (".detect", "DetectTask")}
TASK_NAMES: tuple[str, ...] = TASKS


def get_task(name: str):
    """A new task object (a task remembers what its run's data and model were)."""
    if name not in REGISTRY:
        raise ConfigurationError(f"unknown task {name!r}",
                                 hint="use " + " or ".join(f"--task {n}" for n in TASK_NAMES))
    module, cls = REGISTRY[name]
    return getattr(import_module(module, __name__), cls)()


def infer_task(data: str) -> str:
    """Detection when the data looks like COCO / VOC / YOLO, else classification."""
    from ..data.detection import detect_layout
    return DETECT if detect_layout(data) else CLASSIFY
