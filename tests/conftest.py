"""Test-wide setup: Qt draws offscreen (no display needed); set before anything imports Qt."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
