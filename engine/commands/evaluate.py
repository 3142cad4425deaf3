"""`frelon eval`: a trained run's metrics on a labelled set, its classes matched by name.

The labelled set is read like training data (any layout of the run's task). Every image of it is
evaluated (for a train/ + val/ layout, the val/ part) by the run's task (tasks/: classify/predict.py,
centernet/predict.py). Classes the run does not know are an error that names them; classes of the
run missing from the set are simply not reported.
"""
from __future__ import annotations

from ..inference import load_run


def evaluate_run(run: str, data: str, checkpoint: str = "best", device: str = "auto") -> dict:
    loaded = load_run(run, checkpoint, device)
    return loaded.task.evaluate_run(loaded, data)
