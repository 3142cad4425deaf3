"""Run under torchrun with 2 CPU ranks by test_distributed.py: the engine's own pieces (rank
setup, model, DDP, samplers, evaluation) against one process on the joined batch.

Writes rank 0's findings to the JSON file given as argv[1]."""
from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from frelon.engine import distributed as D
from frelon.engine.backbones import build_classifier
from frelon.engine.sampling import ShardSampler
from frelon.engine.tasks.classify import ClassifyTask


class Indexed(TensorDataset):
    def __getitem__(self, item):
        return super().__getitem__(item[0])


def main(out: str) -> None:
    ranks = D.setup("cpu", 0)
    torch.manual_seed(0)
    model, _ = build_classifier("resnet18", 3, weights="none")
    model.set_checkpointing("blocks")          # checkpointing under DDP: non-reentrant
    model.eval()   # BN in eval: each rank would otherwise normalise with its own half-batch (see --sync-bn)
    ddp = D.data_parallel(model, ranks, static_graph=True)     # the engine's DDP, as with --accumulate 1
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 64, 64, generator=g), torch.randint(0, 3, (8,), generator=g)
    mine = slice(ranks.rank * 4, ranks.rank * 4 + 4)
    F.cross_entropy(ddp(x[mine]), y[mine]).backward()
    ddp_grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    ref, _ = build_classifier("resnet18", 3, weights="none")
    ref.load_state_dict(model.state_dict())
    ref.eval()
    F.cross_entropy(ref(x), y).backward()
    diff = max(float((ddp_grads[n] - p.grad).abs().max()) for n, p in ref.named_parameters())

    # validation sharded over ranks (7 images: uneven on purpose) against one process
    vx, vy = torch.randn(7, 3, 64, 64, generator=g), torch.randint(0, 3, (7,), generator=g)
    ds = Indexed(vx, vy)
    task = ClassifyTask()
    classes = ["a", "b", "c"]
    sharded = task.evaluate(model, DataLoader(ds, batch_size=2, sampler=ShardSampler(7, ranks.world_size, ranks.rank)),
                            torch.device("cpu"), ranks, classes)
    single = task.evaluate(model, DataLoader(ds, batch_size=3, sampler=ShardSampler(7, 1, 0)),
                           torch.device("cpu"), D.Ranks(0, 1, 0, torch.device("cpu")), classes)
    if ranks.is_main:
        with open(out, "w") as f:
            json.dump({"max_grad_diff": diff, "sharded": sharded.metrics, "single": single.metrics,
                       "sharded_details": sharded.details, "single_details": single.details}, f)
    D.teardown()


if __name__ == "__main__":
    main(sys.argv[1])
