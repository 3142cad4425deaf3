"""The learning rate as a pure function of the step (nanoGPT's `get_lr(it)`, in Frelon's terms).

Linear warmup from peak/(W+1) to the peak over the first W steps (`--warmup-epochs`, at most a
quarter of the run: common/lr_policy.py's `warmup_steps`), then one of:
- cosine: half a cosine from the peak down to 0 at the last step;
- step: ×0.1 after a third and again after two thirds of the steps that follow the warmup;
- constant: the peak.
The peak is the effective LR of the optimizer's batch rule (`TrainConfig.effective_lr`). Because the
LR depends on nothing but the step and the plan, a resumed run follows the same curve, and a run
extended with `--resume RUN --epochs N` follows the curve it would have had if planned with N epochs.

Stdlib only: the engine trains with it and the app's preview draws it (gui/lr_schedule.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frelon.common.lr_policy import warmup_steps

if TYPE_CHECKING:
    from frelon.common.train_config import TrainConfig


@dataclass(frozen=True)
class Plan:
    peak_lr: float
    total_steps: int
    warmup_steps: int
    schedule: str = "cosine"
    offset: int = 0         # steps done before this plan's step 0 (a resume on another number of ranks)

    @property
    def end_step(self) -> int:
        """The step count at which the run ends."""
        return self.total_steps + self.offset

    @classmethod
    def for_config(cls, cfg: "TrainConfig", steps_per_epoch: int, peak_lr: float | None = None,
                   offset: int = 0) -> "Plan":
        """The plan of a run of `cfg` at `steps_per_epoch` (TrainConfig.steps_per_epoch): its epochs'
        steps (at most `max_steps`), `warmup_epochs` of warmup (at most a quarter of the run),
        peaking at `peak_lr` (default: cfg.effective_lr()). The engine trains with it, the app
        previews it."""
        total = max(1, int(steps_per_epoch) * cfg.epochs)
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        peak = cfg.effective_lr() if peak_lr is None else peak_lr
        return cls(peak, total, warmup_steps(total, int(steps_per_epoch), cfg.warmup_epochs), cfg.schedule, offset)


def lr_at(step: int, plan: Plan) -> float:
    """The LR used for optimizer step `step` (0-based, counted over the whole run)."""
    step -= plan.offset
    if step < plan.warmup_steps:
        return plan.peak_lr * (step + 1) / (plan.warmup_steps + 1)
    decay_steps = max(1, plan.total_steps - plan.warmup_steps)
    progress = min(1.0, (step - plan.warmup_steps) / decay_steps)
    if plan.schedule == "cosine":
        return plan.peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if plan.schedule == "step":
        return plan.peak_lr * (0.1 ** int(progress * 3))
    return plan.peak_lr


def curve(plan: Plan, points: int = 200) -> list[list[float]]:
    """About `points` [steps done, lr] pairs for drawing the whole plan (the app's preview,
    run_started): every step of a short plan; of a long one a regular sample plus the corners
    (the warmup's end, the step schedule's drops, the last step), so the drawing stays sharp. Like
    `step` events, x counts steps done: the LR of step index s is drawn at s + 1."""
    n = plan.total_steps
    if n <= points:
        steps = set(range(n))
    else:
        stride = n / points
        steps = {int(i * stride) for i in range(points)} | {n - 1}
        corners = [plan.warmup_steps]
        if plan.schedule == "step":
            decay = max(1, n - plan.warmup_steps)
            corners += [plan.warmup_steps + math.ceil(k * decay / 3) for k in (1, 2)]
        steps |= {s for c in corners for s in (c - 1, c) if 0 <= s < n}
    return [[s + plan.offset + 1, lr_at(s + plan.offset, plan)] for s in sorted(steps)]
