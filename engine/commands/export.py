"""`frelon export --format onnx`: the model as ONNX, checked against PyTorch before it is kept.

The exported graph takes a normalised NCHW float batch (dynamic batch size) and returns logits
(classification) or the three CenterNet maps. It is run with onnxruntime on sample inputs and
compared with PyTorch: the largest absolute difference is reported, and one above the tolerance
is an error (the file is not left in place). With `int8`, the model is also quantized to INT8
(int8.py: calibrated on training pictures, measured against the float model on the validation
split) into `<name>.int8.onnx` beside it; a refused INT8 model leaves neither file. The preprocessing (size, mean, std) and the classes
are written beside the model (preprocessing.json), so it can be used with nothing else.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from frelon.common.run_folder import RunFolder

from ..errors import ConfigurationError, FrelonError
from ..inference import load_run
from ..rundir import atomic_target, atomic_write_json

TOLERANCE = 1e-3


class ExportMismatch(FrelonError):
    kind = "internal"


def int8_path(target: Path) -> Path:
    """The INT8 model beside the float one: model.onnx → model.int8.onnx."""
    return target.with_suffix(".int8.onnx")


def export_onnx(run: str, out: str | None = None, checkpoint: str = "best", int8: bool = False,
                max_drop: float | None = None, calibration: int | None = None) -> dict:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigurationError("ONNX export needs onnx and onnxruntime",
                                 hint="pip install 'frelon[export]'") from None
    loaded = load_run(run, checkpoint, device="cpu")
    model, outputs = loaded.task.export_module(loaded.model)     # (logits) or the three CenterNet maps
    model.eval()
    target = Path(out) if out else RunFolder(loaded.run_dir).export / "model.onnx"
    size = loaded.size
    example = torch.randn(2, 3, size, size)
    with atomic_target(target) as tmp:      # a mismatch below leaves no file in place
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the TorchScript exporter's deprecation notice
            torch.onnx.export(model, (example,), tmp, dynamo=False, input_names=["images"],
                              output_names=outputs, opset_version=17,
                              dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}})
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        check = torch.randn(3, 3, size, size)
        with torch.no_grad():
            ref = model(check)
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        got = session.run(None, {"images": check.numpy()})
        diff = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(ref, got))
        if not diff <= TOLERANCE:
            raise ExportMismatch(f"the ONNX model differs from PyTorch by {diff:.3g} (tolerance {TOLERANCE})",
                                 hint="report this with the run's model.json; the export was not kept")
        quantized = _int8(loaded, tmp, int8_path(target), max_drop, calibration) if int8 else None
    pre = {"task": loaded.task_name, "classes": loaded.classes, "size": size, "mean": loaded.mean,
           "std": loaded.std, "input": "images: float32 [N, 3, size, size], RGB scaled to [0, 1] then (x - mean) / std",
           "outputs": outputs}
    atomic_write_json(target.parent / "preprocessing.json", pre)
    result = {"path": str(target), "max_abs_diff": diff, "tolerance": TOLERANCE, "outputs": outputs,
              "preprocessing": str(target.parent / "preprocessing.json")}
    return {**result, "int8": quantized} if int8 else result


def _int8(loaded, float_tmp: str, target: Path, max_drop: float | None, calibration: int | None) -> dict:
    """The INT8 model written to `target` (atomically: a refusal leaves none, and the float
    model's own temporary file goes with it)."""
    from .int8 import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP, quantize
    with atomic_target(target) as tmp:
        result = quantize(loaded, float_tmp, tmp, DEFAULT_MAX_DROP if max_drop is None else max_drop,
                          DEFAULT_CALIBRATION if calibration is None else calibration, loaded.config.seed)
    return {**result, "path": str(target)}
