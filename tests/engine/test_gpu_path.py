"""The CUDA / multi-GPU path, checked on a CPU-only machine.

No GPU runs in CI, so what only goes wrong on GPUs is caught here by standing in for it: ranks
whose device is `meta` (not the CPU) with collectives patched to check every tensor's device,
the GPU's compute capability patched, SyncBatchNorm conversion and GradScaler state on the CPU.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import sys

import pytest
import torch
import torch.distributed as dist
from torch import nn

from frelon.engine import distributed as D
from frelon.engine import memory, rundir
from frelon.engine.commands import info
from frelon.engine.backbones import build_classifier, sync_batchnorm
from frelon.common.train_config import TrainConfig
from frelon.engine.sampling import Seeded
from frelon.engine.training import loop
from frelon.engine.training import run as run_mod
from frelon.engine.training import step as step_mod
from frelon.engine.training.checkpoints import Progress, save_last
from frelon.engine.training.run import Trainer
from frelon.engine.training.step import amp

from runhelp import make_colour_folder, recording_writer

META_RANKS = D.Ranks(rank=0, world_size=2, local_rank=0, device=torch.device("meta"))


class Reached(Exception):
    """Raised by a patched collective once it has checked its tensors."""


@pytest.fixture
def collectives(monkeypatch):
    """Patch the tensor collectives: record each tensor's device, then stop the caller. Object
    collectives (pickled, sent world-size times) are refused where a tensor would do."""
    seen = []

    def check(*tensors, **_):
        seen.extend(t.device for t in tensors if isinstance(t, torch.Tensor))
        raise Reached

    monkeypatch.setattr(dist, "all_reduce", lambda t, op=None, **k: check(t))
    monkeypatch.setattr(dist, "all_gather", lambda out, t, **k: check(*out, t))
    monkeypatch.setattr(dist, "all_gather_object", lambda *a, **k: pytest.fail("an object all-gather"))
    return seen


def _bare_trainer(ranks: D.Ranks) -> Trainer:
    t = Trainer.__new__(Trainer)
    t.ranks, t.progress = ranks, Progress()
    return t


# 1, 2, 14 ------------------------------------------------------------ collectives on the device

def test_the_per_step_agreement_reduces_on_the_ranks_device(collectives):
    with pytest.raises(Reached):
        loop.agree(META_RANKS, Trainer.heartbeat, False, True, torch.zeros((), device="meta"))
    assert collectives and set(collectives) == {torch.device("meta")}      # one collective: the first raises


def test_the_epoch_loss_sums_are_reduced_on_the_ranks_device(collectives):
    with pytest.raises(Reached):
        loop.end_epoch(_bare_trainer(META_RANKS), torch.zeros(2, dtype=torch.float64), 0.0)
    assert collectives == [torch.device("meta")]


def test_the_steps_memory_travels_in_the_agreements_one_gather_on_the_device(collectives):
    with pytest.raises(Reached):
        loop.agree(META_RANKS, Trainer.heartbeat, False, True)
    assert collectives and set(collectives) == {torch.device("meta")}


def test_the_reduce_helper_moves_a_cpu_tensor_to_the_device_and_back(monkeypatch):
    """A CPU tensor reduced by ranks on another device: reduced there, result back in place."""
    other = D.Ranks(0, 2, 0, torch.device("cpu"))
    calls = []

    def fake_all_reduce(t, op=None, **_):
        calls.append((t.dtype, op))
        t.mul_(2)                     # two ranks holding the same values
    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    t = torch.tensor([1.0, 3.0], dtype=torch.float64)
    assert D.all_reduce_sum(t, other) is t and t.tolist() == [2.0, 6.0]
    assert calls == [(torch.float64, dist.ReduceOp.SUM)]


def test_the_scan_is_broadcast_once_not_gathered(monkeypatch):
    sent = []

    def fake_broadcast(box, src=None, device=None, **_):
        sent.append((src, device))
        box[0] = "rank 0's scan"
    monkeypatch.setattr(dist, "broadcast_object_list", fake_broadcast)
    monkeypatch.setattr(dist, "all_gather_object", lambda *a, **k: pytest.fail("an object all-gather"))
    rank1 = D.Ranks(1, 4, 1, torch.device("meta"))
    assert D.broadcast_object(None, rank1) == "rank 0's scan"
    assert sent == [(0, torch.device("meta"))]


def test_step_memory_readings_round_trip_through_the_agreement_row():
    back = memory.from_values([float(v) for v in memory.reading_values(torch.device("cpu"), rank=3)])
    assert back["rank"] == 3 and back["device"] == "cpu" and back["rss"] > 10 * 2**20
    assert memory.from_values([1.0, 2.0, 10.0, 20.0, 30.0]) == \
        {"rank": 1, "device": "cuda:2", "allocated": 10, "peak": 20, "reserved": 30}


# 3, 5 ------------------------------------------------------------------ who gets which device

@pytest.fixture
def gpu_machine(monkeypatch):
    """A machine where CUDA says it is available; joining a group is recorded, not done."""
    joined = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, timeout=None, **k: joined.append((backend, timeout)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    return joined


def test_processes_on_a_gpu_machine_are_cpu_ranks_on_gloo(gpu_machine):
    ranks = D.setup("auto", gpus=0)
    assert ranks.device == torch.device("cpu") and gpu_machine[0][0] == "gloo"


def test_gpus_on_a_gpu_machine_are_cuda_ranks_on_nccl(gpu_machine):
    ranks = D.setup("auto", gpus=2)
    assert ranks.device == torch.device("cuda", 1) and gpu_machine[0][0] == "nccl"


def test_processes_with_device_cuda_asked_for_are_cuda_ranks(gpu_machine):
    assert D.setup("cuda", gpus=0).device == torch.device("cuda", 1)


def test_collectives_wait_long_enough_for_rank_0_to_scan_a_large_set(gpu_machine, monkeypatch):
    """Rank 0 scans (and decodes) every image while the others wait in their first collective:
    minutes on a large set. A dead rank is noticed by torchrun, not by this timeout."""
    monkeypatch.delenv("FRELON_DIST_TIMEOUT", raising=False)
    import importlib
    fresh = importlib.reload(D)
    try:
        fresh.setup("auto", gpus=0)
        assert gpu_machine[0][1] >= datetime.timedelta(minutes=30)
    finally:
        importlib.reload(D)


# 4, 15 ---------------------------------------------------------------- bf16 only where it is native

@pytest.mark.parametrize("capability, dtype, scaled", [((7, 0), torch.float16, True), ((7, 5), torch.float16, True),
                                                        ((8, 0), torch.bfloat16, False), ((9, 0), torch.bfloat16, False)])
def test_amp_uses_bf16_only_on_gpus_with_bf16_tensor_cores(monkeypatch, capability, dtype, scaled):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)    # true with emulation too
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
    made = []
    monkeypatch.setattr(torch, "autocast", lambda device_type, dtype: made.append(dtype) or contextlib.nullcontext())
    with pytest.warns(UserWarning) if scaled else contextlib.nullcontext():    # GradScaler: no CUDA here
        autocast, scaler = amp(TrainConfig(amp=True), torch.device("cuda", 0))
    with autocast():
        pass
    assert made == [dtype] and (scaler is not None) == scaled


def test_info_reports_bf16_per_gpu(monkeypatch):
    class Props:
        def __init__(self, name):
            self.name, self.total_memory = name, 16 * 2**30
    caps = {0: (7, 0), 1: (8, 6)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props(["V100", "A6000"][i]))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: caps[i if i is not None else 0])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert [d["bf16"] for d in info.devices()["cuda"]] == [False, True]


# 6 ------------------------------------------------------------------ SyncBatchNorm reaches every BN

def _batchnorms_run(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    run = []
    hook = nn.modules.module.register_module_forward_hook(
        lambda m, i, o: run.append(m) if isinstance(m, nn.modules.batchnorm._BatchNorm) else None)
    try:
        model(x)
    finally:
        hook.remove()
    return run


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_sync_bn_reaches_every_batchnorm_the_forward_runs(backbone):
    model, _ = build_classifier(backbone, 3, "none")
    model = sync_batchnorm(model)
    registered = {id(m) for m in model.modules()}
    model.eval()
    used = _batchnorms_run(model, torch.randn(2, 3, 64, 64))
    assert used and all(isinstance(m, nn.SyncBatchNorm) for m in used)
    assert all(id(m) in registered and not m.training for m in used)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64) * 5 + 3)          # validation must not move the saved statistics
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)


def test_sync_bn_reaches_the_detectors_backbone():
    from frelon.engine.tasks.detect import build_detector
    model, _ = build_detector("resnet18", 1, "none")
    model = sync_batchnorm(model).eval()
    used = _batchnorms_run(model, torch.randn(1, 3, 64, 64))
    assert used and all(isinstance(m, nn.SyncBatchNorm) and not m.training for m in used)


# 7 ------------------------------------------------------------------ the loss scaler after an OOM

def test_the_batch_halved_after_an_oom_inside_the_scalers_step_trains_unscaled(tmp_path, monkeypatch):
    """An OOM can land inside scaler.step, after the gradients were unscaled: the scaler that
    saw it must not be kept, or the next step applies gradients still times 65,536."""
    monkeypatch.setattr(step_mod, "amp", lambda cfg, device: (contextlib.nullcontext, torch.amp.GradScaler("cpu")))
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=8)), backbone="resnet18",
                      image_size=32, batch_size=4, epochs=1, weights="none", workers=0, optimizer="sgd",
                      lr=0.01, ref_batch=8, out=str(tmp_path / "runs"))
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    batch = next(iter(trainer.train_loader))
    trainer.step.micro(batch)
    trainer.step.scaler.unscale_(trainer.optimizer)            # … and the out-of-memory error lands here
    assert trainer._smaller_batches()

    reference = copy.deepcopy(trainer.model)               # the oracle: the same step, no scaler
    ref_opt = step_mod.make_optimizer(trainer.cfg, reference)     # same groups and weight decay
    for g in ref_opt.param_groups:
        g["lr"] = 0.01
    images, labels = batch
    nn.functional.cross_entropy(reference(images), labels).div(trainer.accumulate).backward()
    ref_opt.step()
    # the trainer's first step after halving, on the same batch (the head's LR scale is 1: no weights)
    trainer.step.micro(batch)
    trainer.step.update(0.01)
    for (name, p), q in zip(trainer.model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, msg=name)


# 8, 9 ------------------------------------------------------------------- memory readings

def test_the_cuda_peak_is_reset_after_each_reading(monkeypatch):
    state = {"peak": 900, "resets": 0}
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 100)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 1000)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d=None: 1000)

    def reset(d=None):
        state["peak"], state["resets"] = 100, state["resets"] + 1
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    first = memory.reading(torch.device("cuda", 0))
    second = memory.reading(torch.device("cuda", 0))
    assert first["peak"] == 900 and second["peak"] == 100 and state["resets"] == 2


def test_autocasts_copies_of_the_weights_are_not_activations():
    """Under autocast the forward saves low-precision copies of the weights for backward: they
    are parameters, not activations (checked with CPU autocast, the same mechanism)."""
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))
    x = torch.randn(2, 512)
    counted = {}
    for dtype in (None, torch.bfloat16):
        counter = memory.ActivationCounter(model)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None), counter.counting():
            model(x).sum()
        counted[dtype] = counter.bytes
    weight_copy = 512 * 512 * 2
    assert counted[torch.bfloat16] < weight_copy / 10
    assert counted[torch.bfloat16] <= counted[None]


# 10 ------------------------------------------------------------------ random states, per rank

def test_each_rank_gets_its_own_random_state_back(tmp_path):
    states = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        states.append(rundir.rng_state())
    path = tmp_path / "last.safetensors"
    rundir.save_checkpoint(path, {"w": torch.zeros(1)}, {}, rng=states)
    _, meta, rest = rundir.load_checkpoint(path)
    for rank in (2, 0, 1):
        torch.manual_seed(99)
        assert rundir.set_rng_state(rest, meta["rng"], rank)
        assert torch.equal(torch.get_rng_state(), states[rank]["torch"])
    assert not rundir.set_rng_state(rest, meta["rng"], 3)          # a rank the run did not have


def test_a_scaled_runs_loss_scale_survives_a_resume(tmp_path, monkeypatch):
    """The GradScaler's scale and growth counter are saved with the checkpoint and restored."""
    monkeypatch.setattr(step_mod, "amp", lambda cfg, device: (contextlib.nullcontext, torch.amp.GradScaler("cpu")))
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=8)), backbone="resnet18",
                      image_size=32, batch_size=4, epochs=1, weights="none", workers=0, out=str(tmp_path / "runs"))
    trainer = Trainer(cfg, recording_writer()[0], lambda: False)
    trainer.setup()
    trainer.step.scaler.scale(torch.ones(()))              # the scale exists from the first step on
    trainer.step.scaler.update(1024.0)
    save_last(trainer, 0)
    resumed = Trainer(cfg, recording_writer()[0], lambda: False, resume=str(trainer.run_dir))
    resumed.setup()
    assert resumed.step.scaler.get_scale() == 1024.0


