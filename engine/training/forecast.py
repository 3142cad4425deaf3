"""The memory forecast behind `frelon plan` and `--batch-size auto`: measured, not guessed.

How. The configured model (the real task model with random weights: the values do not change the
memory) is put on the target device with the run's checkpointing, freezing and AMP, and trained for
two optimizer steps at two small batch sizes, exactly as the training loop does it: the task's own
loss, the engine's optimizer and param groups, `accumulate` micro-batches, zero_grad(set_to_none).
Each phase of a step has its peak measured:

    forward_backward   activations, gradients, optimizer state, the batch
    optimizer          the optimizer's state and the temporaries of its update
    checkpoint         (CPU only) the copies `rundir.save_checkpoint` makes of model and optimizer

and fitted as peak(b) = fixed + per_sample · b. The forecast at batch b is the largest phase; the
largest batch that fits is the largest b whose forecast stays under the budget less a safety margin.

Where the peak comes from. CUDA: `torch.cuda.max_memory_reserved` (reset before each phase: what
the allocator holds, rounding and fragmentation included), with the free memory read after cuDNN,
cuBLAS and NCCL have made their workspaces. CPU: every allocation and free the torch profiler
records (`profile_memory=True`), summed in time order from the bytes live when it started
(parameters and buffers). The process's own code and the CUDA context are what the margin is for.

With several ranks, each rank also holds DDP's gradient buckets: one flat copy of the trainable
gradients (DistributedDataParallel's default, gradient_as_bucket_view=False). A one-rank DDP skips
them, so they cannot be measured in one process: they are added as that exact byte count. CPU ranks
share the machine's RAM, so on CPU the budget is divided by the number of ranks.
"""
from __future__ import annotations

import gc
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frelon.common.train_config import ConfigError, TrainConfig
from ..errors import ConfigurationError, OutOfMemory
from ..peaks import CpuMeter, CudaMeter, storage_bytes
from .step import Step, check_device_options, freeze_body, make_optimizer, train_mode

MEASURED_BATCHES = (4, 12)       # two small batches; the wider apart, the truer the slope
FALLBACK_BATCHES = ((2, 6), (2, 3))   # when the first pair does not fit (BatchNorm needs 2)
SAFETY_MARGIN = 0.10             # of the budget, kept free (allocator cache, fragmentation, code)
MAX_BATCH = 1024                 # the largest batch the forecast proposes
# --batch-size auto rounds down to a multiple of this (from this size on): the sizes GPU kernels
# tile best, and ones an out-of-memory can split into equal smaller micro-batches (training/run.py)
AUTO_MULTIPLE = 8
STEPS = 2                        # step 2 runs with the optimizer state that step 1 created
_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
          "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


# ---------------------------------------------------------------- budgets

def parse_budget(text: str | int | float) -> int:
    """'8GiB', '512MiB', '2.5GB', '1000000' (bytes) -> bytes. Decimal GB/MB/kB, binary GiB/MiB/KiB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise ConfigError(f"budget: {text!r} is not a memory size "
                          "(examples: 8GiB, 512MiB, 2.5GB, 1000000 for bytes)")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ConfigError(f"budget: must be more than 0 bytes, got {text!r}")
    return value


def default_budget(device: torch.device) -> tuple[int, str]:
    """(bytes, what they are): the GPU's free memory, or the RAM available on the CPU."""
    if device.type == "cuda":
        _warm_up(device)
        gc.collect()
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"free memory of {torch.cuda.get_device_name(device)}"
    import psutil
    return psutil.virtual_memory().available, "available RAM"


def _warm_up(device: torch.device) -> None:
    """Create what the run will hold outside PyTorch's allocator before free memory is read:
    cuDNN's and cuBLAS's handles and workspaces, and NCCL's communicators (over 1 GB with
    several GPUs), which come into being at the first convolution, matmul and collective."""
    x = torch.randn(2, 3, 32, 32, device=device)
    y = torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device=device))
    y.flatten(1) @ y.flatten(1).T
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(torch.zeros(1, device=device))
    torch.cuda.synchronize(device)


# ---------------------------------------------------------------- the measured steps

