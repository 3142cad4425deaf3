"""Multi-label classification: any number of labels per picture (a hornet *and* a bee, or nothing).

Data: data/multilabel.py (class folders sharing pictures, or a CSV `file,labels`). Model: the
classifier's backbone and head, one output per label read through a sigmoid. Loss: binary
cross-entropy (torch's BCEWithLogitsLoss), each label its own yes / no. Evaluation: the loss, then per
label its AP (common/metrics.py), the threshold that gives it the best F1 on the validation split and
that F1; `map` (the mean AP over the labels validation holds) picks the best checkpoint. For the best
epoch, every validation picture's scores and label sets go to predictions/val.json and each label's
threshold to thresholds.json, which predict and eval then use. A finished run: predict (the label
sets above the thresholds, with every label's score), eval (on another labelled set, at the run's
thresholds), export (the logits, as a classifier), explain (a Grad-CAM map per label given).
Robustness, review and INT8 export are not offered.

No torch at import (tasks/base.py): each method imports what it uses.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from statistics import fmean

from frelon.common.choices import MULTILABEL
from frelon.common.metrics import average_precision, best_threshold, f1_at
from frelon.common.run_folder import SCORE_THRESHOLD, RunFolder, data_or_sample

from ..errors import ConfigurationError, DataError
from .base import Evaluation, Scanned

DEFAULT_THRESHOLD = 0.5     # a label no validation picture carries keeps it


def label_metrics(probs: list, truths: list, classes: list, thresholds: dict | None = None) -> dict:
    """Per label {ap, f1, threshold, support}; `map` and macro `f1` over the labels with a positive;
    `exact_match`: the share of pictures whose predicted set is their true set. `thresholds` None:
    each label's is tuned here (on these very pictures); else the given ones are used."""
    per_label, predicted = {}, [[] for _ in probs]
    for j, name in enumerate(classes):
        scores, truth = [p[j] for p in probs], [t[j] for t in truths]
        t = best_threshold(scores, truth, DEFAULT_THRESHOLD) if thresholds is None \
            else thresholds.get(name, DEFAULT_THRESHOLD)
        per_label[name] = {"ap": average_precision(scores, truth), "f1": f1_at(scores, truth, t),
                           "threshold": t, "support": sum(truth)}
        for k, s in enumerate(scores):
            predicted[k].append(int(s >= t))
    measured = [m for m in per_label.values() if m["support"]]
    return {"map": fmean(m["ap"] for m in measured) if measured else None,
            "f1": fmean(m["f1"] for m in measured) if measured else None,
            "exact_match": sum(p == list(t) for p, t in zip(predicted, truths)) / max(1, len(truths)),
            "per_label": per_label, "images": len(truths)}


def multi_hot(labels, n: int) -> list[int]:
    return [int(j in labels) for j in range(n)]


def collate(n: int, batch):
    """(images, multi-hot float targets) from ImageDataset's (image, (label, ...)) items."""
    import torch
    images = torch.stack([image for image, _ in batch])
    return images, torch.tensor([multi_hot(labels, n) for _, labels in batch], dtype=torch.float32)


def read_thresholds(run_dir, classes) -> dict:
    path = RunFolder(run_dir).thresholds
    return json.loads(path.read_text(encoding="utf-8"))["thresholds"] if path.is_file() else \
        {c: DEFAULT_THRESHOLD for c in classes}


