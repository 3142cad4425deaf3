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

from frelon.common.lr_policy import warmup_steps


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
    def for_run(cls, peak_lr: float, steps_per_epoch: int, epochs: int, warmup_epochs: float,
                schedule: str) -> "Plan":
        total = max(1, steps_per_epoch * epochs)
        return cls(peak_lr, total, warmup_steps(total, steps_per_epoch, warmup_epochs), schedule)


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
    run_started). Like `step` events, x counts steps done: the LR of step index s is drawn at s + 1."""
    n = plan.total_steps
    stride = max(1, n // points)
    steps = sorted(set(range(0, n, stride)) | {min(plan.warmup_steps, n - 1), n - 1})
    return [[s + plan.offset + 1, lr_at(s + plan.offset, plan)] for s in steps]
