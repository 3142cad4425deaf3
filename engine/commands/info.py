"""`frelon info`: the devices, and every backbone with its size and whether its weights are here."""
from __future__ import annotations

import os
import platform

import psutil
import torch

from frelon.common.version import __version__
from .. import backbones, precision
from ..tasks import TASK_NAMES


def devices() -> dict:
    cuda = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
            except RuntimeError:
                free, total = None, props.total_memory
            cuda.append({"index": i, "name": props.name, "total_memory": total, "free_memory": free,
                         "bf16": precision.bf16_native(i)})
    cpu = {"name": platform.processor() or platform.machine(), "cores": os.cpu_count() or 1,
           "ram": psutil.virtual_memory().total, "available_ram": psutil.virtual_memory().available}
    return {"cuda": cuda, "cpu": cpu}


def gather() -> dict:
    out = []
    for name in backbones.list_backbones():
        spec = backbones.get_spec(name)
        out.append({"name": name, "params": spec.params, "weights_available": spec.weights.available(),
                    "weights_source": spec.weights.describe(), "weights_id": spec.weights.id,
                    "mean": list(spec.weights.mean), "std": list(spec.weights.std),
                    "default": name == backbones.DEFAULT_BACKBONE})
    return {"version": __version__, "default_backbone": backbones.DEFAULT_BACKBONE,
            "tasks": list(TASK_NAMES), "torch": torch.__version__,
            "backbones": out, "devices": devices()}
