"""The run folder and its checkpoints.

    RUNS_DIR/<YYYYmmdd-HHMMSS>-<name>/
        config.json  events.jsonl  model.json
        checkpoints/last.safetensors   weights + the whole training state (resume)
        checkpoints/best.safetensors   weights of the best epoch (predict, eval, export)
        predictions/  export/

A checkpoint is ONE safetensors file: the model's tensors under their own names, the optimizer's
tensors under `__optim__.<param index>.<name>`, RNG states under `__rng__.*`, and everything else
(counters, config, optimizer hyper-parameters, Python RNG) as JSON in the file's metadata. So a
checkpoint loads without executing any code, and it is replaced by a single atomic rename: a crash
or a full disk during a write leaves the previous checkpoint whole.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import DataError, FrelonError

OPTIM = "__optim__."
RNG = "__rng__."


class CheckpointError(FrelonError):
    kind = "internal"


@contextlib.contextmanager
def atomic_target(path: Path):
    """Yield a temporary path beside `path`; once the body has written it, it is flushed to disk
    and renamed over `path` in one step. On any failure (a kill, a full disk) the temporary file
    is removed and `path` keeps its previous content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def new_run_dir(runs_dir: str | os.PathLike, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"
    base = Path(runs_dir) / f"{stamp}-{safe}"
    path, n = base, 1
    while path.exists():                       # two runs started in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    (path / "checkpoints").mkdir(parents=True)
    (path / "predictions").mkdir()
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found", hint="is this a Frelon run folder?") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


# ---------------------------------------------------------------- RNG state

def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {RNG + "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"{RNG}cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {"python": _jsonable(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors[RNG + "torch"])
    cuda = sorted(k for k in tensors if k.startswith(RNG + "cuda."))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][:torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)
    random.setstate(_tuples(meta["python"]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


# ---------------------------------------------------------------- checkpoints

def _contiguous(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage: give it plain CPU copies
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, with_rng: bool = False) -> None:
    """Write weights (+ optimizer and RNG when given) and `meta` into one file, atomically."""
    tensors = _contiguous(model_state)
    meta = dict(meta)
    if optimizer is not None:
        opt = optimizer.state_dict()
        for idx, st in opt["state"].items():
            for name, value in st.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{OPTIM}{idx}.{name}"] = value.detach().cpu().contiguous().clone().reshape(value.shape)
                else:
                    meta.setdefault("optim_scalars", {}).setdefault(str(idx), {})[name] = value
        meta["optim_param_groups"] = opt["param_groups"]
    if with_rng:
        rng_tensors, rng_meta = rng_state()
        tensors.update(rng_tensors)
        meta["rng"] = rng_meta
    with atomic_target(path) as tmp:
        save_file(tensors, tmp, metadata={"frelon": json.dumps(meta)})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]:
    """(model weights, metadata, the other tensors: optimizer and RNG)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found", hint="the run may not have finished an epoch yet")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint ({e})",
                              hint="use the other checkpoint of the run (best / last)") from None
    meta = json.loads(raw_meta.get("frelon", "{}"))
    weights = {k: v for k, v in tensors.items() if not k.startswith("__")}
    rest = {k: v for k, v in tensors.items() if k.startswith("__")}
    return weights, meta, rest


def restore_optimizer(optimizer: torch.optim.Optimizer, meta: dict, rest: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in rest.items():
        if key.startswith(OPTIM):
            idx, name = key[len(OPTIM):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, scalars in meta.get("optim_scalars", {}).items():
        state.setdefault(int(idx), {}).update(scalars)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
