"""Engine test fixtures: tiny image folders made on the fly (32–48 px), run helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from runhelp import make_colour_folder

@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, and much faster on a busy machine (no spinning)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def colour_data(tmp_path) -> Path:
    return make_colour_folder(tmp_path / "data")


@pytest.fixture(scope="session")
def ddp_checks(tmp_path_factory) -> dict:
    """ddp_check.py and ddp_accumulate_check.py run by torchrun with 2 CPU ranks, both in one launch
    (ddp_checks.py): {"result": the finished torchrun, "ddp": path, "accumulate": path} — each JSON
    file is written by rank 0 once its check has run."""
    import os
    import subprocess
    import sys
    out = tmp_path_factory.mktemp("ddp")
    here = Path(__file__).parent
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(here / "ddp_checks.py"), str(out / "ddp.json"), str(out / "acc.json")],
                       timeout=300, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return {"result": r, "ddp": out / "ddp.json", "accumulate": out / "acc.json"}
