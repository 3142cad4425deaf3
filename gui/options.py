"""What the user chose in the app, as plain data, and the `frelon train` flags it becomes.

No Qt here: the Model & training panel builds a :class:`TrainOptions`, the run controller turns it
into a command line with :meth:`TrainOptions.to_flags`. Defaults mirror engine/config.py's
TrainConfig (a test keeps them equal) without importing the engine; the LR rule is the engine's
own (common/lr_policy.py).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from frelon.common import lr_policy
from frelon.common.choices import CHOICES
from frelon.common.lr_policy import HEAD_LR_MULT

TASK_CHOICES = CHOICES["task"]                 # "" first: inferred from the data
SCHEDULES = CHOICES["schedule"]
OPTIMIZERS = CHOICES["optimizer"]
CHECKPOINTING = CHOICES["checkpointing"]
AUGMENTS = CHOICES["augment"]
FLIPS = CHOICES["flip"]
DETECTORS = CHOICES["detector"]
DEFAULT_BACKBONE = "efficientnet_lite0"




@dataclass(frozen=True)
class TrainOptions:
    data: str = ""                   # "" = let the engine use its bundled sample
    task: str = ""                   # "" = inferred from the data by the engine
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"        # imagenet | none | FILE
    image_size: int = 0              # 0 = from the data
    epochs: int = 10
    batch_size: int = 16             # per device
    lr: float = 0.0                  # base LR at ref_batch; 0 = the optimizer's own
    ref_batch: int = 0               # 0 = the optimizer's own
    head_lr_mult: float = HEAD_LR_MULT
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    optimizer: str = "adamw"
    freeze_backbone: bool = False
    augment: str = "default"
    noise: float = 0.0               # Gaussian noise std in 8-bit levels (--noise); 0 = off
    flip: str = "auto"
    detector: str = "ttf"
    checkpointing: str = "off"
    gpus: int = 0
    accumulate: int = 1
    amp: bool = False
    out: str = ""                    # runs folder; "" = the engine's default
    name: str = ""
    extra: tuple[str, ...] = field(default_factory=tuple)   # flags passed as they are

    # ---- derived values: the same rules as the engine (docs/DESIGN.md) ----
    @property
    def world_size(self) -> int:
        return self.gpus if self.gpus > 1 else 1

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size * self.accumulate

    @property
    def effective_lr(self) -> float:
        """The engine's rule (common/lr_policy.py): square root for AdamW, linear for SGD, from the
        task's base ("" = not known yet: classification's, as the engine reads it)."""
        return lr_policy.effective_lr(self.optimizer, self.global_batch, self.lr, self.ref_batch, self.task)

    @property
    def lr_formula(self) -> str:
        return lr_policy.formula(self.optimizer, self.global_batch, self.lr, self.ref_batch, self.task)

    def steps_per_epoch(self, train_images: int) -> int:
        """As the engine counts them: each rank gets ceil(n / ranks) images in full batches
        (a set smaller than one batch trains in one smaller batch), `accumulate` batches a step."""
        if train_images <= 0:
            return 1
        per_rank = math.ceil(train_images / self.world_size)
        batch = max(1, min(self.batch_size, per_rank))
        return max(1, (per_rank // batch) // self.accumulate)

    def replace(self, **changes: Any) -> "TrainOptions":
        return dataclasses.replace(self, **changes)

    def to_flags(self) -> list[str]:
        """The `frelon train` options for these choices (events/control flags are added by the caller)."""
        flags: list[str] = []
        if self.data:
            flags += ["--data", self.data]
        if self.task:
            flags += ["--task", self.task]
        flags += ["--backbone", self.backbone, "--weights", self.weights]
        if self.image_size:
            flags += ["--image-size", str(self.image_size)]
        flags += ["--epochs", str(self.epochs), "--batch-size", str(self.batch_size),
                  "--lr", repr(float(self.lr)), "--ref-batch", str(self.ref_batch),
                  "--head-lr-mult", repr(float(self.head_lr_mult)),
                  "--warmup-epochs", repr(float(self.warmup_epochs)),
                  "--schedule", self.schedule, "--optimizer", self.optimizer,
                  "--augment", self.augment, "--flip", self.flip, "--detector", self.detector,
                  "--checkpointing", self.checkpointing]
        if self.noise:
            flags += ["--noise", repr(float(self.noise))]
        if self.freeze_backbone:
            flags.append("--freeze-backbone")
        if self.gpus:
            flags += ["--gpus", str(self.gpus)]
        else:
            flags += ["--device", "cpu"]
        if self.accumulate != 1:
            flags += ["--accumulate", str(self.accumulate)]
        if self.amp and self.gpus:
            flags.append("--amp")
        if self.out:
            flags += ["--out", self.out]
        if self.name:
            flags += ["--name", self.name]
        flags += list(self.extra)
        return flags

    def to_settings(self) -> dict[str, Any]:
        """The choices worth remembering between launches (QSettings stores this dict)."""
        d = dataclasses.asdict(self)
        d.pop("extra")
        d.pop("out")
        return d

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> "TrainOptions":
        """Options from remembered values; anything missing, unknown or of the wrong type is ignored."""
        base = cls()
        changes = {}
        for f in dataclasses.fields(cls):
            if f.name in values and f.name not in ("extra", "out"):
                default = getattr(base, f.name)
                try:
                    value = values[f.name]
                    if isinstance(default, bool):
                        value = value in (True, "true", "True", 1, "1")
                    else:
                        value = type(default)(value)
                except (TypeError, ValueError):
                    continue
                changes[f.name] = value
        return dataclasses.replace(base, **changes)
