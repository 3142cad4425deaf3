"""Model & training panel: every choice that becomes a `frelon train` flag, with its trade-off.

Owns its widgets and produces a :class:`TrainConfig` (``options()``; ``options_changed`` on every
edit): the engine's own declaration of the options (common/train_config.py). The options without a
widget of their own are in "More options", a form made from their declarations. The backbone
list, weights status and GPU count come from `frelon info --json` (``set_info``); the number of
training images from the data doctor (``set_train_images``), so the effective LR and the
LR-schedule preview (widgets/lr_plan_view.py) are exact before Start. The widgets that run a
command (memory forecast, LR finder, augmentation preview) ask `flags` for the command line:
the session's (data and runs folder included), or these options alone.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from frelon.common import lr_policy
from frelon.common.choices import CHOICES
from frelon.common.option import spec_of
from frelon.common.train_config import FIELDS, TrainConfig
from frelon.gui import theme
from frelon.gui.options import DEFAULTS, lr_preview, remembered, train_flags
from frelon.gui.panels.training_tips import SCHEDULE_HELP, TIPS
from frelon.gui.widgets.augment_preview import AugmentPreview
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.lr_finder import LrFinder
from frelon.gui.widgets.lr_plan_view import LrPlanView
from frelon.gui.widgets.memory_forecast import MemoryForecast
from frelon.gui.widgets.option_form import OptionForm
from frelon.gui.widgets.sci_spinbox import SciSpinBox


class TrainingPanel(QWidget):
    options_changed = Signal(object)          # TrainConfig
    # the options with a widget of their own here; the others the app shows are in "More options"
    OWN_WIDGETS = ("task", "backbone", "weights", "image_size", "detector", "epochs", "batch_size", "lr",
                   "ref_batch", "head_lr_mult", "accumulate", "warmup_epochs", "schedule", "optimizer",
                   "freeze_backbone", "augment", "flip", "noise", "checkpointing", "gpus", "amp")

    def __init__(self, flags: Callable[[], list[str]] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self._flags = flags or (lambda: train_flags(self.options()))
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
        self.task = self._combo(CHOICES["task"], {"": "Detect from data", "classify": "Classification",
                                               "detect": "Detection (CenterNet)",
                                               "multilabel": "Multi-label classification"})
        self.backbone = QComboBox()
        self.backbone.addItem(f"{DEFAULTS.backbone}  (checking weights…)", DEFAULTS.backbone)
        self.weights_status = WrapLabel("Asking the engine which weights are available…")
        self.weights = QComboBox()
        for text, value in (("ImageNet (pretrained)", "imagenet"), ("None (from scratch)", "none"),
                            ("File…", "file")):
            self.weights.addItem(text, value)
        self.image_size = self._spin("image_size", step=32)
        self.image_size.setSpecialValueText("from the data")
        self.detector = self._combo(CHOICES["detector"], {"ttf": "TTF (lateral neck, dense boxes)",
                                                "centernet": "CenterNet (paper's ResNet variant)"})

    def _make_training_widgets(self) -> None:
        self.epochs = self._spin("epochs")
        self.batch = self._spin("batch_size")
        self.lr = SciSpinBox(minimum=0.0)
        self.lr.setValue(DEFAULTS.lr)
        self.ref_batch = self._spin("ref_batch")
        self.head_mult = self._double("head_lr_mult", decimals=1, step=1.0)
        self.accumulate = self._spin("accumulate")
        self.lr_plan = LrPlanView()                # the effective LR, the schedule's curve, the steps
        self.effective = self.lr_plan.effective
        self.warmup = self._double("warmup_epochs", decimals=2, step=0.5)
        self.schedule = self._combo(CHOICES["schedule"])
        self.optimizer = self._combo(CHOICES["optimizer"], {"adamw": "AdamW", "sgd": "SGD (momentum)"})

    def _make_regularisation_widgets(self) -> None:
        self.freeze = QCheckBox("Train the head only")
        self.augment = self._combo(CHOICES["augment"])
        self.flip = self._combo(CHOICES["flip"], {"auto": "auto (off for digits, letters, signs)"})
        self.noise = self._double("noise", decimals=1, step=1.0)
        self.noise.setSpecialValueText("0 (off)")
        self.noise.setSuffix(" levels")
        self.augment_preview = AugmentPreview(self._flags)
        # every other option the app shows, as declared (common/train_config.py)
        self.more = OptionForm([f for name, f in FIELDS.items()
                                if remembered(name) and name not in self.OWN_WIDGETS])

    def _make_hardware_widgets(self) -> None:
        self.checkpointing = self._combo(CHOICES["checkpointing"], {"off": "off (fastest)", "stages": "stages (less memory)",
                                                         "blocks": "blocks (least memory)"})
        self.gpus = self._spin("gpus")
        self.gpus.setMaximum(0)
        self.gpus.setSpecialValueText("0 (CPU)")
        self.gpu_reason = WrapLabel("Looking for GPUs…")
        self.amp = QCheckBox("Mixed precision")
        # the main window gives the forecast the whole command line (data folder included)
        self.forecast = MemoryForecast(self._flags)

    def _make_lr_widgets(self) -> None:
        """The LR finder, the schedule's preview curve and the plan under it (Training group)."""
        self.lr_finder = LrFinder(self._flags)
        self.lr_finder.lr_chosen.connect(self.lr.setValue)
        self.lr_plot, self.plan = self.lr_plan.curve_widgets()
        self.lr_curve, self.lr_curve_low = self.lr_plan.curve, self.lr_plan.curve_low

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
        more = self.more.folded("More options")
        inner = QWidget()
        col = QVBoxLayout(inner)
        for box in (model, hardware, train, regular, more):
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
        self.more.changed.connect(self._changed)

    # ---- small builders ----
    @staticmethod
    def _spin(name: str, step: int = 1) -> QSpinBox:
        """A spin box for integer option `name`, within its declared range, at its default."""
        spec = spec_of(FIELDS[name])
        s = QSpinBox()
        s.setRange(int(spec.low), int(spec.high))
        s.setSingleStep(step)
        s.setValue(int(getattr(DEFAULTS, name)))
        s.setKeyboardTracking(False)
        return s

    @staticmethod
    def _double(name: str, decimals: int, step: float) -> QDoubleSpinBox:
        """A spin box for number option `name`, within its declared range, at its default."""
        spec = spec_of(FIELDS[name])
        s = QDoubleSpinBox()
        s.setDecimals(decimals)
        s.setRange(spec.low + (10 ** -decimals if spec.above else 0), spec.high)
        s.setSingleStep(step)
        s.setValue(getattr(DEFAULTS, name))
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
        pick = current if current in names else info.get("default_backbone", DEFAULTS.backbone)
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
        names = {"classify": "classification", "detect": "detection", "multilabel": "multi-label"}
        self.task.setItemText(0, f"Detect from data ({names[task]})" if task in names else "Detect from data")
        self._changed()

    # ---- output ----
    def options(self) -> TrainConfig:
        """The options chosen here (the data, runs folder and run name are the window's to add).
        No GPU means the CPU, even where the engine would find one; mixed precision only on a GPU."""
        weights = self.weights.currentData()
        gpus = self.gpus.value()
        return TrainConfig(
            task=self.task.currentData(), backbone=self.backbone.currentData() or DEFAULTS.backbone,
            weights=self._weights_file if weights == "file" and self._weights_file else
            ("imagenet" if weights == "file" else weights),
            image_size=self.image_size.value(), epochs=self.epochs.value(), batch_size=self.batch.value(),
            lr=self.lr.value(), ref_batch=self.ref_batch.value(), head_lr_mult=self.head_mult.value(),
            flip=self.flip.currentData(), detector=self.detector.currentData(), warmup_epochs=self.warmup.value(),
            schedule=self.schedule.currentData(), optimizer=self.optimizer.currentData(),
            freeze_backbone=self.freeze.isChecked(), augment=self.augment.currentData(), noise=self.noise.value(),
            checkpointing=self.checkpointing.currentData(), gpus=gpus, device="auto" if gpus else "cpu",
            accumulate=self.accumulate.value(), amp=self.amp.isChecked() and gpus > 0, **self.more.values())

    def set_options(self, o: TrainConfig) -> None:
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
        if isinstance(o.batch_size, int):           # 'auto' is the command line's
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
        for name in self.more.widgets:
            self.more.set_value(name, getattr(o, name))
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
        self.ref_batch.setSpecialValueText(f"auto ({rule.ref_batch})")
        self.lr_plan.show_preview(lr_preview(o, self._train_images, self._detected_task), self._train_images)
        self.options_changed.emit(o)

    def lr_preview(self) -> tuple[list[int], list[float]]:
        """The planned LR curve shown (steps done, LR)."""
        return self.lr_plan.preview.xy() if self.lr_plan.preview else ([], [])

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


def _select(combo: QComboBox, value) -> None:
    i = combo.findData(value)
    if i >= 0:
        combo.setCurrentIndex(i)
