"""`run_training`: the training loop shared by classification and detection, on 1 or N ranks.

One entry point with its I/O injected: `writer` receives events, `should_stop` is polled between
steps. The CLI, the tests, the benchmarks and a notebook call the same function. What differs by
task (data, model, loss, metrics) lives in tasks/; this module owns the rest: run folder, samplers
and loaders, optimizer, the LR plan (common/schedule.py), AMP, DDP, gradient accumulation, memory and
activation figures, checkpoints and exact resume, and turning failures into `error` events.
"""
from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from frelon.common import lr_policy, schedule
from frelon.common.samples import default_sample_data

from . import distributed as D
from . import memory, precision, rundir, timelapse
from .backbones import sync_batchnorm
from .config import TrainConfig, from_dict, from_saved
from .control import EventWriter
from .errors import FrelonError, NonFiniteLoss, OutOfMemory
from .heartbeat import Heartbeat, NoHeartbeat, RescueWatcher
from .sampling import Seeded, ShardSampler, TrainSampler
from .step import Step, check_device_options, freeze_body, make_optimizer, train_mode, unwrap
from .tasks import get_task, infer_task


@dataclass
class Progress:
    """The counters a checkpoint stores and a resume restores."""
    epoch: int = 0                  # the epoch in progress (0-based)
    step: int = 0                   # optimizer steps done in the whole run
    batch_in_epoch: int = 0         # micro-batches done in the epoch in progress
    best_score: float = -math.inf
    best_epoch: int = -1
    epochs_done: int = 0
    history: list = field(default_factory=list)


class RunFailed(Exception):
    """The run ended with an `error` event; the message is the CLI's one line."""

    def __init__(self, line: str, run_dir: Path | None):
        super().__init__(line)
        self.run_dir = run_dir


