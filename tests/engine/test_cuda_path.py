"""The CUDA path's figures and speed (issue 29, items 1, 4, 6, 8, 11–13), checked on a CPU-only
machine: CUDA is faked where it must be (allocator counters, streams, events, the device of the
parameters), and several ranks are one rank with the collectives patched, as in test_gpu_path.py.
"""
from __future__ import annotations

import contextlib
import threading
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from torch import nn

from frelon.engine import distributed as D
from frelon.engine import memory, peaks, rundir
from frelon.engine.backbones import build_classifier
from frelon.common.train_config import TrainConfig
from frelon.engine.errors import WeightsError
from frelon.engine.training import checkpoints, loop
from frelon.engine.training import step as step_mod
from frelon.engine.training.run import RunFailed, Trainer, run_training

from runhelp import make_colour_folder, recording_writer

CUDA0 = torch.device("cuda", 0)
BENCH = Path(__file__).resolve().parents[2] / "bench"


# 1 ------------------------------------------------------------------ a missing optional package

def test_a_missing_lite_package_is_a_weights_error_naming_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)        # not installed
    with pytest.raises(WeightsError) as e:
        build_classifier("efficientnet_lite0", 2, "none")
    assert "efficientnet-lite-pytorch" in e.value.message and "pip install" in e.value.hint
    writer, emitted = recording_writer()
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=4)), image_size=32, weights="none",
                      workers=0, out=str(tmp_path / "runs"))                      # the default backbone
    with pytest.raises(RunFailed, match="efficientnet-lite-pytorch"):
        run_training(cfg, writer, lambda: False)
    assert next(e for e in emitted if e["type"] == "error")["kind"] == "weights"


# 4 ------------------------------------------------------------------ pycocotools, said at the start

@pytest.mark.parametrize("val_split", [0.2, 0.0])         # 0.0: the set's own val/ folder still needs it
def test_detection_without_pycocotools_is_refused_before_training(tmp_path, monkeypatch, val_split):
    from frelon.engine.centernet import shapes
    data = shapes.make_dataset(tmp_path / "shapes", 4, 2, size=64, seed=1)
    for name in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, name, None)
    writer, emitted = recording_writer()
    cfg = TrainConfig(data=str(data), backbone="resnet18", weights="none", image_size=64, workers=0,
                      val_split=val_split, out=str(tmp_path / "runs"))
    with pytest.raises(RunFailed, match="pip install pycocotools"):
        run_training(cfg, writer, lambda: False)
    error = next(e for e in emitted if e["type"] == "error")
    assert error["kind"] == "config" and "pycocotools" in error["message"]
    assert not [e for e in emitted if e["type"] in ("data_report", "run_started", "step")]    # at the data's scan


# 6 ------------------------------------------------------------------ P4: a whole run's CUDA peak

