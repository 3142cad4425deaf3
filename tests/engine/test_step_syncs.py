"""A training step on CUDA waits for the GPU at most once: counted on the CPU (syncs.py).

The loop reads one small agreement tensor per optimizer step (stop / log / non-finite flags, the
loss and its parts, every rank's memory) and keeps the epoch's loss sums on the device; the TTF
detection loss is dense (weight map, no boolean indexing). What the data loader does (CPU tensors
in worker processes on a GPU machine), the optimizer's own internals (its step counters are CPU
tensors) and the epoch's end (evaluation, checkpoints: once an epoch) are not counted.
"""
from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from frelon.engine.centernet import shapes
from frelon.engine.centernet import targets as T
from frelon.common.train_config import TrainConfig
from frelon.engine.training import loop
from frelon.engine.training.run import Trainer

from runhelp import make_colour_folder, recording_writer
from syncs import counting


def _pausing(counter, fn):
    def wrapped(*a, **k):
        with counter.pause():
            return fn(*a, **k)
    return wrapped


def syncs_per_step(cfg: TrainConfig, monkeypatch) -> tuple[list[int], list[str]]:
    """Train `cfg` in this process; the syncs counted in each optimizer step (its micro-batches,
    the agreement, the update, the step event), and where each was made."""
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    marks = []
    with counting(monkeypatch) as counter:
        fetch = loop.batches

        def batches(loader, heartbeat, log=None):
            it = fetch(loader, heartbeat, log)
            while True:
                with counter.pause():
                    batch = next(it, None)
                if batch is None:
                    return
                yield batch
        monkeypatch.setattr(loop, "batches", batches)
        monkeypatch.setattr(loop, "end_epoch", _pausing(counter, loop.end_epoch))
        monkeypatch.setattr(loop, "save_last", _pausing(counter, loop.save_last))
        agree = loop.agree
        monkeypatch.setattr(loop, "agree", lambda *a, **k: agree(*a, **k) if len(a) > 4 or "loss" in k
                            else _pausing(counter, agree)(*a, **k))        # the epoch's own: once an epoch
        step = loop.optimizer_step

        def optimizer_step(*a, **k):
            stop = step(*a, **k)
            marks.append(counter.count)
            return stop
        monkeypatch.setattr(loop, "optimizer_step", optimizer_step)
        handles = [register_optimizer_step_pre_hook(lambda *a: setattr(counter, "paused", counter.paused + 1)),
                   register_optimizer_step_post_hook(lambda *a: setattr(counter, "paused", counter.paused - 1))]
        try:
            assert trainer.train() == "completed"
        finally:
            for h in handles:
                h.remove()
    return [b - a for a, b in zip([0, *marks], marks)], counter.where


def test_a_classification_step_waits_for_the_device_at_most_once(tmp_path, monkeypatch, one_thread):
    data = make_colour_folder(tmp_path / "data", per_class=8)
    cfg = TrainConfig(data=str(data), backbone="resnet18", weights="none", image_size=32, batch_size=4, epochs=1,
                      max_steps=3, workers=0, log_interval=0.0, out=str(tmp_path / "runs"), lr=1e-3)
    per_step, where = syncs_per_step(cfg, monkeypatch)
    assert len(per_step) == 3 and max(per_step) <= 1, (per_step, where)


def test_a_detection_step_waits_for_the_device_at_most_once(tmp_path, monkeypatch, one_thread):
    data = shapes.make_dataset(tmp_path / "shapes", 8, 2, size=64, seed=5)
    cfg = TrainConfig(data=str(data), backbone="resnet18", weights="none", image_size=64, batch_size=4, epochs=1,
                      max_steps=2, workers=0, log_interval=0.0, out=str(tmp_path / "runs"), accumulate=2)
    per_step, where = syncs_per_step(cfg, monkeypatch)
    assert len(per_step) == 1 and max(per_step) <= 1, (per_step, where)


# ---------------------------------------------------------------- the TTF loss, dense