class MultiLabelTask:
    name = MULTILABEL
    best_metric = "map"
    boxes = False

    # ---------------------------------------------------------------- data

    def check(self, data: str, val_data: str = "", val_split: float = 0.2, seed: int = 0, workers: int = 0) -> dict:
        from ..data.multilabel import check_multilabel
        return check_multilabel(data, val_data, val_split, seed, workers)[0]

    def class_count(self, cfg) -> int:
        from ..data.multilabel import label_count
        return max(1, label_count(data_or_sample(cfg.data, self.name), cfg.val_data))

    def check_image_size(self, size: int) -> None:
        """Any size: the centre crop makes it."""

    def scan(self, cfg, workers: int) -> Scanned:
        from ..data.multilabel import scan_multilabel
        data = scan_multilabel(cfg.data, cfg.val_data, cfg.val_split, cfg.seed, workers)
        return Scanned(classes=data.classes, report=data.report, train=data.train, val=data.val,
                       extra={"layout": data.layout, "root": data.root})

    # ---------------------------------------------------------------- training

    def train_labels(self, scanned: Scanned) -> None:
        """None: a picture carries any number of labels, not one class to balance by (--balance)."""
        return None

    def build_model(self, cfg, classes):
        from .. import backbones
        return backbones.build_classifier(cfg.backbone, len(classes), cfg.weights)

    def datasets(self, scanned: Scanned, cfg, size: int, pre: dict):
        from ..classify import transforms
        from ..data.classify import ImageDataset
        from ..data.mirror import flip_wanted
        from ..data.resized_cache import for_config
        cache = for_config(cfg)
        train = ImageDataset(scanned.train, transforms.train_transform(
            size, pre["mean"], pre["std"], cfg.augment, cfg.random_erasing, flip_wanted(cfg.flip, scanned.classes),
            cfg.noise), transforms.decode_short_side(size, cfg.augment), cache)
        val = ImageDataset(scanned.val, transforms.eval_transform(size, pre["mean"], pre["std"]),
                           transforms.decode_short_side(size), cache) if scanned.val else None
        return train, val, partial(collate, len(scanned.classes))

    def probe_dataset(self, scanned: Scanned, size: int, pre: dict, cfg=None):
        """The features' fit (training/feature_fit.py) on each picture's first label (none: label 0),
        a single-label stand-in that is enough to pick the LR."""
        from ..classify import transforms
        from ..data.classify import ImageDataset
        from ..data.resized_cache import for_config
        samples = [(path, labels[0] if labels else 0) for path, labels in scanned.train]
        return ImageDataset(samples, transforms.eval_transform(size, pre["mean"], pre["std"]),
                            transforms.decode_short_side(size), for_config(cfg))

    def loss(self, model, batch, device):
        import torch.nn.functional as F
        images, targets = batch
        images = images.to(device, non_blocking=True)
        logits = model(images).float()
        return F.binary_cross_entropy_with_logits(logits, targets.to(device, non_blocking=True)), None, images.shape[0]

    def evaluate(self, model, loader, device, ranks, classes, thresholds: dict | None = None) -> Evaluation:
        """Each rank its shard's forward passes; loss summed over ranks; scores and truths gathered
        on rank 0, which computes the metrics once and sends them to the others."""
        import torch
        import torch.nn.functional as F
        from ..distributed import all_reduce_sum, broadcast_object, gather_to_main
        loss_sum = torch.zeros(2, dtype=torch.float64, device=device)       # sum, pictures
        scores, truths = [], []
        with torch.no_grad():
            for images, targets in loader:
                logits = model(images.to(device)).float()
                targets = targets.to(device)
                loss_sum[0] += F.binary_cross_entropy_with_logits(logits, targets, reduction="sum").double() / len(classes)
                loss_sum[1] += len(targets)
                scores.append(logits.sigmoid()), truths.append(targets)
        all_reduce_sum(loss_sum, ranks)
        mine = list(zip(loader.sampler.indices, torch.cat(scores).cpu().tolist(),
                        torch.cat(truths).round().int().cpu().tolist())) if scores else []
        parts = gather_to_main(mine, ranks)
        metrics = details = None
        if parts is not None:
            rows = sorted(r for part in parts for r in part)
            metrics = label_metrics([r[1] for r in rows], [r[2] for r in rows], list(classes), thresholds)
            metrics["loss"] = float(loss_sum[0] / loss_sum[1].clamp(min=1))
            details = [(index, probs) for index, probs, _ in rows]
        metrics = broadcast_object(metrics, ranks)
        score = metrics["map"] if metrics["map"] is not None else -metrics["loss"]
        return Evaluation(metrics=metrics, score=score, details=details)

    def write_results(self, run_dir: Path, evaluation: Evaluation, classes, val_samples) -> None:
        from ..rundir import atomic_write_json
        thresholds = {c: m["threshold"] for c, m in evaluation.metrics["per_label"].items()}
        preds = [picture_result(val_samples[index], probs, classes, thresholds) for index, probs in evaluation.details]
        folder = RunFolder(run_dir)
        atomic_write_json(folder.validation_predictions, preds)
        atomic_write_json(folder.thresholds, {"classes": list(classes), "thresholds": thresholds,
                                              "tuned_on": "the validation split, best epoch (best F1 per label)"})

    def model_info(self) -> dict:
        return {"head": "sigmoid", "loss": "bce"}

    # ---------------------------------------------------------------- what other commands show

    def synthetic_batch(self, batch: int, size: int, num_classes: int):
        import torch
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, 3, size, size, generator=g), \
            torch.randint(0, 2, (batch, num_classes), generator=g).float()

    def describe(self, sample, classes) -> dict:
        path, labels = sample
        names = [classes[j] for j in labels]
        return {"path": str(path), "label": "; ".join(names), "labels": names}     # the time-lapse ticks each

    def sample(self, train, index: int, seed: int):
        from ..sampling import seeded
        tensor, labels = seeded(seed, train.__getitem__, index)
        return tensor, None, list(labels)

    def summarize(self, row, classes, top: int, min_score: float, max_boxes: int) -> list:
        """The `top` labels, [[label, score]]."""
        from ..classify.predict import top_scores
        return top_scores(row[0], classes, top)

    # ---------------------------------------------------------------- a finished run

    def predict(self, loaded, items, root, draw=None, heatmaps=None, as_annotations=None, threshold=SCORE_THRESHOLD):
        if as_annotations:
            raise ConfigurationError("--as-annotations writes boxes: it needs a detection run",
                                     hint="for a multi-label run, --out holds each picture's labels")
        from ..classify.predict import draw_label, image_batches, key
        thresholds = read_thresholds(loaded.run_dir, loaded.classes)
        results, skipped = [], []
        for batch, originals, logits in image_batches(loaded, items, skipped, draw):
            for item, p, image in zip(batch, logits.sigmoid().tolist(), originals):
                result = {**key(item), **picture_result(None, p, loaded.classes, thresholds)}
                results.append(result)
                if draw:
                    text = ", ".join(f"{c} {result['scores'][c]:.2f}" for c in result["predicted"]) or "(no label)"
                    draw_label(image, text, Path(draw) / item["file_name"])
        return results, skipped

    def explain(self, loaded, items, out, class_index=None) -> tuple[list, list]:
        """Grad-CAM (classify/explain.py) for each label the picture is given (its score at or above the
        label's threshold; none given: its most likely label), or for `class_index` alone."""
        from ..classify.explain import explain_pictures
        thresholds = read_thresholds(loaded.run_dir, loaded.classes)
        limits = [thresholds.get(c, DEFAULT_THRESHOLD) for c in loaded.classes]

        def given(logits) -> list[int]:
            scores = logits.float().sigmoid()
            return [j for j, t in enumerate(limits) if float(scores[j]) >= t] or [int(scores.argmax())]

        pick = given if class_index is None else (lambda _logits: [class_index])
        return explain_pictures(loaded, items, out, pick, lambda logits: logits.float().sigmoid())

    def evaluate_run(self, loaded, data: str) -> dict:
        """The run's metrics on a labelled set (its val/ part when it has one), at the run's thresholds."""
        from torch.utils.data import DataLoader
        from ..classify.transforms import eval_transform
        from ..data.classify import ImageDataset
        from ..data.multilabel import scan_multilabel
        from ..distributed import Ranks
        from ..sampling import Seeded, ShardSampler
        scanned = scan_multilabel(data, val_split=0.0)
        unknown = [c for c in scanned.classes if c not in loaded.classes]
        if unknown:
            raise DataError(f"{data}: labels the model was not trained on: {', '.join(unknown)}",
                            hint=f"the run knows: {', '.join(loaded.classes)}")
        remap = [loaded.classes.index(c) for c in scanned.classes]
        samples = [(p, tuple(remap[j] for j in labels)) for p, labels in (scanned.val or scanned.train)]
        ds = ImageDataset(samples, eval_transform(loaded.size, loaded.mean, loaded.std))
        loader = DataLoader(Seeded(ds), batch_size=32, sampler=ShardSampler(len(ds), 1, 0),
                            collate_fn=partial(collate, len(loaded.classes)))
        evaluation = self.evaluate(loaded.model, loader, loaded.device, Ranks(0, 1, 0, loaded.device),
                                   loaded.classes, read_thresholds(loaded.run_dir, loaded.classes))
        return {"task": self.name, **evaluation.metrics, "skipped": scanned.report["skipped"],
                "data": str(data), "run": str(loaded.run_dir)}

    def export_module(self, model):
        return model, ["logits"]

    def robustness(self, loaded, data, sweep) -> dict:
        raise ConfigurationError(f"{loaded.run_dir}: robustness sweeps are for classification and detection runs",
                                 hint="a multi-label run's attack (which labels to flip) is not defined yet")


def picture_result(sample, probs: list, classes, thresholds: dict) -> dict:
    """One picture's {predicted: [labels], scores: {label: p}} (and with a sample (path, labels):
    path, true labels, and whether the sets differ)."""
    predicted = [c for c, p in zip(classes, probs) if p >= thresholds.get(c, DEFAULT_THRESHOLD)]
    out = {"predicted": predicted, "scores": {c: round(float(p), 5) for c, p in zip(classes, probs)}}
    if sample is not None:
        path, labels = sample
        true = [classes[j] for j in labels]
        out = {"path": str(path), "true": true, **out, "wrong": sorted(true) != sorted(predicted)}
    return out