class FakeAllocator:
    """torch.cuda's allocator counters: allocated, reserved (rounded up, never given back) and
    their high-water marks, which reset_peak_memory_stats brings down to the current values."""

    def __init__(self, monkeypatch):
        self.allocated = self.reserved = self.peak_allocated = self.peak_reserved = 0
        for name, fn in {"memory_allocated": lambda d=None: self.allocated, "memory_reserved": lambda d=None: self.reserved,
                         "max_memory_allocated": lambda d=None: self.peak_allocated,
                         "max_memory_reserved": lambda d=None: self.peak_reserved,
                         "reset_peak_memory_stats": self.reset, "synchronize": lambda d=None: None,
                         "empty_cache": self.empty_cache, "current_device": lambda: 0}.items():
            monkeypatch.setattr(torch.cuda, name, fn)

    def alloc(self, n: int) -> None:
        self.allocated += n
        self.reserved = max(self.reserved, -(-self.allocated // 1000) * 1000)
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def empty_cache(self) -> None:
        self.reserved = -(-self.allocated // 1000) * 1000

    def reset(self, d=None) -> None:
        self.peak_allocated, self.peak_reserved = self.allocated, self.reserved


def test_p4_measures_the_whole_runs_reserved_peak_through_the_runs_own_resets(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))           # taken back after the test
    import fig_memory
    cuda = FakeAllocator(monkeypatch)
    cuda.alloc(500)
    with fig_memory.measured_peak(CUDA0) as measured:
        with peaks.CudaMeter(CUDA0, 500).phase("forward_backward"):     # --batch-size auto's forecast
            cuda.alloc(2500)
            cuda.alloc(-2500)
        cuda.alloc(7300)                       # the run's peak: the first steps
        cuda.alloc(-7000)
        torch.cuda.empty_cache()               # (as after an out-of-memory): reserved falls too
        loop.report_step(SimpleNamespace(ranks=D.Ranks(1, 2, 1, CUDA0)), SimpleNamespace(reported=lambda: None),
                         None, 0.0)   # a logged step (on rank 1: no event to write): a new peak starts
        cuda.alloc(100)                        # the last steps and the checkpoint
    assert measured["peak"] == 8000 - 1000      # reserved, as the forecast measures, less what was there
    assert measured["peak_allocated"] == 7300


# 8 ------------------------------------------------------------------ the emergency save's stream

def test_the_emergency_save_copies_on_a_side_stream_after_the_last_update(monkeypatch):
    order = []

    class Stream:
        def __init__(self, device=None):
            order.append("side stream")

        def wait_event(self, event):
            order.append(("after", event))

    @contextlib.contextmanager
    def current(stream):
        order.append("enter")
        yield
        order.append("leave")

    class Event:
        def record(self):
            order.append("update recorded")
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", current)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(rundir, "rng_state", lambda device=None: {})
    monkeypatch.setattr(checkpoints, "_write_last", lambda t, epoch, rng: order.append("copy and write") or Path("last"))
    model = nn.Linear(2, 1)
    step = step_mod.Step(model, None, torch.optim.SGD(model.parameters(), lr=0.1), TrainConfig(), CUDA0)
    model(torch.ones(1, 2)).sum().backward()
    step.update(0.1)                          # the last completed step
    trainer = SimpleNamespace(ranks=D.Ranks(0, 2, 0, CUDA0), heartbeat=SimpleNamespace(phase="collective"),
                              step=step, progress=SimpleNamespace(epoch=0, step=7), in_loop=True,
                              saving=threading.RLock())
    assert checkpoints.emergency_save(trainer)["saved"]
    assert order == ["update recorded", "side stream", ("after", step.updated), "enter", "copy and write", "leave"]


# 11 ------------------------------------------------------------------ fused AdamW, --compile

def test_adamw_is_fused_on_cuda(monkeypatch):
    model, _ = build_classifier("resnet18", 2, "none")
    assert not step_mod.make_optimizer(TrainConfig(), model).defaults.get("fused")
    monkeypatch.setattr(step_mod, "_device_of", lambda m: CUDA0)         # the parameters on a GPU
    optimizer = step_mod.make_optimizer(TrainConfig(), model)
    assert optimizer.defaults["fused"] is True and len(optimizer.param_groups) == 4     # the groups kept


class RecordedDDP(nn.parallel.DistributedDataParallel):
    """DDP's constructor recorded, not run (no process group here)."""

    def __init__(self, module, **options):
        nn.Module.__init__(self)
        self.module, self.options = module, options
        self.broadcast_buffers = options.get("broadcast_buffers", True)
        self.compiled_when_wrapped = module._compiled_call_impl is not None


RANKS_2 = D.Ranks(0, 2, 0, torch.device("cpu"))


@pytest.mark.parametrize("accumulate, compiled, sync_bn, static", [(1, False, False, True), (2, False, False, False),
                                                                  (1, True, True, False)])
def test_ddp_as_frelon_wraps_it(monkeypatch, accumulate, compiled, sync_bn, static):
    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", RecordedDDP)
    wrapped = step_mod.parallel_model(nn.Linear(2, 2), RANKS_2,
                                      TrainConfig(accumulate=accumulate, sync_bn=sync_bn, compile=compiled))
    assert wrapped.options["gradient_as_bucket_view"] is True
    assert wrapped.options["static_graph"] is static
    assert wrapped.options["broadcast_buffers"] is not sync_bn            # SyncBN: no broadcast per forward
    assert wrapped.compiled_when_wrapped is compiled                     # compiled first, then wrapped


def test_one_process_is_compiled_too_and_the_activation_meter_works_under_it():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    counter = memory.ActivationCounter(model)
    with counter.counting():
        model(torch.randn(2, 3, 8, 8)).sum().backward()
    eager = counter.bytes
    same = step_mod.parallel_model(model, D.Ranks(0, 1, 0, torch.device("cpu")), TrainConfig(compile=True))
    assert same is model and model._compiled_call_impl is not None
    model._compiled_call_impl = torch.compile(model._call_impl, backend="eager")    # dynamo, no code generation
    counter = memory.ActivationCounter(model)
    with counter.counting():
        model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert counter.bytes == eager


# 12 ------------------------------------------------------------------ buffers under SyncBN

def test_sync_bn_buffers_are_broadcast_once_before_evaluation_and_save(monkeypatch):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ddp = RecordedDDP(model, broadcast_buffers=False)
    sent = []

    def broadcast(t, src=0, **_):
        sent.append((t.dtype, t.numel(), src))
        t.fill_(7)                           # rank 0's values
    monkeypatch.setattr(dist, "broadcast", broadcast)
    D.sync_buffers(ddp, RANKS_2)
    assert sorted(sent, key=str) == sorted([(torch.float32, 8, 0), (torch.int64, 1, 0)], key=str)   # one per dtype
    assert all(bool((b == 7).all()) for b in model.buffers())
    sent.clear()
    D.sync_buffers(RecordedDDP(model), RANKS_2)                         # DDP broadcasts them itself
    assert sent == []


def _no_checkpoint_files(monkeypatch, order: list | None = None) -> None:
    """The epoch's end without writing its two checkpoints (45 MB each for resnet18): `order` notes them."""
    monkeypatch.setattr(loop, "save_best", lambda *a: None)
    monkeypatch.setattr(checkpoints, "save_last", lambda *a: order.append("save_last") if order is not None else None)


def test_the_loop_aligns_the_buffers_before_evaluating_and_before_saving(tmp_path, monkeypatch, one_thread):
    order = []
    monkeypatch.setattr(D, "sync_buffers", lambda model, ranks: order.append("sync"))
    _no_checkpoint_files(monkeypatch, order)
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=5)), backbone="resnet18", image_size=32,
                      batch_size=4, epochs=1, weights="none", workers=0, out=str(tmp_path / "runs"), lr=1e-3)
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    real = trainer.task.evaluate
    monkeypatch.setattr(trainer.task, "evaluate", lambda *a, **k: order.append("evaluate") or real(*a, **k))
    assert trainer.train() == "completed"
    assert order == ["sync", "evaluate", "sync", "save_last"]


