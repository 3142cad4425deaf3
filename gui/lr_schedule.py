"""The learning-rate schedule as a pure function of the step, for the app's preview plot.

Pure Python (no torch, no Qt): the engine's own function (common/schedule.py), for the plot: a
per-step linear warmup from peak/(W+1) to the effective LR over the W = warmup_epochs x
steps-per-epoch first steps (at most a quarter of the run), then
  cosine   -> half a cosine down to 0 at the last step,
  step     -> x0.1 after 1/3 and again after 2/3 of the steps after warmup,
  constant -> the effective LR until the end.
As in `step` events and the engine's `lr_schedule`, x counts steps done: step index s is drawn at s + 1.
"""
from __future__ import annotations

import math

from frelon.common import schedule as engine_schedule
from frelon.common.lr_policy import warmup_steps

SCHEDULE_HELP = {
    "cosine": "Linear warmup, then half a cosine from the effective LR down to 0 at the last step. "
              "A smooth decay that rarely needs tuning: the usual choice for fine-tuning.",
    "step": "Linear warmup, then the LR is multiplied by 0.1 after 1/3 and again after 2/3 of the "
            "remaining steps. Classic; the drops show as steps in the loss.",
    "constant": "Linear warmup, then the effective LR until the end. Simple, but the final "
                "epochs do not settle as well as with a decay.",
}


def plan(steps_per_epoch: int, epochs: int, warmup_epochs: float) -> tuple[int, int]:
    """(total_steps, warmup_steps) the way the engine plans them (the warmup rule is the engine's own)."""
    total = max(1, int(steps_per_epoch) * int(epochs))
    return total, warmup_steps(total, int(steps_per_epoch), warmup_epochs)


def lr_at(step: int, total_steps: int, peak_lr: float, warmup_steps: int, schedule: str = "cosine") -> float:
    """The LR used for optimizer step `step` (0-based) of `total_steps`: the engine's."""
    return engine_schedule.lr_at(step, engine_schedule.Plan(peak_lr, total_steps, warmup_steps, schedule))


def preview(total_steps: int, peak_lr: float, warmup_steps: int, schedule: str = "cosine",
            max_points: int = 400) -> tuple[list[int], list[float]]:
    """Steps done and LRs to draw: every step for short runs, `max_points` samples (plus the
    warmup end and the step drops, so the corners stay sharp) for long ones."""
    total_steps = max(1, int(total_steps))
    if total_steps <= max_points:
        steps = list(range(total_steps))
    else:
        stride = total_steps / max_points
        keep = {int(i * stride) for i in range(max_points)} | {total_steps - 1}
        w = max(0, min(int(warmup_steps), total_steps))
        for s in (w - 1, w):
            if 0 <= s < total_steps:
                keep.add(s)
        if schedule == "step":
            decay = max(1, total_steps - w)
            for k in (1, 2):
                edge = w + math.ceil(k * decay / 3)
                keep.update(s for s in (edge - 1, edge) if 0 <= s < total_steps)
        steps = sorted(keep)
    return [s + 1 for s in steps], [lr_at(s, total_steps, peak_lr, warmup_steps, schedule) for s in steps]
