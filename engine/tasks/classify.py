"""Image classification: a pretrained backbone with a new head for the user's classes.

Loss: cross-entropy. Evaluation: loss, accuracy, per-class accuracy, per-class precision and
recall (common/metrics.py) and the confusion matrix (rows = true class, columns = predicted),
summed over ranks so that several ranks report exactly what one process would. For the best epoch, every validation image's prediction is written to
predictions/val.json and the matrix to confusion_matrix.json (the app shows the misclassified).
A finished run: classify/predict.py (predict, eval), classify/robustness.py (the ε sweep).

No torch at import (tasks/base.py): each method imports what it uses.
"""
from __future__ import annotations

from pathlib import Path

from frelon.common.choices import CLASSIFY
from frelon.common.metrics import balanced_accuracy, precision_recall
from frelon.common.run_folder import SCORE_THRESHOLD, RunFolder, data_or_sample

from ..errors import ConfigurationError
from .base import Evaluation, Scanned, run_splits, run_validation_split


class ClassifyTask:
    name = CLASSIFY
    best_metric = "accuracy"        # "balanced_accuracy" once datasets() has a run that balances
    boxes = False

    # ---------------------------------------------------------------- data

    def check(self, data: str, val_data: str = "", val_split: float = 0.2, seed: int = 0, workers: int = 0) -> dict:
        from ..data.doctor import check_classification
        report, _ = check_classification(data, val_data=val_data, val_split=val_split, seed=seed, workers=workers)
        return report

    def class_count(self, cfg) -> int:
        """The class folders of the configured data (at least 2: a head needs two outputs)."""
        from ..data.classify import find_layout
        root = Path(find_layout(data_or_sample(cfg.data, self.name), cfg.val_data).train_root)
        return max(2, sum(1 for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")))

    def check_image_size(self, size: int) -> None:
        """Any size: the centre crop makes it."""

    def scan(self, cfg, workers: int) -> Scanned:
        from ..data.classify import scan_classification
        data = scan_classification(cfg.data, val_data=cfg.val_data, val_split=cfg.val_split,
                                   seed=cfg.seed, workers=workers)
        return Scanned(classes=data.classes, report=data.report, train=data.train, val=data.val,
                       extra={"layout": data.layout, "root": data.root})

    # ---------------------------------------------------------------- training

    def build_model(self, cfg, classes):
        from .. import backbones
        model, pre = backbones.build_classifier(cfg.backbone, len(classes), cfg.weights)
        return model, pre

    loss_weights = None     # each class's loss weight under --balance weights (datasets(): the settled cfg)
    weight_tensor = None    # the same on the device, made at the first step

    def train_labels(self, scanned: Scanned) -> list[int]:
        return [label for _, label in scanned.train]

    def datasets(self, scanned: Scanned, cfg, size: int, pre: dict):
        from ..classify import transforms
        from ..data.classify import ImageDataset
        from ..data.mirror import flip_wanted
        self.loss_weights, self.weight_tensor = None, None
        # a balanced run keeps its best epoch, and counts its patience, by balanced accuracy: on an
        # uneven validation split plain accuracy prefers the model that answers the largest class
        self.best_metric = "accuracy" if cfg.balance == "off" else "balanced_accuracy"
        if cfg.balance == "weights":    # settled (training/balancing.py): the loss weighs each class
            from frelon.common.balance import class_weights, counts_of
            self.loss_weights = class_weights(counts_of(self.train_labels(scanned), len(scanned.classes)))
        from ..data.resized_cache import for_config
        cache = for_config(cfg)
        train = ImageDataset(scanned.train, transforms.train_transform(
            size, pre["mean"], pre["std"], cfg.augment, cfg.random_erasing, flip_wanted(cfg.flip, scanned.classes),
            cfg.noise), transforms.decode_short_side(size, cfg.augment), cache)
        val = None
        if scanned.val:
            val = ImageDataset(scanned.val, transforms.eval_transform(size, pre["mean"], pre["std"]),
                               transforms.decode_short_side(size), cache)
        return train, val, None

    def probe_dataset(self, scanned: Scanned, size: int, pre: dict, cfg=None):
        """The training images at the evaluation transform: what the features' fit is measured on
        (training/feature_fit.py), before the first step (through `cfg`'s resized cache)."""
        from ..classify import transforms
        from ..data.classify import ImageDataset
        from ..data.resized_cache import for_config
        return ImageDataset(scanned.train, transforms.eval_transform(size, pre["mean"], pre["std"]),
                            transforms.decode_short_side(size), for_config(cfg))

    def loss(self, model, batch, device):
        import torch.nn.functional as F
        images, labels = batch
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = model(images)
        if self.loss_weights is not None and self.weight_tensor is None:
            import torch
            self.weight_tensor = torch.tensor(self.loss_weights, dtype=torch.float32, device=device)
        return F.cross_entropy(logits.float(), labels, weight=self.weight_tensor), None, images.shape[0]

    def evaluate(self, model, loader, device, ranks, classes) -> Evaluation:
        import torch
        with torch.no_grad():
            return self._evaluate(model, loader, device, ranks, classes)

    def _evaluate(self, model, loader, device, ranks, classes) -> Evaluation:
        """Each rank its shard's forward passes; the confusion matrix and loss summed over ranks (so
        every rank has the metrics); the per-image probabilities gathered on rank 0 only, which
        writes them (details None elsewhere). Read from the device once, at the end."""
        import torch
        import torch.nn.functional as F
        from ..distributed import all_reduce_sum, gather_to_main
        n = len(classes)
        confusion = torch.zeros(n, n, dtype=torch.float64, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        probabilities = []
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images).float()
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            pred = logits.argmax(1)
            confusion.index_put_((labels, pred), torch.ones_like(labels, dtype=torch.float64), accumulate=True)
            probabilities.append(logits.softmax(1))
        all_reduce_sum(confusion, ranks)
        all_reduce_sum(loss_sum, ranks)
        cm = confusion.round().long().cpu()
        total = int(cm.sum())
        correct = int(cm.diag().sum())
        per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() > 0 else None) for i, c in enumerate(classes)}
        metrics = {"loss": float(loss_sum) / max(1, total), "accuracy": correct / max(1, total),
                   "balanced_accuracy": balanced_accuracy(cm.tolist()),
                   "per_class": per_class, "precision_recall": precision_recall(cm.tolist(), classes),
                   "confusion_matrix": cm.tolist(), "images": total}
        mine = torch.cat(probabilities).cpu().tolist() if probabilities else []
        parts = gather_to_main(list(zip(loader.sampler.indices, mine)), ranks)    # (dataset index, probabilities)
        details = sorted(r for part in parts for r in part) if parts is not None else None
        score = metrics[self.best_metric] if metrics.get(self.best_metric) is not None else metrics["accuracy"]
        return Evaluation(metrics=metrics, score=score, details=details)

    def write_results(self, run_dir: Path, evaluation: Evaluation, classes, val_samples) -> None:
        from ..rundir import atomic_write_json
        preds = []
        for index, probs in evaluation.details:
            path, label = val_samples[index]
            best = max(range(len(probs)), key=probs.__getitem__)
            preds.append({"path": str(path), "true": classes[label], "predicted": classes[best],
                          "score": probs[best], "probabilities": probs})
        atomic_write_json(RunFolder(run_dir).validation_predictions, preds)
        atomic_write_json(run_dir / "confusion_matrix.json",
                          {"classes": classes, "matrix": evaluation.metrics["confusion_matrix"],
                           "rows": "true class", "columns": "predicted class"})

    def model_info(self) -> dict:
        return {}

    # ---------------------------------------------------------------- what other commands show

    def synthetic_batch(self, batch: int, size: int, num_classes: int):
        """(images, labels) as the loader yields them, seeded."""
        import torch
        g = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, size, size, generator=g)
        return images, torch.randint(0, num_classes, (batch,), generator=g)

    def describe(self, sample, classes) -> dict:
        path, label = sample
        return {"path": str(path), "label": classes[label]}

    def sample(self, train, index: int, seed: int):
        from ..sampling import seeded
        tensor, label = seeded(seed, train.__getitem__, index)
        return tensor, None, label

    def summarize(self, row, classes, top: int, min_score: float, max_boxes: int) -> list:
        """The `top` classes, [[class, probability]]."""
        from ..classify.predict import top_scores
        return top_scores(row[0], classes, top)

    # ---------------------------------------------------------------- a finished run

    def predict(self, loaded, items, root, draw=None, heatmaps=None, as_annotations=None, threshold=SCORE_THRESHOLD):
        if as_annotations:
            raise ConfigurationError("--as-annotations writes boxes: it needs a detection run",
                                     hint="for a classifier, --out holds each image's predicted class")
        from ..classify.predict import predict_classification
        return predict_classification(loaded, items, draw)

    def evaluate_run(self, loaded, data: str) -> dict:
        from ..classify.predict import evaluate_classification
        return evaluate_classification(loaded, data)

    def export_module(self, model):
        return model, ["logits"]

    def quantization(self, loaded):
        """`export --int8`: training pictures to calibrate on, validation accuracy to compare."""
        from ..classify.int8 import ClassifierQuantization
        from ..data.classify import scan_classification
        return ClassifierQuantization(loaded, *run_splits(loaded, scan_classification, self.name))

    def class_scores(self, logits):
        """One picture's logits (C,) → each class's score: softmax (one class per picture)."""
        return logits.float().softmax(0)

    def explained_classes(self, logits) -> list[int]:
        """The classes `frelon explain` maps for one picture when none is asked for: the predicted
        one. (The per-class-index function a multi-label task overrides: each predicted label.)"""
        return [int(logits.argmax())]

    def explain(self, loaded, items, out, class_index=None) -> tuple[list, list]:
        """Grad-CAM per explained class (classify/explain.py), or for `class_index` alone."""
        from ..classify.explain import explain_pictures
        pick = self.explained_classes if class_index is None else (lambda _logits: [class_index])
        return explain_pictures(loaded, items, out, pick, self.class_scores)

    def robustness(self, loaded, data, sweep) -> dict:
        from ..classify.robustness import classification_sweep
        if data:
            from ..classify.predict import labelled_samples
            samples, source = labelled_samples(loaded, data)[0], str(data)
        else:
            from ..data.classify import scan_classification
            samples, source = run_validation_split(loaded, scan_classification, self.name)
        return classification_sweep(loaded, samples, source, sweep)
