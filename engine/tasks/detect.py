"""Object detection with CenterNet: COCO / VOC / YOLO data, a registry backbone, mAP each epoch.

Data: the data/detection/ package's readers and report. Model: centernet/model.py on the backbone's
last-stage features. Loss: centernet/loss.py (parts `heatmap`, `size`, `offset` go into `step`
events). Evaluation: the validation loss, then the detections decoded in each image's own pixels
and scored with pycocotools (`map` — AP over IoU 0.5:0.95, which picks the best checkpoint —,
`map_50`, per-class AP at both; with `--slicing` on, each picture's tiles merged with its whole
view, as `frelon eval` scores them: centernet/slicing.py). For the best epoch, every validation detection is written to
predictions/val.json (COCO results, plus file names and class names, for the app) and the
precision–recall curves to pr_curves.json (cocoeval.pr_curves; too big for each epoch's event).
A finished run: centernet/predict.py (predict, eval, ONNX), centernet/robustness.py (the ε sweep).

No torch at import (tasks/base.py): each method imports what it uses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from frelon.common.choices import DETECT
from frelon.common.run_folder import SCORE_THRESHOLD, RunFolder, data_or_sample

from ..errors import ConfigurationError, DataError
from .base import Evaluation, Scanned, run_splits, run_validation_split

SIZE_MULTIPLE = 32      # the backbone's stride: the neck up-samples its map exactly ×8


def check_image_size(size: int) -> None:
    if size % SIZE_MULTIPLE:
        up = (size // SIZE_MULTIPLE + 1) * SIZE_MULTIPLE
        raise ConfigurationError(
            f"--image-size {size}: detection needs a multiple of {SIZE_MULTIPLE}",
            hint=f"use --image-size {up} (or {up - SIZE_MULTIPLE})")


# --detector: (neck, targets and loss). "ttf": the lateral neck (centernet/model.py) and TTFNet's
# dense box regression (centernet/targets.encode_ttf, loss.ttf_loss); "centernet": the paper's
# ResNet-variant neck, centre-only regression. Both give the same outputs and decoding.
DETECTORS = {"ttf": ("lateral", "ttf"), "centernet": ("plain", "centernet")}


def build_detector(backbone: str, num_classes: int, weights: str = "imagenet",
                   detector: str = "ttf") -> tuple[Any, dict]:
    """CenterNet on a registry backbone, and the backbone's preprocessing {mean, std, ...}."""
    from .. import backbones
    from ..centernet.model import CenterNet
    features, channels, pre = backbones.build_feature_extractor(backbone, weights)   # head dropped
    return CenterNet(features, channels, num_classes, neck=DETECTORS[detector][0]), pre


def _to(targets: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) for k, v in targets.items()}


