"""A spin box for learning rates: shows 0.001 or 3e-05 (not 0.000030), arrows halve and double.

With a minimum of 0 and a special value text, 0 reads as that text ("auto (0.001)"); the arrows
then step from `auto_value`, the value auto stands for."""
from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox


class SciSpinBox(QDoubleSpinBox):
    def __init__(self, parent=None, minimum: float = 1e-7, maximum: float = 10.0):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)
        self.auto_value = 1e-3

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        if self.specialValueText() and text == self.specialValueText():
            return self.minimum()
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def _validate_number(self, text: str, pos: int):
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = t == "" or all(c in "0123456789.eE-+" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = QValidator.State.Acceptable if self.minimum() <= v <= self.maximum() else QValidator.State.Intermediate
        return state, text, pos

    def validate(self, text: str, pos: int):
        if self.specialValueText() and text == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        return self._validate_number(text, pos)

    def stepBy(self, steps: int) -> None:
        value = (self.value() or self.auto_value) * (2.0 ** steps)
        self.setValue(min(self.maximum(), max(self.minimum(), float(f"{value:.4g}"))))

    def stepEnabled(self):
        return QDoubleSpinBox.StepEnabledFlag.StepUpEnabled | QDoubleSpinBox.StepEnabledFlag.StepDownEnabled
