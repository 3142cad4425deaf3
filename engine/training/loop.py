"""The training loop: the run's epochs, one epoch (`train_one_epoch`), one optimizer step.

An optimizer step is `accumulate` micro-batches, each run forward and backward (DDP syncs the
gradients on the last one only), then one small collective in which the ranks agree whether to
stop, to report the step and whether the loss diverged, then the update at the planned LR. Each
function takes the set-up `Trainer` (run.py); each phase a rank enters is told to its heartbeat.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import torch

from frelon.common import schedule

from .. import distributed as D
from .. import memory, timelapse
from ..errors import NonFiniteLoss
from . import stopping
from .checkpoints import save_best, save_last
from .reports import StepLog
from .step import train_mode, unwrap


def train_epochs(trainer) -> str:
    """The epochs from where the progress stands: "completed", or "stopped" (saved, resumable)."""
    cfg, p, end = trainer.cfg, trainer.progress, trainer.plan.end_step
    log = StepLog(cfg, end, trainer.ranks.world_size)
    trainer.in_loop = True             # from here a stop's side thread can save (stopping.py)
    while p.epoch < cfg.epochs and p.step < end:
        if not train_one_epoch(trainer, log):
            return "stopped"
        if agree(trainer.ranks, trainer.heartbeat, trainer.should_stop()).stop and p.epoch < cfg.epochs and p.step < end:
            return "stopped"
    stopping.ending(trainer)
    return "completed"


def train_one_epoch(trainer, log: StepLog) -> bool:
    """The epoch in progress, from its `batch_in_epoch` on (0, or where a resumed run stopped):
    its steps, then its end (evaluation, best, checkpoints). False when the run stopped inside the
    epoch, after saving where it stands: the next run continues from there."""
    t, p = trainer, trainer.progress
    started = time.time()
    micro_per_epoch = t.steps_per_epoch * t.cfg.accumulate
    t.train_sampler.set_epoch(p.epoch, skip=p.batch_in_epoch * t.batch)
    train_mode(t.model, t.cfg.freeze_backbone)
    losses = torch.zeros(2, dtype=torch.float64)      # sum, count over this epoch (this rank)
    log.start_epoch()
    for accumulated in accumulate(t, p.batch_in_epoch, micro_per_epoch):
        stop = optimizer_step(t, accumulated, log, ends_epoch=accumulated.micro >= micro_per_epoch)
        losses += torch.tensor([float(accumulated.loss), 1.0], dtype=torch.float64)
        inside_epoch = p.batch_in_epoch < micro_per_epoch
        if t.cfg.checkpoint_every and p.step % t.cfg.checkpoint_every == 0 and inside_epoch:
            save_last(t, p.epoch)
        if stop or p.step >= t.plan.end_step:
            break
    if p.step < t.plan.end_step and p.batch_in_epoch < micro_per_epoch:
        save_last(t, p.epoch)
        return False
    end_epoch(t, losses, started)
    return True


@dataclass
class Accumulated:
    """One optimizer step's micro-batches, run forward and backward."""
    loss: torch.Tensor          # their mean loss, detached, on the device
    parts: dict                 # the last micro-batch's loss parts
    images: int
    activations: int | None     # activation bytes, measured on the epoch's first micro-batch
    micro: int                  # micro-batches done in the epoch with these


def accumulate(trainer, micro: int, micro_per_epoch: int) -> Iterator[Accumulated]:
    """The epoch's micro-batches from `micro` on, `accumulate` at a time."""
    t, acc = trainer, trainer.cfg.accumulate
    total, images, activations = torch.zeros((), device=t.ranks.device), 0, None
    first = True
    for batch in batches(t.train_loader, t.heartbeat):
        if micro >= micro_per_epoch:
            return
        sync = (micro + 1) % acc == 0
        loss, parts, n, act = t.step.micro(batch, sync, count_activations=first)
        first = False
        activations = act if act is not None else activations
        total += loss
        micro += 1
        images += n
        if sync:
            yield Accumulated(total / acc, parts, images, activations, micro)
            total, images, activations = torch.zeros((), device=t.ranks.device), 0, None


def batches(loader, heartbeat) -> Iterator:
    """The loader's batches, the wait for each one a `data` phase."""
    it = iter(loader)
    while True:
        heartbeat.beat("data")
        try:
            batch = next(it)
        except StopIteration:
            return
        yield batch


