"""Faults: kills, interrupted checkpoint writes, a full disk, out-of-memory. Nothing is lost
beyond the steps since the last checkpoint, and every failure says what to do."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import TINY, events_of, make_colour_folder, only_run, recording_writer, train_here  # noqa: E402

from frelon.engine import rundir  # noqa: E402
from frelon.common.train_config import from_dict  # noqa: E402
from frelon.engine.training.run import RunFailed, run_training  # noqa: E402


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}    # tiny models: one thread is fastest, and no spinning


@pytest.fixture
def data(tmp_path):
    return make_colour_folder(tmp_path / "data", per_class=8)


def _lr_by_step(events):
    return {e["step"]: e["lr"] for e in events if e["type"] == "step"}


def test_sigkill_then_resume_loses_only_steps_since_the_last_checkpoint(tmp_path):
    """README: a kill loses at most the steps since the last checkpoint (`--checkpoint-every N`).
    64 training images at batch 4 make 16-step epochs, so a kill near step 3 lands long before the
    first epoch checkpoint: only `--checkpoint-every 2` can have saved anything. The step the run
    had reached is read from its own events (stdout and events.jsonl, flushed per event), not
    assumed from when the test sent the signal."""
    every = 2
    data = make_colour_folder(tmp_path / "data", per_class=40)
    common = ["--data", data, *TINY, "--backbone", "resnet18", "--epochs", "1", "--log-interval", "0",
              "--val-split", "0.2"]
    # the reference: the same options trained without a kill (in this process: only its events are read)
    ref_events = events_of(train_here(*common, "--out", tmp_path / "ref"))
    reference = _lr_by_step(ref_events)
    per_epoch = next(e for e in ref_events if e["type"] == "run_started")["steps_per_epoch"]
    assert per_epoch == 16

    proc = subprocess.Popen([sys.executable, "-m", "frelon", "train", *map(str, common), "--out", str(tmp_path / "k"),
                             "--checkpoint-every", str(every), "--events", "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=ONE_THREAD)
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["type"] == "step" and seen[-1]["step"] >= 3:        # past the first checkpoint (step 2)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    run = only_run(tmp_path / "k")
    logged = events_of(run)
    reached = max(e["step"] for e in seen + logged if e["type"] == "step")
    assert reached < per_epoch, "the kill landed after the first epoch: the test would prove nothing"
    _, meta, _ = rundir.load_checkpoint(run / "checkpoints" / "last.safetensors")
    saved_step = meta["progress"]["step"]
    written = [e["step"] for e in logged if e["type"] == "checkpoint" and not e["best"]]
    assert written == list(range(every, saved_step + 1, every))     # every N steps, no more, no fewer
    assert 0 <= reached - saved_step <= every                         # lost at most --checkpoint-every steps
    assert meta["progress"]["batch_in_epoch"] == saved_step          # mid-epoch: not an epoch checkpoint

    # (the resumed run need not write a checkpoint every 2 steps: resnet18's take a while to write)
    r = subprocess.run([sys.executable, "-m", "frelon", "train", "--resume", str(run), "--checkpoint-every", "0"],
                       capture_output=True, text=True, timeout=300, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    evs = events_of(run)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["status"] == "completed"
    resumed = evs[[i for i, e in enumerate(evs) if e["type"] == "run_started"][-1]:]
    steps = [e["step"] for e in resumed if e["type"] == "step"]
    assert steps == list(range(saved_step + 1, max(reference) + 1))
    assert [e["lr"] for e in resumed if e["type"] == "step"] == [reference[s] for s in steps]


def _state():
    return {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}


def test_an_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    rundir.save_checkpoint(path, _state(), {"progress": {"step": 1}})

    def dies_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt          # the process is killed in the middle of the write

    monkeypatch.setattr(rundir, "save_file", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        rundir.save_checkpoint(path, {"w": torch.zeros(2, 3)}, {"progress": {"step": 2}})
    weights, meta, _ = rundir.load_checkpoint(path)
    assert meta["progress"]["step"] == 1 and torch.equal(weights["w"], _state()["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]     # no temp file left behind


_KILLED_MID_WRITE = """
import os, signal, sys
from pathlib import Path
import torch
from frelon.engine import rundir

