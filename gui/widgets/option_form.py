"""A form made from option declarations (common/option.py): one widget per TrainConfig field, chosen
by the field's type and Spec — a check box for a switch, a list for choices, a spin box within the
declared range for a number, a line for text — its tooltip the option's help and range.

The Model & training panel gives most options a widget of its own; the others appear here, under
"More options", so an option added to common/train_config.py is in the app without a line of GUI.
"""
from __future__ import annotations

from dataclasses import Field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from frelon.common.option import allowed, flag_name, kind_of, spec_of

INT_MAX = 2**31 - 1          # QSpinBox holds a C int


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class OptionForm(QWidget):
    changed = Signal()

    def __init__(self, option_fields: list[Field], parent: QWidget | None = None):
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for f in option_fields:
            w = self._widget(f)
            s = spec_of(f)
            tip = " ".join(t for t in (s.help, f"Allowed: {allowed(s)}." if allowed(s) else "") if t)
            w.setToolTip(f"{flag_name(f.name)}: {tip}" if tip else flag_name(f.name))
            self.widgets[f.name] = w
            form.addRow(_label(f.name), w)
            self.set_value(f.name, f.default)

    def _widget(self, f: Field) -> QWidget:
        s, kind = spec_of(f), kind_of(f)
        if kind is bool:
            w = QCheckBox()
            w.toggled.connect(self.changed)
        elif s.choices:
            w = QComboBox()
            for c in s.choices:
                w.addItem(c or "(automatic)", c)
            w.currentIndexChanged.connect(self.changed)
        elif kind is int and not s.word:
            w = QSpinBox()
            w.setRange(int(max(-INT_MAX, s.low if s.low is not None else -INT_MAX)),
                       int(min(INT_MAX, s.high if s.high is not None else INT_MAX)))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self.changed)
        elif kind is float:
            w = QDoubleSpinBox()
            w.setDecimals(4)
            w.setRange(s.low if s.low is not None else -1e9, s.high if s.high is not None else 1e9)
            w.setSingleStep(0.05 if (s.high or 0) <= 1 else 1.0)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self.changed)
        else:
            w = QLineEdit()
            w.editingFinished.connect(self.changed)
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setSpecialValueText(lowest_in_words(s))
        return w

    def folded(self, title: str) -> QGroupBox:
        """A box holding this form under a button that unfolds it (folded at first); `self.toggle`."""
        box = QGroupBox()
        col = QVBoxLayout(box)
        self.toggle = QToolButton()
        self.toggle.setText(f"{title} ({len(self.widgets)})")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._unfold)
        col.addWidget(self.toggle)
        col.addWidget(self)
        self.setVisible(False)
        return box

    def _unfold(self, shown: bool) -> None:
        self.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def values(self) -> dict[str, Any]:
        out = {}
        for name, w in self.widgets.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[name] = w.value()
            else:
                out[name] = w.text()
        return out

    def set_value(self, name: str, value: Any) -> None:
        w = self.widgets[name]
        w.blockSignals(True)
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(max(0, w.findData(value)))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        else:
            w.setText(str(value))
        w.blockSignals(False)


def lowest_in_words(s) -> str:
    """A spin box's text at its lowest value where the option's `special` names it ("0 = off" →
    "off"), else "" (the number itself)."""
    value, _, words = s.special.partition(" = ")
    try:
        return words if words and s.low is not None and float(value) == s.low else ""
    except ValueError:
        return ""
