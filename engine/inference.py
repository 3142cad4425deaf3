"""A trained run, loaded for use: its model (weights from best/last), classes and preprocessing.

Everything comes from the run folder (model.json, config.json, checkpoints/*.safetensors), so
predict, eval and export need nothing else. Inputs are listed here too: one image, a folder
(walked like training data: hidden files ignored, symlink loops safe) or a COCO JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frelon.common.train_config import from_saved
from frelon.common.run_folder import RunFolder
from .distributed import pick_device
from .errors import DataError
from .rundir import load_checkpoint, read_json
from .tasks import get_task


@dataclass
class LoadedRun:
    run_dir: Path
    task_name: str
    task: Any
    model: nn.Module
    classes: list[str]
    size: int
    mean: list[float]
    std: list[float]
    info: dict
    config: Any
    device: torch.device


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> LoadedRun:
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.model.is_file():
        raise DataError(f"{run_dir}: not a Frelon run folder (no model.json)",
                        hint="pass the folder that `frelon train` printed, e.g. runs/20260101-120000-…")
    info = read_json(folder.model)
    cfg = from_saved(read_json(folder.config), source=str(folder.config))
    ckpt = folder.checkpoint(checkpoint)
    if checkpoint == "best" and not ckpt.is_file():
        ckpt = folder.checkpoint("last")       # a run stopped before any evaluation
    weights, _, _ = load_checkpoint(ckpt)
    task = get_task(info["task"])
    model, _ = task.build_model(cfg.replace(weights="none"), info["classes"])
    model.load_state_dict(weights)
    dev = pick_device(device, gpus=0)
    model.to(dev).eval()
    pre = info["preprocessing"]
    return LoadedRun(run_dir, info["task"], task, model, info["classes"], pre["size"], pre["mean"], pre["std"],
                     info, cfg, dev)


IMAGE_LIST_HINT = "pass an image, a folder of images, or a COCO JSON file"


def list_inputs(path: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """[{"path", "file_name", "image_id"?}] for an image, a folder or a COCO JSON; and its root."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: not found", hint=IMAGE_LIST_HINT)
    if p.is_dir():
        from .data.files import walk_files
        items = [{"path": f, "file_name": str(Path(f).relative_to(p))} for f in walk_files(p)]
        return items, p
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise DataError(f"{p}: not valid JSON ({e})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            raise DataError(f"{p}: a COCO JSON needs an 'images' list", hint=IMAGE_LIST_HINT)
        from .data.detection import resolve_coco_image
        items = []
        for i, im in enumerate(doc["images"]):
            if not isinstance(im, dict) or "file_name" not in im or "id" not in im:
                raise DataError(f"{p}: images[{i}] lacks 'id' or 'file_name'")
            resolved = resolve_coco_image(p.parent, str(im["file_name"]))   # None: it points outside
            items.append({"path": str(resolved) if resolved else None, "file_name": im["file_name"],
                          "image_id": im["id"]})
        return items, p.parent
    return [{"path": str(p), "file_name": p.name}], p.parent