# 13 ------------------------------------------------------------------ evaluation: once, on rank 0, under autocast

def test_evaluation_runs_under_the_trainings_autocast(tmp_path, monkeypatch, one_thread):
    _no_checkpoint_files(monkeypatch)
    state = {"inside": False}

    @contextlib.contextmanager
    def autocast():
        state["inside"] = True
        yield
        state["inside"] = False
    monkeypatch.setattr(step_mod, "amp", lambda cfg, device: (autocast, None))
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=5)), backbone="resnet18", image_size=32,
                      batch_size=4, epochs=1, weights="none", workers=0, out=str(tmp_path / "runs"), lr=1e-3)
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    seen = []
    trainer.model.register_forward_hook(lambda m, i, o: seen.append((m.training, state["inside"])))
    assert trainer.train() == "completed"
    assert (False, True) in seen and (False, False) not in seen          # every evaluation forward inside


def _fake_two_ranks(monkeypatch, rank: int, others: list):
    """This process as rank `rank` of 2; the other rank's gathered object is `others`."""
    calls = []
    monkeypatch.setattr(dist, "all_reduce", lambda t, op=None, **k: t.mul_(2))
    monkeypatch.setattr(dist, "all_gather_object", lambda *a, **k: pytest.fail("everything gathered to every rank"))

    def gather_object(obj, out=None, dst=0, **_):
        calls.append(("gather", dst))
        if out is not None:
            out[:] = [obj, others] if rank == 0 else [others, obj]
    monkeypatch.setattr(dist, "gather_object", gather_object)

    def broadcast_object_list(box, src=0, **_):
        calls.append(("broadcast", src))
        if rank != 0:
            box[0] = {"map": 0.5, "map_50": 0.7, "loss": 1.0, "from": "rank 0"}
    monkeypatch.setattr(dist, "broadcast_object_list", broadcast_object_list)
    return D.Ranks(rank, 2, rank, torch.device("cpu")), calls


