"""EngineProcess against the fake engine: events in order, partial and non-JSON lines, a crash
with no error event, a graceful stop, and the escalation to terminate / kill; a short command on the
same supervisor: its answer, its failure in one line, its stop and its silent cancel."""
from __future__ import annotations

import os
import sys

import pytest

from frelon.gui.engine_process import EngineProcess

TRAIN = ["train", "--epochs", "2", "--events", "-", "--control", "stdin"]


def record(proc: EngineProcess):
    got = {"events": [], "logs": []}
    proc.event.connect(lambda e: got["events"].append(e))
    proc.log_line.connect(lambda stream, text: got["logs"].append((stream, text)))
    return got


def types(got) -> list[str]:
    return [e["type"] for e in got["events"]]


def test_events_arrive_in_order_and_run_completes(qtbot, fake_engine, tmp_path):
    fake_engine("normal", steps=10)
    proc = EngineProcess()
    got = record(proc)
    with qtbot.waitSignals([proc.started, proc.finished], order="strict", timeout=10_000):
        proc.start(TRAIN + ["--out", str(tmp_path)])
    outcome = proc.outcome
    assert types(got)[:2] == ["run_started", "data_report"]
    assert types(got)[-1] == "run_finished"
    assert [e["step"] for e in got["events"] if e["type"] == "step"] == list(range(1, 11))
    assert outcome.ok and outcome.finish_status == "completed" and outcome.exit_code == 0
    assert outcome.run_dir.startswith(str(tmp_path))
    assert outcome.title() == "Training completed"
    assert not proc.is_running()


def test_partial_and_non_json_lines(qtbot, fake_engine, tmp_path, monkeypatch):
    go = tmp_path / "go"
    monkeypatch.setenv("FAKE_PARTIAL_GO", str(go))
    fake_engine("partial", steps=2)
    proc = EngineProcess()
    got = record(proc)
    with qtbot.waitSignal(proc.finished, timeout=20_000):
        proc.start(TRAIN)
        # the first 10 bytes of the log line have been read and are held, not parsed...
        qtbot.waitUntil(lambda: proc._out_rest != b"", timeout=10_000)
        assert len(proc._out_rest) == 10 and "log" not in types(got)
        go.touch()                                                   # ...then the rest is written
    logs = [e for e in got["events"] if e["type"] == "log"]
    assert logs and logs[0]["message"] == "split across reads"     # joined across two reads
    assert ("stdout", "this line is not JSON") in got["logs"]       # a log line, not a crash
    assert ("stderr", "a warning on stderr") in got["logs"]
    assert types(got)[-1] == "run_finished"


def test_crash_without_error_event(qtbot, fake_engine):
    fake_engine("crash", steps=10)
    proc = EngineProcess()
    got = record(proc)
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.start(TRAIN)
    outcome = blocker.args[0]
    assert "run_finished" not in types(got)
    assert not outcome.ok and outcome.exit_code == 3 and outcome.error_event is None
    assert outcome.stderr_tail[-1] == "Fatal Python error: Segmentation fault"
    text = outcome.describe()
    assert "exited with code 3" in text and "Segmentation fault" in text and "Resume" in text
    assert outcome.resumable


def test_error_event_becomes_the_message(qtbot, fake_engine):
    fake_engine("error")
    proc = EngineProcess()
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.start(TRAIN)
    outcome = blocker.args[0]
    assert outcome.title() == "Training failed"
    assert "No images found" in outcome.describe() and "class subfolders" in outcome.describe()
    assert "Traceback" in outcome.details()


def test_stop_is_graceful(qtbot, fake_engine):
    fake_engine("normal", steps=1000, delay=0.01)
    proc = EngineProcess()
    got = record(proc)
    with qtbot.waitSignal(proc.event, timeout=10_000, check_params_cb=lambda e: e["type"] == "step"):
        proc.start(TRAIN)
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.stop()
    outcome = blocker.args[0]
    assert types(got)[-2:] == ["checkpoint", "run_finished"]
    assert outcome.finish_status == "stopped" and outcome.stop_requested
    assert not outcome.terminated and not outcome.killed and outcome.ok