class DetectTask:
    name = DETECT
    best_metric = "map"
    boxes = True

    def __init__(self) -> None:
        self.category_ids: list[int] = []
        self.detector = "ttf"
        self.sliced = False             # --slicing as settled: validation predicts as `frelon eval` will

    # ---------------------------------------------------------------- data

    def check(self, data: str, val_data: str = "", val_split: float = 0.2, seed: int = 0, workers: int = 0) -> dict:
        from ..data.detection import check_detection
        return check_detection(data, val_data=val_data, val_split=val_split, seed=seed, workers=workers)

    def class_count(self, cfg) -> int:
        """The classes of the configured data (the heatmap has one map per class)."""
        from ..data.detection import scan_detection
        data = data_or_sample(cfg.data, self.name)
        return len(scan_detection(data, val_data=cfg.val_data, val_split=cfg.val_split, seed=cfg.seed).classes)

    def check_image_size(self, size: int) -> None:
        check_image_size(size)

    def scan(self, cfg, workers: int) -> Scanned:
        from ..data.detection import scan_detection
        check_image_size(cfg.resolved_image_size(self.name))
        from ..cocoeval import require
        if cfg.val_split > 0 or cfg.val_data:      # validation's mAP needs pycocotools: said before the scan
            require()
        data = scan_detection(cfg.data, val_data=cfg.val_data, val_split=cfg.val_split, seed=cfg.seed,
                              workers=workers or None)
        if data.val:                               # a layout with its own val/ folder
            require()
        if not any(not c for rec in data.train for c in rec.iscrowd):
            raise DataError(f"{data.root}: no object is annotated in the training images",
                            hint="run `frelon check --data PATH --task detect` to see what was skipped")
        self.category_ids = data.category_ids
        return Scanned(classes=data.classes, report=data.report, train=data.train, val=data.val,
                       extra={"layout": data.layout, "root": data.root, "category_ids": data.category_ids})

    # ---------------------------------------------------------------- training

    def build_model(self, cfg, classes):
        self.detector = cfg.detector
        return build_detector(cfg.backbone, len(classes), cfg.weights, cfg.detector)

    def train_labels(self, scanned: Scanned) -> None:
        """None: a picture holds boxes of several classes, not one class to balance by (--balance)."""
        return None

    def datasets(self, scanned: Scanned, cfg, size: int, pre: dict):
        from ..centernet import transforms as T
        from ..centernet.dataset import DetectionDataset, collate
        from ..data.mirror import flip_wanted
        check_image_size(size)
        n = len(scanned.classes)
        targets = DETECTORS[cfg.detector][1]
        flip = flip_wanted(cfg.flip, scanned.classes)
        self.sliced = cfg.slicing == "on"
        transform = T.train_transform(size, pre["mean"], pre["std"], cfg.augment, flip, cfg.noise, self.sliced)
        train = DetectionDataset(scanned.train, transform, n, size, targets=targets)
        val = None
        if scanned.val:
            val = DetectionDataset(scanned.val, T.eval_transform(size, pre["mean"], pre["std"]), n, size,
                                   targets=targets)
        return train, val, collate

    def loss(self, model, batch, device):
        from ..centernet.loss import detection_loss
        images, targets, _ = batch
        images = images.to(device, non_blocking=True)
        total, parts = detection_loss(model(images), _to(targets, device))
        return total, parts, images.shape[0]

    def evaluate(self, model, loader, device, ranks, classes) -> Evaluation:
        import torch
        with torch.no_grad():
            return self._evaluate(model, loader, device, ranks, classes)

    def _evaluate(self, model, loader, device, ranks, classes) -> Evaluation:
        """Each rank its shard's forward passes (the outputs in float32 for the loss and decoding,
        whatever the autocast); the validation loss summed over ranks; the detections gathered on
        rank 0 only, which scores them once with pycocotools and sends the metrics to the others
        (details and curves stay on rank 0, which writes them)."""
        import torch
        from ..centernet.decode import decode_to_original
        from ..centernet.loss import detection_loss
        from ..distributed import all_reduce_sum, broadcast_object, gather_to_main
        loss_sum = torch.zeros(2, dtype=torch.float64, device=device)     # sum, images
        rows = []
        for images, targets, metas in loader:
            outputs = {k: v.float() for k, v in model(images.to(device)).items()}
            loss, _ = detection_loss(outputs, _to(targets, device))
            loss_sum[0] += loss.double() * len(metas)
            loss_sum[1] += len(metas)
            for meta, det in zip(metas, self._sliced(model, loader.dataset.dataset, metas,
                                                     decode_to_original(outputs, [m["letterbox"] for m in metas]),
                                                     device)):
                rows.append((meta["index"], det.boxes.cpu(), det.scores.cpu(), det.labels.cpu()))
        all_reduce_sum(loss_sum, ranks)
        parts = gather_to_main(rows, ranks)
        metrics = curves = details = None
        if parts is not None:
            details = sorted((r for part in parts for r in part), key=lambda r: r[0])
            metrics = evaluate_detections(loader.dataset.dataset.records, details, classes)
            curves = metrics.pop("pr_curves")
            metrics["loss"] = float(loss_sum[0] / loss_sum[1].clamp(min=1))
        metrics = broadcast_object(metrics, ranks)
        score = metrics["map"] if metrics["map"] is not None else -metrics["loss"]
        return Evaluation(metrics=metrics, score=score, details=details, curves=curves)

    def _sliced(self, model, dataset, metas, whole: list, device) -> list:
        """The whole views' detections, or with slicing each picture's tiles merged with them."""
        if not self.sliced:
            return whole
        from ..centernet.slicing import sliced_detections
        from ..data.images import load_rgb
        return [sliced_detections(model, load_rgb(dataset.records[m["index"]].path), dataset.size,
                                  dataset.transform, device, det) for m, det in zip(metas, whole)]

    def write_results(self, run_dir: Path, evaluation: Evaluation, classes, val_samples) -> None:
        from ..centernet.decode import Detections
        from ..centernet.predict import detections_json
        from ..rundir import atomic_write_json
        ids = self.category_ids or list(range(1, len(classes) + 1))
        preds = []
        for index, boxes, scores, labels in evaluation.details:
            rec = val_samples[index]
            key = {"image_id": rec.image_id, "file_name": rec.file_name, "path": rec.path}
            preds += detections_json(Detections(boxes, scores, labels), classes, ids, key)
        folder = RunFolder(run_dir)
        atomic_write_json(folder.validation_predictions, preds)
        atomic_write_json(folder.pr_curves, evaluation.curves)

    def model_info(self) -> dict:
        from ..centernet.decode import SCORE_FLOOR, TOP_K
        from ..centernet.model import NECK_CHANNELS, STRIDE
        return {"detector": {"name": "centernet", "recipe": self.detector, "neck_kind": DETECTORS[self.detector][0],
                             "stride": STRIDE, "neck": list(NECK_CHANNELS),
                             "top_k": TOP_K, "score_floor": SCORE_FLOOR, "letterbox": "right-bottom",
                             "category_ids": self.category_ids}}

    # ---------------------------------------------------------------- what other commands show

    def synthetic_batch(self, batch: int, size: int, num_classes: int):
        """(images, targets, metas) as the loader yields them, seeded: one box per image."""
        import torch
        from ..centernet.targets import collate_targets, encode
        g = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, size, size, generator=g)
        out = size // 4
        box = torch.tensor([[size * 0.25, size * 0.25, size * 0.75, size * 0.6]])
        targets = [encode(box, torch.tensor([i % num_classes]), num_classes, (out, out)) for i in range(batch)]
        return images, collate_targets(targets), [{} for _ in range(batch)]

    def describe(self, sample, classes) -> dict:
        return {"path": str(sample.path)}

    def sample(self, train, index: int, seed: int):
        import torch
        from ..sampling import seeded
        tensor, target, _, _ = seeded(seed, train.transformed, index)
        return tensor, target["boxes"].as_subclass(torch.Tensor), target["labels"]

    def summarize(self, row, classes, top: int, min_score: float, max_boxes: int) -> list:
        """[[x1, y1, x2, y2, class, score]]: the boxes scoring at least `min_score`, at most `max_boxes`."""
        import torch
        boxes, scores, labels = row
        keep = (torch.as_tensor(scores) >= min_score).nonzero().flatten()[:max_boxes].tolist()
        return [[*(round(v, 1) for v in boxes[k].tolist()), classes[int(labels[k])], round(float(scores[k]), 4)]
                for k in keep]

    # ---------------------------------------------------------------- a finished run

    def predict(self, loaded, items, root, draw=None, heatmaps=None, as_annotations=None, threshold=SCORE_THRESHOLD):
        from ..centernet.predict import category_ids, predict_detection
        results, skipped = predict_detection(loaded, items, draw=draw, heatmaps=heatmaps)
        if as_annotations:
            from frelon.common import coco_doc
            from ..coco_writer import drafts_document
            from ..coco_writer import drafts_hint
            doc = drafts_document(results, items, loaded.classes, category_ids(loaded), threshold, root,
                                  str(loaded.run_dir))
            coco_doc.save_annotations(doc, as_annotations, ("drafts",), instead=drafts_hint(as_annotations))
        return results, skipped

    def evaluate_run(self, loaded, data: str) -> dict:
        from ..centernet.predict import evaluate_detection
        return evaluate_detection(loaded, data)

    def export_module(self, model):
        from ..centernet.predict import onnx_module
        model, names = onnx_module(model)
        return model, list(names)

    def quantization(self, loaded):
        """`export --int8`: training pictures to calibrate on, validation mAP to compare."""
        from ..centernet.int8 import DetectorQuantization
        from ..data.detection import scan_detection
        from ..cocoeval import require
        require()
        return DetectorQuantization(loaded, *run_splits(loaded, scan_detection, self.name), evaluate_detections)

    def explain(self, loaded, items, out, class_index=None) -> tuple[list, list]:
        """The heatmap laid over each picture (centernet/explain.py): max over classes, or one class."""
        from ..centernet.explain import explain_pictures
        return explain_pictures(loaded, items, out, class_index)

    def robustness(self, loaded, data, sweep) -> dict:
        from ..centernet.robustness import detection_sweep
        if data:
            from ..centernet.predict import labelled_records
            records, source = labelled_records(loaded, data)[0], str(data)
        else:
            from ..data.detection import scan_detection
            records, source = run_validation_split(loaded, scan_detection, self.name)
        recipe = DETECTORS[(loaded.info.get("detector") or {}).get("recipe", "centernet")][1]
        return detection_sweep(loaded, records, source, recipe, sweep)


def evaluate_detections(records, rows, classes) -> dict[str, Any]:
    """COCO metrics for rows (index, boxes, scores, labels) on records[index] (every record counts,
    a record without a row is an image with no detection)."""
    import torch
    from ..centernet.decode import Detections
    from ..cocoeval import coco_map
    by_index = {r[0]: Detections(r[1], r[2], r[3]) for r in rows}
    empty = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    dets = [by_index.get(i, empty) for i in range(len(records))]
    metrics = coco_map(records, dets, classes)
    metrics["images"] = len(records)
    return metrics
