"""The augmentations both tasks apply alike: colour jitter and Gaussian noise (`--noise`), torchvision
transforms v2. Each task's geometry is its own (classify/transforms.py, centernet/transforms.py)."""
from __future__ import annotations

from torchvision.transforms import v2


def colour_jitter(strength: float = 0.3) -> v2.ColorJitter:
    """The colour augmentation of both tasks: brightness, contrast and saturation, no hue. Hue
    jitter costs as much again as the other three together (≈1.5 ms per 224-px picture on the
    CPU, where data loading runs; measured) for a shift of a few degrees that a colour-defined
    subject (a hornet's yellow and black) is better without. Applied to the PIL image, whose
    kernels are several times faster on the CPU than tensor ones."""
    return v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength)


def noise(std_levels: float) -> list:
    """[v2.GaussianNoise] of std `std_levels`/255 on [0, 1] pixels, or [] for 0 (`--noise`)."""
    return [v2.GaussianNoise(sigma=std_levels / 255.0, clip=True)] if std_levels > 0 else []
