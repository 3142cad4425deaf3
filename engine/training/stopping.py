"""A stop the loop does not take in time, answered from the stop's side thread.

The loop looks at the stop flag between steps (loop.py). A step, an epoch's evaluation or the data
scan can last minutes (a hostile annotation file, a huge image size on a CPU, a slow disk), and
whoever asked (the app's Stop button, Ctrl-C, a scheduler's SIGTERM with its grace period before
SIGKILL) must not wait for it. control.StopFlag calls `answer` from its thread when the loop has
not taken a stop within control.ANSWER_S: the last completed step is saved (checkpoints.
save_from_outside; nothing before training has begun), `run_finished` `stopped` is written, and
the process ends. The run resumes from that checkpoint (`frelon train --resume`).

On several ranks only rank 0 saves and speaks (every rank holds the same weights); another rank
answers by ending: the launcher reads rank 0's `run_finished`.
"""
from __future__ import annotations

import sys

from .checkpoints import save_from_outside
from .reports import run_finished_fields


def arm(trainer) -> None:
    """Have the trainer's stop flag answered from the side when the loop is late (a plain
    callable, as tests and the LR finder pass, has no side thread: nothing to arm)."""
    on_overdue = getattr(trainer.should_stop, "on_overdue", None)
    if on_overdue is not None:
        on_overdue(lambda: answer(trainer))


def ending(trainer) -> None:
    """The loop is done: the run ends by itself, and a stop arriving now is not answered from
    the side (two `run_finished` would be written)."""
    take = getattr(trainer.should_stop, "take", None)
    if take is not None:
        take()


def answer(trainer) -> bool:
    """Save the last completed step and end the run `stopped`; False when the run had already
    finished by itself (nothing to answer)."""
    t = trainer
    ranks = getattr(t, "ranks", None)
    if ranks is not None and not ranks.is_main:
        return True                      # nothing to save or say: end, rank 0 speaks
    if t.writer.finished:
        return False
    saved = save_from_outside(t)
    t.heartbeat.beat("done")             # several ranks: the watchdog reports no more
    if not t.writer.emit_last("run_finished", **run_finished_fields(t, "stopped")):
        return False
    t.writer.close()
    if saved["saved"]:
        said = (f"saved at step {saved['step']}, the last completed one; continue with: "
                f"frelon train --resume {t.run_dir}")
    elif t.resume_dir is not None:
        said = f"its checkpoint is the one it resumed from; continue with: frelon train --resume {t.run_dir}"
    else:
        said = f"nothing to save ({saved['reason']}): start it again to train"
    print(f"frelon: run stopped ({getattr(t.should_stop, 'reason', '') or 'stop requested'}) during a long "
          f"step or scan: {said}", file=sys.stderr, flush=True)
    return True
