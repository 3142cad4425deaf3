"""Frelon: fine-tune image models on your own photos (desktop app + headless engine)."""
from frelon.common.version import __version__  # noqa: F401  (written once, in common/)
