"""Frelon's desktop app (PySide6 + pyqtgraph).

It drives the engine only through the `frelon` command line and its JSON-lines event stream
(docs/DESIGN.md), so it never imports torch: it starts fast and survives any crash of the engine.
Entry point: :func:`frelon.gui.app.main`.
"""
