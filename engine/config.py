"""The training configuration: one frozen dataclass, resolved from defaults, a JSON file and flags.

The resolved config is written to the run folder (config.json) and into every checkpoint, so a run
can always be continued or reproduced. Validation names the key and the problem. No torch here.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union

from frelon.common import lr_policy
from frelon.common.choices import CHOICES, CLASSIFY, DETECT
from frelon.common.lr_policy import HEAD_LR_MULT


class ConfigError(ValueError):
    """A bad option: the message names the key and the problem."""


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""                      # "" = the bundled sample
    task: str = ""                      # classify | detect; "" = inferred from the data
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"           # imagenet | none | FILE
    image_size: int = 0                 # 0 = from the data (auto_image_size)
    epochs: int = 10
    batch_size: Union[int, str] = 16    # per device; "auto" = largest that fits (frelon plan)
    lr: float = 0.0                     # base LR at ref_batch; 0 = the optimizer's own (common/lr_policy.py)
    ref_batch: int = 0                  # 0 = the optimizer's own
    head_lr_mult: float = HEAD_LR_MULT  # the new parts (head, CenterNet neck + heads) train at this × the LR
    warmup_epochs: float = 1.0
    schedule: str = "cosine"            # cosine | step | constant
    optimizer: str = "adamw"            # adamw | sgd
    weight_decay: float = 0.05
    freeze_backbone: bool = False
    checkpointing: str = "off"          # off | stages | blocks
    gpus: int = 0
    processes: int = 1
    accumulate: int = 1
    sync_bn: bool = False
    amp: bool = False
    augment: str = "default"            # default | light | randaugment | none
    flip: str = "auto"                  # horizontal flip in augmentation: auto (off for mirror-asymmetric classes) | on | off
    detector: str = "ttf"               # ttf (lateral neck, dense box regression) | centernet (the paper's ResNet variant)
    random_erasing: float = 0.0
    noise: float = 0.0                  # Gaussian noise std in 8-bit pixel levels, before normalisation (0 = off)
    val_data: str = ""
    val_split: float = 0.2
    seed: int = 0
    workers: int = -1                   # -1 = automatic
    out: str = "runs"
    name: str = ""
    checkpoint_every: int = 0           # 0 = each epoch only
    log_every: int = 1
    log_interval: float = 0.1           # seconds between step events at least (0 = every logged step)
    max_steps: int = 0                  # 0 = no limit
    stall_timeout: float = 30.0         # several ranks: seconds without progress before a stall (floor; 0 = off)
    device: str = "auto"                # auto | cpu | cuda

    # ---- derived values (pure functions of the fields) ----
    @property
    def world_size(self) -> int:
        return self.gpus if self.gpus > 1 else max(1, self.processes)

    def resolved_image_size(self, task: str, median_size: list[int] | None = None) -> int:
        """`image_size`, or for 0 the size derived from the data (`auto_image_size`); without the
        data's sizes, the task's largest automatic size (224 classify, 512 detect)."""
        return self.image_size or auto_image_size(task, median_size)

    def global_batch(self, world_size: int | None = None) -> int:
        ws = self.world_size if world_size is None else world_size
        return int(self.batch_size) * ws * self.accumulate

    def effective_lr(self, world_size: int | None = None) -> float:
        """The pretrained body's peak LR for this global batch: common/lr_policy.py's rule for the
        optimizer (square root for AdamW, linear for SGD) and its base for the task."""
        return lr_policy.effective_lr(self.optimizer, self.global_batch(world_size), self.lr, self.ref_batch, self.task)

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
# Each task's row, by its name (the one table: no torch here; engine/tasks/ reads it as `auto_size`).
AUTO_IMAGE_SIZE: dict[str, tuple[int, int, Any]] = {CLASSIFY: (64, 224, min), DETECT: (128, 512, max)}


def auto_image_size(task: str, median_size: list[int] | None = None) -> int:
    """The automatic image size of `task` (unknown or empty: classification's rule)."""
    low, high, side = AUTO_IMAGE_SIZE.get(task, AUTO_IMAGE_SIZE[CLASSIFY])
    if not median_size:
        return high
    return min(high, max(low, -(-int(side(median_size)) // 32) * 32))


_POSITIVE = ("epochs", "accumulate", "log_every")
_NON_NEGATIVE = ("gpus", "checkpoint_every", "max_steps", "image_size", "ref_batch")


def _coerce(name: str, typ: Any, value: Any) -> Any:
    """Check one value's type (JSON gives ints for floats, strings for paths)."""
    if name == "batch_size":
        if value == "auto":
            return value
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"batch_size: expected a whole number or 'auto', got {value!r}")
        return value
    expected = {"int": int, "float": float, "bool": bool, "str": str}[typ if isinstance(typ, str) else typ.__name__]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"{name}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def validate(cfg: TrainConfig) -> TrainConfig:
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key}: {getattr(cfg, key)!r} is not one of {', '.join(a for a in allowed if a)}")
    for key in _POSITIVE:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}: must be at least 1, got {getattr(cfg, key)}")
    for key in _NON_NEGATIVE:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key}: must not be negative, got {getattr(cfg, key)}")
    if cfg.batch_size != "auto" and int(cfg.batch_size) < 1:
        raise ConfigError(f"batch_size: must be at least 1, got {cfg.batch_size}")
    if cfg.processes < 1:
        raise ConfigError(f"processes: must be at least 1, got {cfg.processes}")
    if cfg.gpus > 1 and cfg.processes > 1:
        raise ConfigError("gpus and processes: choose one (--gpus N for GPU ranks, --processes N for CPU ranks)")
    if not 0.0 <= cfg.val_split < 1.0:
        raise ConfigError(f"val_split: must be in [0, 1), got {cfg.val_split}")
    if not 0.0 <= cfg.random_erasing <= 1.0:
        raise ConfigError(f"random_erasing: a probability in [0, 1], got {cfg.random_erasing}")
    if not 0.0 <= cfg.noise <= 255.0:
        raise ConfigError(f"noise: a standard deviation in 8-bit pixel levels, 0 to 255, got {cfg.noise}")
    if cfg.lr < 0:
        raise ConfigError(f"lr: must be positive (or 0 for the optimizer's own), got {cfg.lr}")
    if cfg.head_lr_mult <= 0:
        raise ConfigError(f"head_lr_mult: must be positive, got {cfg.head_lr_mult}")
    if cfg.log_interval < 0:
        raise ConfigError(f"log_interval: must not be negative, got {cfg.log_interval}")
    if cfg.stall_timeout < 0:
        raise ConfigError(f"stall_timeout: must not be negative (0 turns the watchdog off), got {cfg.stall_timeout}")
    if cfg.warmup_epochs < 0:
        raise ConfigError(f"warmup_epochs: must not be negative, got {cfg.warmup_epochs}")
    return cfg


def from_dict(values: dict[str, Any], base: TrainConfig | None = None, source: str = "options") -> TrainConfig:
    """A config from `base` (default: the defaults) with `values` applied; unknown keys are errors."""
    known = {f.name: f for f in fields(TrainConfig)}
    changes = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            close = [k for k in known if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {raw_key!r}{hint}")
        changes[key] = _coerce(key, known[key].type, value)
    return validate(dataclasses.replace(base or TrainConfig(), **changes))


# What a run folder's config.json meant when a key did not exist yet: read old runs as they trained.
LEGACY = {"detector": "centernet", "head_lr_mult": 1.0, "flip": "on"}
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
