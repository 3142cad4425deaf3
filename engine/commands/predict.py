"""`frelon predict`: a trained run applied to an image, a folder or a COCO JSON.

The run's task predicts (tasks/). Classification writes, per image, `{file_name | image_id,
predicted, score, probabilities: {class: p}}` (classify/predict.py); detection writes the COCO results
format (centernet/predict.py). A file that cannot be read is skipped and listed with its reason in
the summary (and on stderr); the others are still predicted. With `as_annotations`, a detection run
also writes the boxes scoring at least `threshold` as draft COCO annotations of the inputs
(engine/coco_writer.py), for a person to accept, edit or reject.

Every output is checked before the run is loaded (engine/outputs.py): each can be written, none is
the input; `--out` holds no annotations; `--draw` and `--heatmaps` hold none of the input
pictures; `--as-annotations` is a new file or drafts Frelon wrote (common/coco_doc.py's
rule: never the input, never a set's own annotations).
"""
from __future__ import annotations

import sys
from pathlib import Path

from frelon.common import coco_doc
from frelon.common.run_folder import SCORE_THRESHOLD
from frelon.common.text import printable

from .. import outputs
from ..coco_writer import drafts_hint
from ..errors import DataError
from ..inference import list_inputs, load_run
from ..rundir import atomic_write_json


def predict(run: str, input_path: str, out: str, draw: str | None = None, heatmaps: str | None = None,
            checkpoint: str = "best", device: str = "auto", as_annotations: str | None = None,
            threshold: float = SCORE_THRESHOLD) -> dict:
    items, root = list_inputs(input_path)
    check_outputs(input_path, items, out, draw, heatmaps, as_annotations)
    loaded = load_run(run, checkpoint, device)
    results, skipped = loaded.task.predict(loaded, items, root, draw=draw, heatmaps=heatmaps,
                                           as_annotations=as_annotations, threshold=threshold)
    atomic_write_json(Path(out), results)
    for s in skipped:
        print(f"frelon: skipped {printable(s['path'])}: {printable(s['reason'])}", file=sys.stderr)
    return {"run": str(loaded.run_dir), "input": str(input_path), "out": str(out), "draw": draw,
            "heatmaps": heatmaps, "as_annotations": as_annotations, "images": len(items) - len(skipped),
            "skipped": len(skipped), "predictions": len(results), "skipped_files": skipped}


def check_outputs(input_path: str, items: list[dict], out: str, draw: str | None, heatmaps: str | None,
                  as_annotations: str | None) -> None:
    """Refuse, before any work, an output that cannot be written or would destroy an input."""
    outputs.result_file(out, "--out", inputs=[input_path, *(item["path"] for item in items)])
    for folder, option in ((draw, "--draw"), (heatmaps, "--heatmaps")):
        if folder:
            outputs.holds_no_input(folder, [item["path"] for item in items], option)
            outputs.writable_folder(folder, option)
    if as_annotations:
        if Path(as_annotations).absolute() == Path(out).absolute():
            raise DataError(f"{as_annotations}: given both as --out and as --as-annotations",
                            hint="give each its own file")
        target = coco_doc.check_target(as_annotations, ("drafts",), inputs=[input_path], instead=drafts_hint(as_annotations))
        outputs.writable_file(target, "--as-annotations")
