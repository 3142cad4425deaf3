"""`frelon export --int8`: the float ONNX model quantized to INT8, and kept only when it still works.

onnxruntime's static quantization (`quantize_static`: QDQ format, signed 8-bit weights per channel,
unsigned 8-bit activations whose ranges come from calibration) after its recommended
pre-processing (`quant_pre_process`: shape inference and graph optimisation). Unsigned activations
(U8S8) rather than onnxruntime's default S8S8: on this project's CPU (AVX-512 VNNI, 1 thread) the
photos model of bench/fig_int8.py (efficientnet_lite0, 128 px) ran a picture in 8.1–8.4 ms U8S8,
15.3–15.5 ms S8S8 and 14.5–14.7 ms in float (measured in turn, twice), the same validation
accuracy both ways. On a CPU without VNNI, U8S8 can saturate and lose accuracy:
the check below measures exactly that, and refuses. The calibration pictures are the
run's own training pictures through the evaluation transform (the task's `quantization`); the
float and the INT8 model are then scored by the same code on the run's validation split (accuracy
for a classifier), and their file sizes and CPU latencies measured the same way (one picture per
call, one thread, the median of LATENCY_RUNS after a warm-up, the two models taken in turn
LATENCY_ROUNDS times and each one's best median kept: a busy machine slows both alike). When the INT8 model loses more than
`max_drop` of the metric it is refused: no file is left and the one line says the figures.
"""
from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError, FrelonError

DEFAULT_MAX_DROP = 0.02          # 2 points of accuracy
DEFAULT_CALIBRATION = 64         # pictures
LATENCY_RUNS = 20
LATENCY_ROUNDS = 3


class Int8Refused(FrelonError):
    kind = "config"


def session(path: str | Path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1           # the same for both models: a fair latency
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _Reader:
    """onnxruntime's CalibrationDataReader over prepared batches."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches = iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"images": batch.astype(np.float32)}

    def rewind(self):                          # not needed by MinMax; part of the protocol
        pass


def quantize(loaded, float_path: str, int8_path: str, max_drop: float = DEFAULT_MAX_DROP,
             calibration: int = DEFAULT_CALIBRATION, seed: int = 0) -> dict:
    """Write the INT8 model of `float_path` to `int8_path` and measure both; Int8Refused (the
    caller removes `int8_path`) when the metric drops by more than `max_drop`."""
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static
    if not hasattr(loaded.task, "quantization"):
        raise ConfigurationError(f"--int8: not offered for a {loaded.task_name} run yet",
                                 hint="export without --int8")
    data = loaded.task.quantization(loaded)
    if not data.val:
        raise Int8Refused(f"--int8: refused, {data.source} gives the run no validation pictures to measure the "
                          "INT8 model on", hint="train with a validation split (--val-split, --val-data), then export")
    batches = data.calibration(calibration, seed)
    with tempfile.TemporaryDirectory() as scratch, _quiet():
        prepared = os.path.join(scratch, "prepared.onnx")
        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, int8_path, _Reader(batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    measured, sessions = {}, {}
    for name, path in (("float", float_path), ("int8", int8_path)):
        s = sessions[name] = session(path)
        figures = data.score(lambda x, s=s: s.run(None, {"images": x}))
        measured[name] = {data.metric: figures["value"], "size_bytes": os.path.getsize(path),
                          "predicted": figures.pop("predicted", None)}
    for name, ms in _latencies(sessions, batches[0][:1]).items():
        measured[name]["latency_ms"] = ms
    if measured["float"][data.metric] is None or measured["int8"][data.metric] is None:
        raise Int8Refused(f"--int8: refused, its {data.metric} cannot be measured on {data.source}'s validation "
                          "split (no annotated object there)", hint="train with validation images, then export")
    agree = _agreement(measured["float"].pop("predicted"), measured["int8"].pop("predicted"))
    drop = measured["float"][data.metric] - measured["int8"][data.metric]
    result = {"path": str(int8_path), "metric": data.metric, "float": measured["float"], "int8": measured["int8"],
              "drop": drop, "max_drop": max_drop, "agreement": agree, "validation": data.source,
              "validation_images": figures["images"], "calibration_images": sum(len(b) for b in batches),
              "latency": f"CPU, one picture per call, 1 thread, best of {LATENCY_ROUNDS} medians of {LATENCY_RUNS}"}
    if not drop <= max_drop:                   # NaN refuses too
        raise Int8Refused(f"--int8: refused, {data.metric} drops by {drop:.3f} > --max-drop {max_drop:g} "
                          f"({words(result)})", hint="export without --int8, or allow a larger --max-drop")
    return result


def words(result: dict) -> str:
    """The figures side by side, in one line."""
    f, q, m = result["float"], result["int8"], result["metric"]
    return (f"{m} float {f[m]:.3f} / INT8 {q[m]:.3f} on {result['validation_images']} validation pictures, "
            f"size {f['size_bytes'] / 2**20:.1f} / {q['size_bytes'] / 2**20:.1f} MiB, "
            f"CPU latency {f['latency_ms']:.1f} / {q['latency_ms']:.1f} ms")


def _latencies(sessions: dict, picture: np.ndarray) -> dict[str, float]:
    """{name: ms}: each session's best median over LATENCY_ROUNDS rounds, taken in turn."""
    best = {name: float("inf") for name in sessions}
    for _ in range(LATENCY_ROUNDS):
        for name, s in sessions.items():
            for _ in range(3):
                s.run(None, {"images": picture})
            times = []
            for _ in range(LATENCY_RUNS):
                start = time.perf_counter()
                s.run(None, {"images": picture})
                times.append(time.perf_counter() - start)
            best[name] = min(best[name], statistics.median(times) * 1000)
    return best


class _quiet:
    """onnxruntime's quantizer logs a warning (on the root logger) for every shape tensor it leaves
    in float — hundreds for a TF-style padded backbone: silenced while it works."""

    def __enter__(self):
        self.before = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(self.before)


def _agreement(a, b) -> float | None:
    """The share of validation pictures on which both models predict the same (None: not given)."""
    if a is None or b is None or not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)
