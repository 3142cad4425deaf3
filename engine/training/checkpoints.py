"""A run's checkpoints and the counters they carry.

`checkpoints/last.safetensors`: the weights, the optimizer, `Progress`, the config, every rank's
random states and the loss scale — what an exact resume needs, on the same or another number of
ranks. `checkpoints/best.safetensors`: the weights of the best epoch and its score. Each function
takes the set-up `Trainer` (run.py) whose state it saves or restores.
"""
from __future__ import annotations


import math
from dataclasses import dataclass, field
from pathlib import Path

from frelon.common.run_folder import RunFolder

from .. import distributed as D
from .. import rundir
from ..errors import FrelonError
from .step import off_the_default_stream, unwrap


@dataclass
class Progress:
    """The counters a checkpoint stores and a resume restores."""
    epoch: int = 0                  # the epoch in progress (0-based)
    step: int = 0                   # optimizer steps done in the whole run
    batch_in_epoch: int = 0         # micro-batches done in the epoch in progress
    best_score: float = -math.inf
    best_epoch: int = -1
    best_loss: float = math.inf     # the best epoch's validation loss: breaks ties of the score
    epochs_done: int = 0
    history: list = field(default_factory=list)
    best_metrics: dict = field(default_factory=dict)   # the best epoch's validation figures (run_finished)

    def improves(self, score: float, loss: float | None) -> bool:
        """Whether an epoch's validation beats the best so far: a higher score, or the same score
        at a lower validation loss. On a small validation split the accuracy ties often (20
        pictures move it in steps of 5 %), and the first of equal epochs is rarely the best
        trained: on bench/learn.py's faces (20 validation pictures, 6 epochs, seeds 0-2) the first
        of the tied was epoch 2, 6, 1 (test 0.98, 0.96, 0.94); the lowest loss among them was
        epoch 2, 6, 2 (0.98, 0.96, 0.98). Keras and fastai choose on the loss alone."""
        if score != self.best_score:
            return score > self.best_score
        return loss is not None and loss < self.best_loss


class CheckpointWriteError(FrelonError):
    kind = "io"


def write_checkpoint(path: Path, *args, **kwargs) -> None:
    """rundir.save_checkpoint, a failed write an `io` error that says how to go on."""
    try:
        rundir.save_checkpoint(path, *args, **kwargs)
    except OSError as e:
        raise CheckpointWriteError(
            f"could not write the checkpoint {path}: {e.strerror or e}",
            hint=f"free space on that disk (or fix its permissions), then continue with "
                 f"frelon train --resume {path.parent.parent}; the previous checkpoint is intact") from None


def save_last(trainer, epoch: int) -> None:
    """Every rank calls this (its random states go into the checkpoint); rank 0 writes."""
    trainer.heartbeat.beat("checkpoint")
    rng = D.gather_objects(rundir.rng_state(trainer.ranks.device), trainer.ranks)
    if trainer.ranks.is_main:
        write_last(trainer, epoch, rng)


def write_last(trainer, epoch: int, rng: list[dict]) -> Path:
    """Write last.safetensors with these random states (one per rank) and emit `checkpoint`."""
    with trainer.saving:        # the stall watchdog's or a stop's thread may save too
        return _write_last(trainer, epoch, rng)


def _write_last(trainer, epoch: int, rng: list[dict]) -> Path:
    t = trainer
    path = RunFolder(t.run_dir).checkpoint("last")
    meta = {"progress": t.progress.__dict__, "config": t.cfg.to_dict(),
            "world_size": t.ranks.world_size, "micro_batches_per_epoch": len(t.train_loader),
            "micro_batch": t.batch,
            "classes": t.classes, "scaler": t.step.scaler.state_dict() if t.step.scaler else None}
    write_checkpoint(path, unwrap(t.model).state_dict(), meta, t.optimizer, rng=rng)
    t.writer.emit("checkpoint", path=str(path), epoch=epoch, step=t.progress.step, best=False,
                  epoch_complete=t.progress.batch_in_epoch == 0)
    return path


