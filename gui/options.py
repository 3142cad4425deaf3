"""What the user chose in the app is a TrainConfig — the engine's own declaration of every training
option and its default (common/train_config.py) — and these are the `frelon train` flags it
becomes, the choices the app remembers between launches, and the LR plan it previews. No Qt here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from frelon.common import lr_policy, schedule
from frelon.common.choices import CLASSIFY
from frelon.common.option import ConfigError, check, coerce, spec_of
from frelon.common.train_config import FIELDS, TrainConfig, to_flags

DEFAULTS = TrainConfig()


def train_flags(cfg: TrainConfig, extra: Iterable[str] = ()) -> list[str]:
    """The `frelon train` options of `cfg`: each option that differs from its default (the engine
    has the same defaults: the same declarations), then `extra` as it is. Events and control
    flags are added by the caller."""
    changed = {name: getattr(cfg, name) for name in FIELDS if getattr(cfg, name) != getattr(DEFAULTS, name)}
    return to_flags(changed) + list(extra)


def remembered(name: str) -> bool:
    """Whether the app remembers option `name` between launches: the options it shows, except the
    data (the Data tab remembers its folder)."""
    return spec_of(FIELDS[name]).app


def to_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The choices worth remembering between launches (QSettings stores this dict)."""
    return {name: value for name, value in dataclasses.asdict(cfg).items() if remembered(name)}


def from_settings(values: dict[str, Any]) -> TrainConfig:
    """Options from remembered values; anything missing, unknown, of the wrong type or out of its
    range is left at its default."""
    changes = {}
    for name, value in values.items():
        if name not in FIELDS or not remembered(name):
            continue
        f = FIELDS[name]
        try:
            if isinstance(f.default, bool):
                value = value in (True, "true", "True", 1, "1")
            value = coerce(f, value)
            check(f, value)
        except ConfigError:
            continue
        changes[name] = value
    try:
        return DEFAULTS.replace(**changes)
    except ConfigError:          # values fine alone that do not go together (gpus and processes)
        return DEFAULTS


PREVIEW_POINTS = 400


@dataclass(frozen=True)
class LrPreview:
    """The LR plan of a run of `options` before it starts, as the engine will plan it."""
    cfg: TrainConfig                 # the options, the task the data doctor found filled in
    steps_per_epoch: int
    plan: schedule.Plan              # at the highest base LR the run can get
    points: list                     # [steps done, lr] to draw
    lowest: list                     # the lowest LR's curve where the base LR is chosen at Start, else []
    chosen_at_start: bool            # a classifier's automatic LR: measured from the data at Start

    def xy(self, points: list | None = None) -> tuple[list[int], list[float]]:
        pts = self.points if points is None else points
        return [int(p[0]) for p in pts], [p[1] for p in pts]


def lr_preview(options: TrainConfig, train_images: int, detected_task: str = "") -> LrPreview:
    """What a run of `options` on `train_images` pictures will do with its LR (common/schedule.py's
    Plan.for_config: the engine's own plan). Before the data says which task it is, a classifier."""
    cfg = options.replace(task=options.task or detected_task or CLASSIFY)
    spe = cfg.steps_per_epoch(train_images)
    plan = schedule.Plan.for_config(cfg, spe)
    chosen = lr_policy.fits_features(cfg.optimizer, cfg.lr, cfg.task)
    lowest = []
    if chosen:
        low, high = lr_policy.base_range(cfg.optimizer, 0.0, cfg.task)
        lowest = schedule.curve(schedule.Plan.for_config(cfg, spe, plan.peak_lr * low / high), PREVIEW_POINTS)
    return LrPreview(cfg, spe, plan, schedule.curve(plan, PREVIEW_POINTS), lowest, chosen)
