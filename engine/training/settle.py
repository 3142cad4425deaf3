"""A run's config, settled once: every value the options leave to Frelon decided from the data and the
machine, before the model, loaders and optimizer are built from it.

In this order, each step seeing the ones before:
- the task: `--task`, or what the data is (tasks.infer_task);
- the image size: `--image-size`, or for 0 from the training pictures (`auto_image_size`);
- slicing: `--slicing`, or for `auto` on when the objects are small against the pictures at that
  size (train_config.slicing_wanted, from the data report's `objects`): predict and eval read it back;
- the batch per rank: `--batch-size`, or for `auto` the largest the memory forecast lets fit at
  that image size, on the run's device, with the scanned classes (training/forecast.py); a set smaller
  than one batch per rank trains in one smaller batch, and the global batch and LR follow it;
- `--balance auto`: class-balanced sampling when the training split's largest class has more
  than 3× the smallest's images, else off (training/balancing.py, common/balance.py);
- the base LR and reference batch: the values `0` stands for now (lr_policy), a classifier's
  automatic LR from how well the start weights' features separate its classes (feature_fit.py,
  measured on rank 0, broadcast).
The result is what config.json records and what a resume reads back: a resumed run is settled
already, so only what its config still leaves open (nothing, or an old run's LR) is decided again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from frelon.common import lr_policy
from frelon.common.train_config import TrainConfig

from .. import distributed as D
from .balancing import settle_balance


@dataclass(frozen=True)
class Settled:
    cfg: TrainConfig
    lr_choice: dict | None = None                       # run_started's: the features' fit, when measured
    said: list[tuple[str, str]] = field(default_factory=list)   # (message, level) for the run's log


def settle(given: TrainConfig, task, scanned, ranks: D.Ranks,
           start_model: Callable[[TrainConfig], tuple[Any, dict]]) -> Settled:
    """The config the run trains with. `task`: the tasks/ object of `given.task`; `scanned`: its
    scan of the data; `start_model(cfg)`: the model at its start weights, with its preprocessing
    (what the features' fit measures; the Trainer builds it once and trains that same model)."""
    said: list[tuple[str, str]] = []
    cfg = given.replace(image_size=given.resolved_image_size(task.name, scanned.report.get("median_size")))
    cfg = cfg.replace(slicing=cfg.resolved_slicing(scanned.report.get("objects"), cfg.image_size))
    if given.slicing == "auto" and cfg.slicing == "on":
        said.append((f"--slicing auto: on (objects are small against the pictures at {cfg.image_size} px)", "info"))
    if cfg.batch_size == "auto":
        from .forecast import auto_batch_size
        cfg = cfg.replace(batch_size=auto_batch_size(cfg, ranks.device, ranks=ranks,
                                                     num_classes=len(scanned.classes)))
        said.append((f"--batch-size auto: {cfg.batch_size} per device fits at {cfg.image_size} px", "info"))
    train_images = len(scanned.train)
    fitting = cfg.batch_per_rank(train_images, ranks.world_size)
    if fitting < int(cfg.batch_size):
        said.append((f"the training set has {train_images} images, fewer than one batch of {cfg.batch_size} "
                     f"per rank: training in batches of {fitting} (the global batch and the LR follow)", "warning"))
        cfg = cfg.replace(batch_size=fitting)
    cfg, balance_said = settle_balance(cfg, task, scanned)
    said += [(balance_said, "info")] if balance_said else []
    cfg = cfg.pinned_lr()
    if not lr_policy.fits_features(cfg.optimizer, cfg.lr, cfg.task):
        return Settled(cfg, None, said)
    measured = None
    if ranks.is_main:
        from .feature_fit import feature_fit
        model, preprocessing = start_model(cfg)
        dataset = task.probe_dataset(scanned, cfg.image_size, preprocessing, cfg)
        measured = feature_fit(model.to(ranks.device), dataset, ranks.device, len(scanned.classes), cfg.seed)
    measured = D.broadcast_object(measured, ranks)
    cfg = cfg.replace(lr=lr_policy.base_lr(cfg.optimizer, 0.0, cfg.task, measured["fit"]))
    choice = {**measured, "base_lr": cfg.lr}
    said.append((lr_policy.fit_in_words(cfg.optimizer, choice["fit"], choice["images"]), "info"))
    return Settled(cfg, choice, said)
