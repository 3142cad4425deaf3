"""The training loop: the run's epochs, one epoch (`train_one_epoch`), one optimizer step.

An optimizer step is `accumulate` micro-batches, each run forward and backward (DDP syncs the
gradients on the last one only), then one small collective in which the ranks agree whether to
stop, to report the step and whether the loss diverged — with the loss, its parts and every rank's
memory in the same tensor — then the update at the planned LR. That tensor is the one thing the
host reads from the device in a step: every other figure (the epoch's loss sum) stays on the device
until the epoch ends, so the CPU queues the next step's work while the GPU runs this one. Each
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
from . import checkpoints, stopping
from .checkpoints import save_best
from .reports import StepLog
from .step import train_mode, unwrap


def train_epochs(trainer) -> str:
    """The epochs from where the progress stands: "completed", or "stopped" (saved, resumable)."""
    cfg, p, end = trainer.cfg, trainer.progress, trainer.plan.end_step
    log = StepLog(cfg, end, trainer.ranks.world_size)
    trainer.in_loop = True             # from here a stop's side thread can save (stopping.py)
    while p.epoch < cfg.epochs and p.step < end and not out_of_patience(trainer):
        if not train_one_epoch(trainer, log):
            return "stopped"
        if agree(trainer.ranks, trainer.heartbeat, trainer.should_stop()).stop and p.epoch < cfg.epochs \
                and p.step < end and not out_of_patience(trainer):
            return "stopped"
    stopping.ending(trainer)
    if out_of_patience(trainer):
        trainer.finish_reason = out_of_patience(trainer)
        if trainer.ranks.is_main:
            trainer.writer.log(trainer.finish_reason)
    return "completed"


def out_of_patience(trainer) -> str:
    """Why the run ends early under `--patience N` ("" while it goes on): N epochs done since the
    best one (the score and tie-break that choose `best`: checkpoints.Progress.improves). Every
    rank counts alike (the scores are reduced over the ranks), and the count is the checkpointed
    progress's (epochs done, best epoch): a resumed run goes on counting where it stopped."""
    cfg, p = trainer.cfg, trainer.progress
    waited = p.epochs_done - 1 - p.best_epoch
    if not cfg.patience or p.best_epoch < 0 or waited < cfg.patience:
        return ""
    what = f"validation {trainer.task.best_metric}" if trainer.val_loader is not None else "training loss"
    best = p.best_score if trainer.val_loader is not None else -p.best_score
    return (f"stopped early (--patience {cfg.patience}) after epoch {p.epochs_done}: {waited} epoch(s) without a "
            f"better {what} than epoch {p.best_epoch + 1}'s {best:.4g}; the best checkpoint is that epoch's")


def train_one_epoch(trainer, log: StepLog) -> bool:
    """The epoch in progress, from its `batch_in_epoch` on (0, or where a resumed run stopped):
    its steps, then its end (evaluation, best, checkpoints). False when the run stopped inside the
    epoch, after saving where it stands: the next run continues from there."""
    t, p = trainer, trainer.progress
    started = time.time()
    micro_per_epoch = t.steps_per_epoch * t.accumulate
    t.train_sampler.set_epoch(p.epoch, skip=p.batch_in_epoch * t.batch)
    train_mode(t.model, t.cfg.freeze_backbone)
    losses = torch.zeros(2, dtype=torch.float64, device=t.ranks.device)  # sum, count over this epoch (this rank)
    log.start_epoch()
    for accumulated in accumulate(t, p.batch_in_epoch, micro_per_epoch, log):
        stop = optimizer_step(t, accumulated, log, ends_epoch=accumulated.micro >= micro_per_epoch)
        losses[0] += accumulated.loss.double()          # on the device: read once, at the epoch's end
        losses[1] += 1
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


def save_last(trainer, epoch: int) -> None:
    """checkpoints.save_last, the ranks' buffers (BatchNorm statistics) made rank 0's first where
    DDP does not broadcast them at each forward (--sync-bn)."""
    D.sync_buffers(trainer.model, trainer.ranks)
    checkpoints.save_last(trainer, epoch)


@dataclass
class Accumulated:
    """One optimizer step's micro-batches, run forward and backward."""
    loss: torch.Tensor          # their mean loss, detached, on the device
    parts: dict                 # the last micro-batch's loss parts
    images: int
    activations: int | None     # activation bytes, measured on the epoch's first micro-batch
    micro: int                  # micro-batches done in the epoch with these


def accumulate(trainer, micro: int, micro_per_epoch: int, log: StepLog | None = None) -> Iterator[Accumulated]:
    """The epoch's micro-batches from `micro` on, `accumulate` at a time."""
    t, acc = trainer, trainer.accumulate
    total, images, activations = torch.zeros((), device=t.ranks.device), 0, None
    first = True
    for batch in batches(t.train_loader, t.heartbeat, log):
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


