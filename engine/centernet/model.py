"""The CenterNet network: a registry backbone's features, a neck up to stride 4, three heads.

Two necks (`--detector`, see engine/tasks/detect.py):

"lateral" (the default, with the "ttf" recipe): the stride-32 features brought to 256 channels by a
1×1 conv, then three steps of ×2 bilinear up-sampling + 3×3 conv + BN + ReLU, each summed with a
lateral 1×1 conv + BN of the backbone's own map at that stride (16, 8, 4) — the shortcut neck of
TTFNet (Liu et al. 2020) and the idea behind CenterNet's DLA variant (IDA-up), which is 9 AP above
the plain ResNet variant. Small objects, a few cells at stride 32, keep their stride-4/8 detail.
Channels 256 → 128 → 64. The backbone must offer `pyramid(x)` (every registry backbone does).

"plain" (the "centernet" recipe): CenterNet's ResNet variant (Zhou et al. 2019, §4, after Xiao et al.'s Simple Baselines):
three up-sampling stages, each a 3×3 conv + BN + ReLU (the official code uses a deformable conv
there; a plain one keeps every backbone and the ONNX export simple) then a 4×4 transposed conv of
stride 2 + BN + ReLU, initialised as bilinear up-sampling. Channels 256 → 128 → 64. We chose it over
an FPN-style merge because it needs only the last stage, which every registry backbone gives in
the same way (`BackboneNet.features`), and gradient checkpointing by stage keeps working unchanged.
Stride 32 → 4: the input side must be a multiple of 32 (the detection task rounds it up).

Heads, one per output, each 3×3 conv (64 channels) + ReLU + 1×1 conv: heatmap (C logits, bias
initialised to −2.19 = −log((1 − π) / π) with π = 0.1, so that the focal loss starts stable), size
(2: w, h in output cells) and offset (2: the centre's sub-cell position).
"""
from __future__ import annotations

import math

import torch
from torch import nn

STRIDE = 4
NECK_CHANNELS = (256, 128, 64)
HEAD_CHANNELS = 64
HEATMAP_BIAS = -2.19
OUTPUTS = ("heatmap", "size", "offset")


def _bilinear_(deconv: nn.ConvTranspose2d) -> None:
    """Initialise a transposed conv as per-channel bilinear up-sampling (official fill_up_weights)."""
    k = deconv.kernel_size[0]
    f = math.ceil(k / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = torch.tensor([1 - abs(i / f - c) for i in range(k)])
    kernel = ramp[:, None] * ramp[None, :]
    with torch.no_grad():
        deconv.weight.zero_()
        for ch in range(min(deconv.in_channels, deconv.out_channels)):
            deconv.weight[ch, ch] = kernel


class UpStage(nn.Sequential):
    """3×3 conv + BN + ReLU, then ×2 up-sampling by a 4×4 transposed conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        deconv = nn.ConvTranspose2d(out_channels, out_channels, 4, stride=2, padding=1, bias=False)
        _bilinear_(deconv)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            deconv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def make_head(in_channels: int, out_channels: int, bias: float = 0.0) -> nn.Sequential:
    head = nn.Sequential(nn.Conv2d(in_channels, HEAD_CHANNELS, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(HEAD_CHANNELS, out_channels, 1))
    nn.init.constant_(head[-1].bias, bias)
    return head


def conv_bn(in_channels: int, out_channels: int, kernel: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
              nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def pyramid_layout(backbone: nn.Module, probe: int = 64) -> dict[int, tuple[int, int]]:
    """{stride: (index in `backbone.pyramid`'s list, channels)} of the last map at each stride (one
    small forward in eval mode, so no BatchNorm statistic moves). Known once, at construction: the
    forward pass picks maps by index, with no shape arithmetic for an ONNX trace to freeze."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        maps = backbone.pyramid(torch.zeros(1, 3, probe, probe))
    backbone.train(was_training)
    return {probe // m.shape[-1]: (i, m.shape[1]) for i, m in enumerate(maps)}


class LateralNeck(nn.Module):
    """Stride 32 → 4 with lateral connections from the backbone's stride-16, 8 and 4 maps."""

    STRIDES = (16, 8, 4)

    def __init__(self, layout: dict[int, tuple[int, int]], neck_channels: tuple[int, ...] = NECK_CHANNELS):
        super().__init__()
        missing = [s for s in (32, *self.STRIDES) if s not in layout]
        if missing:
            raise ValueError(f"the backbone gives no map at stride {missing}: the lateral neck needs 4, 8, 16, 32")
        self.indices = [layout[s][0] for s in (32, *self.STRIDES)]
        channels_at = {s: c for s, (_, c) in layout.items()}
        self.top = conv_bn(channels_at[32], neck_channels[0], 1)
        self.ups = nn.ModuleList()
        self.laterals = nn.ModuleList()
        c = neck_channels[0]
        for stride, out in zip(self.STRIDES, neck_channels):
            self.ups.append(conv_bn(c, out, 3))
            self.laterals.append(conv_bn(channels_at[stride], out, 1, relu=False))
            c = out
        self.out_channels = c

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        top, *skips = (maps[i] for i in self.indices)
        x = self.top(top)
        for skip, up, lateral in zip(skips, self.ups, self.laterals):
            x = up(nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
            x = torch.relu(x + lateral(skip))
        return x


class CenterNet(nn.Module):
    """images (B, 3, H, W) → {"heatmap": (B, C, H/4, W/4) logits, "size": (B, 2, …), "offset": (B, 2, …)}.

    `backbone` maps images to stride-32 features with `in_channels` channels (a registry
    `BackboneNet`, or any module in tests)."""

    stride = STRIDE

    def __init__(self, backbone: nn.Module, in_channels: int, num_classes: int,
                 neck_channels: tuple[int, ...] = NECK_CHANNELS, neck: str = "plain"):
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.neck_kind = neck
        if neck == "lateral":
            self.neck = LateralNeck(pyramid_layout(backbone), neck_channels)
            c = self.neck.out_channels
        else:
            stages, c = [], in_channels
            for out in neck_channels:
                stages.append(UpStage(c, out))
                c = out
            self.neck = nn.Sequential(*stages)
        self.heads = nn.ModuleDict({
            "heatmap": make_head(c, num_classes, HEATMAP_BIAS),
            "size": make_head(c, 2),
            "offset": make_head(c, 2),
        })

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.neck_kind == "lateral":
            features = self.neck(self.backbone.pyramid(images))
        else:
            features = self.neck(self.backbone(images))
        return {name: head(features) for name, head in self.heads.items()}

    # ---- what the shared training loop asks of a model
    def set_checkpointing(self, mode: str) -> None:
        if hasattr(self.backbone, "set_checkpointing"):
            self.backbone.set_checkpointing(mode)

    def body_modules(self) -> list[nn.Module]:
        """What --freeze-backbone freezes: the pretrained backbone."""
        return [self.backbone]


class CenterNetExport(nn.Module):
    """The network with plain tensor outputs for ONNX: (heatmap probabilities, size, offset).

    Made in eval mode (BatchNorm with its running statistics), as an exported model runs."""

    output_names = ("heatmap", "size", "offset")

    def __init__(self, model: CenterNet):
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(images)
        return out["heatmap"].sigmoid(), out["size"], out["offset"]
