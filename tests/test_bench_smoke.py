"""The benchmark suite still runs: its figures at tiny sizes, and bench/run.py's table and JSON.
(The suite itself is not part of the test run: `python bench/run.py --quick`.)"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


BENCH_MODULES = ("run", "harness", "workloads", "fig_speed", "fig_memory", "fig_detect", "fig_ranks", "real_images")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import fig_detect
    import fig_speed
    import harness
    import run
    yield {"run": run, "speed": fig_speed, "detect": fig_detect, "harness": harness}
    for name in BENCH_MODULES:           # generic names: leave nothing behind for other tests
        sys.modules.pop(name, None)


def test_bench_figures_at_tiny_sizes(bench, tmp_path, capsys, monkeypatch):
    run, speed, detect = bench["run"], bench["speed"], bench["detect"]
    tiny = {
        "P1": lambda quick, device: speed.p1_engine_overhead(quick, device, size=32, batch=2, steps=3, repeats=1),
        "P6": lambda quick, device: detect.p6_decode(quick, device, size=64, classes=3, repeats=1),
        "P8": speed.p8_cuda_amp,
    }
    out = tmp_path / "bench.json"
    monkeypatch.setattr(run, "figures", lambda: tiny)
    run.main(["--quick", "--json", str(out)])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {"P1", "P6", "P8", "machine"}
    for fid in ("P1", "P6"):
        fig = result[fid]
        assert isinstance(fig["value"], float) and fig["value"] > 0, fig
        assert fig["goal"] and isinstance(fig["detail"], dict)
        assert fid in printed
    assert result["P1"]["detail"]["engine_img_s"] > 0 and result["P1"]["detail"]["bare_img_s"] > 0
    assert result["P8"]["value"] == "skipped: needs CUDA" and result["P8"]["passed"] is None
    assert result["machine"]["cores"] >= 1


def test_interleaving_alternates_the_order(bench):
    harness = bench["harness"]
    calls = []
    r = harness.interleaved({"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 1.0}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert harness.median(harness.ratios(r, "a", "b")) == 2.0
    marks = [(1, 0.0), (2, 1.0), (4, 2.0), (5, 5.0)]          # step 3 not logged (throttled events)
    assert harness.step_seconds(marks, warmup=1) == [1.0, 0.5, 3.0]
    assert harness.rate(marks, batch=4, warmup=1) == pytest.approx(4 / 1.0)
    assert harness.rate(marks, batch=4, warmup=1, how="window") == pytest.approx(4 * 4 / 5.0)


def test_bench_modules_do_not_leak_onto_sys_path():
    assert str(BENCH) not in sys.path
