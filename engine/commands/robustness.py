"""`frelon robustness`: a finished model's accuracy (classifier) or mAP@0.5 (detector) under
adversarial attack, ε by ε.

ε is given in 8-bit pixel levels and applied in pixel space before normalisation (attacks.py):
ε = 2 lets every pixel and channel move by at most 2/255, whatever the backbone's mean and std.
The images are the run's own validation split (as training made it: same data, split and seed)
or a labelled set (`--data`, read like `frelon eval`), through the evaluation transform, so the
accuracy at ε = 0 is the one `frelon eval` reports.

The accuracy at ε counts the images that no attack at any ε' ≤ ε fooled: an adversarial example
found inside a smaller ball is inside the larger one too, so the curve never rises (the honest
reading of "accuracy under attacks of size at most ε"). An image *flips* at the smallest ε of the
sweep whose attack turns its right prediction wrong. For the `examples` flipped images that were
most confident at the smallest ε, the course's three-panel picture is drawn (triptych.py).

The run's task sweeps (tasks/: classify/robustness.py for a classifier, centernet/robustness.py —
mAP@0.5 under an attack on the heatmap loss — for a detector); this module owns the command.

Written into RUN_DIR/robustness/: `<attack>.json` (the sweep, every flipped image) and
`<attack>/NN-<name>.png` (the triptychs); each run of the same attack replaces the previous one.
`metric` names the curve ("accuracy" or "map_50"). Progress goes to `emit` as `robustness_eps`
events (one per ε) and `robustness_finished`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torchvision.transforms.v2 import functional as TF

from .. import attacks
from frelon.common.train_config import ConfigError
from frelon.common.run_folder import RunFolder
from ..errors import ConfigurationError
from ..inference import load_run
from ..rundir import atomic_write_json

DEFAULT_EPS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)     # 8-bit levels
DEFAULT_EXAMPLES = 6
LEVELS = attacks.LEVELS


def parse_eps(text: str | Sequence[float] | None) -> list[float]:
    """'0,0.5,1' → [0.0, 0.5, 1.0], sorted, unique, 0 always included (the clean accuracy)."""
    if text is None or text == "":
        return list(DEFAULT_EPS)
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text) if str(v).strip()]
    except ValueError:
        raise ConfigError(f"--eps {text}: not a list of numbers — e.g. --eps 0,0.5,1,2,4,8 "
                          "(8-bit pixel levels)") from None
    if any(v < 0 or v > LEVELS or v != v for v in values):
        raise ConfigError(f"--eps {text}: each ε must be between 0 and 255 (8-bit levels) — "
                          "e.g. --eps 0,0.5,1,2,4,8")
    return sorted({0.0, *values})


def robustness_check(run: str, data: str | None = None, eps: Sequence[float] | None = None,
                     attack: str = "fgsm", steps: int = attacks.PGD_STEPS, step_size: float | None = None,
                     examples: int = DEFAULT_EXAMPLES, checkpoint: str = "best", device: str = "auto",
                     emit: Callable[..., object] | None = None) -> dict:
    """Run the sweep, write RUN_DIR/robustness/, return what `<attack>.json` holds.

    eps and step_size in 8-bit levels; step_size None = PGD's default (2.5 ε / steps)."""
    if attack not in attacks.ATTACKS:
        raise ConfigurationError(f"--attack {attack}: unknown", hint=f"use one of {', '.join(attacks.ATTACKS)}")
    if attack == "pgd" and steps < 1:
        raise ConfigError(f"--steps {steps}: PGD needs at least one step")
    emit = emit or (lambda *a, **k: None)
    eps = parse_eps(list(eps) if eps is not None else None)
    loaded = load_run(run, checkpoint, device)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return TF.normalize(x, loaded.mean, loaded.std)

    common = {"run": str(loaded.run_dir), "checkpoint": checkpoint, "image_size": loaded.size,
              "classes": list(loaded.classes), **_attack_fields(attack, eps, steps, step_size)}
    folder = RunFolder(loaded.run_dir)
    sweep = attacks.Sweep(tuple(eps), attack, steps, step_size, examples, normalize, emit, folder.robustness)
    result = {**common, **loaded.task.robustness(loaded, data, sweep)}
    atomic_write_json(folder.robustness_result(attack), result)
    metric = result["metric"]
    emit("robustness_finished", attack=attack, path=str(folder.robustness_result(attack)), eps=eps, metric=metric,
         values=result[metric], images=result["images"])
    return result


def _attack_fields(attack: str, eps: list[float], steps: int, step_size: float | None) -> dict:
    """What was done, in the result file's words: ε and step sizes in 8-bit levels."""
    return {"attack": attack, "eps": eps, "eps_unit": "8-bit levels: ε/255 in [0, 1] pixels, before normalisation",
            "steps": steps if attack == "pgd" else 1,
            "step_sizes": ([e for e in eps] if attack == "fgsm" else          # levels, one per ε
                           [step_size if step_size is not None else attacks.pgd_step_size(e, steps) for e in eps]),
            "step_rule": ("one step of ε" if attack == "fgsm" else
                          f"{steps} steps of {step_size:g} levels" if step_size is not None else
                          f"{steps} steps of {attacks.PGD_STEP_RATIO:g} × ε / {steps}")}
