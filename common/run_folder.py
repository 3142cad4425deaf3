"""The run folder, a contract (docs/DESIGN.md, *Run folder*), and what the engine, the command line and
the app agree on about a run's outputs: where each file is, the bundled sample that stands for no
data, the score from which a detection counts, each class's colour. Stdlib only.

    RUNS_DIR/<YYYYmmdd-HHMMSS>-<name>/
        config.json  events.jsonl  model.json          the run as settled, what happened, how to load it
        checkpoints/last.safetensors  best.safetensors  the whole training state; the best epoch's weights
        predictions/val.json  timelapse.json  pr_curves.json  robustness/<attack>.json  explain/
        thresholds.json                                 multi-label: each label's score threshold (best epoch)
        export/model.onnx  data_fixes.json  ranks/      (ranks/: the multi-rank files, engine/heartbeat.py)
    RUNS_DIR/.cache/                                    what scans and decodes leave for the next time
        probes.sqlite  resized/                         (CacheFolder; FRELON_CACHE puts it elsewhere)
"""
from __future__ import annotations

import os
from pathlib import Path

from frelon.common.samples import default_sample_data

CHECKPOINTS = ("best", "last")          # `--checkpoint`: the best epoch's weights, or the last saved state

# a detection at least this sure is drawn (`predict --draw`, the app's score slider starts here),
# drafted (`predict --as-annotations --threshold`) and taken as the model's word (`review --confidence`)
SCORE_THRESHOLD = 0.3

# one colour per class, by its index, in the app and in the pictures `predict --draw` writes: a
# colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau 10)
CLASS_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
                 "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2", "#EDC948", "#B07AA1", "#FF9DA7")


def class_colour(index: int) -> str:
    """Class `index`'s colour, '#rrggbb'."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def class_rgb(index: int) -> tuple[int, int, int]:
    c = class_colour(index)
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def data_or_sample(data: str, task: str = "classify") -> str:
    """`--data` as given, or where none is the bundled sample of `task` (what `frelon train` with no
    options trains on)."""
    return data or default_sample_data(task)


def run_name(name: str, backbone: str, data: str, task: str = "classify") -> str:
    """A new run's name (its folder is `<YYYYmmdd-HHMMSS>-<name>`): `--name`, else the backbone and
    the data's folder or file name."""
    return name or f"{backbone}-{os.path.basename(data_or_sample(data, task).rstrip('/')) or 'data'}"


CACHE_ENV = "FRELON_CACHE"             # a cache folder of its own, wherever the runs are


class CacheFolder:
    """The cache beside the runs, `<runs>/.cache` (or $FRELON_CACHE), shared by every run and every
    `frelon check` of that runs folder: `probes` (each file's probe result, by path, size, mtime:
    engine/data/probe_cache.py) and `resized` (copies of the pictures at the resolution a training
    needs: engine/data/resized_cache.py). Deleting it loses only time (`frelon cache --clear`)."""

    def __init__(self, runs: str | os.PathLike = "runs"):
        self.path = Path(os.environ.get(CACHE_ENV) or Path(runs) / ".cache")

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"CacheFolder({str(self.path)!r})"

    probes = property(lambda self: self.path / "probes.sqlite")
    resized = property(lambda self: self.path / "resized")


class RunFolder:
    """The paths of one run folder's files (nothing is read or created here)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    config = property(lambda self: self.path / "config.json")
    events = property(lambda self: self.path / "events.jsonl")
    model = property(lambda self: self.path / "model.json")
    checkpoints = property(lambda self: self.path / "checkpoints")
    predictions = property(lambda self: self.path / "predictions")
    export = property(lambda self: self.path / "export")
    timelapse = property(lambda self: self.path / "timelapse.json")
    pr_curves = property(lambda self: self.path / "pr_curves.json")
    thresholds = property(lambda self: self.path / "thresholds.json")     # multi-label: each label's, tuned
    data_fixes = property(lambda self: self.path / "data_fixes.json")
    robustness = property(lambda self: self.path / "robustness")
    explain = property(lambda self: self.path / "explain")        # `frelon explain`'s maps by default
    ranks = property(lambda self: self.path / "ranks")

    def checkpoint(self, which: str = "last") -> Path:
        """checkpoints/last.safetensors or best.safetensors."""
        return self.checkpoints / f"{which}.safetensors"

    @property
    def validation_predictions(self) -> Path:
        """The best epoch's predictions on the validation split (the app's Results)."""
        return self.predictions / "val.json"

    def robustness_result(self, attack: str) -> Path:
        return self.robustness / f"{attack}.json"

    def is_run(self) -> bool:
        """Whether the folder looks like a run (its events or config are there)."""
        return self.events.exists() or self.config.exists()
