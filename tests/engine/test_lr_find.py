"""`frelon lr-find` end to end on tiny data: an exponential sweep, a suggestion inside it, and
nothing left behind (the start weights unchanged, no run folder, no temporary folder)."""
from __future__ import annotations

import hashlib
import json
import math

import pytest

from frelon.engine.commands.lr_find import valley

from runhelp import make_colour_folder, run_cli


def test_valley_by_hand():
    # the longest decreasing subsequence ends at index 8 with length 7 (1.1 or 1.2, 1.0 … 0.4), so
    # fastai's start = 8 − 7 = 1, a third of (8 − 1) is 2.33: index 1 + int(2.33) + int(1.17) = 4
    losses = [1.0, 1.1, 1.2, 1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.9, 3.0]
    assert valley(list(range(len(losses))), losses) == 4


def test_lr_find_end_to_end(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18
    data = make_colour_folder(tmp_path / "data")
    weights = tmp_path / "start.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18(num_classes=1000).state_dict().items()}, str(weights))
    before = hashlib.sha256(weights.read_bytes()).hexdigest()
    work, tmp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    r = run_cli("lr-find", "--data", data, "--backbone", "resnet18", "--weights", weights, "--image-size", "32",
                "--batch-size", "4", "--workers", "0", "--steps", "20", "--json", cwd=work, env={"TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    lrs, losses = result["lrs"], result["losses"]
    assert 2 <= len(lrs) == len(losses) <= 20 and all(math.isfinite(v) for v in losses)
    assert lrs[0] == pytest.approx(1e-7)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] == pytest.approx((10 / 1e-7) ** (1 / 19))
    s = result["suggestion"]
    assert lrs[0] <= s["effective_lr"] <= lrs[-1] and s["effective_lr"] == lrs[s["index"]]
    # the base LR to type in gives the suggestion under AdamW's rule at batch 4: × √(4/32)
    assert s["lr"] * math.sqrt(4 / 32) == pytest.approx(s["effective_lr"])
    # nothing left behind
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before
    assert list(work.iterdir()) == [] and list(tmp.iterdir()) == []


def test_lr_find_bad_range_is_one_line(tmp_path):
    data = make_colour_folder(tmp_path / "data", per_class=4)
    r = run_cli("lr-find", "--data", data, "--start-lr", "1", "--end-lr", "0.1", "--weights", "none")
    assert r.returncode == 2 and r.stderr.strip().startswith("frelon: error: lr-find: need 0 < --start-lr")
