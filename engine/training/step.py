"""One training step, as the training loop, the memory forecast (plan.py) and the LR finder all
run it: the optimizer and its parameter groups, AMP, the model's train mode, the model as trained
(`parallel_model`: torch.compile when asked, then DDP), and `Step` — a micro-batch's forward and
backward, then the optimizer update. The forecast measures the very step the loop takes, because
it calls this code.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from .. import memory, precision
from frelon.common.train_config import TrainConfig
from ..errors import ConfigurationError


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def freeze_body(model: nn.Module) -> None:
    for m in model.body_modules():
        for p in m.parameters():
            p.requires_grad_(False)


def train_mode(model: nn.Module, frozen: bool) -> None:
    model.train()
    if frozen:   # a frozen backbone keeps its ImageNet BN statistics: its BN layers stay in eval
        for m in unwrap(model).body_modules():
            m.eval()


def param_groups(cfg: TrainConfig, model: nn.Module) -> list[dict]:
    """Four groups: the pretrained body and the new parts (× `head_lr_mult`, as `lr_scale`), each
    split into weights and norms/biases (1-D tensors), which get no weight decay (usual for AdamW
    fine-tuning). A body trained from scratch (`--weights none`) is new too: one LR for all."""
    body = {id(p) for m in model.body_modules() for p in m.parameters()}
    head_scale = cfg.head_lr_mult if cfg.weights != "none" else 1.0
    groups = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        scale = 1.0 if id(p) in body else head_scale
        decay = cfg.weight_decay if p.ndim > 1 else 0.0
        groups.setdefault((scale, decay), []).append(p)
    return [{"params": ps, "weight_decay": decay, "lr_scale": scale} for (scale, decay), ps in groups.items()]


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD, or AdamW — fused into one kernel per parameter group on CUDA (a few kernel launches a
    step instead of one per tensor and operation; GradScaler supports it)."""
    groups = param_groups(cfg, model)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.effective_lr(), momentum=0.9, nesterov=True)
    fused = True if _device_of(model).type == "cuda" else None
    return torch.optim.AdamW(groups, lr=cfg.effective_lr(), fused=fused)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def parallel_model(model: nn.Module, ranks, cfg) -> nn.Module:
    """The model as the loop trains it: compiled in place when asked (nn.Module.compile: the same
    module and state-dict keys, so checkpoints do not change), then on several ranks wrapped in
    DDP (distributed.data_parallel) — compiled first, so that DDP's graph splitting sees it.
    DDP's static graph holds where every step runs the same graph with gradient sync: not with
    --accumulate (its micro-batches under no_sync trip DDP's static-graph reducer, measured on
    torch 2.14), nor compiled (torch.compile's DDP optimiser splits the graph itself)."""
    from .. import distributed as D
    compiled = cfg.compile        # off by default: worth its minutes of compiling on long GPU runs only
    if compiled:
        model.compile()
    if ranks.distributed:
        model = D.data_parallel(model, ranks, sync_bn=cfg.sync_bn, static_graph=not compiled and cfg.accumulate == 1)
    return model


def check_device_options(cfg: TrainConfig, device: torch.device) -> None:
    if cfg.amp and device.type != "cuda":
        raise ConfigurationError("--amp needs a CUDA GPU; this run is on the CPU",
                                 hint="drop --amp (mixed precision brings no speed-up on the CPU)")
    if cfg.sync_bn and device.type != "cuda":
        raise ConfigurationError("--sync-bn needs CUDA ranks (SyncBatchNorm has no CPU implementation)",
                                 hint="drop --sync-bn; it helps only with small per-GPU batches on several GPUs")
    if cfg.gpus > 1 and torch.cuda.device_count() < cfg.gpus:
        raise ConfigurationError(f"--gpus {cfg.gpus} asked for, but {torch.cuda.device_count()} GPU(s) are visible",
                                 hint="lower --gpus, or check CUDA_VISIBLE_DEVICES")


def amp(cfg: TrainConfig, device: torch.device):
    """(autocast context factory, GradScaler or None): bf16 where the GPU runs it natively
    (compute capability 8.0 and up), else fp16 with a loss scaler."""
    if not cfg.amp:
        return contextlib.nullcontext, None
    dtype = precision.amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def _no_beat(phase: str) -> None:
    pass


class Step:
    """A training step's moving parts: `micro` runs one micro-batch (forward under autocast, the
    loss ÷ accumulate scaled and backpropagated, DDP's gradient sync skipped on inner micro-batches),
    `update` applies the optimizer at an LR (each group × its `lr_scale`) and clears the
    gradients. `beat(phase)` is told when forward, backward and the update begin (heartbeats)."""

    def __init__(self, model: nn.Module, task, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                 device: torch.device, beat: Callable[[str], None] = _no_beat):
        self.model, self.task, self.optimizer, self.cfg, self.device, self.beat = model, task, optimizer, cfg, device, beat
        self.accumulate = cfg.accumulate       # micro-batches a step: each one's loss is divided by it
        self.autocast, self.scaler = amp(cfg, device)
        self.updated = None     # CUDA: an event recorded after each update (off_the_default_stream)

    def reset_scaler(self) -> None:
        """A fresh loss scaler: after an error inside scaler.step, the old one may hold unscaled
        state and would apply the next gradients still multiplied by its scale."""
        self.autocast, self.scaler = amp(self.cfg, self.device)

    def micro(self, batch, sync: bool = True, count_activations: bool = False):
        """(loss detached, loss parts, images, activation bytes or None) of one micro-batch."""
        ddp = isinstance(self.model, nn.parallel.DistributedDataParallel)
        ctx = self.model.no_sync() if (ddp and not sync) else contextlib.nullcontext()
        counter = memory.ActivationCounter(self.model) if count_activations else None
        with ctx:
            self.beat("forward")
            with self.autocast(), (counter.counting() if counter else contextlib.nullcontext()):
                loss, parts, n = self.task.loss(self.model, batch, self.device)
            self.beat("backward")
            scaled = loss / self.accumulate
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        return loss.detach(), parts, n, (counter.bytes if counter else None)

    def update(self, lr: float, always: bool = False) -> None:
        """The optimizer step at `lr`. With a loss scaler an overflowing step is skipped, unless
        `always` (the memory forecast: the optimizer state must come into being)."""
        self.beat("optimizer")
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        if self.scaler and not always:
            self.scaler.step(self.optimizer)
        else:
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            self.optimizer.step()
        if self.scaler:
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            self.updated = self.updated or torch.cuda.Event()
            self.updated.record()


@contextlib.contextmanager
def off_the_default_stream(device: torch.device, after=None):
    """Run the CUDA work inside (the stall watchdog's emergency save copying the weights to the
    CPU from a side thread) on a stream of its own, ordered only after the event `after` (the last
    update): on the default stream it would queue behind the hung collective's wait and hang too."""
    if device.type != "cuda":
        yield
        return
    side = torch.cuda.Stream(device)
    if after is not None:
        side.wait_event(after)
    with torch.cuda.stream(side):
        yield
