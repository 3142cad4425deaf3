"""The Robustness tab of Results with the real engine: a toy classifier trained (in this process,
as `frelon train` would), "Run check" runs `frelon robustness` in the background, and the curve,
the flipped images and the selected image's triptych come from what it wrote into the run folder."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from frelon.gui.panels.results_panel import ResultsPanel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from runhelp import train_here  # noqa: E402

pytestmark = [pytest.mark.slow]


def _colour_folder(root):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for name, rgb in (("blue", (40, 40, 200)), ("red", (200, 40, 40))):
        (root / name).mkdir(parents=True)
        for i in range(10):
            a = (rng.normal(0, 35, (40, 48, 3)) + rgb).clip(0, 255).astype("uint8")
            Image.fromarray(a).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_gui")
    data = _colour_folder(root / "data")
    # trained in this process: what runs in the background under test is `frelon robustness`
    return train_here("--data", data, "--out", root / "runs", "--epochs", "2", "--image-size", "32",
                      "--batch-size", "4", "--weights", "none", "--workers", "0", "--backbone", "resnet18")


def test_run_check_from_the_app_shows_curve_flips_and_triptych(qtbot, toy_run, monkeypatch):
    monkeypatch.delenv("FRELON_GUI_ENGINE", raising=False)        # the real `python -m frelon`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 620)
    panel.load_run(str(toy_run))
    assert panel.stack.currentWidget() is panel.classify_page
    view = panel.robustness
    panel.classify_page.setCurrentWidget(view)
    assert view.plot.getPlotItem().listDataItems() == []          # nothing checked yet
    view.eps.setText("0, 1, 4")
    with qtbot.waitSignal(view.check_finished, timeout=240_000):
        args = view.run_check()
    assert args[:3] == ["robustness", "--run", str(toy_run)] and args[-2:] == ["--eps", "0,1,4"]
    assert "failed" not in view.status.text(), view.status.toolTip()
    written = json.loads((toy_run / "robustness" / "fgsm.json").read_text())
    (curve,) = view.plot.getPlotItem().listDataItems()
    xs, ys = curve.getData()
    assert list(xs) == [0, 1, 4] and list(ys) == written["accuracy"]
    drawn = [f for f in written["flipped"] if f.get("triptych")]
    assert view.flips.count() == len(drawn) > 0
    assert view.picture.pixmap() is not None and not view.picture.pixmap().isNull()
    assert view.picture.pixmap().width() > 2 * view.picture.pixmap().height()     # three panels
    if os.environ.get("FRELON_SHOTS"):
        panel.grab().save(os.path.join(os.environ["FRELON_SHOTS"], "results-robustness.png"))
    # a second attack: both curves on the same axes
    pgd = dict(written, attack="pgd", accuracy=[written["accuracy"][0], 0.0, 0.0], flipped=[])
    (toy_run / "robustness" / "pgd.json").write_text(json.dumps(pgd))
    panel.load_run(str(toy_run))
    assert len(view.plot.getPlotItem().listDataItems()) == 2
    view.attack.setCurrentText("pgd")
    assert view.flips.count() == 0 and "No image flipped" in view.picture.text()


def test_a_detection_runs_robustness_tab_plots_map(qtbot, tmp_path):
    run = tmp_path / "run"
    (run / "robustness").mkdir(parents=True)
    (run / "model.json").write_text(json.dumps({"task": "detect", "classes": ["circle", "square"]}))
    result = {"attack": "fgsm", "metric": "map_50", "eps": [0, 1, 4], "map_50": [0.63, 0.28, 0.15],
              "map": [0.3, 0.1, 0.05], "images": 24, "flipped": []}
    (run / "robustness" / "fgsm.json").write_text(json.dumps(result))
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    assert panel.stack.currentWidget() is panel.detect_page
    view = panel.detect_robustness
    (item,) = view.plot.getPlotItem().listDataItems()
    assert list(item.getData()[1]) == [0.63, 0.28, 0.15]
    assert view.plot.getPlotItem().getAxis("left").labelText == "mAP@0.5"
    assert view.flips.count() == 0 and "mAP@0.5" in view.picture.text()


def test_runs_compared_on_the_same_robustness_axes(qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from frelon.gui.main_window import MainWindow
    runs = tmp_path / "runs"
    for name, acc in (("a", [1.0, 0.5, 0.25]), ("b", [1.0, 0.75, 0.5])):
        (runs / name / "robustness").mkdir(parents=True)
        (runs / name / "model.json").write_text(json.dumps({"task": "classify", "classes": ["x", "y"]}))
        (runs / name / "robustness" / "fgsm.json").write_text(json.dumps(
            {"attack": "fgsm", "metric": "accuracy", "eps": [0, 1, 2], "accuracy": acc, "images": 4, "flipped": []}))
    w = MainWindow(str(runs), ask_engine=False)
    qtbot.addWidget(w)
    w.runs_panel.compare_requested.emit(str(runs / "a"), str(runs / "b"))
    items = w.results_panel.robustness.plot.getPlotItem().listDataItems()
    assert [list(i.getData()[1]) for i in items] == [[1.0, 0.5, 0.25], [1.0, 0.75, 0.5]]
    assert items[1].opts["pen"].style() == Qt.PenStyle.DashLine
    w.results_panel.load_run(str(runs / "a"))                         # one run again: its curves alone
    assert len(w.results_panel.robustness.plot.getPlotItem().listDataItems()) == 1