def auto_workers(cfg: TrainConfig) -> int:
    if cfg.workers >= 0:
        return cfg.workers
    return max(0, min(8, (os.cpu_count() or 1) // max(1, cfg.world_size)) - 1)


# ---------------------------------------------------------------- the run

class Trainer:
    heartbeat: Heartbeat | NoHeartbeat = NoHeartbeat()       # one process: nobody watches
    rescue: RescueWatcher | None = None                       # rank 0 of several: the stall watchdog's save

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
        self._saving = threading.Lock()

    # -- setup ---------------------------------------------------------
    def _open_run(self) -> None:
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

    def setup(self) -> None:
        cfg = self.cfg
        self.ranks = D.setup(cfg.device, cfg.gpus)
        self._open_run()
        if self.ranks.distributed and self.run_dir is not None:
            self.heartbeat = Heartbeat(self.run_dir, self.ranks.rank)
            if self.ranks.is_main:
                self.rescue = RescueWatcher(self.run_dir, self._emergency_save)
        cfg = self.cfg
        check_device_options(cfg, self.ranks.device)
        precision.fast_kernels(self.ranks.device)
        if cfg.batch_size == "auto":
            from .plan import auto_batch_size
            self.cfg = cfg = cfg.replace(batch_size=auto_batch_size(cfg, self.ranks.device, ranks=self.ranks))
        _seed_everything(cfg.seed + self.ranks.rank)   # the new head's initialisation, dropout…
        task_name = cfg.task or infer_task(cfg.data)
        self.cfg = cfg = cfg.replace(task=task_name)
        self.task = get_task(task_name)
        self.workers = auto_workers(cfg)

        # rank 0 reads and checks the data once; the other ranks receive the result
        scanned = self.task.scan(cfg, self.workers) if self.ranks.is_main else None
        self.scanned = D.broadcast_object(scanned, self.ranks)
        self.classes = self.scanned.classes
        if self.ranks.is_main:
            self.writer.emit("data_report", **self.scanned.report)

        weights = "none" if self.resume_dir else cfg.weights
        model, self.preprocessing = self.task.build_model(cfg.replace(weights=weights), self.classes)
        if not self.resume_dir:
            self._load_whole_model(model, cfg.weights)
        if self.resume_dir:
            self.preprocessing = rundir.read_json(self.run_dir / "model.json")["preprocessing"]
        self.image_size = cfg.resolved_image_size(task_name, self.scanned.report.get("median_size"))
        self.cfg = cfg = cfg.replace(image_size=self.image_size)     # config.json records the size used
        model.set_checkpointing(cfg.checkpointing)
        if cfg.freeze_backbone:
            freeze_body(model)
        model.to(self.ranks.device)
        if precision.channels_last(self.ranks.device, cfg.amp):
            model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.ranks.distributed:
            model = sync_batchnorm(model)
        self.model = model
        self._build_loaders()
        self.optimizer = make_optimizer(cfg, model)
        self.step = Step(model, self.task, self.optimizer, cfg, self.ranks.device, beat=self.heartbeat.beat)

        self.steps_per_epoch = max(1, len(self.train_loader) // cfg.accumulate)
        self.global_batch = cfg.global_batch(self.ranks.world_size)
        self.effective_lr = cfg.effective_lr(self.ranks.world_size)
        if self.resume_dir:
            self._restore()
        self.plan = self._plan()
        if self.ranks.distributed:
            # non-reentrant checkpointing works with DDP; find_unused_parameters must stay off
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.ranks.device.index] if self.ranks.device.type == "cuda" else None)
            self.step.model = self.model
        if self.ranks.is_main:
            self._write_run_files()

    def _load_whole_model(self, model: nn.Module, weights: str) -> None:
        from .weights import load_matching
        loaded, total = load_matching(model, weights)
        if loaded and self.ranks.is_main:
            self.writer.log(f"--weights {weights}: {loaded} of {total} tensors of the whole model loaded "
                            "(a Frelon checkpoint: the parts beyond the backbone too, where they match)")

    def _build_loaders(self) -> None:
        cfg, ranks = self.cfg, self.ranks
        train_ds, val_ds, collate = self.task.datasets(self.scanned, cfg, self.image_size, self.preprocessing)
        per_rank = math.ceil(len(train_ds) / ranks.world_size)
        batch = int(cfg.batch_size)
        if per_rank < batch:
            # a set smaller than one batch still trains: one (smaller) batch per epoch
            batch = max(1, per_rank)
            if ranks.is_main:
                self.writer.log(f"the training set has {len(train_ds)} images, fewer than one batch of "
                                f"{cfg.batch_size} per rank: using batches of {batch}", "warning")
        self.batch = batch
        self.train_sampler = TrainSampler(len(train_ds), ranks.world_size, ranks.rank, cfg.seed)
        common = dict(num_workers=self.workers, collate_fn=collate,
                      pin_memory=ranks.device.type == "cuda",
                      persistent_workers=self.workers > 0,
                      # the loader's own generator: creating an iterator must not consume the
                      # global RNG, or a resumed run would drift from an uninterrupted one
                      generator=torch.Generator().manual_seed(cfg.seed))
        self.train_loader = DataLoader(Seeded(train_ds), batch_size=batch, sampler=self.train_sampler,
                                       drop_last=True, **common)
        self.val_loader = None
        if val_ds is not None and len(val_ds) > 0:
            self.val_loader = DataLoader(Seeded(val_ds), batch_size=batch,
                                         sampler=ShardSampler(len(val_ds), ranks.world_size, ranks.rank), **common)

    def _plan(self) -> schedule.Plan:
        """The LR plan, in this run's steps. After a resume on another number of ranks the steps
        have another size: the plan is the one a run at the new size would follow, shifted so
        that the resume point sits at the same fraction of the training (epochs done)."""
        cfg, spe, p = self.cfg, self.steps_per_epoch, self.progress
        total = spe * cfg.epochs
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        offset = 0
        if getattr(self, "resumed_from", None) and self.resumed_from["world_size_before"] != self.ranks.world_size:
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

    def _restore(self) -> None:
        weights, meta, rest = rundir.load_checkpoint(self.run_dir / "checkpoints" / "last.safetensors")
        self.model.load_state_dict(weights)
        rundir.restore_optimizer(self.optimizer, meta, rest)
        p = meta["progress"]
        self.progress = Progress(**p)
        old_ws = meta.get("world_size", 1)
        if old_ws != self.ranks.world_size and self.progress.batch_in_epoch:
            # another number of ranks reorders the epoch: start the interrupted epoch's remaining
            # share at the same fraction of the epoch
            frac = self.progress.batch_in_epoch / max(1, meta.get("micro_batches_per_epoch", 1))
            self.progress.batch_in_epoch = int(frac * len(self.train_loader)) // self.cfg.accumulate * self.cfg.accumulate
        rundir.set_rng_state(rest, meta["rng"], self.ranks.rank, self.ranks.device)
        if self.step.scaler and meta.get("scaler"):
            self.step.scaler.load_state_dict(meta["scaler"])
        self.resumed_from = {"epoch": self.progress.epoch, "step": self.progress.step,
                             "world_size_before": old_ws, "world_size": self.ranks.world_size}

    # -- events -----------------------------------------------------------
    def _run_started(self) -> None:
        self.writer.emit(
            "run_started", run_dir=str(self.run_dir), config=self.cfg.to_dict(), task=self.cfg.task,
            backbone=self.cfg.backbone, classes=self.classes, world_size=self.ranks.world_size,
            device=str(self.ranks.device) if self.ranks.device.type == "cpu" else torch.cuda.get_device_name(self.ranks.device),
            effective_lr=self.effective_lr, global_batch=self.global_batch,
            lr_rule=lr_policy.formula(self.cfg.optimizer, self.global_batch, self.cfg.lr, self.cfg.ref_batch),
            head_lr_mult=max(g.get("lr_scale", 1.0) for g in self.optimizer.param_groups),
            batch_per_device=self.batch, accumulate=self.cfg.accumulate,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.plan.end_step,
            warmup_steps=self.plan.warmup_steps, lr_schedule=schedule.curve(self.plan),
            preprocessing={"size": self.image_size, **self.preprocessing},
            resumed_from=getattr(self, "resumed_from", None),
            train_images=len(self.train_loader.dataset), val_images=len(self.val_loader.dataset) if self.val_loader else 0)

    # -- checkpoints -------------------------------------------------------
    def _save_last(self, epoch: int) -> None:
        """Every rank calls this (its random states go into the checkpoint); rank 0 writes."""
        self.heartbeat.beat("checkpoint")
        rng = D.gather_objects(rundir.rng_state(self.ranks.device), self.ranks)
        if self.ranks.is_main:
            self._write_last(epoch, rng)

    def _write_last(self, epoch: int, rng: list[dict]) -> Path:
        path = self.run_dir / "checkpoints" / "last.safetensors"
        meta = {"progress": self.progress.__dict__, "config": self.cfg.to_dict(),
                "world_size": self.ranks.world_size, "micro_batches_per_epoch": len(self.train_loader),
                "classes": self.classes, "scaler": self.step.scaler.state_dict() if self.step.scaler else None}
        with self._saving:        # the stall watchdog's thread may save too
            _write_checkpoint(path, unwrap(self.model).state_dict(), meta, self.optimizer, rng=rng)
        self.writer.emit("checkpoint", path=str(path), epoch=epoch, step=self.progress.step, best=False,
                         epoch_complete=self.progress.batch_in_epoch == 0)
        return path

    def _save_best(self, epoch: int) -> None:
        path = self.run_dir / "checkpoints" / "best.safetensors"
        meta = {"epoch": epoch, "step": self.progress.step, "score": self.progress.best_score,
                "metric": self.task.best_metric, "classes": self.classes}
        _write_checkpoint(path, unwrap(self.model).state_dict(), meta)
        self.writer.emit("checkpoint", path=str(path), epoch=epoch, step=self.progress.step, best=True,
                         epoch_complete=True)

    # -- the loop ------------------------------------------------------------
    def _agree(self, stop: bool, want_log: bool, diverged: bool) -> tuple[bool, bool, bool]:
        """(stop, log, diverged) agreed by every rank in one small collective a step: any rank can
        stop the run or report a non-finite loss; rank 0's clock decides when to log."""
        if not self.ranks.distributed:
            return stop, want_log, diverged
        self.heartbeat.beat("collective")
        flags = torch.tensor([float(stop), float(want_log and self.ranks.is_main), float(diverged)],
                             device=self.ranks.device)
        D.all_reduce_sum(flags, self.ranks)
        return bool(flags[0] > 0), bool(flags[1] > 0), bool(flags[2] > 0)

    def _memory(self) -> list[dict]:
        mine = memory.reading_tensor(self.ranks.device, self.ranks.rank)
        self.heartbeat.beat("collective")
        return [memory.from_tensor(row) for row in D.all_gather(mine, self.ranks)]

    def train(self) -> str:
        """Run the epochs; on a GPU out-of-memory, retry with half the batch and twice the
        accumulation (same global batch, same LR) while the batch can be halved."""
        while True:
            try:
                return self._train_epochs()
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

    def _batches(self):
        """The training batches, the wait for each one a `data` phase."""
        it = iter(self.train_loader)
        while True:
            self.heartbeat.beat("data")
            try:
                batch = next(it)
            except StopIteration:
                return
            yield batch

    def _emergency_save(self) -> dict:
        """The stall watchdog's last resort, run on rank 0 by RescueWatcher's thread while the
        ranks are stuck in a collective: the weights and optimizer are those of the last
        completed step (every rank holds the same), so rank 0 alone saves them — with its own
        random states only. Not while this rank is inside an optimizer step or a save."""
        if self.heartbeat.phase in ("optimizer", "checkpoint", "setup"):
            return {"saved": False, "reason": f"rank 0 is in phase {self.heartbeat.phase}"}
        path = self._write_last(self.progress.epoch, [rundir.rng_state(self.ranks.device)])
        return {"saved": True, "step": self.progress.step, "path": str(path)}

    def _train_epochs(self) -> str:
        cfg, ranks, p = self.cfg, self.ranks, self.progress
        acc = cfg.accumulate
        micro_per_epoch = self.steps_per_epoch * acc
        last_emit = 0.0
        step_times: list[float] = []
        while p.epoch < cfg.epochs and p.step < self.plan.end_step:
            epoch_start = time.time()
            skip = p.batch_in_epoch
            self.train_sampler.set_epoch(p.epoch, skip=skip * self.batch)
            train_mode(self.model, cfg.freeze_backbone)
            losses = torch.zeros(2, dtype=torch.float64)      # sum, count over this epoch (this rank)
            measured_activations = False
            pending_activations = None       # measured on the epoch's first micro-batch, sent with the next step event
            micro = skip
            t_step = window_start = time.perf_counter()
            window_samples = 0
            accum_loss = torch.zeros((), device=ranks.device)
            for batch in self._batches():
                if micro >= micro_per_epoch:
                    break
                sync = (micro + 1) % acc == 0
                loss, parts, n, act = self.step.micro(batch, sync, count_activations=not measured_activations)
                measured_activations = True
                if act is not None:
                    pending_activations = act
                accum_loss += loss
                micro += 1
                window_samples += n
                if not sync:
                    continue
                mean_loss = accum_loss / acc
                accum_loss = torch.zeros((), device=ranks.device)
                lr = schedule.lr_at(p.step, self.plan)
                ends_epoch_or_run = micro >= micro_per_epoch or p.step + 1 >= self.plan.end_step
                want_log = ((p.step + 1) % cfg.log_every == 0 and time.time() - last_emit >= cfg.log_interval) \
                    or pending_activations is not None or ends_epoch_or_run
                stop, log, diverged = self._agree(self.should_stop(), want_log, not bool(torch.isfinite(mean_loss)))
                if diverged:
                    raise NonFiniteLoss(f"the loss became {float(mean_loss)} at step {p.step + 1} (epoch {p.epoch + 1})",
                                        hint=f"lower the learning rate (effective LR was {lr:.3g}), check the data, "
                                             "or turn off --amp")
                self.step.update(lr)
                p.step += 1
                self.heartbeat.step = p.step
                p.batch_in_epoch = micro
                value = float(mean_loss)
                losses += torch.tensor([value, 1.0], dtype=torch.float64)
                now = time.perf_counter()
                step_times.append(now - t_step)
                t_step = now
                if log:
                    mem = self._memory()
                    if ranks.is_main:
                        last_emit = time.time()
                        recent = step_times[-20:]
                        eta = (self.plan.end_step - p.step) * (sum(recent) / len(recent))
                        elapsed = max(1e-9, time.perf_counter() - window_start)
                        fields = dict(epoch=p.epoch, step=p.step, loss=value, lr=lr,
                                      samples_per_s=window_samples * ranks.world_size / elapsed,
                                      eta_s=eta, memory=mem)
                        if parts:
                            fields["loss_parts"] = {k: float(v) for k, v in parts.items()}
                        if pending_activations is not None:
                            fields["activation_bytes"] = pending_activations
                        self.writer.emit("step", **fields)
                    window_samples, window_start = 0, time.perf_counter()
                    pending_activations = None
                if cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0 and micro < micro_per_epoch:
                    self._save_last(p.epoch)
                if stop or p.step >= self.plan.end_step:
                    break
            if p.step < self.plan.end_step and micro < micro_per_epoch:
                # stopped inside the epoch: save where we are, the next run continues from here
                self._save_last(p.epoch)
                return "stopped"
            self._end_epoch(losses, epoch_start)
            if self._agree(self.should_stop(), False, False)[0] and p.epoch < cfg.epochs and p.step < self.plan.end_step:
                return "stopped"
        return "completed"

    def _end_epoch(self, losses: torch.Tensor, epoch_start: float) -> None:
        p = self.progress
        self.heartbeat.beat("collective")
        D.all_reduce_sum(losses, self.ranks)
        train_loss = float(losses[0] / max(1.0, float(losses[1])))
        evaluation = None
        if self.val_loader is not None:
            self.heartbeat.beat("validation")
            model = unwrap(self.model)
            model.eval()
            evaluation = self.task.evaluate(model, self.val_loader, self.ranks.device, self.ranks, self.classes)
        val = evaluation.metrics if evaluation else {}
        score = evaluation.score if evaluation else -train_loss
        finished_epoch = p.epoch
        p.epochs_done = finished_epoch + 1
        p.epoch += 1
        p.batch_in_epoch = 0
        improved = score > p.best_score
        if improved:
            p.best_score, p.best_epoch = score, finished_epoch
        p.history.append({"epoch": finished_epoch, "train_loss": train_loss, "score": score})
        if self.ranks.is_main:
            self.writer.emit("epoch_end", epoch=finished_epoch, train_loss=train_loss, val=val,
                             duration_s=time.time() - epoch_start, step=p.step)
            if improved:
                self._save_best(finished_epoch)
                if evaluation is not None:
                    self.task.write_results(self.run_dir, evaluation, self.classes, self.scanned.val)
            if evaluation is not None:      # the time-lapse: a fixed handful of images, epoch by epoch
                self._record_timelapse(evaluation, finished_epoch)
        self._save_last(finished_epoch)

    def _record_timelapse(self, evaluation, epoch: int) -> None:
        """A view of the run, not the run: a file that cannot be written costs a warning only."""
        try:
            timelapse.record_epoch(self.run_dir, self.task.name, evaluation.details, self.scanned.val,
                                   self.classes, epoch, self.cfg.seed)
        except OSError as e:
            self.writer.log(f"the time-lapse of epoch {epoch + 1} could not be written: {e.strerror or e}", "warning")

    def finish_fields(self, status: str) -> dict:
        p = self.progress
        best = None
        if p.best_epoch >= 0:
            best = {"epoch": p.best_epoch, "metric": self.task.best_metric if hasattr(self, "task") else None,
                    "score": p.best_score,
                    "path": str(self.run_dir / "checkpoints" / "best.safetensors") if self.run_dir else None}
        return dict(status=status, epochs_done=p.epochs_done, best=best, duration_s=time.time() - self.started,
                    steps_done=p.step, run_dir=str(self.run_dir) if self.run_dir else None)


class CheckpointWriteError(FrelonError):
    kind = "io"


def _write_checkpoint(path: Path, *args, **kwargs) -> None:
    try:
        rundir.save_checkpoint(path, *args, **kwargs)
    except OSError as e:
        raise CheckpointWriteError(
            f"could not write the checkpoint {path}: {e.strerror or e}",
            hint=f"free space on that disk (or fix its permissions), then continue with "
                 f"frelon train --resume {path.parent.parent}; the previous checkpoint is intact") from None


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _version() -> str:
    from frelon import __version__
    return __version__


def _error_fields(exc: BaseException) -> dict:
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


def run_training(cfg: TrainConfig, writer: EventWriter, should_stop: Callable[[], bool],
                 resume: str | None = None, run_dir: str | None = None,
                 resume_overrides: dict | None = None) -> dict:
    """Train; return the run_finished fields. Raises RunFailed after emitting `error` on failure.

    With `resume`, the run folder's saved config is used, changed only by `resume_overrides`
    (e.g. {"epochs": 20} to extend the run, {"processes": 2} to continue on two ranks)."""
    trainer = Trainer(cfg, writer, should_stop, resume=resume, run_dir=run_dir, resume_overrides=resume_overrides)
    ended_together = False
    try:
        trainer.setup()
        if trainer.ranks.is_main:
            trainer._run_started()
        status = trainer.train()
        fields = trainer.finish_fields(status)
        trainer.heartbeat.beat("done")         # before run_finished: the watchdog reports no more
        if getattr(trainer, "ranks", None) is None or trainer.ranks.is_main:
            writer.emit("run_finished", **fields)
        ended_together = True
        return fields
    except Exception as exc:   # every failure becomes an error event; the checkpoint on disk stays good
        ranks = getattr(trainer, "ranks", None)
        main = ranks is None or ranks.is_main
        fields = _error_fields(exc)
        # on several ranks, an unexpected failure (usually a collective that lost a peer) is
        # reported by the launcher, which knows from torchrun which rank failed first
        trainer.heartbeat.beat("done")
        if main and (ranks is None or not ranks.distributed or isinstance(exc, FrelonError)):
            writer.emit("error", **fields)
            writer.emit("run_finished", **trainer.finish_fields("failed"))
        elif ranks is not None and trainer.run_dir is not None:
            rundir.write_rank_error(trainer.run_dir, ranks.rank, fields)
        line = fields["message"] + (f" — {fields['hint']}" if fields["hint"] else "")
        raise RunFailed(line, trainer.run_dir) from exc
    finally:
        trainer.heartbeat.close()
        if trainer.rescue:
            trainer.rescue.stop()
        writer.close()
        D.teardown(together=ended_together)