def batches(loader, heartbeat, log: StepLog | None = None) -> Iterator:
    """The loader's batches, the wait for each one a `data` phase (and counted in `log`'s data_wait)."""
    it = iter(loader)
    while True:
        heartbeat.beat("data")
        asked = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        if log is not None:
            log.waited(time.perf_counter() - asked)
        yield batch


def optimizer_step(trainer, accumulated: Accumulated, log: StepLog, ends_epoch: bool) -> bool:
    """The update after one step's micro-batches, once the ranks agree; the `step` event when it is
    due. Returns whether a rank asked to stop. Raises NonFiniteLoss when a rank's loss diverged."""
    t, p = trainer, trainer.progress
    lr = schedule.lr_at(p.step, t.plan)
    if accumulated.activations is not None:
        log.activations = accumulated.activations
    want_log = log.due(p.step, ends_epoch or p.step + 1 >= t.plan.end_step)
    agreed = agree(t.ranks, t.heartbeat, t.should_stop(), want_log, accumulated.loss, accumulated.parts)
    if agreed.diverged:
        raise NonFiniteLoss(f"the loss became {agreed.loss} at step {p.step + 1} (epoch {p.epoch + 1})",
                            hint=f"lower the learning rate (effective LR was {lr:.3g}), check the data, "
                                 "or turn off --amp")
    with t.saving:                     # a side thread's save sees the step before or after, whole
        t.step.update(lr)
        p.step += 1
        t.heartbeat.step = p.step
        p.batch_in_epoch = accumulated.micro
    log.stepped(accumulated.images)
    if agreed.log:
        report_step(t, log, agreed, lr)
    return agreed.stop


def report_step(trainer, log: StepLog, agreed: "Agreement", lr: float) -> None:
    """Rank 0's `step` event, from what the ranks agreed on; every rank starts a new memory peak."""
    if trainer.ranks.is_main:
        p = trainer.progress
        trainer.writer.emit("step", **log.fields(p.epoch, p.step, agreed.loss, lr, agreed.parts, agreed.memory))
    memory.reset_peak(trainer.ranks.device)
    log.reported()


class Agreement(NamedTuple):
    stop: bool
    log: bool
    diverged: bool
    loss: float = math.nan          # the step's loss, the mean over the ranks
    parts: dict = {}                # its parts (detection), the mean over the ranks
    memory: list = []               # every rank's memory reading (memory.from_values)


def agree(ranks: D.Ranks, heartbeat, stop: bool, want_log: bool = False, loss: torch.Tensor | None = None,
          parts: dict | None = None) -> Agreement:
    """What every rank agrees on, from one small tensor a step, gathered from the ranks and read
    by the host once: any rank can stop the run or report a non-finite loss; rank 0's clock decides
    when to log; the loss and its parts (device tensors: never read one by one) and each rank's
    memory (host counters, read before this step's update) come along for the `step` event."""
    device, parts = ranks.device, parts or {}
    host = D.to_device([float(stop), float(want_log and ranks.is_main), *memory.reading_values(device, ranks.rank)],
                       device)
    on_device = [] if loss is None else \
        [(~torch.isfinite(loss)).double(), loss.double(), *(v.double() for v in parts.values())]
    row = torch.cat([host[:2], *([torch.stack(on_device)] if on_device else []), host[2:]])
    if ranks.distributed:
        heartbeat.beat("collective")
    rows = D.all_gather(row, ranks).tolist()          # the one read of the step
    k = 2 + len(on_device)                            # where each rank's memory reading starts
    stop, log, readings = any(r[0] for r in rows), any(r[1] for r in rows), [memory.from_values(r[k:]) for r in rows]
    if loss is None:
        return Agreement(stop, log, False, memory=readings)
    mean = [sum(column) / len(rows) for column in zip(*(r[3:k] for r in rows))]      # the loss, its parts
    return Agreement(stop, log, any(r[2] for r in rows), mean[0], dict(zip(parts, mean[1:])), readings)


def end_epoch(trainer, losses: torch.Tensor, started: float) -> None:
    """The epoch's train loss over all ranks, its evaluation, the progress moved to the next
    epoch; on rank 0 `epoch_end`, the best checkpoint and results when the score improved, the
    time-lapse; then every rank's `last` checkpoint."""
    t = trainer
    t.heartbeat.beat("collective")
    D.all_reduce_sum(losses, t.ranks)
    total, count = losses.tolist()
    train_loss = total / max(1.0, count)
    evaluation = None
    if t.val_loader is not None:
        D.sync_buffers(t.model, t.ranks)
        t.heartbeat.beat("validation")
        model = unwrap(t.model)
        model.eval()
        with t.step.autocast():        # the training's precision: as fast, and what the run trains
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
        p.best_metrics = {k: v for k, v in (evaluation.metrics if evaluation else {}).items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool)}
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
