"""The training configuration: every training option, declared once (common/option.py), and the
values derived from it.

Each field is an option: `frelon train --help` (frelon/cli.py), the engine (validation, the run's
config.json, every checkpoint) and the app (its flags, its form; gui/options.py) are all made from
these declarations. Adding an option is adding one field here. The config is resolved from the
defaults, a `--config FILE` and the flags; the engine settles what depends on the data and the
machine once (engine/training/settle.py). Stdlib only.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union

from frelon.common import lr_policy
from frelon.common.balance import AUTO_MODE, IMBALANCE_RATIO, MODE_WORDS
from frelon.common.choices import CHOICES, CLASSIFY, DETECT
from frelon.common.lr_policy import HEAD_LR_MULT
from frelon.common.option import ConfigError, check, coerce, flag_name, option, spec_of

__all__ = ["ConfigError", "TrainConfig", "from_dict", "from_saved", "resolve", "load_file", "auto_image_size", "slicing_wanted"]

_LR_HELP = (f"base LR at --ref-batch (default: the optimizer's own for the task: {lr_policy.defaults_in_words()}); "
            "scaled with the global batch: square root for AdamW, linear for SGD")
_BALANCE_HELP = (f"uneven classes (classification): auto balances when the largest training class has more than "
                 f"{IMBALANCE_RATIO:g}× the smallest's images, by {MODE_WORDS[AUTO_MODE]}; sampler, weights "
                 f"(loss weights) or off force one")
_PATIENCE_HELP = ("early stopping: end the run (completed, best kept) after N epochs without a better validation "
                  "score than the best so far (default off, also for long runs: the cosine schedule's last epochs, "
                  "at a small LR, often improve after a plateau)")
_STALL_HELP = ("several ranks: a run where no rank moves for max(this, 10 × the median step time) seconds "
               "is stopped with each rank's stack and a checkpoint (default 30; 0 = off)")


# --slicing auto: on when the median object, in its picture letterboxed to the training size, is
# smaller than SMALL_OBJECT_PX (4 cells of CenterNet's stride-4 heatmap: its peak and box are then
# a guess), when it is small against its picture (under SMALL_OBJECT_FRACTION of the long side: a
# 40-px hornet in a 4032-px photo is 1 %; a small --image-size alone does not make a 16-px shape in
# a 64-px picture small), and when the pictures are at least SLICE_GAIN times the training size
# (else a tile is the picture).
SMALL_OBJECT_PX = 16
SMALL_OBJECT_FRACTION = 0.05
SLICE_GAIN = 1.5


@dataclass(frozen=True)
class TrainConfig:
    # the order is `frelon train --help`'s
    data: str = option("", "image folder, COCO JSON, VOC or YOLO folder (default: the bundled sample)", app=False)
    task: str = option("", "inferred from the data when not given", choices=CHOICES["task"])
    backbone: str = option("efficientnet_lite0",
                           "a name from `frelon info` (default: efficientnet_lite0, available offline)")
    weights: str = option("imagenet", "imagenet | none | FILE (.safetensors, or .pt/.pth holding tensors only)")
    image_size: int = option(0, low=0, high=4096, special="0 = from the data")
    epochs: int = option(10, low=1, high=100_000, resume=True)
    batch_size: Union[int, str] = option(16, "per device; 'auto' picks the largest that fits (see `frelon plan`)",
                                         low=1, high=65_536, word="auto")
    lr: float = option(0.0, _LR_HELP, low=0, high=10, special="0 = the optimizer's own")
    ref_batch: int = option(0, f"the batch the base LR is for (default: AdamW {lr_policy.RULES['adamw'].ref_batch}, "
                               f"SGD {lr_policy.RULES['sgd'].ref_batch})",
                            low=0, high=1_000_000, special="0 = the optimizer's own")
    head_lr_mult: float = option(HEAD_LR_MULT, "the new parts (classifier head, detector neck and heads) train at "
                                               "this × the LR (default 10)", low=0, above=True, high=10_000)
    warmup_epochs: float = option(1.0, low=0, high=10_000)
    schedule: str = option("cosine", choices=CHOICES["schedule"])
    optimizer: str = option("adamw", choices=CHOICES["optimizer"])
    weight_decay: float = option(0.05, low=0, high=10)
    freeze_backbone: bool = option(False)
    checkpointing: str = option("off", "gradient checkpointing: less activation memory for about a third more compute",
                                choices=CHOICES["checkpointing"])
    gpus: int = option(0, low=0, high=1024, resume=True)
    processes: int = option(1, "CPU ranks (gloo): the multi-GPU code path on CPU", low=1, high=1024, resume=True,
                            app=False)
    accumulate: int = option(1, "gradient accumulation steps", low=1, high=65_536)
    sync_bn: bool = option(False)
    amp: bool = option(False)
    compile: bool = option(False, "compile the model with torch.compile: the first steps take minutes longer, "
                                  "later steps run faster (long GPU runs)")
    augment: str = option("default", choices=CHOICES["augment"])
    random_erasing: float = option(0.0, "probability of random erasing (0 = off)", low=0, high=1,
                                   what="a probability")
    noise: float = option(0.0, "Gaussian noise added in augmentation: its std in 8-bit pixel levels, before "
                               "normalisation (0 = off)", low=0, high=255,
                          what="a standard deviation in 8-bit pixel levels")
    flip: str = option("auto", "horizontal flip in augmentation; auto = off when class names are digits, letters, "
                               "text or signs", choices=CHOICES["flip"])
    detector: str = option("ttf", "detection recipe: ttf (lateral neck, boxes regressed around each centre; "
                                  "default) or centernet (the paper's ResNet variant)", choices=CHOICES["detector"])
    slicing: str = option("auto", "detection on tiles at native resolution (training crops around and between "
                                  "objects; prediction on overlapping tiles plus the whole picture); auto = on when "
                                  f"the median object is under {SMALL_OBJECT_PX} px once its picture is letterboxed "
                                  f"and under {SMALL_OBJECT_FRACTION:g} × its picture's long side",
                          choices=CHOICES["slicing"])
    balance: str = option("auto", _BALANCE_HELP, choices=CHOICES["balance"])
    patience: int = option(0, _PATIENCE_HELP, low=0, high=100_000, special="0 = off", resume=True)
    val_data: str = option("")
    val_split: float = option(0.2, low=0, high=1, below=True)
    seed: int = option(0, low=0, high=2**63 - 1)
    workers: int = option(-1, "data-loading worker processes", low=-1, high=1024, special="-1 = automatic",
                          resume=True)
    cache: str = option("disk", "disk = remember each file's check and keep a copy of each picture at the "
                                "resolution training needs, in the runs folder's .cache/ (later epochs and runs "
                                "read the copies); off = decode the files every time", choices=CHOICES["cache"],
                        resume=True)
    out: str = option("runs", "runs folder", resume=True, app=False)
    name: str = option("", app=False)
    checkpoint_every: int = option(0, "also save last.* every N steps", low=0, high=10**12, special="0 = each epoch only",
                                   resume=True)
    log_every: int = option(1, "emit a step event at most every N steps (and 100 ms)", low=1, high=10**12,
                            resume=True, app=False)
    log_interval: float = option(0.1, "seconds between step events at least (default 0.1)", low=0, high=3600,
                                 resume=True, app=False)
    max_steps: int = option(0, "stop after N steps (smoke tests, benchmarks)", low=0, high=10**12,
                            special="0 = no limit", resume=True)
    stall_timeout: float = option(30.0, _STALL_HELP, low=0, high=86_400, special="0 = off", resume=True)
    device: str = option("auto", choices=CHOICES["device"], resume=True, app=False)

    # ---- derived values (pure functions of the fields; the engine and the app call the same) ----
    @property
    def world_size(self) -> int:
        return self.gpus if self.gpus > 1 else max(1, self.processes)

    def resolved_image_size(self, task: str, median_size: list[int] | None = None) -> int:
        """`image_size`, or for 0 the size derived from the data (`auto_image_size`); without the
        data's sizes, the task's largest automatic size (224 classify, 512 detect)."""
        return self.image_size or auto_image_size(task, median_size)

    def resolved_slicing(self, objects: dict[str, Any] | None, size: int) -> str:
        """`slicing`, or for "auto" "on" / "off" by `slicing_wanted` (the data report's `objects`)."""
        if self.slicing != "auto":
            return self.slicing
        return "on" if slicing_wanted(objects, size) else "off"

    def batch_per_rank(self, train_images: int, world_size: int | None = None) -> int:
        """The images per micro-batch and rank: `batch_size`, or all a rank has when it has fewer
        (a set smaller than one batch per rank trains in one smaller batch). 0 images: `batch_size`."""
        per_rank = math.ceil(train_images / (world_size or self.world_size))
        return max(1, min(int(self.batch_size), per_rank)) if train_images > 0 else int(self.batch_size)

    def steps_per_epoch(self, train_images: int, world_size: int | None = None) -> int:
        """Optimizer steps in an epoch: each rank gets ceil(n / ranks) images in full micro-batches
        (the last partial one dropped), `accumulate` micro-batches a step; at least 1."""
        if train_images <= 0:
            return 1
        per_rank = math.ceil(train_images / (world_size or self.world_size))
        return max(1, (per_rank // self.batch_per_rank(train_images, world_size)) // self.accumulate)

    def global_batch(self, world_size: int | None = None) -> int:
        ws = self.world_size if world_size is None else world_size
        return int(self.batch_size) * ws * self.accumulate

    def effective_lr(self, world_size: int | None = None) -> float:
        """The pretrained body's peak LR for this global batch: common/lr_policy.py's rule for the
        optimizer (square root for AdamW, linear for SGD) and its base for the task."""
        return lr_policy.effective_lr(self.optimizer, self.global_batch(world_size), self.lr, self.ref_batch, self.task)

    def lr_formula(self, world_size: int | None = None) -> str:
        """The effective LR's computation in words (lr_policy.formula)."""
        return lr_policy.formula(self.optimizer, self.global_batch(world_size), self.lr, self.ref_batch, self.task)

    def pinned_lr(self) -> "TrainConfig":
        """This config with `lr` and `ref_batch` of 0 ("the optimizer's own") replaced by the values
        they stand for now, for the run's config.json: a resumed run keeps its LR when a default
        changes. Call once the task is known. A classifier's automatic LR stays 0 here: it waits
        for the features' fit (lr_policy.fits_features), which the Trainer measures and pins."""
        lr = self.lr if lr_policy.fits_features(self.optimizer, self.lr, self.task) else \
            lr_policy.base_lr(self.optimizer, self.lr, self.task)
        return self.replace(lr=lr, ref_batch=lr_policy.reference_batch(self.optimizer, self.ref_batch))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return validate(dataclasses.replace(self, **changes))


# --image-size 0: the training images' typical size, rounded up to a multiple of 32, within these
# bounds. Up-sampling small pictures to 224 px costs (224/side)² the compute and adds no detail;
# large photos are brought down to the usual fine-tuning resolution. Classification looks at the
# short side (what the centre crop keeps), detection at the long side (what the letterbox keeps).
# Each task's row, by its name (the one table; engine/tasks/ reads it as `auto_size`).
AUTO_IMAGE_SIZE: dict[str, tuple[int, int, Any]] = {CLASSIFY: (64, 224, min), DETECT: (128, 512, max)}


def auto_image_size(task: str, median_size: list[int] | None = None) -> int:
    """The automatic image size of `task` (unknown or empty: classification's rule)."""
    low, high, side = AUTO_IMAGE_SIZE.get(task, AUTO_IMAGE_SIZE[CLASSIFY])
    if not median_size:
        return high
    return min(high, max(low, -(-int(side(median_size)) // 32) * 32))


def slicing_wanted(objects: dict[str, Any] | None, size: int) -> bool:
    """Whether `--slicing auto` slices, from the data report's `objects` ({median_side: px,
    median_fraction: the median object's side / its picture's long side, median_long_side: px})."""
    if not objects or not objects.get("median_fraction"):
        return False
    return (objects["median_fraction"] * size < SMALL_OBJECT_PX
            and objects["median_fraction"] < SMALL_OBJECT_FRACTION
            and objects["median_long_side"] >= SLICE_GAIN * size)


FIELDS = {f.name: f for f in fields(TrainConfig)}
RESUMABLE = frozenset(name for name, f in FIELDS.items() if spec_of(f).resume)   # may change on --resume


def validate(cfg: TrainConfig) -> TrainConfig:
    """Every field's declared choices and range (common/option.py), then what fields say together."""
    for f in fields(cfg):
        check(f, getattr(cfg, f.name))
    if cfg.gpus > 1 and cfg.processes > 1:
        raise ConfigError("gpus and processes: choose one (--gpus N for GPU ranks, --processes N for CPU ranks)")
    return cfg


def from_dict(values: dict[str, Any], base: TrainConfig | None = None, source: str = "options") -> TrainConfig:
    """A config from `base` (default: the defaults) with `values` applied; unknown keys are errors."""
    changes = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key not in FIELDS:
            close = [k for k in FIELDS if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {raw_key!r}{hint}")
        changes[key] = coerce(FIELDS[key], value)
    return validate(dataclasses.replace(base or TrainConfig(), **changes))


def to_flags(values: dict[str, Any]) -> list[str]:
    """`frelon train` flags for option values by name: `--name VALUE`, a true switch as `--name`,
    a switch at its default left out, one that turns a default on off as `--no-name` (the inverse
    of the CLI's parsing)."""
    out: list[str] = []
    for key, value in values.items():
        flag = flag_name(key)
        if isinstance(value, bool):
            if value != getattr(TrainConfig, key, False):
                out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, repr(value) if isinstance(value, float) else str(value)]
    return out


# What a run folder's config.json meant when a key did not exist yet: read old runs as they trained.
LEGACY = {"detector": "centernet", "head_lr_mult": 1.0, "flip": "on", "slicing": "off", "balance": "off"}
# An `lr` of 0 in a config.json written before runs recorded the LR in force (2026-11-30) meant
# the optimizer's own base of that time, for every task.
LEGACY_AUTO_LR = {"adamw": 1e-3, "sgd": 0.1}


def from_saved(values: dict[str, Any], source: str) -> TrainConfig:
    """A run folder's config.json as a config; keys added since it was written take their old meaning."""
    values = {**LEGACY, **values}
    optimizer = values.get("optimizer", TrainConfig.optimizer)
    if not values.get("lr") and optimizer in LEGACY_AUTO_LR:
        values["lr"] = LEGACY_AUTO_LR[optimizer]
    return from_dict(values, source=source)


def load_file(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        values = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the config file ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{p}: expected a JSON object of options, got {type(values).__name__}")
    return values


def resolve(cli_values: dict[str, Any]) -> TrainConfig:
    """Defaults < --config FILE < command-line flags."""
    cli_values = dict(cli_values)
    config_file = cli_values.pop("config", None)
    cfg = TrainConfig()
    if config_file:
        cfg = from_dict(load_file(config_file), cfg, source=str(config_file))
    return from_dict(cli_values, cfg, source="command line")
