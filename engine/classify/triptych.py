"""The course's adversarial-example picture, for one image: original + perturbation = adversarial.

Three panels side by side, each with its caption underneath, as in Goodfellow et al.'s panda:
the original with its predicted class and confidence; the perturbation δ = adversarial − original,
amplified to be seen (mid-grey is 0, black and white are ±ε: δ × 0.5/ε + 0.5, the factor written
under it); the adversarial image with its new class and confidence. Panels are scaled up with
nearest-neighbour to at least PANEL px, so single pixels of δ stay visible. Pillow only; the
captions use DejaVu Sans when the system has it (for ε and ×), else Pillow's own font in ASCII.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

PANEL = 224
CAPTION = 48
GAP = 36
LEVELS = 255.0


def _fonts() -> tuple[ImageFont.ImageFont, ImageFont.ImageFont, bool]:
    """(caption font, sign font, whether it draws ε and ×)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", 16), ImageFont.truetype("DejaVuSans.ttf", 28), True
    except OSError:
        return ImageFont.load_default(size=16), ImageFont.load_default(size=28), False


def _image(pixels: torch.Tensor, side: int) -> Image.Image:
    array = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB").resize((side, side), Image.Resampling.NEAREST)


def amplified(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """δ (in [0, 1] pixel units) → [0, 1] for display: 0.5 at 0, 0 and 1 at ∓ε (eps in levels)."""
    return (delta * (0.5 * LEVELS / eps) + 0.5).clamp(0, 1)


def triptych(original: torch.Tensor, adversarial: torch.Tensor, eps: float,
             before: tuple[str, float], after: tuple[str, float]) -> Image.Image:
    """original, adversarial: (3, H, W) pixels in [0, 1]; eps in 8-bit levels; (class, confidence)."""
    side = max(PANEL, original.shape[-1])
    font, sign, greek = _fonts()
    width = 3 * side + 2 * GAP
    canvas = Image.new("RGB", (width, side + CAPTION), "white")
    delta = adversarial - original
    panels = [(_image(original, side), [f"“{before[0]}”", f"{before[1]:.1%} confidence"]),
              (_image(amplified(delta, eps), side), [f"ε = {eps:g}/255", f"(shown × {0.5 * LEVELS / eps:.0f})"]),
              (_image(adversarial, side), [f"“{after[0]}”", f"{after[1]:.1%} confidence"])]
    draw = ImageDraw.Draw(canvas)
    if not greek:
        panels = [(p, [t.replace("ε", "eps").replace("×", "x") for t in lines]) for p, lines in panels]
    for i, (panel, lines) in enumerate(panels):
        x = i * (side + GAP)
        canvas.paste(panel, (x, 0))
        for k, line in enumerate(lines):
            w = draw.textlength(line, font=font)
            draw.text((x + (side - w) / 2, side + 4 + 20 * k), line, fill="black", font=font)
        if i < 2:
            mark = "+" if i == 0 else "="
            w = draw.textlength(mark, font=sign)
            draw.text((x + side + (GAP - w) / 2, side / 2 - 18), mark, fill="black", font=sign)
    return canvas


def save_triptych(out: Path, original: torch.Tensor, adversarial: torch.Tensor, eps: float,
                  before: tuple[str, float], after: tuple[str, float]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    triptych(original, adversarial, eps, before, after).save(out)
