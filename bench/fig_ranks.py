"""P7: 2 CPU ranks (gloo, the engine's rank setup and DDP) against one process on the joined batch.

Run by the suite through torchrun (`torch.distributed.run --standalone --nproc-per-node 2`, the
launcher `frelon train --processes 2` uses) with this file as the rank program: each rank takes its
half of a fixed batch, computes the engine's classification loss through DistributedDataParallel
and backward; rank 0 then computes the same loss on the joined batch in one plain model and writes
the largest absolute difference between the two sets of gradients.

BatchNorm runs in eval mode: in train mode each rank normalises with its own half-batch's
statistics, a real difference from one process that only --sync-bn (CUDA) removes. That figure is
reported too, for information (`train_mode_bn_max_abs_diff`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve()


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in b)


def _rank_main(out: str, size: int, per_rank: int, backbone: str) -> None:
    from frelon.engine import distributed as D
    from frelon.engine.backbones import build_classifier
    from frelon.engine.tasks.classify import ClassifyTask
    ranks = D.setup("cpu", 0)
    task, cpu = ClassifyTask(), torch.device("cpu")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2 * per_rank, 3, size, size, generator=g)
    y = torch.randint(0, 3, (2 * per_rank,), generator=g)
    mine = slice(ranks.rank * per_rank, (ranks.rank + 1) * per_rank)
    report = {}
    for mode, bn_train in (("off", False), ("blocks", False), ("off", True)):
        torch.manual_seed(0)
        model, _ = build_classifier(backbone, 3, weights="none")
        model.set_checkpointing(mode)
        model.train(bn_train)
        reference = {k: v.clone() for k, v in model.state_dict().items()}
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        loss, _, _ = task.loss(ddp, (x[mine], y[mine]), cpu)
        loss.backward()
        ddp_grads = _grads(model)
        if ranks.is_main:
            single, _ = build_classifier(backbone, 3, weights="none")
            single.load_state_dict(reference)
            single.set_checkpointing(mode)
            single.train(bn_train)
            loss, _, _ = task.loss(single, (x, y), cpu)
            loss.backward()
            key = "train_mode_bn" if bn_train else f"checkpointing_{mode}"
            report[key] = _max_diff(ddp_grads, _grads(single))
        D.gather_objects(None, ranks)              # keep the ranks in step
    if ranks.is_main:
        Path(out).write_text(json.dumps(report))
    D.teardown()


def two_rank_diffs(size: int, per_rank: int, backbone: str = "resnet18", timeout: int = 600) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ranks.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(HERE), out, str(size), str(per_rank), backbone]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0 or not out.is_file():
            raise RuntimeError("the 2-rank run failed: " + "\n".join(r.stderr.strip().splitlines()[-15:]))
        return json.loads(out.read_text())


def p7_ranks(quick: bool, device: str = "cpu", size=None, per_rank=None):
    from harness import Figure
    size = size or (64 if quick else 128)
    per_rank = per_rank or 4
    try:
        diffs = two_rank_diffs(size, per_rank)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return Figure("P7", "2 CPU ranks: max |grad diff|", f"not measured: {e}", "≤ 1e-5", {}, False)
    value = max(diffs["checkpointing_off"], diffs["checkpointing_blocks"])
    detail = {"model": "resnet18", "image_size": size, "batch_per_rank": per_rank, "joined_batch": 2 * per_rank,
              "max_abs_diff": {k: v for k, v in diffs.items() if k.startswith("checkpointing")},
              "train_mode_bn_max_abs_diff": diffs["train_mode_bn"],
              "note": "BatchNorm in eval mode (in train mode each rank normalises with its half-batch; "
                      "see train_mode_bn_max_abs_diff); loss = the engine's classification loss; "
                      "DDP as the engine wraps it; gloo via the engine's rank setup"}
    return Figure("P7", "2 CPU ranks: max |grad diff|", value, "≤ 1e-5", detail, value <= 1e-5)


if __name__ == "__main__":
    _rank_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
