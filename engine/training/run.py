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

from frelon.common import lr_policy, schedule
from frelon.common.samples import default_sample_data

from .. import distributed as D
from .. import precision, rundir
from ..backbones import sync_batchnorm
from ..config import TrainConfig, from_dict, from_saved
from ..control import EventWriter
from ..errors import FrelonError
from ..heartbeat import Heartbeat, NoHeartbeat, RescueWatcher
from ..tasks import get_task, infer_task
from . import stopping
from .checkpoints import Progress, emergency_save, restore
from .loaders import auto_workers, build_loaders
from .loop import train_epochs
from .reports import RunFailed, error_fields, run_finished_fields, run_started_fields
from .step import Step, check_device_options, freeze_body, make_optimizer


class Trainer:
    """One run on this rank: `setup()` builds it (or restores it with `resume`), `train()` runs
    its epochs. Its attributes are what loop.py, checkpoints.py and the LR finder read."""
    heartbeat: Heartbeat | NoHeartbeat = NoHeartbeat()       # one process: nobody watches
    rescue: RescueWatcher | None = None                       # rank 0 of several: the stall watchdog's save
    resumed_from: dict | None = None                          # run_started's, after a resume

    def __init__(self, cfg: TrainConfig, writer: EventWriter, should_stop: Callable[[], bool],
                 resume: str | None = None, run_dir: str | None = None, resume_overrides: dict | None = None):
        self.cfg = cfg
        self.resume_overrides = dict(resume_overrides or {})
        self.writer = writer
        self.should_stop = should_stop
        self.resume_dir = Path(resume) if resume else None
        self.given_run_dir = Path(run_dir) if run_dir else None
        self.run_dir: Path | None = None
        self.progress = Progress()
        self.started = time.time()
        self.saving = threading.RLock()         # the loop's updates vs. a side thread's save (checkpoints.py)

    # -- setup ---------------------------------------------------------
    def setup(self) -> None:
        self.ranks = D.setup(self.cfg.device, self.cfg.gpus)
        self._open_run()
        if self.ranks.distributed and self.run_dir is not None:
            self.heartbeat = Heartbeat(self.run_dir, self.ranks.rank)
            if self.ranks.is_main:
                self.rescue = RescueWatcher(self.run_dir, lambda: emergency_save(self))
        self._settle_config()
        self._read_data()
        self.model = self._build_model()
        self._build_loaders()
        self.lr_choice = self._choose_lr()
        cfg = self.cfg
        self.optimizer = make_optimizer(cfg, self.model)
        self.step = Step(self.model, self.task, self.optimizer, cfg, self.ranks.device, beat=self.heartbeat.beat)
        self.steps_per_epoch = max(1, len(self.train_loader) // cfg.accumulate)
        self.global_batch = cfg.global_batch(self.ranks.world_size)
        self.effective_lr = cfg.effective_lr(self.ranks.world_size)
        if self.resume_dir:
            self.resumed_from = restore(self)
        self.plan = self._plan()
        if self.ranks.distributed:
            # non-reentrant checkpointing works with DDP; find_unused_parameters must stay off
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.ranks.device.index] if self.ranks.device.type == "cuda" else None)
            self.step.model = self.model
        if self.ranks.is_main:
            self._write_run_files()

    def _open_run(self) -> None:
        """The run folder: the resumed one (its saved config, changed by `resume_overrides`), the
        one given (the launcher made it), or on rank 0 a new one; rank 0 writes its events there."""
        cfg = self.cfg
        if self.resume_dir is not None:
            self.run_dir = self.resume_dir = self.resume_dir.resolve()
            saved = rundir.read_json(self.resume_dir / "config.json")
            self.cfg = from_dict(self.resume_overrides, from_saved(saved, source=str(self.resume_dir / "config.json")))
        elif self.given_run_dir is not None:
            self.run_dir = self.given_run_dir
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "predictions").mkdir(exist_ok=True)
        elif self.ranks.is_main:
            if not cfg.data:
                self.cfg = cfg = cfg.replace(data=default_sample_data(cfg.task))
            name = cfg.name or f"{cfg.backbone}-{Path(cfg.data).name or 'data'}"
            self.run_dir = rundir.new_run_dir(cfg.out, name).resolve()
        if not self.cfg.data:
            self.cfg = self.cfg.replace(data=default_sample_data(self.cfg.task))
        if self.ranks.is_main:
            self.writer.attach(self.run_dir / "events.jsonl")

    def _settle_config(self) -> None:
        """The device's checks and kernels, `--batch-size auto`, the seeds, the task."""
        cfg = self.cfg
        check_device_options(cfg, self.ranks.device)
        precision.fast_kernels(self.ranks.device)
        if cfg.batch_size == "auto":
            from .plan import auto_batch_size
            cfg = cfg.replace(batch_size=auto_batch_size(cfg, self.ranks.device, ranks=self.ranks))
        seed_everything(cfg.seed + self.ranks.rank)   # the new head's initialisation, dropout…
        self.cfg = cfg.replace(task=cfg.task or infer_task(cfg.data)).pinned_lr()
        self.task = get_task(self.cfg.task)
        self.workers = auto_workers(self.cfg)

    def _read_data(self) -> None:
        """Rank 0 reads and checks the data once; the other ranks receive the result."""
        scanned = self.task.scan(self.cfg, self.workers) if self.ranks.is_main else None
        self.scanned = D.broadcast_object(scanned, self.ranks)
        self.classes = self.scanned.classes
        if self.ranks.is_main:
            self.writer.emit("data_report", **self.scanned.report)

    def _build_model(self) -> nn.Module:
        """The task's model with its starting weights (none on a resume: the checkpoint's come
        later), at the image size the data asks for, on this rank's device."""
        cfg = self.cfg
        weights = "none" if self.resume_dir else cfg.weights
        model, self.preprocessing = self.task.build_model(cfg.replace(weights=weights), self.classes)
        if self.resume_dir:
            self.preprocessing = rundir.read_json(self.run_dir / "model.json")["preprocessing"]
        else:
            self._load_whole_model(model, cfg.weights)
        self.image_size = cfg.resolved_image_size(cfg.task, self.scanned.report.get("median_size"))
        self.cfg = cfg = cfg.replace(image_size=self.image_size)     # config.json records the size used
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
        loaders = build_loaders(datasets, self.cfg, self.ranks, self.workers, self.writer)
        self.train_loader, self.val_loader, self.train_sampler, self.batch = \
            loaders.train, loaders.val, loaders.sampler, loaders.batch

    def _choose_lr(self) -> dict | None:
        """A classifier's automatic base LR, from how well the start weights' features already
        separate the training classes (lr_policy.fitted; training/feature_fit.py). Measured on rank
        0, given to the others. None when the LR is given, pinned by a resumed run, or a detector's."""
        cfg = self.cfg
        if self.resume_dir or not lr_policy.fits_features(cfg.optimizer, cfg.lr, cfg.task):
            return None
        measured = None
        if self.ranks.is_main:
            from .feature_fit import feature_fit
            dataset = self.task.probe_dataset(self.scanned, self.image_size, self.preprocessing)
            measured = feature_fit(self.model, dataset, self.ranks.device, len(self.classes), cfg.seed)
        measured = D.broadcast_object(measured, self.ranks)
        self.cfg = cfg.replace(lr=lr_policy.base_lr(cfg.optimizer, 0.0, cfg.task, measured["fit"]))
        choice = {**measured, "base_lr": self.cfg.lr}
        if self.ranks.is_main:
            self.writer.log(lr_policy.fit_in_words(cfg.optimizer, choice["fit"], choice["images"]))
        return choice

    def _plan(self) -> schedule.Plan:
        """The LR plan, in this run's steps. After a resume on another number of ranks the steps
        have another size: the plan is the one a run at the new size would follow, shifted so
        that the resume point sits at the same fraction of the training (epochs done)."""
        cfg, spe, p = self.cfg, self.steps_per_epoch, self.progress
        total = spe * cfg.epochs
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        offset = 0
        if self.resumed_from and self.resumed_from["world_size_before"] != self.ranks.world_size:
            epochs_done = p.epoch + p.batch_in_epoch / max(1, spe * cfg.accumulate)
            offset = p.step - round(epochs_done * spe)
        warmup = lr_policy.warmup_steps(total, spe, cfg.warmup_epochs)
        return schedule.Plan(self.effective_lr, total, warmup, cfg.schedule, offset=offset)

    def _write_run_files(self) -> None:
        rundir.atomic_write_json(self.run_dir / "config.json", self.cfg.to_dict())
        info = {"task": self.cfg.task, "backbone": self.cfg.backbone, "classes": self.classes,
                "num_classes": len(self.classes),
                "preprocessing": {"size": self.image_size, **self.preprocessing},
                "frelon_version": _version()}
        info.update(self.task.model_info())
        rundir.atomic_write_json(self.run_dir / "model.json", info)

    # -- training --------------------------------------------------------
    def train(self) -> str:
        """Run the epochs; on a GPU out-of-memory, retry with half the batch and twice the
        accumulation (same global batch, same LR) while the batch can be halved."""
        while True:
            try:
                return train_epochs(self)
            except torch.OutOfMemoryError:
                if not self._halve_batch():
                    raise

    def _halve_batch(self) -> bool:
        if self.batch < 2 or self.ranks.distributed:   # ranks would have to agree: not attempted
            return False
        self.optimizer.zero_grad(set_to_none=True)     # the partial accumulation is redone
        if self.ranks.device.type == "cuda":
            torch.cuda.empty_cache()
        old = self.batch
        self.cfg = self.cfg.replace(batch_size=old // 2, accumulate=self.cfg.accumulate * 2)
        self.progress.batch_in_epoch *= 2              # the same position, in half-size batches
        self._build_loaders()
        self.steps_per_epoch = max(1, len(self.train_loader) // self.cfg.accumulate)
        self.step.cfg = self.cfg                       # its accumulation divides the loss
        self.step.reset_scaler()      # the failed step may have died inside scaler.step
        self.writer.log(f"out of memory with batches of {old}: continuing with batches of {self.batch} and "
                        f"--accumulate {self.cfg.accumulate} (same global batch and learning rate)", "warning")
        return True


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _version() -> str:
    from frelon import __version__
    return __version__


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