def test_stubborn_engine_is_terminated_then_killed(qtbot, fake_engine):
    fake_engine("stubborn", steps=2)
    proc = EngineProcess(stop_timeout_ms=300, kill_timeout_ms=300)
    with qtbot.waitSignal(proc.event, timeout=10_000, check_params_cb=lambda e: e["type"] == "step"):
        proc.start(TRAIN)
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.stop()
    outcome = blocker.args[0]
    assert outcome.stop_requested and outcome.terminated and outcome.killed and outcome.crashed
    assert "killed" in outcome.describe()


def test_kill(qtbot, fake_engine):
    fake_engine("normal", steps=1000, delay=0.01)
    proc = EngineProcess()
    with qtbot.waitSignal(proc.started, timeout=10_000):
        proc.start(TRAIN)
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.kill()
    assert blocker.args[0].killed and not blocker.args[0].ok


def test_shutdown_leaves_no_process(qtbot, fake_engine):
    fake_engine("stubborn", steps=2)
    proc = EngineProcess()
    with qtbot.waitSignal(proc.event, timeout=10_000, check_params_cb=lambda e: e["type"] == "step"):
        proc.start(TRAIN)
    pid = proc.pid()
    with qtbot.waitSignal(proc.finished, timeout=10_000):
        proc.shutdown(stop_ms=200, term_ms=200)
    assert not proc.is_running()
    with pytest.raises(OSError):
        os.kill(pid, 0)


def test_program_that_does_not_exist(qtbot, monkeypatch):
    monkeypatch.setenv("FRELON_GUI_ENGINE", "/nonexistent/frelon-engine")
    proc = EngineProcess()
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.start(TRAIN)
    assert blocker.args[0].start_error and "could not start" in blocker.args[0].describe()


# ---- short commands: the same supervisor, stdout kept whole as the answer ----

def test_a_short_command_keeps_its_answer(qtbot, fake_engine):
    proc = EngineProcess()
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.start(["info", "--json"], events=False)
    outcome = blocker.args[0]
    assert outcome.ok and outcome.command == "info" and outcome.exit_code == 0
    assert '"default_backbone": "efficientnet_lite0"' in outcome.stdout
    assert outcome.title() == "frelon info finished" and not outcome.resumable


def test_a_failing_command_says_why_in_one_line(qtbot, fake_engine, tmp_path):
    from frelon.gui.engine_command import JsonCommand
    command = JsonCommand()
    with qtbot.waitSignal(command.failed, timeout=10_000) as blocker:
        command.start(["check", "--data", str(tmp_path / "nowhere"), "--json"])
    why, details = blocker.args
    assert why == f"error: {tmp_path / 'nowhere'}: no such folder"
    assert "exit code: 2" in details and "no such folder" in details
    assert command.process.outcome.title() == "frelon check failed"


def test_a_command_is_stopped_by_terminate_and_cancelled_in_silence(qtbot, tmp_path, monkeypatch):
    script = tmp_path / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setenv("FRELON_GUI_ENGINE", f'"{sys.executable}" "{script}"')
    proc = EngineProcess()
    with qtbot.waitSignal(proc.started, timeout=10_000):
        proc.start(["lr-find", "--json"], events=False)
    with qtbot.waitSignal(proc.finished, timeout=10_000) as blocker:
        proc.stop()                                   # no stdin to read `stop` from: terminated
    outcome = blocker.args[0]
    assert outcome.stop_requested and outcome.terminated and not outcome.ok
    assert outcome.title() == "frelon lr-find stopped" and outcome.describe() == "it was stopped"
    with qtbot.waitSignal(proc.started, timeout=10_000):
        proc.start(["lr-find", "--json"], events=False)
    pid = proc.pid()
    with qtbot.assertNotEmitted(proc.finished, wait=300):
        proc.cancel()
    assert not proc.is_running()
    with pytest.raises(OSError):
        os.kill(pid, 0)
