"""`frelon lr-find`: the learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's
`lr_find`, Lightning's LR finder).

The run is set up exactly as `frelon train` would set it up with the same options — data,
augmentation, model from its start weights, optimizer with its parameter groups (the new parts at
`head_lr_mult` ×) — in a temporary folder that is deleted afterwards, on one device. Then, for up
to `steps` optimizer steps, the body's LR grows exponentially from `start_lr` to `end_lr` while
the training loss is recorded (smoothed by an exponential moving average with bias correction, as
fastai does). The sweep stops early once the smoothed loss exceeds 4 × its minimum or is not
finite: the LR is past any useful value. Nothing is saved: the weights the sweep moved are dropped,
the start weights (ImageNet or a file) are only read.

The suggestion is fastai's "valley" rule (fastai.callback.schedule.valley, 2021): the longest
stretch over which the smoothed loss keeps falling, and the LR halfway down it
(written out here because fastai is not a dependency of Frelon; it is twelve lines). It is given
as the effective (body) LR at this run's global batch and as the `--lr` base value that gives that
effective LR under the optimizer's batch rule (common/lr_policy.py), so it can be typed back in.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from frelon.common import lr_policy

from frelon.common.train_config import TrainConfig
from ..control import EventWriter

DEFAULT_STEPS = 100
START_LR = 1e-7
END_LR = 10.0
DIVERGE = 4.0            # stop when the smoothed loss exceeds DIVERGE × its minimum
SMOOTHING = 0.98         # fastai's beta


def valley(lrs: list[float], losses: list[float]) -> int:
    """Index of fastai's "valley" suggestion: halfway along the longest decreasing run of losses
    (longest decreasing subsequence ending at each point, O(n²) on ~100 points)."""
    n = len(losses)
    if n < 3:
        return max(0, n // 2)
    longest = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[i] > longest[end]:
            end = i
            start = end - longest[end]
    third = (end - start) / 3
    return min(n - 1, max(0, start + int(third) + int(third / 2)))


def lr_find(cfg: TrainConfig, steps: int = DEFAULT_STEPS, start_lr: float = START_LR, end_lr: float = END_LR,
            progress: Callable[[int, float, float], None] | None = None) -> dict:
    """Sweep the LR; return {"lrs", "losses" (smoothed), "raw_losses", "suggestion", …} (see module)."""
    from ..training.run import Trainer
    if not 0 < start_lr < end_lr:
        from frelon.common.train_config import ConfigError
        raise ConfigError(f"lr-find: need 0 < --start-lr < --end-lr, got {start_lr} and {end_lr}")
    # the sweep sets every LR itself: a classifier's automatic base (and the features' fit that
    # would choose it, lr_policy.fits_features) is not needed, only the batch rule's factor
    cfg = cfg.replace(gpus=min(cfg.gpus, 1), processes=1, checkpoint_every=0, max_steps=0, epochs=1,
                      lr=lr_policy.base_lr(cfg.optimizer, cfg.lr, cfg.task or "classify"))
    tmp = Path(tempfile.mkdtemp(prefix="frelon-lr-find-"))
    writer = EventWriter(None, enabled=False)
    try:
        trainer = Trainer(cfg, writer, lambda: False, run_dir=str(tmp))
        trainer.setup()
        result = _sweep(trainer, max(2, steps), start_lr, end_lr, progress)
    finally:
        writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        from .. import distributed as D
        D.teardown()
    return result


def _sweep(trainer, steps: int, start_lr: float, end_lr: float, progress) -> dict:
    from ..training.step import train_mode
    cfg = trainer.cfg
    ratio = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs, raw, smooth = [], [], []
    avg, best = 0.0, math.inf
    stopped = "steps"
    train_mode(trainer.model, cfg.freeze_backbone)
    batches = _forever(trainer)
    for i in range(steps):
        lr = start_lr * ratio ** i
        total = 0.0
        for _ in range(cfg.accumulate):
            loss, _, _, _ = trainer.step.micro(next(batches))
            total += float(loss) / cfg.accumulate
        if not math.isfinite(total):
            stopped = "diverged"
            break
        trainer.step.update(lr)
        avg = SMOOTHING * avg + (1 - SMOOTHING) * total
        value = avg / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        raw.append(total)
        smooth.append(value)
        best = min(best, value)
        if progress:
            progress(i + 1, lr, value)
        if value > DIVERGE * best:
            stopped = "diverged"
            break
    if len(lrs) < 2:
        from ..errors import NonFiniteLoss
        raise NonFiniteLoss("the loss was not finite from the first step of the LR sweep",
                            hint="check the data, or lower --start-lr")
    k = valley(lrs, smooth)
    suggested = lrs[k]
    scale = lr_policy.RULES[cfg.optimizer].scale(trainer.global_batch,
                                                  lr_policy.reference_batch(cfg.optimizer, cfg.ref_batch))
    low = min(range(len(smooth)), key=smooth.__getitem__)
    return {
        "lrs": lrs, "losses": smooth, "raw_losses": raw, "steps": len(lrs), "stopped": stopped,
        "start_lr": lrs[0], "end_lr": lrs[-1],
        "suggestion": {"effective_lr": suggested, "lr": suggested / scale, "index": k, "method": "valley"},
        "min_loss": {"effective_lr": lrs[low], "index": low},
        "optimizer": cfg.optimizer, "global_batch": trainer.global_batch, "head_lr_mult": cfg.head_lr_mult,
        "rule": lr_policy.RULES[cfg.optimizer].name, "train_images": len(trainer.train_loader.dataset),
    }


def _forever(trainer):
    """The training batches, epoch after epoch (small sets have fewer batches than sweep steps)."""
    epoch = 0
    while True:
        trainer.train_sampler.set_epoch(epoch)
        empty = True
        for batch in trainer.train_loader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError("no training batch")
        epoch += 1
