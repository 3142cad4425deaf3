"""The confusion matrix as a picture: rows are the true class, columns the predicted one.

Each cell is shaded by the share of its row (so a rare class reads as well as a common one) and
shows its count; the diagonal is what was right. Names are cut short when there are many classes.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


def _shade(share: float, correct: bool) -> QColor:
    share = max(0.0, min(1.0, share))
    base = (0, 114, 178) if correct else (213, 94, 0)     # blue right, vermilion wrong
    return QColor(*(int(255 - (255 - c) * share) for c in base))


class ConfusionMatrixView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrix: list[list[int]] = []
        self.setMinimumSize(200, 200)          # it scales to its room: a laptop's Results tab is short
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, classes: list[str], matrix: list[list[int]]) -> None:
        self.classes = [str(c) for c in classes]
        self.matrix = [[int(v or 0) for v in row] for row in matrix]
        self.setToolTip("Rows: true class · columns: predicted class · shade: share of the row")
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        n = len(self.matrix)
        if n == 0:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No confusion matrix yet (it comes with the last epoch).")
            return
        font = QFont(self.font())
        font.setPointSize(8 if n > 8 else 9)
        p.setFont(font)
        fm = p.fontMetrics()
        names = [c if len(c) <= 14 else c[:13] + "…" for c in self.classes] + [""] * n
        margin = min(140, max(fm.horizontalAdvance(nm) for nm in names[:n]) + 12) + 16
        top = margin
        side = max(4.0, min((self.width() - margin - 8) / n, (self.height() - top - 8) / n))
        show_numbers = side >= fm.horizontalAdvance("0000") + 4
        p.save()                                  # axis titles
        p.drawText(QRectF(margin, 0, side * n, 16), Qt.AlignmentFlag.AlignCenter, "predicted →")
        p.translate(0, top + side * n)
        p.rotate(-90)
        p.drawText(QRectF(0, 0, side * n, 16), Qt.AlignmentFlag.AlignCenter, "true →")
        p.restore()
        for i, row in enumerate(self.matrix):
            total = sum(row) or 1
            y = top + i * side
            p.setPen(self.palette().text().color())
            p.drawText(QRectF(16, y, margin - 20, side), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, names[i])
            for j, value in enumerate(row):
                x = margin + j * side
                share = value / total
                p.fillRect(QRectF(x, y, side - 1, side - 1), _shade(share, i == j) if value else QColor("#f6f6f6"))
                if show_numbers and value:
                    p.setPen(QColor("white") if share > 0.55 else QColor("#222222"))
                    p.drawText(QRectF(x, y, side - 1, side - 1), Qt.AlignmentFlag.AlignCenter, str(value))
        p.setPen(self.palette().text().color())
        for j in range(n):                        # column names, rotated
            p.save()
            p.translate(margin + j * side + side / 2 + fm.height() / 3, top - 4)
            p.rotate(-60)
            p.drawText(0, 0, names[j])
            p.restore()