def resolve_task(cfg: TrainConfig) -> str:
    if cfg.task:
        return cfg.task
    from ..tasks import infer_task
    from frelon.common.run_folder import data_or_sample
    return infer_task(data_or_sample(cfg.data))


def build_model(cfg: TrainConfig, task, num_classes: int) -> nn.Module:
    """The model the run would train (`task`: a tasks/ object), with random weights, checkpointing
    and freezing applied."""
    try:
        model, _ = task.build_model(cfg.replace(weights="none"), [f"c{i}" for i in range(num_classes)])
    except ImportError as e:
        raise ConfigurationError(f"the {task.name} task is not available in this installation ({e})",
                                 hint="use --task classify") from None
    model.set_checkpointing(cfg.checkpointing)
    if cfg.freeze_backbone:
        freeze_body(model)
    return model


@dataclass
class Run:
    """What the measured steps share."""
    cfg: TrainConfig
    task: Any                  # the tasks/ object: its loss, model and batches
    size: int
    num_classes: int
    device: torch.device
    model: nn.Module
    base_bytes: int = 0        # CUDA: bytes reserved before the model (not the run's)


def _training_steps(run: Run, batch_size: int, meter, with_checkpoint: bool) -> None:
    """STEPS optimizer steps at `batch_size` as the training loop runs them, phases measured."""
    from .. import rundir
    cfg = run.cfg
    micro = min(cfg.accumulate, 2)     # from the 2nd micro-batch on, gradients are alive in forward
    train_mode(run.model, cfg.freeze_backbone)
    try:
        with meter.session():
            batch = run.task.synthetic_batch(batch_size, run.size, run.num_classes)
            optimizer = make_optimizer(cfg, run.model)
            step = Step(run.model, run.task, optimizer, cfg, run.device)
            for _ in range(STEPS):
                with meter.phase("forward_backward"):
                    for _ in range(micro):
                        step.micro(batch)
                with meter.phase("optimizer"):
                    # always a real step: fp16 gradients overflow at the scaler's first scales and
                    # scaler.step would skip the update, leaving the optimizer state (AdamW: two
                    # copies of the parameters) unallocated and out of the forecast
                    step.update(cfg.effective_lr(), always=True)
            if with_checkpoint:
                with tempfile.TemporaryDirectory() as tmp, meter.phase("checkpoint"):
                    rundir.save_checkpoint(Path(tmp) / "measured.safetensors", run.model.state_dict(),
                                           {"plan": True}, optimizer, rng=[rundir.rng_state(run.device)])
            del step, optimizer, batch
    finally:
        run.model.zero_grad(set_to_none=True)      # also after an out-of-memory error
        gc.collect()


def measure(run: Run, batch_sizes=MEASURED_BATCHES, checkpoint_phase: bool | None = None) -> dict[str, list[int]]:
    """{phase: [peak bytes at each batch size]} on the run's device. The checkpoint save's copies
    live on the CPU: by default they are measured for CPU runs only, and since they depend on the
    batch only through the batch itself (alive at epoch end), once, at the last size."""
    cuda = run.device.type == "cuda"
    if checkpoint_phase is None:
        checkpoint_phase = not cuda
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
    peaks: dict[str, list[int]] = {}
    for i, b in enumerate(batch_sizes):
        if cuda:
            meter = CudaMeter(run.device, run.base_bytes)
        else:
            meter = CpuMeter(storage_bytes([*run.model.parameters(), *run.model.buffers()]))
        _training_steps(run, b, meter, with_checkpoint=checkpoint_phase and i == len(batch_sizes) - 1)
        for name, value in meter.peaks.items():
            peaks.setdefault(name, []).append(value)
    return peaks


@dataclass(frozen=True)
class Fit:
    """peak(b) = fixed + per_sample · b, in bytes."""
    fixed: float
    per_sample: float

    def at(self, b: int) -> int:
        return int(round(self.fixed + self.per_sample * b))

    def largest_under(self, usable: float) -> float:
        if self.fixed + self.per_sample > usable:
            return 0
        return math.inf if self.per_sample <= 0 else math.floor((usable - self.fixed) / self.per_sample)


