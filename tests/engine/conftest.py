"""Engine test fixtures: tiny image folders made on the fly (32–48 px), run helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def make_colour_folder(root: Path, per_class: int = 10, size=(40, 48), classes=("blue", "red")) -> Path:
    """Two (or more) classes a small network can tell apart: noisy images of one dominant colour."""
    colours = {"red": (200, 40, 40), "blue": (40, 40, 200), "green": (40, 190, 40)}
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = (rng.normal(0, 35, (*size, 3)) + colours[c]).clip(0, 255).astype("uint8")
            Image.fromarray(a).save(root / c / f"{i:03d}.png")
    return root


@pytest.fixture
def colour_data(tmp_path) -> Path:
    return make_colour_folder(tmp_path / "data")
