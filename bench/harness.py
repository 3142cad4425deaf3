"""What every figure of the benchmark suite shares: the result record, interleaved repeats and
medians, a step clock fed by the engine's own `step` events, and the table.

Noise: the figures are ratios measured in one process, the compared variants interleaved (A B, B A,
A B, …) and the median of the per-repeat ratios reported, so that a neighbour's load hits both sides.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from frelon.common import events
from frelon.engine.control import EventWriter


@dataclass
class Figure:
    """One row of the table / one key of the JSON."""
    id: str
    name: str
    value: float | str | None
    goal: str
    detail: dict = field(default_factory=dict)
    passed: bool | None = None          # None: not measured / not applicable

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("id")
        return d


def median(values) -> float:
    return float(statistics.median(values))


def interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each variant `repeats` times, alternating the order each round; {name: [results]}."""
    names = list(variants)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            out[name].append(variants[name]())
    return out


def ratios(results: dict[str, list[float]], num: str, den: str) -> list[float]:
    """Per-repeat ratio num / den (the repeats were interleaved, so each pair ran side by side)."""
    return [a / b for a, b in zip(results[num], results[den])]


def step_seconds(marks: list[tuple[int, float]], warmup: int) -> list[float]:
    """Seconds per step between consecutive marks (step count, time) after the first `warmup` steps.
    Marks may skip steps (throttled events): each interval is divided by the steps it spans."""
    kept = [(s, t) for s, t in marks if s >= warmup]
    if len(kept) < 2:
        raise RuntimeError(f"only {len(kept)} step(s) timed after {warmup} warm-up steps")
    return [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(kept, kept[1:]) if s1 > s0]


def rate(marks: list[tuple[int, float]], batch: int, warmup: int, how: str = "median") -> float:
    """Images/s after warm-up. "median": from the median step time — robust to a neighbour's burst
    of load in the middle of a run; "window": samples over wall time from the first mark to the
    last — what an asynchronous device needs (its per-step marks are not synchronised)."""
    if how == "median":
        return batch / median(step_seconds(marks, warmup))
    kept = [(s, t) for s, t in marks if s >= warmup]
    (s0, t0), (s1, t1) = kept[0], kept[-1]
    return batch * (s1 - s0) / max(1e-9, t1 - t0)


class StepClock(EventWriter):
    """An EventWriter that notes (step count, time.perf_counter) when each `step` event is made.

    write=True writes events as the engine does (run folder file, and `stream` if given);
    write=False is "events off": the engine makes them, nothing is written anywhere."""

    def __init__(self, stream=None, write: bool = True):
        super().__init__(stream, enabled=True)
        self.write = write
        self.marks: list[tuple[int, float]] = []

    def emit(self, type_: str, **fields) -> dict:
        if type_ == "step":
            self.marks.append((fields["step"], time.perf_counter()))
        if self.write:
            return super().emit(type_, **fields)
        return events.make(type_, **fields)

    def attach(self, path) -> None:
        if self.write:
            super().attach(path)


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def table(figures: list[Figure]) -> str:
    rows = [("id", "figure", "value", "goal", "ok")]
    for f in figures:
        ok = {True: "yes", False: "NO", None: "-"}[f.passed]
        rows.append((f.id, f.name, fmt_value(f.value), f.goal, ok))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