def _detection_val(tmp_path, rank: int):
    from torch.utils.data import DataLoader

    from frelon.engine.centernet import shapes
    from frelon.engine.centernet import transforms as CT
    from frelon.engine.centernet.dataset import DetectionDataset, collate
    from frelon.engine.data.detection import scan_detection
    from frelon.engine.sampling import Seeded, ShardSampler
    from frelon.engine.tasks.detect import build_detector
    data = scan_detection(str(shapes.make_dataset(tmp_path / "shapes", 2, 4, size=64, seed=2)))
    ds = DetectionDataset(data.val, CT.eval_transform(64, [0.5] * 3, [0.5] * 3), 3, 64, targets="ttf")
    model = build_detector("resnet18", 3, "none")[0].eval()
    return model, DataLoader(Seeded(ds), batch_size=2, sampler=ShardSampler(len(ds), 2, rank), collate_fn=collate)


@pytest.mark.parametrize("rank", [0, 1])
def test_detection_is_scored_once_on_rank_0_and_its_metrics_sent(tmp_path, monkeypatch, rank, one_thread):
    from frelon.engine import cocoeval
    from frelon.engine.tasks.detect import DetectTask
    ranks, calls = _fake_two_ranks(monkeypatch, rank, others=[])
    scored = []
    real = cocoeval.coco_map
    monkeypatch.setattr(cocoeval, "coco_map", lambda *a: scored.append(1) or real(*a))
    model, loader = _detection_val(tmp_path, rank)
    evaluation = DetectTask().evaluate(model, loader, torch.device("cpu"), ranks, ["circle", "square", "triangle"])
    assert calls == [("gather", 0), ("broadcast", 0)]
    if rank == 0:
        assert scored == [1] and evaluation.details is not None and evaluation.curves is not None
        assert evaluation.metrics["images"] == 4
    else:
        assert scored == [] and evaluation.details is None and evaluation.metrics["from"] == "rank 0"
        assert evaluation.score == 0.5


@pytest.mark.parametrize("rank", [0, 1])
def test_classification_probabilities_go_to_rank_0_only(monkeypatch, rank):
    from torch.utils.data import DataLoader, TensorDataset

    from frelon.engine.sampling import ShardSampler
    from frelon.engine.tasks.classify import ClassifyTask

    class Indexed(TensorDataset):
        def __getitem__(self, item):
            return super().__getitem__(item[0])
    ranks, calls = _fake_two_ranks(monkeypatch, rank, others=[(1, [0.5, 0.5])])
    g = torch.Generator().manual_seed(0)
    ds = Indexed(torch.randn(3, 3, 8, 8, generator=g), torch.tensor([0, 1, 0]))
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    loader = DataLoader(ds, batch_size=2, sampler=ShardSampler(3, 2, rank))
    evaluation = ClassifyTask().evaluate(model, loader, torch.device("cpu"), ranks, ["a", "b"])
    assert calls == [("gather", 0)]
    assert evaluation.details is None if rank else [d[0] for d in evaluation.details] == [0, 1, 2]
