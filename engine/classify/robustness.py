"""`frelon robustness` on a classification run: accuracy under attack, ε by ε (commands/robustness.py
says how it is counted), and the three-panel picture of the first flipped images (triptych.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .. import attacks
from ..data.classify import ImageDataset
from ..sampling import Seeded, ShardSampler
from .transforms import eval_pixels

BATCH = 32


def classification_sweep(loaded, samples, source: str, sweep: attacks.Sweep) -> dict:
    """The sweep over `samples` ((path, label) pairs, what `source` says they are); the result's
    fields and the triptychs of the first `examples` flips (see commands/robustness.py)."""
    dataset = ImageDataset(samples, eval_pixels(loaded.size))
    loader = DataLoader(Seeded(dataset), batch_size=BATCH, sampler=ShardSampler(len(dataset), 1, 0))
    model, dev = loaded.model, loaded.device
    attacked = sweep.attacker(model)
    eps, attack, normalize, emit = sweep.eps, sweep.attack, sweep.normalize, sweep.emit
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

    pictures = sweep.out_dir / attack
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
    _draw_examples(flipped[:max(0, sweep.examples)], dataset, attacked, normalize, model, dev, pictures, names,
                   sweep.out_dir)
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
