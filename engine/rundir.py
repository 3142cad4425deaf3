"""The run folder and its checkpoints.

    RUNS_DIR/<YYYYmmdd-HHMMSS>-<name>/    (its files' names: common/run_folder.py)
        checkpoints/last.safetensors   weights + the whole training state (resume)
        checkpoints/best.safetensors   weights of the best epoch (predict, eval, export)

A checkpoint is ONE safetensors file: the model's tensors under their own names, the optimizer's
tensors under `__optim__.<param index>.<name>`, every rank's RNG states under `__rng__.rank<R>.*`, and everything else
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
from typing import TYPE_CHECKING, Any

import numpy as np

from frelon.common.run_folder import RunFolder

from .errors import DataError, FrelonError

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported by the functions that need them: the launcher of several
# ranks uses this module only to name the run folder and read the ranks' error files, and
# importing torch there first would delay torchrun's start by the 3-4 s that import costs.

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


def safe_name(name: str) -> str:
    """`name` as a file name: letters, digits, `_ . -` (anything else becomes `-`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


def new_run_dir(runs_dir: str | os.PathLike, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{stamp}-{safe_name(name)}"
    path, n = base, 1
    while path.exists():                       # two runs started in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)                   # not exist_ok: two runs never share a folder
    make_folders(path)
    return path


def make_folders(run_dir: str | os.PathLike) -> None:
    """A run folder's subfolders, where they are missing (the launcher made the folder itself)."""
    folder = RunFolder(run_dir)
    folder.checkpoints.mkdir(parents=True, exist_ok=True)
    folder.predictions.mkdir(exist_ok=True)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found", hint="is this a Frelon run folder?") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


# ---------------------------------------------------------------- RNG state

def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """This process's random states: torch's CPU generator, the generator of its CUDA device (a
    rank drives one GPU), Python's and NumPy's."""
    import torch
    cuda = None
    if device is not None and device.type == "cuda" and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": _jsonable(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def _rng_entries(states: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every rank's states (in rank order) as checkpoint tensors `__rng__.rank<R>.torch|cuda` and
    metadata {"ranks": [{python, numpy}, …]}."""
    tensors = {}
    for r, st in enumerate(states):
        tensors[f"{RNG}rank{r}.torch"] = st["torch"]
        if st.get("cuda") is not None:
            tensors[f"{RNG}rank{r}.cuda"] = st["cuda"]
    return tensors, {"ranks": [{"python": st["python"], "numpy": st["numpy"]} for st in states]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any], rank: int = 0,
                  device: torch.device | None = None) -> bool:
    """Restore `rank`'s saved random states; False (states left as they are) when the checkpoint
    has none for this rank (a resume on more ranks than were saved)."""
    import torch
    if "ranks" in meta:
        if rank >= len(meta["ranks"]):
            return False
        prefix, py = f"{RNG}rank{rank}.", meta["ranks"][rank]
        torch.set_rng_state(tensors[prefix + "torch"])
        if prefix + "cuda" in tensors and device is not None and device.type == "cuda":
            torch.cuda.set_rng_state(tensors[prefix + "cuda"], device)
    else:      # checkpoints before per-rank states: rank 0's, every CUDA device's in index order
        py = meta
        torch.set_rng_state(tensors[RNG + "torch"])
        cuda = sorted((k for k in tensors if k.startswith(RNG + "cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([tensors[k] for k in cuda][:torch.cuda.device_count()])
    random.setstate(_tuples(py["python"]))
    n = py["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    return True


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


# ---------------------------------------------------------------- checkpoints

def _contiguous(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage: give it plain CPU copies
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> None:
    """safetensors' writer, imported on first use (see the imports); the one place a checkpoint's
    bytes are written, which the fault tests replace to cut a write short."""
    from safetensors.torch import save_file as write
    write(tensors, path, metadata=metadata)


def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None,
                    rng: list[dict[str, Any]] | None = None) -> None:
    """Write weights (+ optimizer, and every rank's `rng_state()` in rank order, when given) and
    `meta` into one file, atomically."""
    import torch
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
    if rng:
        rng_tensors, rng_meta = _rng_entries(rng)
        tensors.update(rng_tensors)
        meta["rng"] = rng_meta
    with atomic_target(path) as tmp:
        save_file(tensors, tmp, metadata={"frelon": json.dumps(meta)})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]:
    """(model weights, metadata, the other tensors: optimizer and RNG)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found", hint="the run may not have finished an epoch yet")
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
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


# ---------------------------------------------------------------- a rank's failure

def rank_error_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / "ranks" / f"rank{rank}-error.json"


def write_rank_error(run_dir: Path, rank: int, fields: dict) -> None:
    """On several ranks only rank 0 writes events; a rank that fails leaves its error (kind,
    message, hint, traceback) here, and the launcher turns it into the run's `error` event."""
    try:
        path = rank_error_path(run_dir, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, fields)
    except OSError:
        pass      # the launcher still reports the rank's exit


def read_rank_error(run_dir: Path, rank: int) -> dict | None:
    try:
        return json.loads(rank_error_path(run_dir, rank).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