def optimizer_step(trainer, accumulated: Accumulated, log: StepLog, ends_epoch: bool) -> bool:
    """The update after one step's micro-batches, once the ranks agree; the `step` event when it is
    due. Returns whether a rank asked to stop. Raises NonFiniteLoss when a rank's loss diverged."""
    t, p = trainer, trainer.progress
    lr = schedule.lr_at(p.step, t.plan)
    if accumulated.activations is not None:
        log.activations = accumulated.activations
    want_log = log.due(p.step, ends_epoch or p.step + 1 >= t.plan.end_step)
    agreed = agree(t.ranks, t.heartbeat, t.should_stop(), want_log, not bool(torch.isfinite(accumulated.loss)))
    if agreed.diverged:
        raise NonFiniteLoss(f"the loss became {float(accumulated.loss)} at step {p.step + 1} (epoch {p.epoch + 1})",
                            hint=f"lower the learning rate (effective LR was {lr:.3g}), check the data, "
                                 "or turn off --amp")
    with t.saving:                     # a side thread's save sees the step before or after, whole
        t.step.update(lr)
        p.step += 1
        t.heartbeat.step = p.step
        p.batch_in_epoch = accumulated.micro
    log.stepped(accumulated.images)
    if agreed.log:
        report_step(t, log, float(accumulated.loss), lr, accumulated.parts)
    return agreed.stop


def report_step(trainer, log: StepLog, loss: float, lr: float, parts: dict) -> None:
    """Every rank's memory (a collective), then rank 0's `step` event."""
    readings = ranks_memory(trainer.ranks, trainer.heartbeat)
    if trainer.ranks.is_main:
        p = trainer.progress
        trainer.writer.emit("step", **log.fields(p.epoch, p.step, loss, lr, parts, readings))
    log.reported()


class Agreement(NamedTuple):
    stop: bool
    log: bool
    diverged: bool


def agree(ranks: D.Ranks, heartbeat, stop: bool, want_log: bool = False, diverged: bool = False) -> Agreement:
    """(stop, log, diverged) agreed by every rank in one small collective a step: any rank can
    stop the run or report a non-finite loss; rank 0's clock decides when to log."""
    if not ranks.distributed:
        return Agreement(stop, want_log, diverged)
    heartbeat.beat("collective")
    flags = torch.tensor([float(stop), float(want_log and ranks.is_main), float(diverged)], device=ranks.device)
    D.all_reduce_sum(flags, ranks)
    return Agreement(bool(flags[0] > 0), bool(flags[1] > 0), bool(flags[2] > 0))


def ranks_memory(ranks: D.Ranks, heartbeat) -> list[dict]:
    """Every rank's memory reading, gathered as one tensor on the ranks' device."""
    mine = memory.reading_tensor(ranks.device, ranks.rank)
    heartbeat.beat("collective")
    return [memory.from_tensor(row) for row in D.all_gather(mine, ranks)]


def end_epoch(trainer, losses: torch.Tensor, started: float) -> None:
    """The epoch's train loss over all ranks, its evaluation, the progress moved to the next
    epoch; on rank 0 `epoch_end`, the best checkpoint and results when the score improved, the
    time-lapse; then every rank's `last` checkpoint."""
    t, p = trainer, trainer.progress
    t.heartbeat.beat("collective")
    D.all_reduce_sum(losses, t.ranks)
    train_loss = float(losses[0] / max(1.0, float(losses[1])))
    evaluation = None
    if t.val_loader is not None:
        t.heartbeat.beat("validation")
        model = unwrap(t.model)
        model.eval()
        evaluation = t.task.evaluate(model, t.val_loader, t.ranks.device, t.ranks, t.classes)
    with t.saving:                     # a side thread's save waits for the epoch's end to be written
        _close_epoch(t, evaluation, train_loss, started)


def _close_epoch(trainer, evaluation, train_loss: float, started: float) -> None:
    """The progress moved to the next epoch, `epoch_end`, the best checkpoint, the time-lapse, `last`."""
    t, p = trainer, trainer.progress
    score = evaluation.score if evaluation else -train_loss
    finished = p.epoch
    p.epochs_done, p.epoch, p.batch_in_epoch = finished + 1, finished + 1, 0
    loss = evaluation.metrics.get("loss") if evaluation else None
    improved = p.improves(score, loss)
    if improved:
        p.best_score, p.best_epoch = score, finished
        p.best_loss = loss if loss is not None else math.inf
    p.history.append({"epoch": finished, "train_loss": train_loss, "score": score})
    if t.ranks.is_main:
        t.writer.emit("epoch_end", epoch=finished, train_loss=train_loss, val=evaluation.metrics if evaluation else {},
                      duration_s=time.time() - started, step=p.step)
        if improved:
            save_best(t, finished)
            if evaluation is not None:
                t.task.write_results(t.run_dir, evaluation, t.classes, t.scanned.val)
        if evaluation is not None:      # the time-lapse: a fixed handful of images, epoch by epoch
            record_timelapse(t, evaluation, finished)
    save_last(t, finished)


def record_timelapse(trainer, evaluation, epoch: int) -> None:
    """A view of the run, not the run: a file that cannot be written costs a warning only."""
    t = trainer
    try:
        timelapse.record_epoch(t.run_dir, t.task.name, evaluation.details, t.scanned.val, t.classes, epoch, t.cfg.seed)
    except OSError as e:
        t.writer.log(f"the time-lapse of epoch {epoch + 1} could not be written: {e.strerror or e}", "warning")
