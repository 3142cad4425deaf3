"""`frelon explain`: where a trained model looks in each picture, drawn over it.

The run's task draws (tasks/: `explain`): a classifier's Grad-CAM map for each explained class —
the predicted one (a multi-label task: each predicted label), or `--class NAME` — and a detector's
CenterNet heatmap. Inputs as `frelon predict` takes them (pictures, folders, a COCO JSON; several
`--input`). Written into `out` (default RUN/explain/): each map as PNG, and `explain.json`:
{run, task, classes, images: [{file_name, path, maps: [{class, score, png, peak [x, y] in the
picture's pixels, …}]}], skipped}. The previous explain.json's pictures in `out` are removed first
(only those: the folder may hold other files). `out` is checked before the run is loaded
(engine/outputs.py): writable, holding none of the input pictures, inside no input folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

from frelon.common.run_folder import RunFolder
from frelon.common.text import printable

from .. import outputs
from ..errors import ConfigurationError, DataError
from ..inference import list_inputs, load_run
from ..rundir import atomic_write_json, read_json

RESULT = "explain.json"


def explain(run: str, inputs: list[str], out: str | None = None, class_name: str | None = None,
            checkpoint: str = "best", device: str = "auto") -> dict:
    items = []
    for path in inputs:
        items += list_inputs(path)[0]
    folder = Path(out) if out else RunFolder(run).explain
    outputs.holds_no_input(folder, [item["path"] for item in items], "--out")
    for path in inputs:                  # maps inside a folder of pictures would join its pictures
        if Path(path).is_dir():
            outputs.outside(folder, path, "--out")
    outputs.writable_folder(folder, "--out")
    loaded = load_run(run, checkpoint, device)
    if not hasattr(loaded.task, "explain"):
        raise ConfigurationError(f"explain: not offered for a {loaded.task_name} run yet")
    class_index = None
    if class_name is not None:
        if class_name not in loaded.classes:
            raise ConfigurationError(f"--class {class_name}: not one of the run's classes",
                                     hint=f"the run knows: {', '.join(loaded.classes)}")
        class_index = loaded.classes.index(class_name)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_previous(folder)
    entries, skipped = loaded.task.explain(loaded, items, folder, class_index)
    for s in skipped:
        print(f"frelon: skipped {printable(s['path'])}: {printable(s['reason'])}", file=sys.stderr)
    result = {"run": str(loaded.run_dir), "task": loaded.task_name, "classes": list(loaded.classes),
              "out": str(folder), "images": entries, "skipped": skipped}
    atomic_write_json(folder / RESULT, result)
    return result


def _remove_previous(folder: Path) -> None:
    """The PNGs the last explain.json in `folder` lists (a name only, never a path elsewhere)."""
    try:
        previous = read_json(folder / RESULT)
    except (OSError, DataError):
        return
    for entry in (previous or {}).get("images", []) if isinstance(previous, dict) else []:
        for m in entry.get("maps", []) if isinstance(entry, dict) else []:
            name = str(m.get("png", "")) if isinstance(m, dict) else ""
            if name and Path(name).name == name and name.endswith(".png"):
                (folder / name).unlink(missing_ok=True)
