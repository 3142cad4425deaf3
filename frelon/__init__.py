"""Frelon: fine-tune image models on your own photos (desktop app + headless engine)."""
__version__ = "0.1.0"
