"""Several ranks in the app: each rank's heartbeat light, a stall with its stack, resume on fewer."""
from __future__ import annotations

import json
import time

from frelon.common import events
from frelon.gui import theme
from frelon.gui.main_window import MainWindow
from frelon.gui.widgets.rank_heartbeats import RankHeartbeats


def _heartbeat(ages, stall_after=10.0, step=12):
    return events.make("heartbeat", ranks=[{"rank": r, "step": step, "phase": "forward", "age_s": a}
                                           for r, a in enumerate(ages)], stall_after_s=stall_after)


def test_a_quiet_rank_turns_amber_then_red(qtbot):
    w = RankHeartbeats()
    qtbot.addWidget(w)
    beat = _heartbeat([0.2, 6.0])
    w.add(beat)
    assert theme.OK in w.labels[0].text() and theme.WARN in w.labels[1].text()
    w.refresh(now=beat["time"] + 5)                    # no news for 5 s: ages grow
    assert theme.WARN in w.labels[0].text() and theme.BAD in w.labels[1].text()
    assert "rank 1 · step 12 · forward · 11 s" in w.labels[1].text()


def test_a_stall_shows_the_rank_its_stack_and_resumes_on_one_rank_fewer(qtbot, tmp_path, fake_engine):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"gpus": 0, "processes": 3}))
    w = MainWindow(str(tmp_path / "runs"), ask_engine=False)
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentWidget(w.plots_panel)
    c = w.controller
    w.plots_panel.set_history(c.history)                # what starting a run does
    c._on_event(events.make("run_started", run_dir=str(run), config={}, task="classify", backbone="resnet18",
                            classes=["a", "b"], world_size=3, device="cpu", effective_lr=1e-3, global_batch=6,
                            steps_per_epoch=4, total_steps=40))
    c._on_event(_heartbeat([40.0, 41.0, 39.0], stall_after=30.0))
    c._on_event(events.make("error", kind="stall", rank=1, phase="data", step=12,
                            frames=['File "/x/loader.py", line 9 in fetch'], stack_file=str(run / "ranks" / "rank1.stack.txt"),
                            message="rank 1 of 3 stalled in data after step 12: no rank moved for 40 s",
                            hint="the run was saved at step 12", traceback=""))
    w.plots_panel.refresh()
    ranks = w.plots_panel.ranks
    assert ranks.isVisible() and len([x for x in ranks.labels if x.isVisible()]) == 3
    assert "rank 1 of 3 stalled in data" in ranks.stall_label.text()
    assert not ranks.stack.isVisible()
    ranks.stack_toggle.click()
    assert ranks.stack.isVisible() and "loader.py" in ranks.stack.toPlainText()
    assert ranks.resume.text() == "Resume on 2 ranks"
    w.session.set_resume_target(str(run))
    ranks.resume.click()
    assert c.last_args[:3] == ["train", "--resume", str(run)]
    assert c.last_args[3:5] == ["--processes", "2"]
    assert not ranks.stall_label.isVisible()            # a new attempt: the old stall is history
    deadline = time.time() + 10
    while c.is_running() and time.time() < deadline:
        qtbot.wait(50)
    if c.is_running():
        c.engine.kill()
