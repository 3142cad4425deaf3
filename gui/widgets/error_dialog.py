"""An error as a readable message: what happened, what to do (the hint), details on demand."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, message: str, details: str = "",
               resume: bool = False) -> QMessageBox:
    """Opens a window-modal message box without blocking (``open``); returns it (tests inspect it).
    With `resume`, a Resume button is offered as ``box.resume_button`` (else that is None)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(message)
    if details:
        box.setDetailedText(details)
    box.resume_button = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole) if resume else None
    box.addButton(QMessageBox.StandardButton.Close)
    box.setObjectName("error_dialog")
    box.open()
    return box