def fit_phases(peaks: dict[str, list[int]], batch_sizes, input_bytes_per_sample: int) -> dict[str, Fit]:
    """A line through each phase's two peaks; a phase measured once grows with the batch tensor only."""
    fits = {}
    for name, values in peaks.items():
        if len(values) >= 2:
            (b0, p0), (b1, p1) = (batch_sizes[0], values[0]), (batch_sizes[-1], values[-1])
            k = max(0.0, (p1 - p0) / (b1 - b0))
            fits[name] = Fit(p1 - k * b1, k)
        else:
            k = float(input_bytes_per_sample)
            fits[name] = Fit(values[0] - k * batch_sizes[-1], k)
    return fits


def _ddp_bucket_bytes(model: nn.Module, world_size: int) -> int:
    if world_size <= 1:
        return 0
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- the forecast

@dataclass
class Forecast:
    fits: dict[str, Fit]
    extra: int                 # bytes every phase carries besides what was measured (DDP buckets)
    measured: dict[str, list[int]]
    batch_sizes: tuple[int, ...]

    def peak(self, b: int) -> tuple[int, str]:
        """(forecast peak bytes at batch b, the phase that makes it)."""
        name = max(self.fits, key=lambda n: self.fits[n].at(b))
        return self.fits[name].at(b) + self.extra, name

    def largest_batch(self, usable: float) -> int:
        b = min(f.largest_under(usable - self.extra) for f in self.fits.values())
        return int(min(b, MAX_BATCH))


def prepare(cfg: TrainConfig, device: torch.device, num_classes: int | None = None) -> Run:
    """The configured model on `device` as the run puts it there (its kernels, its memory format),
    ready to be measured (random weights, global RNG untouched). `num_classes`: the scanned
    data's, when known (else counted quickly from the configured data)."""
    from .. import precision
    from ..tasks import get_task
    check_device_options(cfg, device)
    task = get_task(resolve_task(cfg))
    size = cfg.resolved_image_size(task.name)
    task.check_image_size(size)
    n = num_classes or task.class_count(cfg)
    precision.fast_kernels(device)
    if device.type == "cuda":
        _release(device)
    base = torch.cuda.memory_reserved(device) if device.type == "cuda" else 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = build_model(cfg, task, n).to(device)
    if precision.channels_last(device, cfg.amp):
        model.to(memory_format=torch.channels_last)
    return Run(cfg, task, size, n, device, model, base)


def forecast(cfg: TrainConfig, device: torch.device, num_classes: int | None = None) -> tuple[Forecast, Run]:
    """Measure the configured run on `device` (see the module docstring)."""
    run = prepare(cfg, device, num_classes)
    for sizes in (MEASURED_BATCHES, *FALLBACK_BATCHES):
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                measured = measure(run, sizes)
            break
        except (_OOM, RuntimeError) as e:
            if not _is_out_of_memory(e) or sizes == FALLBACK_BATCHES[-1]:
                raise
            _release(device)
    fits = fit_phases(measured, sizes, input_bytes_per_sample=3 * run.size * run.size * 4)
    return Forecast(fits, _ddp_bucket_bytes(run.model, cfg.world_size), measured, sizes), run


def _is_out_of_memory(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, _OOM) or "out of memory" in text or "not enough memory" in text \
        or "can't allocate memory" in text


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _device_label(device: torch.device) -> tuple[str, str]:
    if device.type == "cuda":
        return str(device), torch.cuda.get_device_name(device)
    import platform
    return "cpu", platform.processor() or platform.machine()


def _method(device: torch.device, world_size: int, batch_sizes) -> str:
    how = ("torch.cuda.max_memory_reserved per phase" if device.type == "cuda" else
           "the torch profiler's CPU allocation events (profile_memory=True) summed in time order per "
           "phase, from the parameters' and buffers' bytes; the checkpoint save's copies included")
    ranks = (f"; + DDP gradient buckets (one copy of the trainable gradients) for {world_size} ranks"
             + ("; the RAM budget is shared by the ranks" if device.type == "cpu" else "")) if world_size > 1 else ""
    return (f"measured: {STEPS} training steps (task loss, backward, optimizer) at batch "
            f"{' and '.join(map(str, batch_sizes))} with random weights on {device.type}; peak from "
            f"{how}; each phase fitted as fixed + per_sample * batch, forecast = the largest phase; "
            f"largest batch keeps {SAFETY_MARGIN:.0%} of the budget free{ranks}")


