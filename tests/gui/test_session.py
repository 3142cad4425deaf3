"""The app's session (gui/session.py): what it works on and what Start, Resume and Retrain do, without
a window — the state the window used to hold in its widgets and attributes."""
from __future__ import annotations

import json

from frelon.common.train_config import TrainConfig
from frelon.gui.run_controller import RunController
from frelon.gui.run_folders import summarize
from frelon.gui.session import Session


def _session(qtbot, tmp_path):
    controller = RunController()
    session = Session(controller, str(tmp_path / "runs"))
    started = []
    controller.start = lambda flags: started.append(flags) or ["train", *flags]
    return session, started


def _run(tmp_path, name: str, status: str, task: str = "detect"):
    run = tmp_path / "runs" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.safetensors").write_bytes(b"x")
    (run / "config.json").write_text(json.dumps({"backbone": "resnet18", "task": task, "data": "/d", "epochs": 2}))
    (run / "events.jsonl").write_text(json.dumps({"v": 1, "type": "run_finished", "status": status, "time": 0,
                                                  "epochs_done": 1}) + "\n")
    return run


def test_start_trains_the_data_and_options_chosen_or_says_why_not(qtbot, tmp_path):
    session, started = _session(qtbot, tmp_path)
    refused = []
    session.refused.connect(lambda title, text: refused.append(text))
    session.set_data(str(tmp_path / "nowhere"))
    assert session.start() is False and "does not exist" in refused[0] and started == []
    data = tmp_path / "photos"
    data.mkdir()
    session.set_data(str(data))
    session.set_options(TrainConfig(epochs=3, device="cpu"))
    session.extra_flags = ("--max-steps", "2")
    assert session.start() is True
    flags = started[-1]
    assert flags[flags.index("--data") + 1] == str(data) and flags[flags.index("--out") + 1] == str(tmp_path / "runs")
    assert flags[flags.index("--epochs") + 1] == "3" and flags[-2:] == ["--max-steps", "2"]


def test_the_plan_follows_the_data_doctor_s_count(qtbot, tmp_path):
    session, _ = _session(qtbot, tmp_path)
    plans = []
    session.plan_changed.connect(plans.append)
    session.set_options(TrainConfig(batch_size=10, epochs=2, warmup_epochs=0))
    session.set_report({"task": "detect", "splits": {"train": {"images": 100}}})
    assert (plans[-1].steps_per_epoch, plans[-1].plan.total_steps, plans[-1].cfg.task) == (10, 20, "detect")
    assert plans[-1].xy()[0][-1] == 20 and not plans[-1].chosen_at_start      # a detector's LR is not measured


def test_resume_follows_the_shown_run_when_it_can_be_continued(qtbot, tmp_path):
    session, _ = _session(qtbot, tmp_path)
    stopped, done = _run(tmp_path, "a", "stopped"), _run(tmp_path, "b", "completed")
    session.show_run(str(stopped), summarize(stopped))
    assert session.resume_target == str(stopped) and session.shown_run == str(stopped)
    session.show_run(str(done), summarize(done))
    assert session.resume_target == "" and session.resume() is False


def test_retrain_starts_from_the_shown_detection_run_s_weights_on_the_reviewed_boxes(qtbot, tmp_path):
    session, started = _session(qtbot, tmp_path)
    run = _run(tmp_path, "det", "completed")
    reviewed = tmp_path / "annotations.reviewed.json"
    reviewed.write_text("{}")
    session.show_run(str(run), summarize(run))
    shown = []
    session.retrain_ready.connect(lambda options, data: shown.append((options, data)))
    assert session.retrain(str(reviewed), from_run=True)
    options, data = shown[-1]
    assert (options.task, options.backbone, options.weights, data) == \
        ("detect", "resnet18", str(run / "checkpoints" / "best.safetensors"), str(reviewed))
    flags = started[-1]
    assert flags[flags.index("--data") + 1] == str(reviewed) and session.retrained_from == str(run)
    assert session.retrain(str(reviewed), from_run=False) and shown[-1][0].weights == "imagenet"
