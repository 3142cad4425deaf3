"""Run under torchrun with 2 CPU ranks by test_ddp_accumulate.py: gradient accumulation through the
engine's own micro-step (`step.Step.micro`: `no_sync` on inner steps, the loss divided by
--accumulate) under DDP, against one process on the joined batch of every micro-batch.

Writes rank 0's findings to the JSON file given as argv[1]."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from frelon.engine import distributed as D
from frelon.engine.backbones import build_classifier
from frelon.common.train_config import TrainConfig
from frelon.engine.training.step import Step
from frelon.engine.tasks.classify import ClassifyTask

ACCUMULATE, MICRO = 3, 2            # 3 micro-batches of 2 images per rank, 2 ranks: 12 images a step


def grads(model) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def main(out: str) -> None:
    ranks = D.setup("cpu", 0)
    torch.manual_seed(0)
    model, _ = build_classifier("resnet18", 3, weights="none")
    model.eval()     # BN in eval: each rank would otherwise normalise with its own half-batch (see --sync-bn)
    ddp = D.data_parallel(model, ranks)     # the engine's DDP (gradients as bucket views), as with --accumulate
    cfg = TrainConfig(accumulate=ACCUMULATE)
    step = Step(ddp, ClassifyTask(), torch.optim.SGD(model.parameters(), lr=0.1), cfg, ranks.device)
    g = torch.Generator().manual_seed(1)
    n = ACCUMULATE * MICRO * ranks.world_size
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 3, (n,), generator=g)
    # rank r's micro-batch k: the images the engine's sampler would hand it (any fixed split will do)
    mine = [slice((k * ranks.world_size + ranks.rank) * MICRO, (k * ranks.world_size + ranks.rank + 1) * MICRO)
            for k in range(ACCUMULATE)]
    apart_after_inner = []
    for k, part in enumerate(mine):
        sync = k == ACCUMULATE - 1
        step.micro((x[part], y[part]), sync)
        # after an inner (no_sync) step each rank holds only its own gradients; after the last, the average
        local = grads(model)
        other = [torch.zeros_like(local) for _ in range(ranks.world_size)]
        dist.all_gather(other, local)
        apart_after_inner.append(float((other[0] - other[1]).abs().max()))
    ddp_grads = grads(model)

    ref, _ = build_classifier("resnet18", 3, weights="none")
    ref.load_state_dict(model.state_dict())
    ref.eval()
    F.cross_entropy(ref(x), y).backward()
    diff = float((ddp_grads - grads(ref)).abs().max())
    if ranks.is_main:
        with open(out, "w") as f:
            json.dump({"max_grad_diff": diff, "grad_scale": float(grads(ref).abs().max()),
                       "rank_difference_after_each_micro_step": apart_after_inner}, f)
    D.teardown()


if __name__ == "__main__":
    main(sys.argv[1])