path = Path(sys.argv[1])
big = {"w": torch.arange(1 << 20, dtype=torch.float32)}              # 4 MiB: the write takes a while
rundir.save_checkpoint(path, big, {"progress": {"step": 1}})
real_save = rundir.save_file

def killed_halfway(tensors, filename, metadata=None):
    real_save(tensors, filename, metadata=metadata)                   # the whole new file...
    size = os.path.getsize(filename)
    with open(filename, "r+b") as f:                                   # ...of which half reached the disk
        f.truncate(size // 2)
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)                               # no cleanup, no except block runs

rundir.save_file = killed_halfway
rundir.save_checkpoint(path, {"w": torch.zeros(1 << 20)}, {"progress": {"step": 2}})
"""


def test_a_process_killed_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    """A real SIGKILL in the middle of a checkpoint write (not an exception the code could catch):
    the previous checkpoint is whole, the half-written file is not in its place, and the next save
    of the resumed run works."""
    path = tmp_path / "checkpoints" / "last.safetensors"
    r = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    weights, meta, _ = rundir.load_checkpoint(path)
    assert meta["progress"]["step"] == 1
    assert torch.equal(weights["w"], torch.arange(1 << 20, dtype=torch.float32))
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0     # the half file, beside it
    rundir.save_checkpoint(path, {"w": torch.ones(3)}, {"progress": {"step": 3}})
    assert rundir.load_checkpoint(path)[1]["progress"]["step"] == 3


def test_a_leftover_temp_file_from_a_hard_kill_does_not_matter(tmp_path):
    path = tmp_path / "last.safetensors"
    rundir.save_checkpoint(path, _state(), {"progress": {"step": 1}})
    (tmp_path / ".last.safetensors.abc.tmp").write_bytes(b"\x00" * 100)      # SIGKILL during a write
    assert rundir.load_checkpoint(path)[1]["progress"]["step"] == 1
    rundir.save_checkpoint(path, _state(), {"progress": {"step": 2}})
    assert rundir.load_checkpoint(path)[1]["progress"]["step"] == 2


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    cfg = from_dict(dict(data=str(data), image_size=32, batch_size=4, weights="none", workers=0, epochs=3,
                         backbone="resnet18", out=str(tmp_path / "runs")))
    real_save = rundir.save_file
    calls = {"n": 0}

    def fills_up(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:                     # epoch 1 wrote best + last; then the disk is full
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(rundir, "save_file", fills_up)
    writer, emitted = recording_writer()
    with pytest.raises(RunFailed, match="No space left on device"):
        run_training(cfg, writer, lambda: False)
    error = next(e for e in emitted if e["type"] == "error")
    assert error["kind"] == "io" and "previous checkpoint is intact" in error["hint"] and "--resume" in error["hint"]
    run = only_run(tmp_path / "runs")
    _, meta, _ = rundir.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["progress"]["epochs_done"] == 1
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_out_of_memory_retries_with_half_the_batch_and_the_same_global_batch(data, tmp_path, monkeypatch):
    from frelon.engine.tasks.classify import ClassifyTask
    real_loss = ClassifyTask.loss

    def loss(self, model, batch, device):
        if batch[0].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_loss(self, model, batch, device)

    monkeypatch.setattr(ClassifyTask, "loss", loss)
    cfg = from_dict(dict(data=str(data), image_size=32, batch_size=8, weights="none", workers=0, epochs=2,
                         backbone="resnet18", out=str(tmp_path / "runs"), log_interval=0))
    writer, emitted = recording_writer()
    result = run_training(cfg, writer, lambda: False)
    assert result["status"] == "completed"
    warnings = [e["message"] for e in emitted if e["type"] == "log" and "out of memory" in e["message"]]
    assert len(warnings) == 2 and "batches of 2" in warnings[-1] and "--accumulate 4" in warnings[-1]
    started = next(e for e in emitted if e["type"] == "run_started")
    assert started["global_batch"] == 8
    assert load_file(Path(result["run_dir"]) / "checkpoints" / "last.safetensors")