@dataclass(frozen=True)
class Budget:
    total: int                 # bytes: the --budget, or the device's free memory
    source: str
    usable: float              # per rank, less the safety margin


def resolve_budget(budget: str | int | None, device: torch.device, world_size: int) -> Budget:
    """Read before the measurement allocates anything: the free memory is the run's to take."""
    if budget is not None:
        total, source = parse_budget(budget), "--budget"
    else:
        total, source = default_budget(device)
    sharing = world_size if device.type == "cpu" else 1      # CPU ranks share the RAM
    return Budget(total, source, total * (1 - SAFETY_MARGIN) / sharing)


def plan_memory(cfg: TrainConfig, budget: str | int | None = None) -> dict:
    """`frelon plan --json`: the forecast peak per device and the largest batch within the budget."""
    from .. import distributed as D
    device = D.pick_device(cfg.device, cfg.gpus, world_size=cfg.world_size)     # as the run's ranks pick it
    limit = resolve_budget(budget, device, cfg.world_size)
    fc, run = forecast(cfg, device)
    task, size, classes = run.task.name, run.size, run.num_classes
    del run
    _release(device)
    max_batch = fc.largest_batch(limit.usable)
    batch = max_batch if cfg.batch_size == "auto" else int(cfg.batch_size)
    peak, phase = fc.peak(max(1, batch))
    dev, name = _device_label(device)
    return {
        "device": dev, "device_name": name, "backbone": cfg.backbone, "task": task,
        "image_size": size, "num_classes": classes, "checkpointing": cfg.checkpointing,
        "amp": cfg.amp, "world_size": cfg.world_size, "batch_size": batch,
        "predicted_peak_bytes": peak, "fixed_bytes": int(fc.fits[phase].fixed) + fc.extra,
        "per_sample_bytes": int(fc.fits[phase].per_sample), "peak_phase": phase,
        "phases": {k: {"fixed_bytes": int(f.fixed), "per_sample_bytes": int(f.per_sample)}
                   for k, f in fc.fits.items()},
        "measured": {"batch_sizes": list(fc.batch_sizes), "peak_bytes": fc.measured},
        "ddp_bucket_bytes": fc.extra, "budget_bytes": limit.total, "budget_source": limit.source,
        "safety_margin": SAFETY_MARGIN, "max_batch_size": max_batch,
        "method": _method(device, cfg.world_size, fc.batch_sizes),
    }


def auto_batch_size(cfg: TrainConfig, device: torch.device, budget: str | int | None = None,
                    ranks=None, num_classes: int | None = None) -> int:
    """`--batch-size auto`: the largest per-device batch whose forecast fits, at the config's image
    size (settle.py gives the size the run trains at, and the scanned classes). With `ranks`, the
    run's distributed.Ranks, every rank agrees on the smallest of their answers. Raises
    OutOfMemory when not even a batch of 1 fits."""
    import torch.distributed as dist
    limit = resolve_budget(budget, device, cfg.world_size)
    fc, run = forecast(cfg.replace(batch_size=1), device, num_classes)
    del run
    _release(device)
    best = fc.largest_batch(limit.usable)
    if best >= AUTO_MULTIPLE:
        best -= best % AUTO_MULTIPLE
    if ranks is not None and ranks.distributed:
        from .. import distributed as D
        best = int(D.all_reduce(torch.tensor([best], dtype=torch.int64), ranks, dist.ReduceOp.MIN))
    if best < 1:
        peak, _ = fc.peak(1)
        raise OutOfMemory(f"--batch-size auto: even a batch of 1 needs about {peak / 2**30:.2f} GiB, "
                          f"more than the {limit.usable / 2**30:.2f} GiB usable of {limit.source} "
                          f"({limit.total / 2**30:.2f} GiB, {SAFETY_MARGIN:.0%} kept free)",
                          hint="use a smaller --image-size or backbone, --checkpointing stages, or --amp on a GPU")
    return best
