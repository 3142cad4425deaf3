"""'Find LR' in the model panel runs the real `frelon lr-find` in the background, draws the curve
with the suggestion marked, and 'Use' puts the suggested base LR into the Base LR field."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from frelon.gui.panels.training_panel import TrainingPanel
from frelon.gui.options import train_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import make_colour_folder  # noqa: E402

pytestmark = pytest.mark.slow


def test_find_lr_button_with_the_real_engine(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)
    data = make_colour_folder(tmp_path / "data")
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.show()
    p.image_size.setValue(32)
    p.batch.setValue(4)
    assert p.lr.value() == 0 and p.lr.text().startswith("auto")          # the optimizer's own LR
    flags = lambda: [*train_flags(p.options().replace(data=str(data))),   # noqa: E731
                     "--backbone", "resnet18", "--weights", "none", "--workers", "0", "--steps", "15"]
    p.lr_finder.set_flags(flags)
    with qtbot.waitSignal(p.lr_finder.result_ready, timeout=240_000) as blocker:
        p.lr_finder.button.click()
    result = blocker.args[0]
    lrs = result["lrs"]
    s = result["suggestion"]
    assert lrs[0] <= s["effective_lr"] <= lrs[-1]
    assert p.lr_finder.plot.isVisible()
    xs, ys = p.lr_finder.curve.getData()
    assert len(xs) == len(lrs) == len(ys)
    assert p.lr_finder.use.isEnabled() and p.lr_finder.use.text().startswith("Use ")
    p.lr_finder.use.click()
    assert p.lr.value() == pytest.approx(s["lr"])
    # the effective LR the panel shows for that base LR is the suggestion (batch 4 both times)
    assert p.options().effective_lr() == pytest.approx(s["effective_lr"])
    # a point picked on the curve becomes the base LR that gives it
    p.lr_finder.choose_effective(lrs[3])
    assert p.options().effective_lr() == pytest.approx(lrs[3], rel=5e-3)     # 3 significant digits
