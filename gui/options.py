"""What the user chose in the app is a TrainConfig — the engine's own declaration of every training
option and its default (common/train_config.py) — and these are the `frelon train` flags it
becomes and the choices the app remembers between launches. No Qt here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

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
