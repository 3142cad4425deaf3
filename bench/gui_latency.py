"""Event -> plot latency and the longest GUI event-loop stall while an engine floods events.

Runs the real main window (offscreen unless a display is set) against tests/gui/fake_engine.py in
'flood' mode: `step` events written as fast as the child can (far faster than the real engine,
which emits at most one every 100 ms). Measures
  - latency: from an event's `time` (stamped by the child when it made it) to the plot refresh
    that first drew it (setData on the curves; the paint follows in the same loop turn);
  - stall: the longest gap between ticks of a 1 ms timer on the GUI thread (0 = never blocked),
    overall, while the events stream, and at the end (loading the results, refreshing the runs).
Two more passes pace the engine at 1 kHz and at 50 Hz (the real engine emits at most 10 Hz).
Prints one line per pass (with the machine's load average: the figures mean little on a busy
machine), then JSON.

    python bench/gui_latency.py [--events 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_pass(app, events: int, delay: float, tmp: Path) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from frelon.gui.main_window import MainWindow

    os.environ.update(FAKE_ENGINE_MODE="flood" if delay == 0 else "normal", FAKE_STEPS=str(events),
                      FAKE_DELAY=str(delay), FAKE_EPOCHS="5")
    window = MainWindow(str(tmp / "runs"), ask_engine=False)
    window.data_panel.set_path(str(tmp), check=False)
    window.resize(1480, 920)
    window.show()
    waiting: list[float] = []          # event times received but not yet drawn
    latencies: list[float] = []
    received = [0]

    streaming = [0.0, 0.0]             # perf_counter of the first and last step event

    def on_event(e: dict) -> None:
        if e.get("type") == "step":
            waiting.append(float(e["time"]))
            received[0] += 1
            streaming[1] = time.perf_counter()
            if not streaming[0]:
                streaming[0] = streaming[1]

    def on_redrawn(_version: int) -> None:
        now = time.time()
        latencies.extend(now - t for t in waiting)
        waiting.clear()

    window.controller.event.connect(on_event)
    window.plots_panel.redrawn.connect(on_redrawn)

    gaps: list[float] = []
    clock = QElapsedTimer()
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(1)

    def tick() -> None:
        gaps.append((time.perf_counter(), clock.nsecsElapsed() / 1e6))
        clock.restart()
    ticker.timeout.connect(tick)

    settle = QEventLoop()                      # let the window appear and paint first
    QTimer.singleShot(700, settle.quit)
    settle.exec()
    loop = QEventLoop()
    window.controller.finished.connect(lambda _o: QTimer.singleShot(200, loop.quit))
    t0 = time.perf_counter()
    window.session.start()
    clock.start()
    ticker.start()
    QTimer.singleShot(300_000, loop.quit)
    loop.exec()
    wall = time.perf_counter() - t0
    ticker.stop()
    window.close()
    window.deleteLater()
    during = [g for t, g in gaps if streaming[0] <= t <= streaming[1]]
    after = [g for t, g in gaps if t > streaming[1]]
    gaps = [g for _t, g in gaps]
    return {"mode": "flood" if delay == 0 else f"paced {1 / delay:.0f}/s", "events": received[0],
            "stall_streaming_max_ms": max(during or [0]), "stall_at_end_max_ms": max(after or [0]),
            "events_per_s": received[0] / wall, "latency_p50_ms": 1000 * percentile(latencies, 0.5),
            "latency_p95_ms": 1000 * percentile(latencies, 0.95), "latency_max_ms": 1000 * max(latencies or [0]),
            "stall_max_ms": max(gaps or [0]), "stall_p99_ms": percentile(gaps, 0.99),
            "ticks_median_ms": statistics.median(gaps) if gaps else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    import tempfile

    sys.path.insert(0, str(ROOT))
    os.environ["FRELON_GUI_ENGINE"] = f'"{sys.executable}" "{ROOT / "tests" / "gui" / "fake_engine.py"}"'
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FRELON_SETTINGS"] = str(Path(tmp) / "settings.ini")
        for delay, count in ((0.0, args.events), (0.001, min(args.events, 3000)), (0.02, 150)):
            r = run_pass(app, count, delay, Path(tmp))
            r["load_average_1min"] = os.getloadavg()[0]
            results.append(r)
            print(f"{r['mode']:>12}: {r['events']} events at {r['events_per_s']:.0f}/s · latency p50 "
                  f"{r['latency_p50_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms, max {r['latency_max_ms']:.0f} ms"
                  f" · longest stall {r['stall_max_ms']:.0f} ms (while streaming {r['stall_streaming_max_ms']:.0f},"
                  f" at the end {r['stall_at_end_max_ms']:.0f}; p99 {r['stall_p99_ms']:.1f} ms)"
                  f" · load {r['load_average_1min']:.1f} on {os.cpu_count()} CPUs")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