# 11 ------------------------------------------------------------------ augmentation seeding

def test_seeding_an_augmentation_leaves_the_cuda_generators_alone(monkeypatch):
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda s: reseeded.append(s))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: reseeded.append(s))
    data = Seeded([torch.zeros(1)])
    before = torch.get_rng_state()
    assert data[(0, 7)] is not None
    assert reseeded == [] and torch.equal(torch.get_rng_state(), before)


# 12 ------------------------------------------------------------------ the forecast under fp16

def test_the_forecast_counts_the_optimizer_state_even_when_the_scaler_skips_the_step(tmp_path, monkeypatch):
    """fp16 gradients overflow at the scaler's first scales and scaler.step skips the update:
    the forecast must still see AdamW's state (two copies of the weights)."""
    from frelon.engine.training import forecast as plan
    cfg = TrainConfig(data=str(make_colour_folder(tmp_path / "data", per_class=4)), backbone="resnet18",
                      image_size=32, weights="none", workers=0)
    run = plan.prepare(cfg, torch.device("cpu"))
    plain = plan.measure(run, (2, 4), checkpoint_phase=False)
    # a real scaler whose first scale overflows every gradient: each step would be skipped
    monkeypatch.setattr(step_mod, "amp", lambda c, d: (contextlib.nullcontext, torch.amp.GradScaler("cpu", init_scale=2.0 ** 127)))
    scaled = plan.measure(run, (2, 4), checkpoint_phase=False)
    adam_state = 2 * sum(p.numel() * 4 for p in run.model.parameters())
    for got, ref in zip(scaled["optimizer"], plain["optimizer"]):
        assert got >= ref - adam_state / 4


