"""The workloads the figures time: image folders, the engine's training loop, a bare PyTorch loop.

The engine is driven through its own pieces, unchanged: `Trainer(cfg, writer, should_stop).setup()`
then `train()`. For in-memory data, the trainer's `train_loader` is replaced after setup by a list of
ready batches (the loop only iterates it), so the loop itself — micro-step, optimizer step, LR plan,
stop / log agreement, memory readings, events — is what gets timed. Step times come from the
engine's `step` events (harness.StepClock); the engine emits one for every step when steps take
longer than `log_interval` (0.1 s), and the figures that need every step set `log_interval=0`.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from frelon.engine import backbones
from frelon.common.train_config import TrainConfig
from frelon.engine.training.run import Trainer

from harness import StepClock


# ---------------------------------------------------------------- data

def tiny_folder(root: Path, images: int, size: int = 16, classes=("a", "b")) -> Path:
    """`images` small PNGs split over `classes`: enough for the engine's data scan when the
    batches themselves come from memory."""
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return root


def jpeg_folder(root: Path, images: int, size: int) -> tuple[Path, str]:
    """A class-folder set of at least `images` JPEG photos of `size` px, and where they come from:
    bench/real_images.py's crops of real photographs when scikit-image is there, else noise."""
    try:
        import real_images
        classes = len(real_images.CLASSES)
        per_class = -(-images // classes)
        real_images.build(root, per_class, 1, size, seed=0)
        return root / "train", f"real photos (bench/real_images.py), {size} px JPEG"
    except ImportError:
        rng = np.random.default_rng(0)
        for i in range(images):
            folder = root / f"c{i % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            a = (rng.normal(128, 40, (size, size, 3))).clip(0, 255).astype("uint8")
            Image.fromarray(a).save(folder / f"{i:05d}.jpg", quality=90)
        return root, f"noise images, {size} px JPEG (scikit-image missing)"


def memory_batches(n: int, batch: int, size: int, num_classes: int = 2, pin: bool = False) -> list:
    """n classification batches (images, labels) already in memory."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.randn(batch, 3, size, size, generator=g)
        y = torch.randint(0, num_classes, (batch,), generator=g)
        out.append((x.pin_memory(), y.pin_memory()) if pin else (x, y))
    return out


# ---------------------------------------------------------------- the engine

def engine_config(data: Path, **options) -> TrainConfig:
    base = dict(data=str(data), task="classify", backbone="resnet18", weights="none", epochs=1,
                val_split=0.0, workers=0, lr=1e-4, ref_batch=32, warmup_epochs=0.0, seed=0, device="cpu")
    base.update(options)
    return TrainConfig(**base)


def run_engine(cfg: TrainConfig, clock: StepClock, batches: list | None = None) -> list[tuple[int, float]]:
    """Train with the engine; with `batches`, the loop is fed from memory. Returns the step marks
    (step count, time) of its `step` events."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, clock, lambda: False, run_dir=tmp)
        try:
            trainer.setup()
            if batches is not None:
                if not hasattr(trainer, "train_loader"):
                    raise RuntimeError("the engine's Trainer has no train_loader to feed from memory")
                trainer.train_loader = batches
            trainer.train()
        finally:
            clock.close()
    return clock.marks


# ---------------------------------------------------------------- the bare loop

def bare_model(backbone: str, num_classes: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = backbones.build_classifier(backbone, num_classes, weights="none")
    return model.to(device)


def bare_loop(model: torch.nn.Module, batches: list, device: torch.device, warmup: int,
              amp_dtype: torch.dtype | None = None) -> list[tuple[int, float]]:
    """The model's own forward, backward and AdamW step, nothing else. Returns step marks (step
    count, time) like the engine's; on CUDA only the marks at `warmup` and at the end are
    synchronised (use harness.rate(..., how="window") there)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    model.train()
    marks = []
    for i, (x, y) in enumerate(batches, start=1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast():
            loss = F.cross_entropy(model(x).float(), y)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i == warmup or i == len(batches):
            _sync(device)
        marks.append((i, time.perf_counter()))
    return marks


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
