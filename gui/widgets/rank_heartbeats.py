"""Each rank's heartbeat in a multi-rank run, and a stall when the watchdog reports one.

Fed by the launcher's `heartbeat` events (ranks: step, phase, age) and its `error` of kind
`stall`. A rank is green while it moves, amber once it has been quiet for half the stall
threshold, red past it. A stall shows which rank, where (the innermost frames of its stack,
folded), and offers to resume the run on one rank fewer.
"""
from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget

from frelon.gui import theme
from frelon.gui.widgets.labels import WrapLabel

QUIET_WITHOUT_THRESHOLD_S = 30.0     # before the watchdog knows the pace: amber after 15 s, red after 30


def rank_colour(age_s: float, stall_after_s: float | None) -> str:
    limit = stall_after_s or QUIET_WITHOUT_THRESHOLD_S
    return theme.BAD if age_s > limit else theme.WARN if age_s > limit / 2 else theme.OK


class RankHeartbeats(QWidget):
    resume_with_fewer = Signal(int)       # the number of ranks to resume on

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.beat: dict | None = None
        self.stall: dict | None = None
        self.labels: list[QLabel] = []
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addStretch(1)
        self.stall_label = WrapLabel()       # the watchdog's message may name paths
        self.stack_toggle = QToolButton(text="Stack ▸", checkable=True)
        self.stack_toggle.toggled.connect(self._fold)
        self.stack = QPlainTextEdit(readOnly=True)
        self.stack.setMaximumHeight(110)
        self.resume = QPushButton()
        self.resume.setObjectName("resume_fewer_ranks")
        self.resume.clicked.connect(lambda: self.resume_with_fewer.emit(self._fewer()))
        stall_row = QHBoxLayout()
        stall_row.addWidget(self.stall_label, 1)
        stall_row.addWidget(self.stack_toggle)
        stall_row.addWidget(self.resume)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.row)
        layout.addLayout(stall_row)
        layout.addWidget(self.stack)
        self.clear()

    def clear(self) -> None:
        self.beat = self.stall = None
        for w in (self.stall_label, self.stack_toggle, self.stack, self.resume):
            w.hide()
        self.stack_toggle.setChecked(False)
        self.refresh()

    def add(self, event: dict) -> None:
        if event.get("type") == "heartbeat":
            self.beat = event
        elif event.get("type") == "error" and event.get("kind") == "stall":
            self.stall = event
            self._show_stall()
        self.refresh()

    def world_size(self) -> int:
        return len((self.beat or {}).get("ranks") or ())

    def _fewer(self) -> int:
        return max(1, self.world_size() - 1)

    def refresh(self, now: float | None = None) -> None:
        """Redraw the ranks' lights; ages grow between events (call it from a timer)."""
        ranks = (self.beat or {}).get("ranks") or []
        self.setVisible(bool(ranks) or self.stall is not None)
        while len(self.labels) < len(ranks):
            label = QLabel()
            self.row.insertWidget(len(self.labels), label)
            self.labels.append(label)
        now = time.time() if now is None else now
        since = max(0.0, now - float((self.beat or {}).get("time", now)))
        limit = (self.beat or {}).get("stall_after_s")
        for label, r in zip(self.labels, ranks):
            age = float(r.get("age_s") or 0.0) + (0.0 if self.stall else since)
            label.setText(f"<span style='color:{rank_colour(age, limit)}'>●</span> rank {r.get('rank')} · "
                          f"step {r.get('step')} · {r.get('phase')} · {age:.0f} s")
            label.setToolTip(f"last heartbeat {age:.1f} s ago"
                             + (f"; a stall is called after {limit:.0f} s without progress" if limit else
                                "; the stall threshold is known after two steps"))
            label.show()
        for label in self.labels[len(ranks):]:
            label.hide()

    def _show_stall(self) -> None:
        s = self.stall
        self.stall_label.setText(f"<b style='color:{theme.BAD}'>Stalled:</b> {s.get('message', '')}"
                                 f"<br>{s.get('hint', '')}")
        self.stack.setPlainText("\n".join(s.get("frames") or ["(no stack)"])
                                + (f"\n\nthe whole stack: {s.get('stack_file')} (the other ranks' beside it)"
                                   if s.get("stack_file") else ""))
        n = self._fewer()
        self.resume.setText(f"Resume on {n} rank{'s' if n > 1 else ''}")
        self.resume.setToolTip("continue from the checkpoint saved when the stall was found, without the stuck rank's device")
        for w in (self.stall_label, self.stack_toggle, self.resume):
            w.show()

    def _fold(self, open_: bool) -> None:
        self.stack.setVisible(open_)
        self.stack_toggle.setText("Stack ▾" if open_ else "Stack ▸")