# 13 ------------------------------------------------------------------ fast kernels on CUDA

def test_cuda_runs_turn_on_cudnn_autotuning_and_tf32(monkeypatch):
    from frelon.engine import precision
    for flag in ("benchmark", "allow_tf32"):
        monkeypatch.setattr(torch.backends.cudnn, flag, False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    assert precision.fast_kernels(torch.device("cpu")) == {}
    assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    precision.fast_kernels(torch.device("cuda", 0))
    assert torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32


# 15 ------------------------------------------------------------------ OOM on one of several ranks

def test_an_oom_on_another_rank_is_left_for_the_launcher(tmp_path, monkeypatch):
    """Only rank 0 writes events: a rank that runs out of memory leaves its error in the run
    folder, and the launcher makes it the run's `error` event (kind oom, not 'exit code 1')."""
    def setup(self):
        self.ranks, self.run_dir = D.Ranks(1, 2, 1, torch.device("cpu")), tmp_path
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(Trainer, "setup", setup)
    monkeypatch.setattr(D, "teardown", lambda **k: None)
    with pytest.raises(run_mod.RunFailed):
        run_mod.run_training(TrainConfig(), recording_writer()[0], lambda: False)
    said = rundir.read_rank_error(tmp_path, 1)
    assert said["kind"] == "oom" and "out of memory" in said["message"]

    from frelon.common import events
    from frelon.engine import launch
    torchrun_says = ("Root Cause (first observed failure):\n[0]:\n  rank      : 1 (local_rank: 1)\n"
                     "  exitcode  : 1 (pid: 4242)\n")
    written = rundir.rank_error_path(tmp_path, 1)
    # the launch: the rank leaves its error (as run_training did above), torchrun reports its exit
    script = (f"import pathlib, sys; pathlib.Path({str(written)!r}).write_text({written.read_text()!r}); "
              f"sys.stderr.write({torchrun_says!r}); sys.exit(1)")
    monkeypatch.setattr(launch, "launch_command", lambda *a, **k: [sys.executable, "-c", script])
    assert launch.run_ranks([], 2, None, "x", stream_events=False, control_stdin=False, run_dir=str(tmp_path)) == 1
    error = next(e for e in events.read_file(tmp_path / "events.jsonl") if e["type"] == "error")
    assert error["kind"] == "oom" and error["rank"] == 1
    assert error["message"].startswith("rank 1 of 2: the GPU ran out of memory")
    assert "--resume" in error["hint"]


def test_channels_last_only_with_amp_on_cuda():
    from frelon.engine import precision
    assert precision.channels_last(torch.device("cuda", 0), amp=True)
    assert not precision.channels_last(torch.device("cuda", 0), amp=False)
    assert not precision.channels_last(torch.device("cpu"), amp=True)


# 12 (the other two parts) --------------------------------------------- CUDA memory readings

def test_free_memory_is_read_after_the_cuda_libraries_made_their_workspaces(monkeypatch):
    """cuDNN, cuBLAS and NCCL allocate outside PyTorch's allocator on first use: the budget's free
    memory must be read after a warm-up that uses them, or the forecast promises memory they take."""
    from frelon.engine.training import forecast as plan
    order = []
    monkeypatch.setattr(plan, "_warm_up", lambda device: order.append("warm-up"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: order.append("free") or (8 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "GPU")
    assert plan.default_budget(torch.device("cuda", 0))[0] == 8 * 2**30
    assert order == ["warm-up", "free"]


def test_the_cuda_forecast_measures_reserved_memory(monkeypatch):
    """What runs out is what the caching allocator reserves (rounding, fragmentation), not the
    bytes of live tensors."""
    from frelon.engine import peaks
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: 700)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d=None: 1000)
    meter = peaks.CudaMeter(torch.device("cuda", 0), live_before=100)
    with meter.phase("forward_backward"):
        pass
    assert meter.peaks == {"forward_backward": 900}
