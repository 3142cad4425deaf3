"""Entry point of the desktop app: `frelon` (or `frelon gui [--runs DIR]`) calls :func:`main`.

Imports Qt and pyqtgraph, never torch: the engine runs in a child process.
"""
from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def main(runs_dir: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Frelon")
    app.setApplicationName("Frelon")
    app.setApplicationDisplayName("Frelon")
    from frelon.gui.main_window import MainWindow
    window = MainWindow(runs_dir)
    window.show()
    # Ctrl+C in the terminal closes the window properly (which stops a running engine first).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)    # lets Python run its signal handlers
    heartbeat.start(250)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
