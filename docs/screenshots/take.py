"""The pictures in this folder: every tab of the app at 1366 × 768, from real runs on the bundled samples.

    .venv/bin/python docs/screenshots/take.py WORK_DIR [NAME …]

First (once: kept in WORK_DIR) `frelon train` on the command line, on the CPU: the classification
sample for 3 epochs and for 1 at another LR (two runs to compare), and a copy of the detection
sample with one circle's box removed for 12 epochs. Then the app opens on Qt's offscreen platform
with a 1366 × 768 screen, window 1366 × 768, and does what a user would, its real engine behind it:
the data doctor, `frelon info`, Run check (FGSM and PGD), Open folder (predict with heatmaps),
Review with the shown run, Pre-annotate a folder, Preview augmentation. Each picture is the whole
window (`QWidget.grab()`), reduced to 256 colours (pngquant where installed, else Pillow) to stay
small. NAME …: only those.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLE = REPO / "frelon" / "assets" / "sample"
SIZE = (1366, 768)


def frelon(*args) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    subprocess.run([sys.executable, "-m", "frelon", *map(str, args)], check=True, env=env)


def run_named(runs: Path, name: str) -> Path | None:
    found = sorted(runs.glob(f"*-{name}"))
    return found[-1] if found else None


def prepare(work: Path) -> dict:
    """The runs and folders the pictures show (made once)."""
    runs = work / "runs"
    detect = work / "data" / "shapes"
    if not detect.exists():                 # the detection sample, one circle's box removed (the review finds it)
        shutil.copytree(SAMPLE / "detect", detect)
        path = detect / "val" / "annotations.json"
        doc = json.loads(path.read_text())
        circle = next(a for a in doc["annotations"] if a["category_id"] == 1)
        doc["annotations"] = [a for a in doc["annotations"] if a is not circle]
        path.write_text(json.dumps(doc))
    photos = work / "photos"                # unlabelled pictures to predict on and pre-annotate
    if not photos.exists():
        photos.mkdir(parents=True)
        for p in sorted((SAMPLE / "detect" / "val").glob("*.jpg"))[:6]:
            shutil.copy(p, photos / p.name)
    plan = [("sample", ["--epochs", 3]), ("sample-lr", ["--epochs", 1, "--lr", 0.003]),
            ("shapes", ["--data", detect, "--task", "detect", "--epochs", 12])]
    for name, args in plan:
        if run_named(runs, name) is None:
            frelon("train", "--out", runs, "--name", name, "--workers", 1, *args)
    return {"runs": runs, "classify": run_named(runs, "sample"), "classify_lr": run_named(runs, "sample-lr"),
            "detect": run_named(runs, "shapes"), "shapes": detect, "photos": photos}


class Shooter:
    def __init__(self, app, window, only: list[str]):
        self.app, self.w, self.only = app, window, only

    def wait(self, condition, timeout: float = 600.0, what: str = "") -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError(what)
            self.app.processEvents()
            time.sleep(0.02)
        for _ in range(20):                  # layouts, thumbnails loading, plots' 10 Hz refresh
            self.app.processEvents()
            time.sleep(0.02)

    def wanted(self, name: str) -> bool:
        return not self.only or name in self.only

    def shot(self, name: str) -> None:
        from PIL import Image
        self.w.resize(*SIZE)
        self.wait(lambda: True)
        if (self.w.width(), self.w.height()) != SIZE:       # something made the window wider or taller
            raise RuntimeError(f"{name}: the window is {self.w.width()}×{self.w.height()}, not {SIZE[0]}×{SIZE[1]}")
        path = HERE / f"{name}.png"
        self.w.grab().save(str(path))
        if shutil.which("pngquant"):          # 256 colours chosen perceptually (apt install pngquant)
            subprocess.run(["pngquant", "--quality=70-95", "--speed=1", "--force", "--output", str(path), str(path)],
                           check=True)
        else:                                 # Pillow's: faithful to the flat greys, a little larger
            Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MAXCOVERAGE).save(path, optimize=True)
        print(f"{path.name}: {path.stat().st_size // 1024} KiB", flush=True)


def take(s: Shooter, world: dict) -> None:
    w = s.w
    s.wait(lambda: w.training_panel.backbone.count() > 1, 120, "frelon info")
    d = w.data_panel
    for name, folder in (("data-classify", SAMPLE / "classify"), ("data-detect", world["shapes"])):
        if s.wanted(name):
            d.set_path(str(folder))
            s.wait(lambda: d.report is not None, 120, "frelon check")
            w.tabs.setCurrentWidget(d)
            s.shot(name)
    d.set_path(str(SAMPLE / "classify"))
    s.wait(lambda: d.report is not None, 120, "frelon check")
    _classification(s, world)
    _detection(s, world)
    _annotations(s, world)
    if s.wanted("augment-preview"):
        tp = w.training_panel
        tp.noise.setValue(12)
        tp.augment_preview.button.click()
        s.wait(lambda: tp.augment_preview.result is not None, 300, "preview-augment")
        w.tabs.setCurrentWidget(w.plots_panel)
        s.wait(lambda: True)
        area = tp.augment_preview.parentWidget()
        while area is not None and not hasattr(area, "ensureWidgetVisible"):
            area = area.parentWidget()
        area.ensureWidgetVisible(tp.augment_preview, 0, 0)
        s.shot("augment-preview")


def _classification(s: Shooter, world: dict) -> None:
    w, r = s.w, s.w.results_panel
    w.runs_panel.refresh()
    w.runs_panel.select(str(world["classify"]), str(world["classify_lr"]))
    w.tabs.setCurrentWidget(w.runs_panel)
    if s.wanted("runs"):
        s.shot("runs")
    w.session.show_run(str(world["classify"]), None)
    w.tabs.setCurrentWidget(w.plots_panel)
    if s.wanted("training-classify"):
        s.shot("training-classify")
    w.tabs.setCurrentWidget(r)
    r.classify_page.setCurrentWidget(r.classify)
    if s.wanted("results-classify"):
        s.shot("results-classify")
    if s.wanted("results-classification-pr"):
        r.classify.filter_class(r.classify.per_class.item(0, 0).text())
        r.classify.per_class.selectRow(0)
        s.shot("results-classification-pr")
        r.classify.filter_class("")
    if s.wanted("timelapse-classify"):
        r.classify_page.setCurrentWidget(r.timelapse)
        r.timelapse.slider.setValue(0)
        s.shot("timelapse-classify")
    if s.wanted("results-robustness"):
        v = r.robustness
        r.classify_page.setCurrentWidget(v)
        for attack in ("pgd", "fgsm"):
            v.attack.setCurrentText(attack)
            if attack not in v.results:
                v.run_button.click()
                s.wait(lambda: v.run_button.isEnabled(), 900, f"robustness {attack}")
        v.attack.setCurrentText("fgsm")
        v.flips.setCurrentRow(0)
        s.shot("results-robustness")


def _detection(s: Shooter, world: dict) -> None:
    w, r = s.w, s.w.results_panel
    w.session.show_run(str(world["detect"]), None)
    w.tabs.setCurrentWidget(w.plots_panel)
    if s.wanted("training-detect"):
        s.shot("training-detect")
    w.tabs.setCurrentWidget(r)
    r.detect_page.setCurrentIndex(0)
    if s.wanted("results-detection-pr"):
        r.pr_curves.select("circle")
        s.shot("results-detection-pr")
        r.pr_curves.select("")
    if s.wanted("timelapse-detect"):
        r.detect_page.setCurrentWidget(r.detect_timelapse)
        s.shot("timelapse-detect")
    if s.wanted("results-detection-robustness"):
        v = r.detect_robustness
        r.detect_page.setCurrentWidget(v)
        if "fgsm" not in v.results:
            v.run_button.click()
            s.wait(lambda: v.run_button.isEnabled(), 900, "robustness")
        s.shot("results-detection-robustness")
    if s.wanted("detections") or s.wanted("detections-threshold"):
        r.detect_page.setCurrentIndex(0)
        r.run_predict(str(world["photos"]))
        s.wait(lambda: r.header.text().startswith("Predictions on"), 300, "predict")
        s.shot("detections")
        r.detect.slider.setValue(45)
        r.detect.heatmap.setChecked(True)
        s.shot("detections-threshold")
        r.detect.slider.setValue(30)
        r.detect.heatmap.setChecked(False)


def _annotations(s: Shooter, world: dict) -> None:
    w, a = s.w, s.w.annotation_editor
    if s.wanted("annotations-review") or s.wanted("annotations-edit"):
        w.review_annotations()
        s.wait(lambda: bool(a.review), 300, "review")
        s.shot("annotations-review")
        a.go(1)
        a.view.select(0)
        s.shot("annotations-edit")
    if s.wanted("annotations-drafts"):
        w.preannotate(str(world["photos"]), 0.3)
        s.wait(lambda: a.join_target is not None or "Drafts" in a.note.text(), 300, "pre-annotate")
        s.shot("annotations-drafts")


def main(argv: list[str]) -> int:
    work = Path(argv[0]).absolute()
    work.mkdir(parents=True, exist_ok=True)
    world = prepare(work)
    screen = work / "screen.json"            # Qt's offscreen platform with a laptop's screen
    screen.write_text(json.dumps({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": SIZE[0], "height": SIZE[1],
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
    os.environ["FRELON_SETTINGS"] = str(work / "settings.ini")
    (work / "settings.ini").unlink(missing_ok=True)
    os.environ.pop("FRELON_GUI_ENGINE", None)
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from frelon.gui.main_window import MainWindow
    window = MainWindow(str(world["runs"]))
    window.show()
    take(Shooter(app, window, argv[1:]), world)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
