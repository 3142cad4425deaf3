"""Engine test fixtures: tiny image folders made on the fly (32–48 px), run helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from runhelp import make_colour_folder

@pytest.fixture
def colour_data(tmp_path) -> Path:
    return make_colour_folder(tmp_path / "data")
