"""Image classification: a pretrained backbone with a new head for the user's classes.

Loss: cross-entropy. Evaluation: loss, accuracy, per-class accuracy, per-class precision and
recall (common/metrics.py) and the confusion matrix (rows = true class, columns = predicted),
summed over ranks so that several ranks report exactly what one process would. For the best epoch, every validation image's prediction is written to
predictions/val.json and the matrix to confusion_matrix.json (the app shows the misclassified).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from frelon.common.metrics import precision_recall

from .. import backbones, transforms
from ..data.mirror import flip_wanted
from ..distributed import all_reduce_sum, gather_objects
from ..rundir import atomic_write_json
from .base import Evaluation, Scanned


class ClassifyTask:
    name = "classify"
    best_metric = "accuracy"

    def scan(self, cfg, workers: int) -> Scanned:
        from ..data.classify import scan_classification
        data = scan_classification(cfg.data, val_data=cfg.val_data, val_split=cfg.val_split,
                                   seed=cfg.seed, workers=workers)
        return Scanned(classes=data.classes, report=data.report, train=data.train, val=data.val,
                       extra={"layout": data.layout, "root": data.root})

    def build_model(self, cfg, classes):
        model, pre = backbones.build_classifier(cfg.backbone, len(classes), cfg.weights)
        return model, pre

    def datasets(self, scanned: Scanned, cfg, size: int, pre: dict):
        from ..data.classify import ImageDataset
        train = ImageDataset(scanned.train, transforms.train_transform(
            size, pre["mean"], pre["std"], cfg.augment, cfg.random_erasing, flip_wanted(cfg.flip, scanned.classes),
            cfg.noise))
        val = ImageDataset(scanned.val, transforms.eval_transform(size, pre["mean"], pre["std"])) if scanned.val else None
        return train, val, None

    def loss(self, model, batch, device):
        images, labels = batch
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = model(images)
        return F.cross_entropy(logits.float(), labels), None, images.shape[0]

    @torch.no_grad()
    def evaluate(self, model, loader, device, ranks, classes) -> Evaluation:
        n = len(classes)
        confusion = torch.zeros(n, n, dtype=torch.float64, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        rows = []                                  # (dataset index, probabilities) on this rank
        indices = iter(loader.sampler.indices)
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images).float()
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            pred = logits.argmax(1)
            confusion.index_put_((labels, pred), torch.ones_like(labels, dtype=torch.float64), accumulate=True)
            for p in logits.softmax(1).cpu().tolist():
                rows.append((next(indices), p))
        all_reduce_sum(confusion, ranks)
        all_reduce_sum(loss_sum, ranks)
        cm = confusion.round().long().cpu()
        total = int(cm.sum())
        correct = int(cm.diag().sum())
        per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() > 0 else None) for i, c in enumerate(classes)}
        metrics = {"loss": float(loss_sum) / max(1, total), "accuracy": correct / max(1, total),
                   "per_class": per_class, "precision_recall": precision_recall(cm.tolist(), classes),
                   "confusion_matrix": cm.tolist(), "images": total}
        details = sorted(r for part in gather_objects(rows, ranks) for r in part)
        return Evaluation(metrics=metrics, score=metrics["accuracy"], details=details)

    def write_results(self, run_dir: Path, evaluation: Evaluation, classes, val_samples) -> None:
        preds = []
        for index, probs in evaluation.details:
            path, label = val_samples[index]
            best = max(range(len(probs)), key=probs.__getitem__)
            preds.append({"path": str(path), "true": classes[label], "predicted": classes[best],
                          "score": probs[best], "probabilities": probs})
        atomic_write_json(run_dir / "predictions" / "val.json", preds)
        atomic_write_json(run_dir / "confusion_matrix.json",
                          {"classes": classes, "matrix": evaluation.metrics["confusion_matrix"],
                           "rows": "true class", "columns": "predicted class"})

    def model_info(self) -> dict:
        return {}
