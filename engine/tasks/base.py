"""What a task provides to the shared training loop (train.py).

A task is a small object with these methods, called in this order:

    scan(cfg, workers)                -> Scanned: classes, data_report fields, task-private data
    build_model(cfg, classes)         -> (nn.Module, preprocessing {mean, std, weights})
    datasets(scanned, cfg, size, pre) -> (train Dataset, val Dataset | None, collate | None)
    loss(model, batch, device)        -> (loss tensor, parts {name: float} | None, batch size)
    evaluate(model, loader, device, ranks, classes) -> Evaluation (reduced over ranks)
    write_results(run_dir, evaluation, classes)     (rank 0, when the epoch is the best so far)
    model_info()                      -> extra fields for model.json

Datasets are indexed by (index, seed) through sampling.Seeded; the loop owns samplers, loaders,
the optimizer, the schedule, AMP, DDP, events and checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
