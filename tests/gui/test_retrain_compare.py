"""Retrain on corrected boxes: the new run is drawn over the one it started from, and when it
ends the Runs tab selects the two (their configurations' differences)."""
from __future__ import annotations

import json

from frelon.common import events
from frelon.gui.main_window import MainWindow


def test_a_retrain_is_compared_with_the_run_it_started_from(qtbot, tmp_path, fake_engine):
    fake_engine("normal", steps=6, delay=0.002, epochs=1)
    runs = tmp_path / "runs"
    previous = runs / "20260101-000000-resnet18-hornets"
    (previous / "checkpoints").mkdir(parents=True)
    (previous / "checkpoints" / "best.safetensors").write_bytes(b"x")
    (previous / "config.json").write_text(json.dumps({"backbone": "resnet18", "task": "detect", "epochs": 1}))
    lines = [events.make("run_started", run_dir=str(previous), config={"backbone": "resnet18"}, task="detect",
                         backbone="resnet18", classes=["hornet"], world_size=1, device="cpu", effective_lr=1e-3,
                         global_batch=4, steps_per_epoch=3, total_steps=3)]
    lines += [events.make("step", epoch=0, step=i, loss=2.0 / i, lr=1e-3, samples_per_s=9, eta_s=1, memory=[])
              for i in (1, 2, 3)]
    lines.append(events.make("run_finished", status="completed", epochs_done=1, best=None, duration_s=1.0))
    (previous / "events.jsonl").write_text("".join(events.dumps(e) + "\n" for e in lines))
    reviewed = tmp_path / "data" / "annotations.reviewed.json"
    reviewed.parent.mkdir()
    reviewed.write_text("{}")

    w = MainWindow(str(runs), ask_engine=False)
    qtbot.addWidget(w)
    w.session.show_run(str(previous), None)
    with qtbot.waitSignal(w.controller.finished, timeout=20_000) as blocker:
        w.retrain(str(reviewed), True)
        assert w.plots_panel.compare is not None and list(w.plots_panel.compare.loss.y) == [2.0, 1.0, 2.0 / 3]
    new = blocker.args[0].run_dir
    assert new and new != str(previous)
    assert sorted(w.runs_panel.selected_paths()) == sorted([str(previous), new])
