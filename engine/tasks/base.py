"""What a task is: everything of Frelon that differs by task, asked of the task object (commands
never compare its name). tasks/__init__.py is the registry (`get_task(name)`, `TASK_NAMES`).

A task module imports no torch when it is imported (its methods import what they use), so that
`frelon check` stays torch-free. A task class has:

    name, best_metric                 its name (common/choices.TASKS); the metric picking `best`
    boxes                             whether it predicts boxes (`frelon review`, --as-annotations)

the data (no torch):

    check(data, val_data, val_split, seed, workers) -> report   `frelon check`: the data report
    class_count(cfg)                  -> the configured data's number of classes, quickly (`plan`)
    check_image_size(size)            raises ConfigurationError for a size its model cannot take
    (the automatic --image-size range: train_config.AUTO_IMAGE_SIZE[name], a table without torch)

training, in the order the shared loop (training/) calls them:

    scan(cfg, workers)                -> Scanned: classes, data_report fields, task-private data
    train_labels(scanned)             -> each training picture's class index, or None when a picture
                                         is not one class (--balance: training/balancing.py)
    build_model(cfg, classes)         -> (nn.Module, preprocessing {mean, std, weights})
    datasets(scanned, cfg, size, pre) -> (train Dataset, val Dataset | None, collate | None); a task
                                         that balances by loss weights reads the settled cfg.balance
    probe_dataset(scanned, size, pre, cfg) -> the training images, evaluation transform (classification
                                         only: the features' fit that picks its automatic LR)
    loss(model, batch, device)        -> (loss tensor, parts {name: float} | None, batch size)
    evaluate(model, loader, device, ranks, classes) -> Evaluation (reduced over ranks)
    write_results(run_dir, evaluation, classes, val_samples)  (rank 0, when the epoch is the best so far)
    model_info()                      -> extra fields for model.json

what other commands show of it:

    synthetic_batch(batch, size, num_classes)   a batch shaped like its loader's (`plan`)
    describe(sample, classes)         -> {path, label?} of one of its samples (preview, time-lapse)
    sample(train, index, seed)        -> (tensor, boxes (N, 4) | None, labels): `preview-augment`
    summarize(row, classes, top, min_score, max_boxes) -> one image's time-lapse predictions
                                         from an Evaluation.details row without its index

a finished run (`loaded`: inference.LoadedRun):

    predict(loaded, items, root, draw, heatmaps, as_annotations, threshold) -> (results, skipped)
    evaluate_run(loaded, data)        -> `frelon eval`'s metrics
    export_module(model)              -> (the module ONNX exports, its output names)
    robustness(loaded, data, sweep)   -> the sweep's fields of `frelon robustness` (sweep: attacks.Sweep)
    quantization(loaded)              -> what `export --int8` calibrates on and scores with: an object
                                         with calibration(n, seed) -> [float32 (N, 3, S, S) batches]
                                         of training pictures and score(run) -> {metric, value, images}
                                         on the validation split, run(batch) giving the ONNX outputs
    explain(loaded, items, out, class_index) -> (entries, skipped): `frelon explain`'s maps drawn in
                                         `out` (a classifier: Grad-CAM for each class its
                                         `explained_classes(logits)` names; a detector: its heatmap)

Datasets are indexed by (index, seed) through sampling.Seeded; the loop owns samplers, loaders,
the optimizer, the schedule, AMP, DDP, events and checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from frelon.common.run_folder import data_or_sample

from ..errors import DataError


@dataclass
class Scanned:
    classes: list[str]
    report: dict[str, Any]            # the data_report event's fields
    train: Any                        # task-private: the training samples
    val: Any                          # task-private: the validation samples (may be empty)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    metrics: dict[str, Any]           # the epoch_end event's `val`
    score: float                      # higher is better: chooses the best checkpoint
    details: Any = None               # per-image results for write_results (rank 0 only)
    curves: Any = None                # what is too big for an event (detection: PR curves), for write_results


def run_splits(loaded, scan: Callable, task: str) -> tuple[list, list, str]:
    """(training samples, validation samples, the data in words) of the run's own data split as it
    was trained (`scan`: the task's scanner, e.g. scan_classification); refused when its classes
    changed since the run was trained."""
    cfg = loaded.config
    source = data_or_sample(cfg.data, task)
    scanned = scan(source, val_data=cfg.val_data, val_split=cfg.val_split, seed=cfg.seed)
    if list(scanned.classes) != list(loaded.classes):
        raise DataError(f"{source}: its classes changed since the run was trained "
                        f"({', '.join(scanned.classes)} now, {', '.join(loaded.classes)} then)",
                        hint="pass a labelled set with --data (classes are then matched by name)")
    return list(scanned.train), list(scanned.val), str(source)


def run_validation_split(loaded, scan: Callable, task: str) -> tuple[list, str]:
    """The run's own validation split of its own data (run_splits), and what it is in words;
    refused when it is empty."""
    _, val, source = run_splits(loaded, scan, task)
    if not val:
        raise DataError(f"{source}: the run has no validation images to attack",
                        hint="pass a labelled set with --data")
    return val, f"{source} (the run's validation split)"
