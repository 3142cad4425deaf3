"""`run_training`: the one entry point of training, and `Trainer`, the run it sets up.

The I/O is injected: `writer` receives the events, `should_stop` is polled between steps. The CLI,
the tests, the benchmarks and a notebook call the same function. What differs by task (data,
model, loss, metrics) lives in tasks/; the Trainer sets up the rest — run folder, data, model,
loaders, optimizer, the LR plan (common/schedule.py), DDP, resume — and trains with loop.py.
Failures become `error` events (reports.py).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from frelon.common import schedule
from frelon.common.run_folder import CacheFolder, RunFolder, data_or_sample, run_name
from frelon.common.train_config import TrainConfig, from_dict, from_saved
from frelon.common.version import __version__

from .. import distributed as D
from .. import precision, rundir
from ..backbones import sync_batchnorm
from ..control import EventWriter
from ..data.probing import Pace, scanning
from ..errors import FrelonError
from ..heartbeat import Heartbeat, NoHeartbeat, RescueWatcher
from ..tasks import get_task, infer_task
from . import stopping
from .checkpoints import Progress, emergency_save, restore
from .balancing import sample_weights
from .loaders import auto_workers, build_loaders, pipeline_cost
from .loop import train_epochs
from .reports import RunFailed, error_fields, run_finished_fields, run_started_fields, say_pipeline
from .settle import settle
from .step import Step, check_device_options, freeze_body, make_optimizer, parallel_model


class Trainer:
    """One run on this rank: `setup()` builds it (or restores it with `resume`), `train()` runs
    its epochs. Its attributes are what loop.py, checkpoints.py and the LR finder read: `cfg` is
    the settled config (training/settle.py), assigned once; `batch` and `accumulate` are how this
    device runs each step's share of it (the same global batch; fewer images at a time after an
    out-of-memory)."""
    heartbeat: Heartbeat | NoHeartbeat = NoHeartbeat()       # one process: nobody watches
    rescue: RescueWatcher | None = None                       # rank 0 of several: the stall watchdog's save
    resumed_from: dict | None = None                          # run_started's, after a resume
    lr_choice: dict | None = None                             # run_started's: the features' fit, when measured
    finish_reason: str = ""                                   # run_finished's `reason`: why it ended early (loop.py)
    data_pipeline: dict | None = None                         # run_started's: loaders.pipeline_cost

    def __init__(self, cfg: TrainConfig, writer: EventWriter, should_stop: Callable[[], bool],
                 resume: str | None = None, run_dir: str | None = None, resume_overrides: dict | None = None):
        self.given = cfg                        # as asked; `cfg` is what setup() settles it into
        self.resume_overrides = dict(resume_overrides or {})
        self.writer = writer
        self.should_stop = should_stop
        self.resume_dir = Path(resume).resolve() if resume else None
        self.given_run_dir = Path(run_dir) if run_dir else None
        self.run_dir: Path | None = None
        self.progress = Progress()
        self.started = time.time()
        self.saving = threading.RLock()         # the loop's updates vs. a side thread's save (checkpoints.py)
        self._start: tuple[nn.Module, dict] | None = None

    # -- setup ---------------------------------------------------------
    def setup(self) -> None:
        given = self._asked()
        self.ranks = D.setup(given.device, given.gpus)
        self._open_run(given)
        if self.ranks.distributed and self.run_dir is not None:
            self.heartbeat = Heartbeat(self.run_dir, self.ranks.rank)
            if self.ranks.is_main:
                self.rescue = RescueWatcher(self.run_dir, lambda: emergency_save(self))
        check_device_options(given, self.ranks.device)
        precision.fast_kernels(self.ranks.device)
        seed_everything(given.seed + self.ranks.rank)   # the new head's initialisation, dropout…
        given = given.replace(task=given.task or infer_task(given.data))
        self.task = get_task(given.task)
        self.workers = auto_workers(given)
        self._read_data(given)
        settled = settle(given, self.task, self.scanned, self.ranks, self._start_model)
        self.cfg, self.lr_choice = settled.cfg, settled.lr_choice
        if self.ranks.is_main:
            for message, level in settled.said:
                self.writer.log(message, level)
        cfg = self.cfg
        self.batch, self.accumulate = int(cfg.batch_size), cfg.accumulate
        self.image_size = cfg.image_size
        self.model = self._build_model()
        self._build_loaders()
        self.optimizer = make_optimizer(cfg, self.model)
        self.step = Step(self.model, self.task, self.optimizer, cfg, self.ranks.device, beat=self.heartbeat.beat)
        self.global_batch = cfg.global_batch(self.ranks.world_size)
        self.effective_lr = cfg.effective_lr(self.ranks.world_size)
        if self.resume_dir:
            self.resumed_from = restore(self)
        self.plan = self._lr_plan()
        # --compile, then DDP on several ranks (step.parallel_model, distributed.data_parallel)
        self.model = self.step.model = parallel_model(self.model, self.ranks, cfg)
        if self.ranks.is_main:
            self._write_run_files()

    def _asked(self) -> TrainConfig:
        """The config as asked: a resumed run's own (its config.json, changed by `resume_overrides`),
        or the one given; no data means the bundled sample of the task."""
        cfg = self.given
        if self.resume_dir is not None:
            saved = RunFolder(self.resume_dir).config
            cfg = from_dict(self.resume_overrides, from_saved(rundir.read_json(saved), source=str(saved)))
        return cfg.replace(data=data_or_sample(cfg.data, cfg.task))

    def _open_run(self, given: TrainConfig) -> None:
        """The run folder: the resumed one, the one given (the launcher made it), or on rank 0 a
        new one; rank 0 writes its events there."""
        if self.resume_dir is not None:
            self.run_dir = self.resume_dir
        elif self.given_run_dir is not None:
            self.run_dir = self.given_run_dir
            rundir.make_folders(self.run_dir)
        elif self.ranks.is_main:
            name = run_name(given.name, given.backbone, given.data, given.task)
            self.run_dir = rundir.new_run_dir(given.out, name).resolve()
        if self.ranks.is_main:
            self.writer.attach(RunFolder(self.run_dir).events)

    def _read_data(self, given: TrainConfig) -> None:
        """Rank 0 reads and checks the data once (remembering the probes in the cache folder, its
        pace as `scan_progress` events); the other ranks receive the result."""
        scanned = None
        if self.ranks.is_main:
            cache = CacheFolder(given.out).probes if given.cache == "disk" else None
            pace = Pace(lambda done, total, eta: self.writer.emit("scan_progress", done=done, total=total, eta_s=eta))
            with scanning(cache, pace):
                scanned = self.task.scan(given, self.workers)
        self.scanned = D.broadcast_object(scanned, self.ranks)
        self.classes = self.scanned.classes
        if self.ranks.is_main:
            self.writer.emit("data_report", **self.scanned.report)

    def _start_model(self, cfg: TrainConfig) -> tuple[nn.Module, dict]:
        """The task's model at its start weights (none on a resume: the checkpoint's come later) and
        its preprocessing; built once (the features' fit measures the model that then trains)."""
        if self._start is None:
            weights = "none" if self.resume_dir else cfg.weights
            model, preprocessing = self.task.build_model(cfg.replace(weights=weights), self.classes)
            if not self.resume_dir:
                self._load_whole_model(model, cfg.weights)
            self._start = model, preprocessing
        return self._start

    def _build_model(self) -> nn.Module:
        """The start model with the run's checkpointing, freezing and memory format, on this rank's
        device; a resumed run's preprocessing is its model.json's."""
        cfg = self.cfg
        model, self.preprocessing = self._start_model(cfg)
        self._start = None
        if self.resume_dir:
            self.preprocessing = rundir.read_json(RunFolder(self.run_dir).model)["preprocessing"]
        model.set_checkpointing(cfg.checkpointing)
        if cfg.freeze_backbone:
            freeze_body(model)
        model.to(self.ranks.device)
        if precision.channels_last(self.ranks.device, cfg.amp):
            model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.ranks.distributed:
            model = sync_batchnorm(model)
        return model

    def _load_whole_model(self, model: nn.Module, weights: str) -> None:
        from ..weights import load_matching
        loaded, total = load_matching(model, weights)
        if loaded and self.ranks.is_main:
            self.writer.log(f"--weights {weights}: {loaded} of {total} tensors of the whole model loaded "
                            "(a Frelon checkpoint: the parts beyond the backbone too, where they match)")

    def _build_loaders(self) -> None:
        datasets = self.task.datasets(self.scanned, self.cfg, self.image_size, self.preprocessing)
        loaders = build_loaders(datasets, self.cfg, self.ranks, self.workers, self.batch,
                                sample_weights(self.cfg, self.task, self.scanned))
        self.train_loader, self.val_loader, self.train_sampler = loaders.train, loaders.val, loaders.sampler
        if self.ranks.is_main and self.data_pipeline is None:
            self.data_pipeline = pipeline_cost(datasets[0], self.workers)
        self.steps_per_epoch = self.cfg.steps_per_epoch(len(datasets[0]), self.ranks.world_size)

    def _lr_plan(self) -> schedule.Plan:
        """The LR plan, in this run's steps. After a resume on another number of ranks the steps
        have another size: the plan is the one a run at the new size would follow, shifted so
        that the resume point sits at the same fraction of the training (epochs done)."""
        spe, p = self.steps_per_epoch, self.progress
        offset = 0
        if self.resumed_from and self.resumed_from["world_size_before"] != self.ranks.world_size:
            epochs_done = p.epoch + p.batch_in_epoch / max(1, spe * self.accumulate)
            offset = p.step - round(epochs_done * spe)
        return schedule.Plan.for_config(self.cfg, spe, self.effective_lr, offset=offset)

    def _write_run_files(self) -> None:
        folder = RunFolder(self.run_dir)
        rundir.atomic_write_json(folder.config, self.cfg.to_dict())
        info = {"task": self.cfg.task, "backbone": self.cfg.backbone, "classes": self.classes,
                "num_classes": len(self.classes),
                "preprocessing": {"size": self.image_size, **self.preprocessing},
                "frelon_version": __version__}
        info.update(self.task.model_info())
        rundir.atomic_write_json(folder.model, info)

    # -- training --------------------------------------------------------
    def train(self) -> str:
        """Run the epochs; on a GPU out-of-memory, retry with smaller micro-batches and more of
        them (the same images per step: the same global batch and LR) while they can shrink."""
        while True:
            try:
                return train_epochs(self)
            except torch.OutOfMemoryError:
                if not self._smaller_batches():
                    raise

    def _smaller_batches(self) -> bool:
        """After an out-of-memory: micro-batches at most half as large, whose number per step
        times their size is still this rank's images per step (an odd batch of 15 becomes 3 × 5,
        a prime one 13 × 1): not one image skipped or repeated."""
        per_step = self.batch * self.accumulate
        smaller = max((d for d in range(1, self.batch // 2 + 1) if per_step % d == 0), default=0)
        if not smaller or self.ranks.distributed:   # ranks would have to agree: not attempted
            return False
        self.optimizer.zero_grad(set_to_none=True)     # the partial accumulation is redone
        if self.ranks.device.type == "cuda":
            torch.cuda.empty_cache()
        old = self.batch
        steps_done = self.progress.batch_in_epoch // self.accumulate
        self.batch, self.accumulate = smaller, per_step // smaller
        self.progress.batch_in_epoch = steps_done * self.accumulate   # the same position, in smaller batches
        self._build_loaders()
        self.step.accumulate = self.accumulate         # it divides the loss
        self.step.reset_scaler()      # the failed step may have died inside scaler.step
        self.writer.log(f"out of memory with batches of {old}: continuing with {self.accumulate} batches of "
                        f"{self.batch} a step, as --batch-size {self.batch} --accumulate {self.accumulate} would "
                        "(the same global batch and learning rate)", "warning")
        return True


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_training(cfg: TrainConfig, writer: EventWriter, should_stop: Callable[[], bool],
                 resume: str | None = None, run_dir: str | None = None,
                 resume_overrides: dict | None = None) -> dict:
    """Train; return the run_finished fields. Raises RunFailed after emitting `error` on failure.

    With `resume`, the run folder's saved config is used, changed only by `resume_overrides`
    (e.g. {"epochs": 20} to extend the run, {"processes": 2} to continue on two ranks)."""
    trainer = Trainer(cfg, writer, should_stop, resume=resume, run_dir=run_dir, resume_overrides=resume_overrides)
    stopping.arm(trainer)          # a stop the loop does not take within seconds is answered from the side
    ended_together = False
    try:
        trainer.setup()
        if trainer.ranks.is_main:
            writer.emit("run_started", **run_started_fields(trainer))
            say_pipeline(writer, trainer.data_pipeline)
        status = trainer.train()
        fields = run_finished_fields(trainer, status)
        trainer.heartbeat.beat("done")         # before run_finished: the watchdog reports no more
        if getattr(trainer, "ranks", None) is None or trainer.ranks.is_main:
            writer.emit("run_finished", **fields)
        ended_together = True
        return fields
    except Exception as exc:   # every failure becomes an error event; the checkpoint on disk stays good
        raise _report_failure(trainer, exc) from exc
    finally:
        trainer.heartbeat.close()
        if trainer.rescue:
            trainer.rescue.stop()
        writer.close()
        D.teardown(together=ended_together)


def _report_failure(trainer: Trainer, exc: Exception) -> RunFailed:
    """Emit the failure (rank 0) or leave it in the run folder for the launcher; the RunFailed to raise."""
    ranks = getattr(trainer, "ranks", None)
    main = ranks is None or ranks.is_main
    fields = error_fields(exc)
    # on several ranks, an unexpected failure (usually a collective that lost a peer) is
    # reported by the launcher, which knows from torchrun which rank failed first
    trainer.heartbeat.beat("done")
    if main and (ranks is None or not ranks.distributed or isinstance(exc, FrelonError)):
        trainer.writer.emit("error", **fields)
        trainer.writer.emit("run_finished", **run_finished_fields(trainer, "failed"))
    elif ranks is not None and trainer.run_dir is not None:
        rundir.write_rank_error(trainer.run_dir, ranks.rank, fields)
    line = fields["message"] + (f" — {fields['hint']}" if fields["hint"] else "")
    return RunFailed(line, trainer.run_dir)
