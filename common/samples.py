"""The bundled samples: the small datasets that travel inside the package (package data under
`frelon/assets/sample/`), the data of `frelon train` without `--data` and of the app's first launch.

Found with importlib.resources, so they are there in a source checkout, an editable install and an
installed wheel alike. The scripts that made them (`frelon/assets/make_sample.py`,
`make_detect_sample.py`) stay in the source tree; only `assets/sample/` is in the wheel.
Stdlib only: the CLI, the engine and the app all import it.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_FOLDERS = {"classify": "classify", "detect": "detect"}


def sample_dir(task: str = "classify") -> Path:
    """The bundled sample for `task` ("detect" → the COCO shapes set; anything else, the inferred
    task "" included → the classification photos). The path may not exist in an installation that
    left out the package data; callers that can do without it check `is_dir()`."""
    folder = SAMPLE_FOLDERS.get(task, SAMPLE_FOLDERS["classify"])
    return Path(str(resources.files("frelon") / "assets" / "sample" / folder))


def default_sample_data(task: str = "classify") -> str:
    """What `--data` means when it is not given: the bundled sample for `task`, as a string."""
    return str(sample_dir(task))
