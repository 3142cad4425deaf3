"""Model & training panel: every choice that becomes a `frelon train` flag, with its trade-off.

Owns its widgets and produces a :class:`TrainOptions` (``options()``; ``options_changed`` on every
edit). The backbone list, weights status and GPU count come from `frelon info --json`
(``set_info``); the number of training images from the data doctor (``set_train_images``), so the
effective LR and the LR-schedule preview are exact before Start.
"""
from __future__ import annotations

import dataclasses

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QLabel, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from frelon.gui import theme
from frelon.gui.lr_schedule import SCHEDULE_HELP, plan, preview
from frelon.common import lr_policy
from frelon.gui.options import (AUGMENTS, CHECKPOINTING, DEFAULT_BACKBONE, DETECTORS, FLIPS, OPTIMIZERS,
                                SCHEDULES, TASK_CHOICES, TrainOptions)
from frelon.gui.panels.training_tips import TIPS
from frelon.gui.widgets.augment_preview import AugmentPreview
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.lr_finder import LrFinder
from frelon.gui.widgets.memory_forecast import MemoryForecast
from frelon.gui.widgets.sci_spinbox import SciSpinBox


class TrainingPanel(QWidget):
    options_changed = Signal(object)          # TrainOptions

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self._train_images = 0
        self._weights_file = ""
        self._backbones: dict[str, dict] = {}
        self._cuda: list[dict] = []
        self._cpu_text = ""                   # from `frelon info`
        self._detected_task = ""              # from the data doctor
        self._building = True
        # made in this order (the groups are laid out in another: model, hardware, training, regularisation)
        self._make_model_widgets()
        self._make_training_widgets()
        self._make_regularisation_widgets()
        self._make_hardware_widgets()
        self._make_lr_widgets()
        self._set_tooltips()
        self._lay_out()
        self._connect_edits()
        self._building = False
        self._update_devices()
        self._changed()

    # ---- the widgets, group by group ----
    def _make_model_widgets(self) -> None:
        self.task = self._combo(TASK_CHOICES, {"": "Detect from data", "classify": "Classification",
                                               "detect": "Detection (CenterNet)"})
        self.backbone = QComboBox()
        self.backbone.addItem(f"{DEFAULT_BACKBONE}  (checking weights…)", DEFAULT_BACKBONE)
        self.weights_status = WrapLabel("Asking the engine which weights are available…")
        self.weights = QComboBox()
        for text, value in (("ImageNet (pretrained)", "imagenet"), ("None (from scratch)", "none"),
                            ("File…", "file")):
            self.weights.addItem(text, value)
        self.image_size = self._spin(0, 2048, 0, step=32)
        self.image_size.setSpecialValueText("from the data")
        self.detector = self._combo(DETECTORS, {"ttf": "TTF (lateral neck, dense boxes)",
                                                "centernet": "CenterNet (paper's ResNet variant)"})

    def _make_training_widgets(self) -> None:
        defaults = TrainOptions()
        self.epochs = self._spin(1, 10_000, defaults.epochs)
        self.batch = self._spin(1, 4096, defaults.batch_size)
        self.lr = SciSpinBox(minimum=0.0)
        self.lr.setValue(defaults.lr)
        self.ref_batch = self._spin(0, 65_536, defaults.ref_batch)
        self.head_mult = QDoubleSpinBox()
        self.head_mult.setRange(0.1, 1000)
        self.head_mult.setDecimals(1)
        self.head_mult.setValue(defaults.head_lr_mult)
        self.head_mult.setKeyboardTracking(False)
        self.accumulate = self._spin(1, 1024, 1)
        self.effective = QLabel()
        self.effective.setWordWrap(True)
        self.effective.setTextFormat(Qt.TextFormat.RichText)
        self.warmup = QDoubleSpinBox()
        self.warmup.setRange(0, 1000)
        self.warmup.setSingleStep(0.5)
        self.warmup.setDecimals(2)
        self.warmup.setValue(1.0)
        self.schedule = self._combo(SCHEDULES)
        self.optimizer = self._combo(OPTIMIZERS, {"adamw": "AdamW", "sgd": "SGD (momentum)"})

    def _make_regularisation_widgets(self) -> None:
        self.freeze = QCheckBox("Train the head only")
        self.augment = self._combo(AUGMENTS)
        self.flip = self._combo(FLIPS, {"auto": "auto (off for digits, letters, signs)"})
        self.noise = QDoubleSpinBox()
        self.noise.setRange(0, 255)
        self.noise.setDecimals(1)
        self.noise.setSpecialValueText("0 (off)")
        self.noise.setSuffix(" levels")
        self.augment_preview = AugmentPreview(lambda: self.options().to_flags())

    def _make_hardware_widgets(self) -> None:
        self.checkpointing = self._combo(CHECKPOINTING, {"off": "off (fastest)", "stages": "stages (less memory)",
                                                         "blocks": "blocks (least memory)"})
        self.gpus = self._spin(0, 0, 0)
        self.gpus.setSpecialValueText("0 (CPU)")
        self.gpu_reason = WrapLabel("Looking for GPUs…")
        self.amp = QCheckBox("Mixed precision")
        # the main window gives the forecast the whole command line (data folder included)
        self.forecast = MemoryForecast(lambda: self.options().to_flags())

    def _make_lr_widgets(self) -> None:
        """The LR finder, the schedule's preview curve and the plan under it (Training group)."""
        self.lr_finder = LrFinder(lambda: self.options().to_flags())
        self.lr_finder.lr_chosen.connect(self.lr.setValue)
        self.lr_plot = pg.PlotWidget(background="w")
        self.lr_plot.setMinimumHeight(130)
        self.lr_plot.setMaximumHeight(170)
        self.lr_plot.setLabel("left", "LR")
        self.lr_plot.setLabel("bottom", "step")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.15)
        self.lr_plot.setMouseEnabled(x=False, y=False)
        self.lr_plot.hideButtons()
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen(theme.LOSS_SMOOTH, width=2))
        # an automatic classification LR is chosen at Start (lr_policy.fits_features): its lowest curve
        self.lr_curve_low = self.lr_plot.plot([], [], pen=pg.mkPen(theme.LOSS_SMOOTH, width=1, style=Qt.DashLine))
        self.plan = QLabel()
        self.plan.setWordWrap(True)

    def _set_tooltips(self) -> None:
        tips = [(self.task, "task"), (self.backbone, "backbone"), (self.weights, "weights"),
                (self.image_size, "image_size"), (self.epochs, "epochs"), (self.batch, "batch"), (self.lr, "lr"),
                (self.ref_batch, "ref_batch"), (self.accumulate, "accumulate"), (self.warmup, "warmup"),
                (self.head_mult, "head_lr_mult"), (self.flip, "flip"), (self.detector, "detector"),
                (self.optimizer, "optimizer"), (self.freeze, "freeze"), (self.augment, "augment"),
                (self.noise, "noise"),
                (self.checkpointing, "checkpointing"), (self.gpus, "gpus"), (self.amp, "amp")]
        for w, key in tips:
            w.setToolTip(TIPS[key])
        self.schedule.setToolTip("\n\n".join(f"{k}: {v}" for k, v in SCHEDULE_HELP.items()))

    def _lay_out(self) -> None:
        model = self._group("Model", [("Task", self.task), ("Backbone", self.backbone), ("", self.weights_status),
                                      ("Weights", self.weights), ("Image size", self.image_size),
                                      ("Detector", self.detector)])
        train = self._group("Training", [("Epochs", self.epochs), ("Batch per device", self.batch),
                                         ("Base LR", self.lr), ("", self.lr_finder),
                                         ("Reference batch", self.ref_batch),
                                         ("Accumulate", self.accumulate), ("Effective LR", self.effective),
                                         ("New parts LR ×", self.head_mult),
                                         ("Warmup epochs", self.warmup), ("Schedule", self.schedule),
                                         ("Optimizer", self.optimizer), ("", self.lr_plot), ("", self.plan)])
        regular = self._group("Regularisation", [("Freeze backbone", self.freeze), ("Augmentation", self.augment),
                                                 ("Horizontal flip", self.flip), ("Noise σ", self.noise),
                                                 ("", self.augment_preview)])
        hardware = self._group("Hardware and memory", [("GPUs", self.gpus), ("", self.gpu_reason),
                                                       ("AMP", self.amp), ("Checkpointing", self.checkpointing),
                                                       ("Memory", self.forecast)])
        inner = QWidget()
        col = QVBoxLayout(inner)
        for box in (model, hardware, train, regular):
            col.addWidget(box)
        col.addStretch(1)
        for combo in inner.findChildren(QComboBox):      # a long item is elided: the dock stays narrow
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _connect_edits(self) -> None:
        """Every edit re-derives the options (``_changed``); the weights combo may ask for a file first."""
        for w in (self.task, self.backbone, self.schedule, self.optimizer, self.augment, self.checkpointing,
                  self.flip, self.detector):
            w.currentIndexChanged.connect(self._changed)
        self.weights.activated.connect(self._weights_chosen)
        for w in (self.image_size, self.epochs, self.batch, self.ref_batch, self.accumulate, self.gpus):
            w.valueChanged.connect(self._changed)
        self.lr.valueChanged.connect(self._changed)
        self.head_mult.valueChanged.connect(self._changed)
        self.warmup.valueChanged.connect(self._changed)
        self.noise.valueChanged.connect(self._changed)
        self.freeze.toggled.connect(self._changed)
        self.amp.toggled.connect(self._changed)

    # ---- small builders ----
    @staticmethod
    def _spin(lo: int, hi: int, value: int, step: int = 1) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setSingleStep(step)
        s.setValue(value)
        s.setKeyboardTracking(False)
        return s

    @staticmethod
    def _combo(values, labels: dict[str, str] | None = None) -> QComboBox:
        """One item per choice (common/choices.py, in its order); `labels`: the words shown for some."""
        c = QComboBox()
        for value in values:
            c.addItem((labels or {}).get(value, value), value)
        return c

    @staticmethod
    def _group(title: str, rows) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, widget in rows:
            if label:
                form.addRow(label, widget)
            else:
                form.addRow(widget)
        return box

    # ---- inputs from other panels ----
    def set_info(self, info: dict) -> None:
        """Fill the backbone list and the devices from `frelon info --json`."""
        current = self.options().backbone
        self._backbones = {b["name"]: b for b in info.get("backbones", []) if "name" in b}
        self._building = True
        self.backbone.clear()
        for name, b in self._backbones.items():
            params = b.get("params")
            size = f"{params / 1e6:.1f} M" if params else "?"
            status = "offline ✓" if b.get("weights_available") else "needs a download"
            self.backbone.addItem(f"{name}  ·  {size}  ·  {status}", name)
            self.backbone.setItemData(self.backbone.count() - 1, b.get("weights_source", ""),
                                      Qt.ItemDataRole.ToolTipRole)
        names = list(self._backbones)
        pick = current if current in names else info.get("default_backbone", DEFAULT_BACKBONE)
        if pick in names:
            self.backbone.setCurrentIndex(names.index(pick))
        self._cuda = list((info.get("devices") or {}).get("cuda") or [])
        cpu = (info.get("devices") or {}).get("cpu") or {}
        self._cpu_text = f"{cpu.get('name', 'CPU')}, {cpu.get('cores', '?')} cores"
        self._building = False
        self._update_devices(first=True)
        self._changed()

    def set_info_failed(self, message: str) -> None:
        self.weights_status.setText(f"<span style='color:{theme.WARN}'>Could not ask the engine: {message}</span>")
        self.gpu_reason.setText("Unknown (the engine did not answer); training runs on the CPU.")

    def set_train_images(self, n: int) -> None:
        self._train_images = max(0, int(n))
        self._changed()

    def set_detected_task(self, task: str) -> None:
        """The data doctor's verdict; applied only while the task is 'Detect from data'."""
        self._detected_task = task
        names = {"classify": "classification", "detect": "detection"}
        self.task.setItemText(0, f"Detect from data ({names[task]})" if task in names else "Detect from data")
        self._changed()

    # ---- output ----
    def options(self) -> TrainOptions:
        weights = self.weights.currentData()
        return TrainOptions(
            task=self.task.currentData(), backbone=self.backbone.currentData() or DEFAULT_BACKBONE,
            weights=self._weights_file if weights == "file" and self._weights_file else
            ("imagenet" if weights == "file" else weights),
            image_size=self.image_size.value(), epochs=self.epochs.value(), batch_size=self.batch.value(),
            lr=self.lr.value(), ref_batch=self.ref_batch.value(), head_lr_mult=self.head_mult.value(),
            flip=self.flip.currentData(), detector=self.detector.currentData(), warmup_epochs=self.warmup.value(),
            schedule=self.schedule.currentData(), optimizer=self.optimizer.currentData(),
            freeze_backbone=self.freeze.isChecked(), augment=self.augment.currentData(), noise=self.noise.value(),
            checkpointing=self.checkpointing.currentData(), gpus=self.gpus.value(),
            accumulate=self.accumulate.value(), amp=self.amp.isChecked() and self.gpus.value() > 0)

    def set_options(self, o: TrainOptions) -> None:
        self._building = True
        _select(self.task, o.task)
        if self.backbone.findData(o.backbone) < 0:
            self.backbone.addItem(o.backbone, o.backbone)
        _select(self.backbone, o.backbone)
        if o.weights not in ("imagenet", "none"):
            self._weights_file = o.weights
            _select(self.weights, "file")
        else:
            _select(self.weights, o.weights)
        self.image_size.setValue(o.image_size)
        self.epochs.setValue(o.epochs)
        self.batch.setValue(o.batch_size)
        self.lr.setValue(o.lr)
        self.ref_batch.setValue(o.ref_batch)
        self.head_mult.setValue(o.head_lr_mult)
        _select(self.flip, o.flip)
        _select(self.detector, o.detector)
        self.accumulate.setValue(o.accumulate)
        self.warmup.setValue(o.warmup_epochs)
        _select(self.schedule, o.schedule)
        _select(self.optimizer, o.optimizer)
        self.freeze.setChecked(o.freeze_backbone)
        _select(self.augment, o.augment)
        self.noise.setValue(o.noise)
        _select(self.checkpointing, o.checkpointing)
        self.gpus.setValue(min(o.gpus, self.gpus.maximum()))
        self.amp.setChecked(o.amp)
        self._building = False
        self._changed()

    # ---- reactions ----
    def _weights_chosen(self) -> None:
        if self.weights.currentData() == "file":
            path, _ = QFileDialog.getOpenFileName(self, "Weights file", "",
                                                  "Weights (*.safetensors *.pt *.pth);;All files (*)")
            if path:
                self._weights_file = path
                self.weights.setItemText(2, f"File: {path.rsplit('/', 1)[-1]}")
            elif not self._weights_file:
                _select(self.weights, "imagenet")
        self._changed()

    def _update_devices(self, first: bool = False) -> None:
        n = len(self._cuda)
        self.gpus.setMaximum(n)
        self.gpus.setEnabled(n > 0)
        if n == 0:
            cpu = self._cpu_text
            if cpu:
                self.gpu_reason.setText(f"No CUDA GPU found, so training runs on the CPU ({cpu}).")
        else:
            names = ", ".join(f"{g.get('name', 'GPU')} ({theme.human_bytes(g.get('total_memory'))})" for g in self._cuda)
            self.gpu_reason.setText(f"{n} GPU{'s' if n > 1 else ''}: {names}")
            if first and self.gpus.value() == 0:
                self.gpus.setValue(1)

    def _changed(self, *_) -> None:
        if self._building:
            return
        o = self.options()
        self.forecast.mark_stale()
        on_gpu = o.gpus > 0
        self.amp.setEnabled(on_gpu)
        self.amp.setToolTip(TIPS["amp"] if on_gpu else "Mixed precision needs a GPU: the engine refuses it on the CPU.")
        self._show_weights_status(o.backbone)
        task = o.task or self._detected_task or "classify"
        self.detector.setEnabled(task == "detect")
        rule = lr_policy.RULES[o.optimizer]
        low, high = lr_policy.base_range(o.optimizer, 0.0, task)
        self.lr.setSpecialValueText(f"auto ({low:g})" if low == high else f"auto ({low:g}–{high:g})")
        self.lr.auto_value = high
        shown = dataclasses.replace(o, task=task)   # the LR the engine will use, for the task it will see
        self.ref_batch.setSpecialValueText(f"auto ({rule.ref_batch})")
        value, formula = shown.lr_formula.split(" = ", 1)
        chosen = lr_policy.fits_features(o.optimizer, o.lr, task)
        self.effective.setText(
            f"<b>{value}</b> = {formula} <small>({rule.name})</small><br>"
            + ("<small>chosen at Start from your data</small><br>" if chosen else "")
            + f"<small>global batch {o.global_batch} = {o.batch_size} per device × {o.world_size} "
            f"device{'s' if o.world_size > 1 else ''} × {o.accumulate} accumulation; new parts "
            f"at {shown.effective_lr * o.head_lr_mult:.3g}{' at most' if chosen else ''}</small>")
        self.effective.setToolTip(TIPS["effective_auto"] if chosen else "")
        spe = o.steps_per_epoch(self._train_images)
        total, warm = plan(spe, o.epochs, o.warmup_epochs)
        steps, lrs = preview(total, shown.effective_lr, warm, o.schedule)
        self.lr_curve.setData(steps, lrs)
        if chosen:
            steps, lows = preview(total, shown.effective_lr * low / high, warm, o.schedule)
            self.lr_curve_low.setData(steps, lows)
        else:
            self.lr_curve_low.setData([], [])
        images = f"{self._train_images} training images" if self._train_images else "training images unknown yet"
        self.plan.setText(f"<small>{images} → {_n(spe, 'step')} per epoch, {_n(total, 'step')}, "
                          f"warmup {_n(warm, 'step')}; images "
                          f"{f'{o.image_size}×{o.image_size}' if o.image_size else 'sized from the data'}</small>")
        self.options_changed.emit(o)

    def lr_preview(self) -> tuple[list[int], list[float]]:
        x, y = self.lr_curve.getData()
        return ([] if x is None else list(x)), ([] if y is None else list(y))

    def _show_weights_status(self, name: str) -> None:
        b = self._backbones.get(name)
        if b is None:
            return
        source = str(b.get("weights_source") or "")
        if b.get("weights_available"):
            text = f"<span style='color:{theme.OK}'>✓ ImageNet weights available offline</span>"
        else:
            text = (f"<span style='color:{theme.WARN}'>⚠ ImageNet weights need a download</span> "
                    "(or choose Weights → File…)")
        self.weights_status.setText(text)
        self.weights_status.setToolTip(source)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _select(combo: QComboBox, value) -> None:
    i = combo.findData(value)
    if i >= 0:
        combo.setCurrentIndex(i)