def save_best(trainer, epoch: int) -> None:
    t = trainer
    path = RunFolder(t.run_dir).checkpoint("best")
    meta = {"epoch": epoch, "step": t.progress.step, "score": t.progress.best_score,
            "metric": t.task.best_metric, "classes": t.classes}
    write_checkpoint(path, unwrap(t.model).state_dict(), meta)
    t.writer.emit("checkpoint", path=str(path), epoch=epoch, step=t.progress.step, best=True,
                  epoch_complete=True)


def emergency_save(trainer) -> dict:
    """The stall watchdog's last resort, run on rank 0 by RescueWatcher's thread while the
    ranks are stuck in a collective: the weights and optimizer are those of the last
    completed step (every rank holds the same), so rank 0 alone saves them — with its own
    random states only. Not while this rank is inside an optimizer step or a save."""
    phase = trainer.heartbeat.phase
    if phase in ("optimizer", "checkpoint", "setup"):
        return {"saved": False, "reason": f"rank 0 is in phase {phase}"}
    return save_from_outside(trainer)


SAVE_WAIT_S = 20.0       # how long a side thread waits for the loop to finish an update or a save


def save_from_outside(trainer) -> dict:
    """The last completed step saved from another thread than the loop's (a stall's rescue, a
    stop the loop did not take in time: stopping.py), whatever the loop is doing. The loop changes
    the weights, the optimizer and the progress only while holding `trainer.saving`
    (loop.optimizer_step, loop.end_epoch), which this takes: the checkpoint is that of the last
    completed step — with the random states and batch-norm statistics of the moment, so a resume
    from it redoes the interrupted step, though not bit for bit. Returns {"saved": True, "step",
    "path"} or {"saved": False, "reason"}."""
    if not getattr(trainer, "in_loop", False):
        return {"saved": False, "reason": "training had not begun"}
    if not trainer.saving.acquire(timeout=SAVE_WAIT_S):
        return {"saved": False, "reason": f"the loop held the checkpoint for more than {SAVE_WAIT_S:.0f} s"}
    try:
        # the copies to the CPU on a side stream: the default one may wait behind a hung collective
        with off_the_default_stream(trainer.ranks.device, after=trainer.step.updated):
            path = _write_last(trainer, trainer.progress.epoch, [rundir.rng_state(trainer.ranks.device)])
    except CheckpointWriteError as e:
        return {"saved": False, "reason": str(e)}
    finally:
        trainer.saving.release()
    return {"saved": True, "step": trainer.progress.step, "path": str(path)}


def restore(trainer) -> dict:
    """Load last.safetensors into the trainer's model, optimizer, progress, random states and loss
    scale; return run_started's `resumed_from`."""
    t = trainer
    weights, meta, rest = rundir.load_checkpoint(RunFolder(t.run_dir).checkpoint("last"))
    t.model.load_state_dict(weights)
    rundir.restore_optimizer(t.optimizer, meta, rest)
    t.progress = Progress(**meta["progress"])
    old_ws = meta.get("world_size", 1)
    old_micro = meta.get("micro_batch", t.batch)
    if old_ws != t.ranks.world_size and t.progress.batch_in_epoch:
        # another number of ranks reorders the epoch: start the interrupted epoch's remaining
        # share at the same fraction of the epoch
        frac = t.progress.batch_in_epoch / max(1, meta.get("micro_batches_per_epoch", 1))
        t.progress.batch_in_epoch = int(frac * len(t.train_loader)) // t.accumulate * t.accumulate
    elif old_micro != t.batch and t.progress.batch_in_epoch:
        # saved after an out-of-memory made the micro-batches smaller: the same steps, in this
        # run's micro-batches (each step is the same images)
        steps = t.progress.batch_in_epoch * old_micro // (t.batch * t.accumulate)
        t.progress.batch_in_epoch = steps * t.accumulate
    rundir.set_rng_state(rest, meta["rng"], t.ranks.rank, t.ranks.device)
    if t.step.scaler and meta.get("scaler"):
        t.step.scaler.load_state_dict(meta["scaler"])
    return {"epoch": t.progress.epoch, "step": t.progress.step,
            "world_size_before": old_ws, "world_size": t.ranks.world_size}
