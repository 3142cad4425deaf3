"""Gradient checkpointing that leaves BatchNorm exactly as training without it would.

`torch.utils.checkpoint` (non-reentrant) drops a segment's activations after the forward pass and
runs the segment again during backward. In train mode that second forward would update every
BatchNorm's running mean / variance and `num_batches_tracked` a second time, so a model trained
with checkpointing would drift from one trained without. The recomputation here runs inside a
context that snapshots those buffers and puts them back afterwards: the recomputed outputs are
identical (train-mode BN normalises with batch statistics), and the buffers see one update a step.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

MODES = ("off", "stages", "blocks")


def _batchnorms(modules: Iterable[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for mod in modules for m in mod.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@contextlib.contextmanager
def _bn_buffers_restored(bns: list[nn.modules.batchnorm._BatchNorm]):
    saved = [(bn, bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
             for bn in bns if bn.training]
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, mean, var, count in saved:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(count)


def run_checkpointed(blocks: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run `blocks` in sequence on x keeping only x for backward; BN statistics update once."""
    bns = _batchnorms(blocks)

    def segment(inp):
        for block in blocks:
            inp = block(inp)
        return inp

    def contexts():
        return contextlib.nullcontext(), _bn_buffers_restored(bns)

    return checkpoint(segment, x, use_reentrant=False, context_fn=contexts)


def run_stages(stages: list[list[nn.Module]], x: torch.Tensor, mode: str) -> torch.Tensor:
    """Run a backbone's stages (each a list of blocks) with the given checkpointing mode.

    "stages" keeps one activation per stage, "blocks" one per block (finer, a little more memory,
    the same recomputation). Checkpointing only applies while autograd records: evaluation and
    prediction run plainly.
    """
    if mode not in MODES:
        raise ValueError(f"checkpointing mode {mode!r} is not one of {MODES}")
    active = mode != "off" and torch.is_grad_enabled()
    for blocks in stages:
        if active and mode == "stages":
            x = run_checkpointed(blocks, x)
        elif active and mode == "blocks":
            for block in blocks:
                x = run_checkpointed([block], x)
        else:
            for block in blocks:
                x = block(x)
    return x
