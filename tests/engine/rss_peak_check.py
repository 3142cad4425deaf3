"""Run by test_plan_vs_rss.py in its own process: trains a few steps in-process and prints, as
JSON, how much the resident set grew at its highest (Linux VmHWM, reset after the imports) —
a measurement that owes nothing to the torch profiler `frelon plan` forecasts with.

argv: data folder, runs folder, image size, batch size."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from runhelp import recording_writer  # noqa: E402

from frelon.common.train_config import from_dict  # noqa: E402
from frelon.engine.training.run import run_training  # noqa: E402


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def main(data: str, out: str, size: int, batch: int) -> None:
    torch.ones(1).sum()                                  # the library's own start-up memory, before the baseline
    with open("/proc/self/clear_refs", "w") as f:       # VmHWM := VmRSS from here on
        f.write("5")
    base = status("VmRSS:")
    cfg = from_dict(dict(data=data, image_size=size, batch_size=batch, weights="none", backbone="resnet18",
                         workers=0, epochs=1, max_steps=3, out=out, val_split=0.2, log_interval=0))
    writer, _ = recording_writer()
    result = run_training(cfg, writer, lambda: False)
    print(json.dumps({"grown_bytes": status("VmHWM:") - base, "status": result["status"]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
