"""A multi-label run's Results: per label AP, F1 and threshold, pictures with their label sets,
the wrong ones first, a label click filtering them, predictions on the user's pictures."""
from __future__ import annotations

import json

from frelon.common import events as ev
from frelon.gui.panels.results_panel import ResultsPanel


def _grab(widget, name):
    import os
    folder = os.environ.get("FRELON_SHOTS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def test_a_multilabel_run_shows_its_labels_and_wrong_sets_first(qtbot, tmp_path):
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    classes = ["bee", "hornet"]
    per_label = {"bee": {"ap": 0.9, "f1": 0.8, "threshold": 0.41, "support": 3},
                 "hornet": {"ap": 0.5, "f1": 0.5, "threshold": 0.62, "support": 2}}
    lines = [ev.make("run_started", run_dir=str(run), config={}, task="multilabel", backbone="resnet18", classes=classes,
                     world_size=1, device="cpu", effective_lr=0.001, global_batch=4, steps_per_epoch=1, total_steps=1),
             ev.make("epoch_end", epoch=0, train_loss=0.5, duration_s=1.0,
                     val={"loss": 0.4, "map": 0.7, "f1": 0.65, "per_label": per_label})]
    (run / "events.jsonl").write_text("\n".join(ev.dumps(e) for e in lines) + "\n")
    (run / "model.json").write_text(json.dumps({"task": "multilabel", "classes": classes}))
    preds = [{"path": str(tmp_path / "a.png"), "true": ["bee"], "predicted": ["bee"], "scores": {"bee": 0.9, "hornet": 0.1}, "wrong": False},
             {"path": str(tmp_path / "b.png"), "true": ["bee", "hornet"], "predicted": ["bee"], "scores": {"bee": 0.8, "hornet": 0.3}, "wrong": True},
             {"path": str(tmp_path / "c.png"), "true": [], "predicted": ["hornet"], "scores": {"bee": 0.1, "hornet": 0.7}, "wrong": True}]
    (run / "predictions" / "val.json").write_text(json.dumps(preds))
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.load_run(str(run))
    view = panel.labels
    assert panel.stack.currentWidget() is panel.labels_page
    assert [[view.table.item(r, c).text() for c in range(5)] for r in range(2)] == \
        [["bee", "0.900", "0.800", "0.410", "3"], ["hornet", "0.500", "0.500", "0.620", "2"]]
    captions = [view.thumbs.item(i).text() for i in range(view.thumbs.count())]
    assert captions == ["bee, hornet → bee 0.80", "none → hornet 0.70", "✓ bee 0.90"]
    view.table.cellClicked.emit(1, 0)                 # hornet: carried or given
    assert view.thumbs.count() == 2
    _grab(panel, "results-multilabel.png")
    panel.show_predictions([{"file_name": "a.png", "predicted": ["bee", "hornet"], "scores": {"bee": 0.9, "hornet": 0.6}}],
                           str(tmp_path))
    assert view.thumbs.item(0).text() == "bee 0.90, hornet 0.60"