def _ttf_batch(seed: int = 0, size: int = 64, objects: int = 3):
    g = torch.Generator().manual_seed(seed)
    out = size // 4
    ts = []
    for _ in range(2):
        xy = torch.rand(objects, 2, generator=g) * size * 0.6
        boxes = torch.cat([xy, xy + torch.rand(objects, 2, generator=g) * size * 0.35 + 6], 1)
        ts.append(T.encode_ttf(boxes, torch.randint(0, 2, (objects,), generator=g), 2, (out, out)))
    targets = {k: torch.stack([t[k] for t in ts]) for k in ts[0]}
    outputs = {"heatmap": torch.randn(2, 2, out, out, generator=g),
               "size": torch.rand(2, 2, out, out, generator=g) * 8 - 1,       # some sizes ≤ 0: clamped
               "offset": torch.randn(2, 2, out, out, generator=g)}
    return outputs, targets


def _oracle_box_terms(outputs, targets) -> tuple[float, float]:
    """The GIoU and L1 terms cell by cell, over the cells of positive weight (TTFNet, eq. 4–5)."""
    from torchvision.ops import generalized_box_iou
    w, box = targets["weight"], targets["box"]
    giou_sum = l1_sum = norm = 0.0
    for b, y, x in [tuple(i) for i in (w > 0).nonzero().tolist()]:
        sx, sy = outputs["size"][b, :, y, x].tolist()
        ox, oy = outputs["offset"][b, :, y, x].tolist()
        cx, cy, hw, hh = x + ox, y + oy, max(sx, 0) / 2, max(sy, 0) / 2
        pred = torch.tensor([[cx - hw, cy - hh, cx + hw, cy + hh]], dtype=torch.float64)
        t = box[b, :, y, x].double()
        weight = float(w[b, y, x])
        giou_sum += weight * (1 - float(generalized_box_iou(pred, t.view(1, 4))[0, 0]))
        size_err = abs(sx - float(t[2] - t[0])) + abs(sy - float(t[3] - t[1]))
        offset_err = abs(ox - float((t[0] + t[2]) / 2 - x)) + abs(oy - float((t[1] + t[3]) / 2 - y))
        l1_sum += weight * (0.1 * size_err + offset_err) / 2
        norm += weight
    return giou_sum / norm, l1_sum / norm


def test_the_ttf_loss_matches_a_cell_by_cell_oracle_without_a_sync(monkeypatch):
    from frelon.engine.centernet.loss import ttf_loss
    outputs, targets = _ttf_batch()
    leaves = {k: v.clone().requires_grad_() for k, v in outputs.items()}
    with counting(monkeypatch) as counter:
        total, parts = ttf_loss(leaves, targets)
        total.backward()
    assert counter.count == 0, counter.where
    giou, l1 = _oracle_box_terms(outputs, targets)
    assert float(parts["size"]) == pytest.approx(giou, rel=1e-5)
    assert float(parts["offset"]) == pytest.approx(l1, rel=1e-5)


def test_cells_off_the_cores_add_nothing_even_when_an_output_overflowed():
    """fp16 outputs can overflow to inf: where the weight is 0 that must change neither the loss
    nor any gradient (a dense loss that multiplied by the weight would make 0 × inf = NaN)."""
    from frelon.engine.centernet.loss import ttf_loss
    outputs, targets = _ttf_batch(seed=1)
    off = (targets["weight"] == 0).nonzero()[0].tolist()
    spoiled = {k: v.clone() for k, v in outputs.items()}
    spoiled["size"][off[0], :, off[1], off[2]] = float("inf")
    spoiled["offset"][off[0], :, off[1], off[2]] = float("-inf")
    results = []
    for outs in (outputs, spoiled):
        leaves = {k: v.clone().requires_grad_() for k, v in outs.items()}
        total, _ = ttf_loss(leaves, targets)
        total.backward()
        results.append((total.detach(), {k: v.grad for k, v in leaves.items()}))
    assert torch.isfinite(results[1][0]) and torch.equal(results[0][0], results[1][0])
    for k in ("heatmap", "size", "offset"):
        assert torch.isfinite(results[1][1][k]).all() and torch.equal(results[0][1][k], results[1][1][k]), k


def test_giou_loss_is_torchvisions_formula():
    from torchvision.ops import generalized_box_iou_loss

    from frelon.engine.centernet.loss import giou_loss
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(200, 2, generator=g) * 20, torch.rand(200, 2, generator=g) * 20
    pred = torch.cat([a, a + torch.rand(200, 2, generator=g) * 10], 1)
    target = torch.cat([b, b + torch.rand(200, 2, generator=g) * 10], 1)     # overlapping, apart, nested
    torch.testing.assert_close(giou_loss(pred, target), generalized_box_iou_loss(pred, target), rtol=1e-5, atol=1e-6)
