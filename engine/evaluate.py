"""`frelon eval`: a trained run's metrics on a labelled set, its classes matched by name.

The labelled set is read like training data (any layout of the run's task). Every image of it is
evaluated (for a train/ + val/ layout, the val/ part). Classes the run does not know are an error
that names them; classes of the run missing from the set are simply not reported.
"""
from __future__ import annotations


from torch.utils.data import DataLoader

from .distributed import Ranks
from .errors import DataError
from .inference import load_run
from .sampling import Seeded, ShardSampler


def evaluate_run(run: str, data: str, checkpoint: str = "best", device: str = "auto") -> dict:
    loaded = load_run(run, checkpoint, device)
    if loaded.task_name == "detect":
        from .centernet.predict import evaluate_detection
        return evaluate_detection(loaded, data)
    return _evaluate_classification(loaded, data)


def labelled_samples(loaded, data: str) -> tuple[list[tuple[str, int]], list[dict]]:
    """(path, label in the run's classes) of a labelled classification set — its val/ part when it
    has one — and the files skipped; classes the run does not know are a DataError."""
    from .data.classify import scan_classification
    scanned = scan_classification(data, val_split=0.0)
    unknown = [c for c in scanned.classes if c not in loaded.classes]
    if unknown:
        raise DataError(f"{data}: classes the model was not trained on: {', '.join(unknown)}",
                        hint=f"the run knows: {', '.join(loaded.classes)}")
    samples = scanned.val if scanned.val else scanned.train
    remap = [loaded.classes.index(c) for c in scanned.classes]
    return [(path, remap[label]) for path, label in samples], scanned.report["skipped"]


def _evaluate_classification(loaded, data: str) -> dict:
    from .data.classify import ImageDataset
    from .transforms import eval_transform
    samples, skipped = labelled_samples(loaded, data)
    ds = ImageDataset(samples, eval_transform(loaded.size, loaded.mean, loaded.std))
    loader = DataLoader(Seeded(ds), batch_size=32, sampler=ShardSampler(len(ds), 1, 0))
    ranks = Ranks(0, 1, 0, loaded.device)
    evaluation = loaded.task.evaluate(loaded.model, loader, loaded.device, ranks, loaded.classes)
    out = dict(evaluation.metrics)
    out["skipped"] = skipped
    out["data"] = str(data)
    out["run"] = str(loaded.run_dir)
    return out
