"""What a run says in its events besides checkpoints: `run_started` (the run as set up),
`step` (when one is due, and its speed, ETA, memory, activation figures), `run_finished`, and a
failure as an `error` event's fields, with `RunFailed`, the CLI's one line.
"""
from __future__ import annotations

import time
import traceback
from collections import deque
from pathlib import Path

import torch

from frelon.common import lr_policy, schedule

from frelon.common.train_config import TrainConfig
from frelon.common.run_folder import RunFolder
from ..errors import FrelonError, OutOfMemory

ETA_STEPS = 20          # the ETA: the steps left × the mean time of this many recent steps


class RunFailed(Exception):
    """The run ended with an `error` event; the message is the CLI's one line."""

    def __init__(self, line: str, run_dir: Path | None):
        super().__init__(line)
        self.run_dir = run_dir


def run_started_fields(trainer) -> dict:
    """The set-up Trainer (run.py) as the `run_started` event describes it."""
    t = trainer
    device = t.ranks.device
    return dict(
        run_dir=str(t.run_dir), config=t.cfg.to_dict(), task=t.cfg.task,
        backbone=t.cfg.backbone, classes=t.classes, world_size=t.ranks.world_size,
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        effective_lr=t.effective_lr, global_batch=t.global_batch,
        lr_rule=lr_policy.formula(t.cfg.optimizer, t.global_batch, t.cfg.lr, t.cfg.ref_batch, t.cfg.task),
        head_lr_mult=max(g.get("lr_scale", 1.0) for g in t.optimizer.param_groups),
        batch_per_device=t.batch, accumulate=t.accumulate,
        steps_per_epoch=t.steps_per_epoch, total_steps=t.plan.end_step,
        warmup_steps=t.plan.warmup_steps, lr_schedule=schedule.curve(t.plan),
        preprocessing={"size": t.image_size, **t.preprocessing},
        resumed_from=t.resumed_from, lr_choice=getattr(t, "lr_choice", None),
        data_pipeline=getattr(t, "data_pipeline", None),
        train_images=len(t.train_loader.dataset), val_images=len(t.val_loader.dataset) if t.val_loader else 0)


def say_pipeline(writer, cost: dict | None) -> None:
    """What the data pipeline costs (loaders.pipeline_cost), as a log line after `run_started`."""
    if cost:
        writer.log(f"data pipeline: {cost['ms_per_picture']:.1f} ms a picture (decode + augmentation); "
                   f"{cost['workers']} loader worker(s) deliver about {cost['pictures_per_s']:.0f} pictures/s "
                   "(the step events' data_wait: the share of each step spent waiting for them)")


def run_finished_fields(trainer, status: str) -> dict:
    """The `run_finished` fields of a Trainer in any state, set up or not."""
    p = trainer.progress
    best = None
    if p.best_epoch >= 0:
        task = getattr(trainer, "task", None)
        best = {"epoch": p.best_epoch, "metric": task.best_metric if task is not None else None,
                "score": p.best_score, "metrics": p.best_metrics,
                "path": str(RunFolder(trainer.run_dir).checkpoint("best")) if trainer.run_dir else None}
    fields = dict(status=status, epochs_done=p.epochs_done, best=best, duration_s=time.time() - trainer.started,
                  steps_done=p.step, run_dir=str(trainer.run_dir) if trainer.run_dir else None)
    if getattr(trainer, "finish_reason", ""):
        fields["reason"] = trainer.finish_reason           # a run that ended before --epochs (--patience)
    return fields


class StepLog:
    """When a `step` event is due and what it says, over one pass of the epochs. A step is due
    every `log_every` steps once `log_interval` seconds have passed since the last event, after an
    activation measurement, and at an epoch's or the run's last step (rank 0's clock decides; the
    ranks then agree). Speed: the images since the last event ÷ its time, on every rank; data_wait:
    the share of that time this rank waited for the loader (near 1: the model waits for data)."""

    def __init__(self, cfg: TrainConfig, end_step: int, world_size: int):
        self.every, self.interval = cfg.log_every, cfg.log_interval
        self.end_step, self.world_size = end_step, world_size
        self.last_emit = 0.0
        self.step_times: deque[float] = deque(maxlen=ETA_STEPS)
        self.start_epoch()

    def start_epoch(self) -> None:
        """The clock of a new epoch: the time before it (the last epoch's end) counts for no step."""
        self.step_start = self.window_start = time.perf_counter()
        self.window_images, self.window_wait = 0, 0.0
        self.activations: int | None = None   # measured on the epoch's first micro-batch, sent with the next event

    def due(self, step: int, ends_epoch_or_run: bool) -> bool:
        """Whether this rank wants the step after `step` (steps done) reported."""
        return ((step + 1) % self.every == 0 and time.time() - self.last_emit >= self.interval) \
            or self.activations is not None or ends_epoch_or_run

    def waited(self, seconds: float) -> None:
        """Time spent waiting for the loader's next batch."""
        self.window_wait += seconds

    def stepped(self, images: int) -> None:
        now = time.perf_counter()
        self.step_times.append(now - self.step_start)
        self.step_start = now
        self.window_images += images

    def fields(self, epoch: int, step: int, loss: float, lr: float, parts: dict, memory: list[dict]) -> dict:
        """The `step` event's fields (rank 0)."""
        self.last_emit = time.time()
        eta = (self.end_step - step) * (sum(self.step_times) / len(self.step_times))
        elapsed = max(1e-9, time.perf_counter() - self.window_start)
        fields = dict(epoch=epoch, step=step, loss=loss, lr=lr,
                      samples_per_s=self.window_images * self.world_size / elapsed, eta_s=eta, memory=memory,
                      data_wait=min(1.0, self.window_wait / elapsed))
        if parts:
            fields["loss_parts"] = {k: float(v) for k, v in parts.items()}
        if self.activations is not None:
            fields["activation_bytes"] = self.activations
        return fields

    def reported(self) -> None:
        """After an event (every rank): a new speed window, the activation figure sent."""
        self.window_images, self.window_wait, self.window_start = 0, 0.0, time.perf_counter()
        self.activations = None


def error_fields(exc: BaseException) -> dict:
    """An `error` event's fields: a Frelon error as it says, an out-of-memory and a lost rank in
    words, anything else an internal error; each with its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, FrelonError):
        return dict(kind=exc.kind, message=exc.message, hint=exc.hint, traceback=tb)
    if isinstance(exc, torch.OutOfMemoryError):
        e = OutOfMemory("the GPU ran out of memory",
                        hint="lower --batch-size (with --accumulate to keep the global batch), "
                             "turn on --checkpointing stages, or use --amp")
        return dict(kind=e.kind, message=e.message, hint=e.hint, traceback=tb)
    if isinstance(exc, getattr(torch.distributed, "DistError", ())):
        return dict(kind="distributed", message=f"a rank stopped answering: {str(exc).splitlines()[0]}",
                    hint="see the other ranks' logs; the last checkpoint can be resumed with --resume", traceback=tb)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return dict(kind="internal", message=f"{exc.__class__.__name__}: {first}",
                hint="this is a bug in Frelon; the traceback is in the run's events.jsonl", traceback=tb)
