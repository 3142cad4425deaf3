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

A detection run is swept by robustness_detect.py (mAP@0.5 under an attack on the heatmap loss).

Written into RUN_DIR/robustness/: `<attack>.json` (the sweep, every flipped image) and
`<attack>/NN-<name>.png` (the triptychs); each run of the same attack replaces the previous one.
`metric` names the curve ("accuracy" or "map_50"). Progress goes to `emit` as `robustness_eps`
events (one per ε) and `robustness_finished`.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as TF

from . import attacks
from .config import ConfigError
from .errors import ConfigurationError
from .inference import load_run
from .rundir import atomic_write_json
from .sampling import Seeded, ShardSampler

DEFAULT_EPS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)     # 8-bit levels
DEFAULT_EXAMPLES = 6
BATCH = 32
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


def _samples(loaded, data: str | None) -> tuple[list[tuple[str, int]], str]:
    """(path, label) pairs and what they are: the run's validation split, or a labelled set."""
    if data:
        from .evaluate import labelled_samples
        return labelled_samples(loaded, data)[0], str(data)
    from .data.classify import scan_classification
    from .inference import run_validation_split
    return run_validation_split(loaded, scan_classification, "classify")


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
    out_dir = Path(loaded.run_dir) / "robustness"
    if loaded.task_name == "detect":
        from .robustness_detect import detection_sweep
        result = {**common, **detection_sweep(loaded, data, eps, normalize, attack, steps, step_size, emit)}
    else:
        result = {**common, **_classification_sweep(loaded, data, eps, normalize, attack, steps, step_size,
                                                    examples, emit, out_dir)}
    atomic_write_json(out_dir / f"{attack}.json", result)
    metric = result["metric"]
    emit("robustness_finished", attack=attack, path=str(out_dir / f"{attack}.json"), eps=eps, metric=metric,
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


def _classification_sweep(loaded, data, eps, normalize, attack, steps, step_size, examples, emit, out_dir) -> dict:
    samples, source = _samples(loaded, data)
    from .data.classify import ImageDataset
    from .transforms import eval_pixels
    dataset = ImageDataset(samples, eval_pixels(loaded.size))
    loader = DataLoader(Seeded(dataset), batch_size=BATCH, sampler=ShardSampler(len(dataset), 1, 0))
    model, dev = loaded.model, loaded.device
    attacked = attacks.attacker(model, normalize, attack, steps, step_size)
    n = len(dataset)
    clean: list[tuple[int, float]] = []                  # (predicted class, its confidence) per image
    robust = torch.zeros(n, dtype=torch.bool)            # right, and not fooled at any ε so far
    flips: dict[int, dict] = {}
    accuracy = []
    for k, e in enumerate(eps):
        start = 0
        for pixels, labels in loader:
            pixels, labels = pixels.to(dev), labels.to(dev)
            x = attacked(pixels, labels, e) if e > 0 else pixels
            with torch.no_grad():
                probs = model(normalize(x)).float().softmax(1).cpu()
            conf, pred = probs.max(1)
            right = pred == labels.cpu()
            idx = torch.arange(start, start + len(labels))
            if e == 0:
                robust[idx] = right
                clean += list(zip(pred.tolist(), conf.tolist()))
            else:
                fooled = robust[idx] & ~right
                for j in fooled.nonzero().flatten().tolist():
                    flips[start + j] = {"eps": e, "adversarial": (int(pred[j]), float(conf[j]))}
                robust[idx] &= right
            start += len(labels)
        accuracy.append(float(robust.sum()) / max(1, n))
        emit("robustness_eps", attack=attack, eps=e, metric="accuracy", value=accuracy[-1], images=n,
             flipped=len(flips), index=k, of=len(eps))

    pictures = out_dir / attack
    shutil.rmtree(pictures, ignore_errors=True)
    names = loaded.classes
    flipped = []
    for i, f in sorted(flips.items(), key=lambda kv: (kv[1]["eps"], -clean[kv[0]][1])):
        path, label = samples[i]
        flipped.append({"path": str(path), "true": names[label], "eps": f["eps"],
                        "clean": {"class": names[clean[i][0]], "confidence": round(clean[i][1], 5)},
                        "adversarial": {"class": names[f["adversarial"][0]],
                                        "confidence": round(f["adversarial"][1], 5)},
                        "index": i})
    _draw_examples(flipped[:max(0, examples)], dataset, attacked, normalize, model, dev, pictures, names, out_dir)
    return {"metric": "accuracy", "accuracy": accuracy, "images": n, "data": source,
            "flipped": [{k: v for k, v in f.items() if k != "index"} for f in flipped]}


def _draw_examples(chosen: list[dict], dataset, attacked, normalize, model, dev, folder: Path,
                   names: list[str], out_dir: Path) -> None:
    """The triptych of each chosen flip, its attack re-run on that image alone (attacks are
    deterministic and the summed loss makes an image's gradient independent of its batch)."""
    from .triptych import save_triptych
    for n, f in enumerate(chosen):
        pixels, label = dataset[f["index"]]
        pixels = pixels[None].to(dev)
        labels = torch.tensor([label], device=dev)
        adv = attacked(pixels, labels, f["eps"])
        with torch.no_grad():
            probs = model(normalize(adv)).float().softmax(1)[0].cpu()
        out = folder / f"{n:02d}-{Path(f['path']).stem}.png"
        save_triptych(out, pixels[0].cpu(), adv[0].cpu(), f["eps"],
                      (f["clean"]["class"], f["clean"]["confidence"]),
                      (names[int(probs.argmax())], float(probs.max())))
        f["triptych"] = str(out.relative_to(out_dir))
