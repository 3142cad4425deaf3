"""`frelon predict`: a trained run applied to an image, a folder or a COCO JSON.

The run's task predicts (tasks/). Classification writes, per image, `{file_name | image_id,
predicted, score, probabilities: {class: p}}` (classifier.py); detection writes the COCO results format (centernet/predict.py). A file that cannot be read is
skipped and listed with its reason in the summary (and on stderr); the others are still predicted.
With `as_annotations`, a detection run also writes the boxes scoring at least `threshold` as draft
COCO annotations of the inputs (engine/coco_writer.py), for a person to accept, edit or reject.
"""
from __future__ import annotations

import sys
from pathlib import Path

from frelon.common.run_folder import SCORE_THRESHOLD

from .inference import list_inputs, load_run
from .rundir import atomic_write_json


def predict(run: str, input_path: str, out: str, draw: str | None = None, heatmaps: str | None = None,
            checkpoint: str = "best", device: str = "auto", as_annotations: str | None = None,
            threshold: float = SCORE_THRESHOLD) -> dict:
    loaded = load_run(run, checkpoint, device)
    items, root = list_inputs(input_path)
    results, skipped = loaded.task.predict(loaded, items, root, draw=draw, heatmaps=heatmaps,
                                           as_annotations=as_annotations, threshold=threshold)
    atomic_write_json(Path(out), results)
    for s in skipped:
        print(f"frelon: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    return {"run": str(loaded.run_dir), "input": str(input_path), "out": str(out), "draw": draw,
            "heatmaps": heatmaps, "as_annotations": as_annotations, "images": len(items) - len(skipped),
            "skipped": len(skipped), "predictions": len(results), "skipped_files": skipped}
