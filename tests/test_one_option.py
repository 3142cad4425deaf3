"""Adding a training option is one field in one file (common/train_config.py): in a scratch copy of
Frelon with one field added, the option is in `frelon train --help`, checked against its declared
range, recorded in the run's config.json, and in the app (its form, its flags) — nothing else edited."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "engine"))
from runhelp import make_colour_folder  # noqa: E402

FIELD = '    shine: float = option(0.25, "how much the pictures shine (a scratch option)", low=0, high=1)\n'
APP = """
import os, json
from PySide6.QtWidgets import QApplication
app = QApplication([])
from frelon.gui.panels.training_panel import TrainingPanel
from frelon.gui.options import train_flags
panel = TrainingPanel()
widget = panel.more.widgets["shine"]
widget.setValue(0.5)
print(json.dumps({"flags": train_flags(panel.options()), "tip": widget.toolTip()}))
"""


def _scratch_copy(root: Path) -> Path:
    """A package root holding `frelon` as the checkout maps it (pyproject's package-dir), with
    common/ copied and one field added to TrainConfig; the rest linked to the checkout."""
    pkg = root / "frelon"
    shutil.copytree(REPO / "frelon", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "common", pkg / "common", ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("engine", "gui"):
        (pkg / part).symlink_to(REPO / part, target_is_directory=True)
    config = pkg / "common" / "train_config.py"
    text = config.read_text(encoding="utf-8")
    marker = "    # ---- derived values"
    assert marker in text
    config.write_text(text.replace(marker, FIELD + "\n" + marker), encoding="utf-8")
    return root


def _run(args: list[str], root: Path, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root), QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_one_field_is_a_flag_a_checked_value_a_config_key_and_an_app_option(tmp_path):
    root = _scratch_copy(tmp_path / "scratch")
    work = tmp_path / "work"
    work.mkdir()
    where = _run(["-c", "import frelon.common.train_config as c; print(c.__file__)"], root, work)
    assert where.stdout.strip().startswith(str(root)), where      # the scratch copy is what runs

    help_text = _run(["-m", "frelon", "train", "--help"], root, work).stdout
    assert "--shine SHINE" in help_text and "how much the pictures shine" in help_text

    refused = _run(["-m", "frelon", "train", "--shine", "5"], root, work)
    assert refused.returncode == 2 and refused.stderr.strip() == "frelon: error: shine: must be from 0 to 1, got 5"

    data = make_colour_folder(tmp_path / "data", per_class=4)
    trained = _run(["-m", "frelon", "train", "--shine", "0.75", "--data", str(data), "--backbone", "resnet18",
                    "--weights", "none", "--image-size", "32", "--epochs", "1", "--max-steps", "1",
                    "--workers", "0", "--out", "runs"], root, work)
    assert trained.returncode == 0, trained.stderr
    run = next((work / "runs").iterdir())
    assert json.loads((run / "config.json").read_text())["shine"] == 0.75

    app = _run(["-c", APP], root, work)
    assert app.returncode == 0, app.stderr
    shown = json.loads(app.stdout.strip().splitlines()[-1])
    assert shown["flags"][shown["flags"].index("--shine") + 1] == "0.5"
    assert "how much the pictures shine" in shown["tip"] and "from 0 to 1" in shown["tip"]
