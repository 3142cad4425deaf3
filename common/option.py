"""How a training option is declared: one dataclass field whose metadata says everything about it.

    epochs: int = option(10, "passes over the training images", low=1, high=100_000)

The field's name, type and default, with its `Spec` (help text, allowed range, choices, whether it
may change on a resume, whether the app shows it), are all the CLI (frelon/cli.py builds its
`--epochs` from it), the engine (validation, config.json) and the app (its flags, its generic form)
need. Validation is generic: the type, a finite number, the range — each message names the option,
says the allowed range and what its special values mean, and quotes the value.

Stdlib only (common/).
"""
from __future__ import annotations

import math
from dataclasses import Field, dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A bad option: the message names the key and the problem."""


@dataclass(frozen=True)
class Spec:
    help: str = ""                          # `frelon train --help` and the app's tooltip ("" = none)
    low: float | None = None                # the smallest value allowed
    high: float | None = None               # the largest
    above: bool = False                     # `low` itself is not allowed (> low)
    below: bool = False                     # `high` itself is not allowed (< high)
    special: str = ""                       # what a special value means, e.g. "0 = from the data"
    what: str = ""                          # the value in words, e.g. "a probability"
    choices: tuple[str, ...] = ()           # the allowed words (common/choices.py)
    word: str = ""                          # a word also allowed for a number (batch_size's "auto")
    resume: bool = False                    # may be given beside `--resume RUN`
    app: bool = True                        # the app shows it (a widget of its own, or its generic form)
    flag: bool = True                       # a `frelon train` option


def option(default: Any, help: str = "", **spec: Any) -> Any:
    """A dataclass field with its Spec (see the module docstring)."""
    return field(default=default, metadata={"spec": Spec(help=help, **spec)})


def spec_of(f: Field) -> Spec:
    return f.metadata.get("spec") or Spec()


def flag_name(name: str) -> str:
    """`batch_size` → `--batch-size`."""
    return "--" + name.replace("_", "-")


def kind_of(f: Field) -> type:
    """The option's value type: int, float, bool or str (a number-or-word option is int)."""
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if t.startswith(name) or t.startswith(f"Union[{name}"):
            return kind
    return str


def coerce(f: Field, value: Any) -> Any:
    """`value` as the option's type (JSON gives ints for floats; the command line a number-or-word
    option's number as a string), or ConfigError naming the option."""
    s, kind, name = spec_of(f), kind_of(f), f.name
    if s.word and isinstance(value, str):          # the command line gives '16' or 'auto'
        if value == s.word:
            return value
        if value.isdigit():
            value = int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        words = f" or {s.word!r}" if s.word else ""
        raise ConfigError(f"{name}: expected {kind.__name__}{words}, got {type(value).__name__} {value!r}")
    return value


def allowed(s: Spec) -> str:
    """The allowed values in words: 'from 0 to 10 (0 = the optimizer's own)'."""
    lo = "" if s.low is None else f"{'above' if s.above else 'at least'} {s.low:g}"
    hi = "" if s.high is None else f"{'below' if s.below else 'at most'} {s.high:g}"
    if s.low is not None and s.high is not None and not (s.above or s.below):
        text = f"from {s.low:g} to {s.high:g}"
    else:
        text = " and ".join(t for t in (lo, hi) if t)
    if s.word:
        text += f", or {s.word!r}"
    return text + (f" ({s.special})" if s.special else "")


def check(f: Field, value: Any) -> None:
    """ConfigError unless `value` is one of the choices, or a finite number in the range."""
    s, name = spec_of(f), f.name
    if s.choices and value not in s.choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(c for c in s.choices if c)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    what = f"{s.what}, " if s.what else "must be "
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}: {what}a finite number {allowed(s)}, got {value}")
    too_low = s.low is not None and (value <= s.low if s.above else value < s.low)
    too_high = s.high is not None and (value >= s.high if s.below else value > s.high)
    if too_low or too_high:
        raise ConfigError(f"{name}: {what}{allowed(s)}, got {value:g}")
